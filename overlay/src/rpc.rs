//! `/micro/rpc/1.0.0`: one request, one response per stream, bounded prost codec.
//!
//! The overlay only carries RPCs: outbound through [`crate::Overlay::rpc`], inbound as
//! [`crate::Inbound::Rpc`] for the node to dispatch and answer through its [`RpcResponder`].

use std::time::Duration;

use libp2p::{PeerId, StreamProtocol};
use tokio::sync::oneshot;

use crate::codec::ProstCodec;
use crate::rpc_proto::{RpcError, RpcRequest, RpcResponse};

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/micro/rpc/1.0.0");

/// The bounded codec for [`PROTOCOL`].
pub type Codec = ProstCodec<RpcRequest, RpcResponse>;

/// Bounds of the RPC protocol.
#[derive(Debug, Clone, Copy)]
pub struct RpcConfig {
    /// Largest request read or written, in bytes.
    pub max_request_bytes: usize,
    /// Largest response read or written, in bytes.
    pub max_response_bytes: usize,
    /// Longest any RPC may take, dial included; callers' deadlines are capped by it.
    pub max_timeout: Duration,
    /// Most concurrent RPC streams per connection.
    pub max_concurrent_streams: usize,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 4 * 1024 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            max_timeout: Duration::from_secs(60),
            max_concurrent_streams: 256,
        }
    }
}

/// Why an outbound RPC got no response. [`RpcFailure::is_retryable`] says whether another
/// provider may do better.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcFailure {
    /// The provider could not be dialled.
    #[error("cannot reach {peer}: {reason}")]
    Dial {
        /// The provider.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// No response within the deadline.
    #[error("{peer} did not answer within the deadline")]
    Timeout {
        /// The provider.
        peer: PeerId,
    },
    /// The connection closed before the response.
    #[error("connection to {peer} closed before it answered")]
    ConnectionClosed {
        /// The provider.
        peer: PeerId,
    },
    /// The provider does not speak `/micro/rpc/1.0.0`.
    #[error("{peer} does not serve RPC")]
    Unsupported {
        /// The provider.
        peer: PeerId,
    },
    /// The stream failed: malformed or oversized response, reset.
    #[error("RPC stream with {peer} failed: {reason}")]
    Stream {
        /// The provider.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// This node's overlay has stopped.
    #[error("the overlay has shut down")]
    Stopped,
}

impl RpcFailure {
    /// The failure of a request-response request to `peer`.
    pub(crate) fn of(peer: PeerId, error: libp2p::request_response::OutboundFailure) -> Self {
        use libp2p::request_response::OutboundFailure;
        match error {
            OutboundFailure::DialFailure => RpcFailure::Dial {
                peer,
                reason: "no address answered".to_owned(),
            },
            OutboundFailure::Timeout => RpcFailure::Timeout { peer },
            OutboundFailure::ConnectionClosed => RpcFailure::ConnectionClosed { peer },
            OutboundFailure::UnsupportedProtocols => RpcFailure::Unsupported { peer },
            other => RpcFailure::Stream {
                peer,
                reason: other.to_string(),
            },
        }
    }

    /// Whether the call may succeed on another provider (connection-level failures).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, RpcFailure::Stopped)
    }
}

/// An inbound RPC's reply slot. Answer with [`RpcResponder::respond`]; dropping it answers 500.
#[derive(Debug)]
pub struct RpcResponder {
    pub(crate) tx: oneshot::Sender<RpcResponse>,
}

impl RpcResponder {
    /// Sends the response. Returns false if the caller already went away.
    pub fn respond(self, response: RpcResponse) -> bool {
        self.tx.send(response).is_ok()
    }
}

/// A response carrying an error in Micro's model.
pub fn error_response(
    request_id: &str,
    id: &str,
    code: u16,
    detail: impl Into<String>,
) -> RpcResponse {
    RpcResponse {
        id: request_id.to_owned(),
        status: u32::from(code),
        error: Some(RpcError {
            id: id.to_owned(),
            code: u32::from(code),
            detail: detail.into(),
            status: status_text(code).to_owned(),
        }),
        ..Default::default()
    }
}

