//! A request-response codec for one protobuf request type and one response type, framed by
//! [`crate::framing`] and bounded in both directions.

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncWrite};
use libp2p::{StreamProtocol, request_response};
use prost::Message;

use crate::framing::{read_frame, write_frame};

/// Bounded prost codec: requests of at most `max_request` bytes, responses of at most
/// `max_response`. A larger frame fails the stream with `InvalidData` before it is read.
#[derive(Debug)]
pub struct ProstCodec<Req, Resp> {
    max_request: usize,
    max_response: usize,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> Clone for ProstCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::new(self.max_request, self.max_response)
    }
}

impl<Req, Resp> ProstCodec<Req, Resp> {
    /// A codec with separate request and response bounds.
    pub fn new(max_request: usize, max_response: usize) -> Self {
        Self {
            max_request,
            max_response,
            _types: PhantomData,
        }
    }

    /// A codec with the same bound both ways.
    pub fn symmetric(max: usize) -> Self {
        Self::new(max, max)
    }
}

fn decode<M: Message + Default>(bytes: &[u8]) -> io::Result<M> {
    M::decode(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

impl<Req, Resp> request_response::Codec for ProstCodec<Req, Resp>
where
    Req: Message + Default + Send + 'static,
    Resp: Message + Default + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        decode(&read_frame(io, self.max_request).await?)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        decode(&read_frame(io, self.max_response).await?)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req.encode_to_vec(), self.max_request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res.encode_to_vec(), self.max_response).await
    }
}
