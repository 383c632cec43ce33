//! Length-prefixed framing shared by every request-response protocol: one protobuf message,
//! prefixed by its length as an unsigned varint (LEB128, at most 10 bytes).
//!
//! Reads are bounded: a length above the caller's limit is refused before a single byte of
//! the body is read or allocated.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest varint a `u64` needs.
const MAX_VARINT_BYTES: usize = 10;

/// Reads one frame of at most `max_len` bytes.
///
/// Errors with `InvalidData` on a malformed or oversized length and `UnexpectedEof` on a
/// truncated frame.
pub async fn read_frame<T>(io: &mut T, max_len: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin,
{
    let len = read_varint(io).await?;
    let len = usize::try_from(len).map_err(|_| invalid(format!("frame length {len} overflows")))?;
    if len > max_len {
        return Err(invalid(format!(
            "frame of {len} bytes exceeds the {max_len}-byte limit"
        )));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Writes one frame and flushes it. Refuses (with `InvalidInput`) a body above `max_len`, so
/// a node never sends what its peers would refuse.
pub async fn write_frame<T>(io: &mut T, body: &[u8], max_len: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin,
{
    if body.len() > max_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "frame of {} bytes exceeds the {max_len}-byte limit",
                body.len()
            ),
        ));
    }
    let mut prefix = Vec::with_capacity(MAX_VARINT_BYTES);
    prost::encoding::encode_varint(body.len() as u64, &mut prefix);
    io.write_all(&prefix).await?;
    io.write_all(body).await?;
    io.flush().await
}

async fn read_varint<T>(io: &mut T) -> io::Result<u64>
where
    T: AsyncRead + Unpin,
{
    let mut value = 0u64;
    for i in 0..MAX_VARINT_BYTES {
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await?;
        let low = u64::from(byte[0] & 0x7f);
        let shift = 7 * i as u32;
        // The tenth byte may only carry the top bit of a u64.
        if i == MAX_VARINT_BYTES - 1 && low > 1 {
            return Err(invalid("frame length varint overflows u64".into()));
        }
        value |= low << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(invalid(
        "frame length varint is longer than 10 bytes".into(),
    ))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip() {
        let mut wire = Cursor::new(Vec::new());
        block_on(write_frame(&mut wire, b"hello", 16)).expect("write");
        let mut read = Cursor::new(wire.into_inner());
        assert_eq!(block_on(read_frame(&mut read, 16)).expect("read"), b"hello");
    }

    #[test]
    fn oversized_length_is_refused_before_reading_the_body() {
        let mut prefix = Vec::new();
        prost::encoding::encode_varint(1 << 40, &mut prefix);
        let err = block_on(read_frame(&mut Cursor::new(prefix), 1024)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("exceeds"));
    }

    #[test]
    fn truncated_body_is_an_eof() {
        let err = block_on(read_frame(&mut Cursor::new(vec![5, b'a']), 1024)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn endless_varint_is_refused() {
        let err = block_on(read_frame(&mut Cursor::new(vec![0xff; 64]), 1024)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn writer_refuses_what_readers_would_refuse() {
        let mut wire = Cursor::new(Vec::new());
        let err = block_on(write_frame(&mut wire, &[0; 17], 16)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(wire.into_inner().is_empty());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = block_on(read_frame(&mut Cursor::new(bytes), 128));
        }

        #[test]
        fn any_body_within_the_limit_round_trips(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut wire = Cursor::new(Vec::new());
            block_on(write_frame(&mut wire, &body, 512)).expect("write");
            let got = block_on(read_frame(&mut Cursor::new(wire.into_inner()), 512)).expect("read");
            prop_assert_eq!(got, body);
        }
    }
}