/// The status text of the codes the network uses.
pub fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Something a remote node sent that the node (not the overlay) must handle.
#[derive(Debug)]
pub enum Inbound {
    /// An RPC to dispatch.
    Rpc {
        /// Who called.
        peer: PeerId,
        /// The call.
        request: RpcRequest,
        /// Where the answer goes.
        responder: RpcResponder,
    },
    /// A request on one of the [`crate::sync`] protocols.
    Sync {
        /// Which protocol.
        protocol: libp2p::StreamProtocol,
        /// Who asked.
        peer: PeerId,
        /// The request frame.
        request: Vec<u8>,
        /// Where the answer goes.
        responder: crate::sync::SyncResponder,
    },
    /// A gossipsub message on a topic this node subscribed to. Report its validity with
    /// [`crate::Overlay::report_message`].
    Gossip(GossipMessage),
}

/// A gossipsub message awaiting validation.
#[derive(Debug, Clone)]
pub struct GossipMessage {
    /// The topic it came on.
    pub topic: String,
    /// The neighbour that forwarded it. Gossip carries no author: payloads that need one
    /// sign it inside.
    pub propagation_source: PeerId,
    /// Gossipsub's id for it, for [`crate::Overlay::report_message`].
    pub id: libp2p::gossipsub::MessageId,
    /// The payload.
    pub data: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;
    use proptest::prelude::*;

    fn request(body: Vec<u8>) -> RpcRequest {
        RpcRequest {
            id: "r1".into(),
            service: "greeter".into(),
            endpoint: "Say.Hello".into(),
            content_type: "application/json".into(),
            headers: [("k".to_owned(), "v".to_owned())].into(),
            body,
            timeout_ms: 500,
            version: "1.2.0".into(),
            receipt: vec![1, 2, 3],
        }
    }

    #[test]
    fn requests_and_responses_round_trip() {
        let mut codec = Codec::new(1024, 1024);
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_request(&PROTOCOL, &mut wire, request(b"{}".to_vec())))
            .expect("write");
        let back = block_on(codec.read_request(&PROTOCOL, &mut Cursor::new(wire.into_inner())))
            .expect("read");
        assert_eq!(back, request(b"{}".to_vec()));
        let resp = error_response("r1", "micro.node.rpc", 404, "no such service");
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_response(&PROTOCOL, &mut wire, resp.clone())).expect("write");
        let back = block_on(codec.read_response(&PROTOCOL, &mut Cursor::new(wire.into_inner())))
            .expect("read");
        assert_eq!(back, resp);
        assert_eq!(back.error.expect("error").status, "Not Found");
    }

    #[test]
    fn oversized_requests_are_refused_both_ways() {
        let mut small = Codec::new(64, 64);
        let mut wire = Cursor::new(Vec::new());
        assert!(
            block_on(small.write_request(&PROTOCOL, &mut wire, request(vec![0; 100]))).is_err()
        );
        let mut big = Codec::new(1 << 20, 1 << 20);
        let mut wire = Cursor::new(Vec::new());
        block_on(big.write_request(&PROTOCOL, &mut wire, request(vec![0; 100]))).expect("write");
        let err = block_on(small.read_request(&PROTOCOL, &mut Cursor::new(wire.into_inner())))
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let mut codec = Codec::new(2048, 2048);
            let _ = block_on(codec.read_request(&PROTOCOL, &mut Cursor::new(bytes.clone())));
            let _ = block_on(codec.read_response(&PROTOCOL, &mut Cursor::new(bytes)));
        }

        #[test]
        fn any_request_within_bounds_round_trips(body in proptest::collection::vec(any::<u8>(), 0..1024), id in "[a-z0-9]{0,16}") {
            let mut codec = Codec::new(4096, 4096);
            let mut req = request(body);
            req.id = id;
            let mut wire = Cursor::new(Vec::new());
            block_on(codec.write_request(&PROTOCOL, &mut wire, req.clone())).expect("write");
            let back = block_on(codec.read_request(&PROTOCOL, &mut Cursor::new(wire.into_inner()))).expect("read");
            prop_assert_eq!(back, req);
        }
    }
}
