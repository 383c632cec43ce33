//! [`ShapedStream`]: a raw connection whose reads are delayed and whose bytes are counted.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::{AsyncRead, AsyncWrite, Future};
use tokio::time::{Instant, Sleep, sleep_until};

use super::{LinkShaper, MAX_DELAYED_BYTES};

/// A raw connection (TCP, in-memory) seen through a [`LinkShaper`].
///
/// Reads: what arrives from the socket is held back for the profile's `latency ± jitter`,
/// per chunk (one socket read), then delivered in arrival order; a chunk is never delivered
/// before an earlier one. End of stream and read errors come after all data before them, with
/// the same delay. At most [`MAX_DELAYED_BYTES`] are held back: beyond that the socket is not
/// read until the reader catches up. With a zero latency and jitter and nothing held back,
/// reads go straight through.
///
/// Writes, flushes and closes go straight to the socket. Bytes read from the socket and
/// written to it are counted in the shaper's [`LinkStats`](super::LinkStats).
///
/// Timers are tokio's: the stream must be polled inside a tokio runtime.
#[derive(Debug)]
pub struct ShapedStream<S> {
    inner: S,
    shaper: LinkShaper,
    /// Chunks read from the socket, oldest first, each with the instant it is due.
    delayed: VecDeque<Chunk>,
    /// Bytes in `delayed` not yet delivered.
    delayed_bytes: usize,
    /// When the newest chunk (or the end) is due: later arrivals are never due earlier.
    last_due: Option<Instant>,
    /// The socket's end of stream or read error, once read; delivered after `delayed`.
    end: ReadEnd,
    /// Wakes the reader when the oldest chunk falls due. Made on first use, so a stream can
    /// be built outside a runtime.
    timer: Option<Pin<Box<Sleep>>>,
}

#[derive(Debug)]
struct Chunk {
    due: Instant,
    data: Vec<u8>,
    /// How much of `data` was already delivered.
    read: usize,
}

#[derive(Debug)]
enum ReadEnd {
    /// The socket is still open.
    Open,
    /// The socket ended (`error: None`) or failed; the reader learns it at `due`.
    Pending {
        due: Instant,
        error: Option<io::Error>,
    },
    /// The reader was told; every later read returns end of stream.
    Delivered,
}

impl<S> ShapedStream<S> {
    /// Wraps `inner`, counting it as one connection of `shaper`.
    pub fn new(inner: S, shaper: LinkShaper) -> Self {
        shaper.count_connection();
        Self {
            inner,
            shaper,
            delayed: VecDeque::new(),
            delayed_bytes: 0,
            last_due: None,
            end: ReadEnd::Open,
            timer: None,
        }
    }

    /// The connection underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// When something read now is due: its sampled delay from now, but never before what
    /// was read earlier.
    fn next_due(&mut self) -> Instant {
        let delay = self.shaper.profile().sample_delay(&mut rand::rng());
        let due = (Instant::now() + delay).max(self.last_due.unwrap_or_else(Instant::now));
        self.last_due = Some(due);
        due
    }

    /// Copies every chunk that is due into `buf`, as far as it fits. Returns bytes copied.
    fn deliver_due(&mut self, buf: &mut [u8], now: Instant) -> usize {
        let mut copied = 0;
        while copied < buf.len() {
            let Some(chunk) = self.delayed.front_mut() else {
                break;
            };
            if chunk.due > now {
                break;
            }
            let n = (chunk.data.len() - chunk.read).min(buf.len() - copied);
            buf[copied..copied + n].copy_from_slice(&chunk.data[chunk.read..chunk.read + n]);
            chunk.read += n;
            copied += n;
            self.delayed_bytes -= n;
            if chunk.read == chunk.data.len() {
                self.delayed.pop_front();
            }
        }
        copied
    }

    /// The instant the reader next has something to learn: the oldest chunk, or the end.
    fn next_event(&self) -> Option<Instant> {
        match (self.delayed.front(), &self.end) {
            (Some(chunk), _) => Some(chunk.due),
            (None, ReadEnd::Pending { due, .. }) => Some(*due),
            (None, _) => None,
        }
    }
}

