//! Opaque request-response protocols for the node's state sync (events backfill now, ledger
//! anti-entropy later): the overlay carries bounded byte frames; the node owns their meaning.
//!
//! Outbound through [`crate::Overlay::request`]; inbound as [`crate::Inbound::Sync`], answered
//! through its [`SyncResponder`] (dropping it resets the stream).

use std::io;
use std::time::Duration;

use futures::{AsyncRead, AsyncWrite};
use libp2p::{StreamProtocol, request_response};
use tokio::sync::oneshot;

use crate::framing::{read_frame, write_frame};

/// Events backfill: "what do you hold of topic T beyond these cursors".
pub const EVENTS_SYNC: StreamProtocol = StreamProtocol::new("/micro/events-sync/1.0.0");

/// Ledger anti-entropy: "which accounts do you know, and send me this account's transfers".
pub const LEDGER_SYNC: StreamProtocol = StreamProtocol::new("/micro/ledger-sync/1.0.0");

/// Every sync protocol the overlay serves.
pub const PROTOCOLS: [StreamProtocol; 2] = [EVENTS_SYNC, LEDGER_SYNC];

/// Bounds of the sync protocols.
#[derive(Debug, Clone, Copy)]
pub struct SyncConfig {
    /// Largest request read or written, in bytes.
    pub max_request_bytes: usize,
    /// Largest response read or written, in bytes.
    pub max_response_bytes: usize,
    /// Longest one request may take, dial included.
    pub timeout: Duration,
    /// Most concurrent sync streams per connection.
    pub max_concurrent_streams: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 256 * 1024,
            max_response_bytes: 8 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            max_concurrent_streams: 16,
        }
    }
}

/// Bounded codec of opaque frames (one length-prefixed frame each way).
#[derive(Debug, Clone, Copy)]
pub struct BytesCodec {
    max_request: usize,
    max_response: usize,
}

impl BytesCodec {
    /// A codec with these bounds.
    pub fn new(max_request: usize, max_response: usize) -> Self {
        Self {
            max_request,
            max_response,
        }
    }
}

impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    /// The protocol travels with the request so the node knows which one it was asked on.
    type Request = (StreamProtocol, Vec<u8>);
    type Response = Vec<u8>;

    async fn read_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok((protocol.clone(), read_frame(io, self.max_request).await?))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_response).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Self::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req.1, self.max_request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, self.max_response).await
    }
}

/// An inbound sync request's reply slot. Dropping it without answering resets the stream.
#[derive(Debug)]
pub struct SyncResponder {
    pub(crate) tx: oneshot::Sender<Vec<u8>>,
}

impl SyncResponder {
    /// Sends the response. Returns false if the asker already went away.
    pub fn respond(self, response: Vec<u8>) -> bool {
        self.tx.send(response).is_ok()
    }
}