impl<S: AsyncRead + Unpin> ShapedStream<S> {
    /// Reads from the socket into the delay queue until it would block, ends, or the queue
    /// is full. `scratch` is the caller's buffer, used before it is filled with due data.
    fn fill(&mut self, cx: &mut Context<'_>, scratch: &mut [u8]) {
        while matches!(self.end, ReadEnd::Open) && self.delayed_bytes < MAX_DELAYED_BYTES {
            match Pin::new(&mut self.inner).poll_read(cx, scratch) {
                Poll::Pending => return,
                Poll::Ready(Ok(0)) => {
                    let due = self.next_due();
                    self.end = ReadEnd::Pending { due, error: None };
                }
                Poll::Ready(Ok(n)) => {
                    self.shaper.count_in(n);
                    let due = self.next_due();
                    self.delayed.push_back(Chunk {
                        due,
                        data: scratch[..n].to_vec(),
                        read: 0,
                    });
                    self.delayed_bytes += n;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    let due = self.next_due();
                    self.end = ReadEnd::Pending {
                        due,
                        error: Some(e),
                    };
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ShapedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if matches!(this.end, ReadEnd::Delivered) {
            return Poll::Ready(Ok(0));
        }
        let passthrough = this.delayed.is_empty()
            && matches!(this.end, ReadEnd::Open)
            && this.shaper.profile().is_instant();
        if passthrough {
            let n = ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            this.shaper.count_in(n);
            if n == 0 {
                this.end = ReadEnd::Delivered;
            }
            return Poll::Ready(Ok(n));
        }
        loop {
            this.fill(cx, buf);
            let now = Instant::now();
            let copied = this.deliver_due(buf, now);
            if copied > 0 {
                return Poll::Ready(Ok(copied));
            }
            if this.delayed.is_empty()
                && let ReadEnd::Pending { due, error } = &mut this.end
                && *due <= now
            {
                let error = error.take();
                this.end = ReadEnd::Delivered;
                return Poll::Ready(error.map_or(Ok(0), Err));
            }
            let Some(due) = this.next_event() else {
                // Nothing held back and the socket is open: `fill` saw it pending and the
                // socket will wake us.
                return Poll::Pending;
            };
            let timer = this.timer.get_or_insert_with(|| Box::pin(sleep_until(due)));
            if timer.deadline() != due {
                timer.as_mut().reset(due);
            }
            ready!(timer.as_mut().poll(cx));
            // Due now: go round to deliver it (and read whatever came meanwhile).
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ShapedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.shaper.count_out(n);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        this.shaper.count_out(n);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::{AsyncReadExt, AsyncWriteExt};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream, ReadBuf, duplex};

    use super::*;
    use crate::link::{LinkProfile, LinkStats};

    /// A tokio duplex end seen through the `futures` I/O traits libp2p uses.
    struct Compat(DuplexStream);

    impl AsyncRead for Compat {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let mut buf = ReadBuf::new(buf);
            ready!(tokio::io::AsyncRead::poll_read(
                Pin::new(&mut self.0),
                cx,
                &mut buf
            ))?;
            Poll::Ready(Ok(buf.filled().len()))
        }
    }

    impl AsyncWrite for Compat {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            tokio::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            tokio::io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
        }

        fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut self.0), cx)
        }
    }

    /// A shaped end and the raw end of a duplex pipe.
    fn pair(
        profile: LinkProfile,
        capacity: usize,
    ) -> (ShapedStream<Compat>, DuplexStream, LinkShaper) {
        let (ours, theirs) = duplex(capacity);
        let shaper = LinkShaper::new(profile);
        (
            ShapedStream::new(Compat(ours), shaper.clone()),
            theirs,
            shaper,
        )
    }

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn reads_arrive_after_the_latency_and_the_end_too() {
        let latency = 40 * MS;
        let (mut shaped, mut remote, _) = pair(LinkProfile::with_latency(latency), 1024);
        let start = Instant::now();
        remote.write_all(b"ping").await.expect("write");
        let mut got = [0u8; 4];
        shaped.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");
        assert_eq!(start.elapsed(), latency);

        let closed = Instant::now();
        drop(remote);
        let n = shaped.read(&mut got).await.expect("read the end");
        assert_eq!(n, 0);
        assert_eq!(
            closed.elapsed(),
            latency,
            "the end of stream is delayed like data"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_never_reorders_chunks() {
        let profile = LinkProfile {
            latency: 20 * MS,
            jitter: 20 * MS,
            drop_rate: 0.0,
        };
        let (mut shaped, mut remote, _) = pair(profile, 64 * 1024);
        let writer = tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..200u32 {
                let chunk = i.to_be_bytes();
                remote.write_all(&chunk).await.expect("write");
                sent.extend_from_slice(&chunk);
                // Spread the chunks over time so each is read (and delayed) on its own.
                tokio::time::sleep(MS).await;
            }
            sent
        });
        let mut got = Vec::new();
        shaped.read_to_end(&mut got).await.expect("read");
        let sent = writer.await.expect("writer");
        assert_eq!(got, sent);
    }

    #[tokio::test(start_paused = true)]
    async fn a_perfect_link_passes_reads_straight_through() {
        let (mut shaped, mut remote, _) = pair(LinkProfile::default(), 1024);
        let start = Instant::now();
        remote.write_all(b"now").await.expect("write");
        let mut got = [0u8; 3];
        shaped.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"now");
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn counters_are_exact() {
        let (mut shaped, mut remote, shaper) = pair(LinkProfile::with_latency(5 * MS), 64 * 1024);
        let incoming: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let outgoing = vec![7u8; 7_000];

        let to_send = incoming.clone();
        let remote_task = tokio::spawn(async move {
            remote.write_all(&to_send).await.expect("write");
            remote.shutdown().await.expect("shutdown");
            let mut got = Vec::new();
            remote.read_to_end(&mut got).await.expect("read");
            got
        });
        shaped.write_all(&outgoing).await.expect("write");
        shaped.close().await.expect("close");
        let mut got = Vec::new();
        shaped.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, incoming);
        assert_eq!(remote_task.await.expect("remote"), outgoing);
        assert_eq!(
            shaper.stats(),
            LinkStats {
                bytes_in: 10_000,
                bytes_out: 7_000,
                connections: 1,
                connections_dropped: 0,
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_stops_reading_the_socket_at_the_bound() {
        let (mut shaped, mut remote, shaper) =
            pair(LinkProfile::with_latency(Duration::from_secs(1)), 4 << 20);
        remote
            .write_all(&vec![1u8; 2 << 20])
            .await
            .expect("the pipe holds it all");
        let mut buf = vec![0u8; 16 * 1024];
        let first = futures::poll!(shaped.read(&mut buf));
        assert!(first.is_pending(), "nothing is due yet");
        assert!(shaped.delayed_bytes >= MAX_DELAYED_BYTES);
        assert!(shaped.delayed_bytes < MAX_DELAYED_BYTES + buf.len());
        assert_eq!(shaper.stats().bytes_in, shaped.delayed_bytes as u64);

        // Once the reader drains it, reading resumes and every byte arrives.
        let mut total = 0;
        while total < 2 << 20 {
            total += shaped.read(&mut buf).await.expect("read");
        }
        assert_eq!(shaper.stats().bytes_in, 2 << 20);
    }
}
