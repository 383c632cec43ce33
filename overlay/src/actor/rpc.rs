//! `/micro/rpc/1.0.0` traffic: outbound calls and their outcomes, inbound calls handed to the
//! node and answered when it is done (or refused at once when it is overloaded).

use std::pin::Pin;

use futures::Future;
use libp2p::request_response::{self, ResponseChannel};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::EventLoop;
use crate::rpc::{Inbound, RpcFailure, RpcResponder, error_response};
use crate::rpc_proto::{RpcRequest, RpcResponse};

/// Where overlay-made errors say they came from.
const ERROR_ID: &str = "micro.overlay.rpc";

/// An inbound RPC being handled: resolves to its caller, its request id, the node's response
/// (`None` if the node dropped the responder or ran past the limit) and the stream to answer
/// on.
pub(super) type PendingAnswer = Pin<Box<dyn Future<Output = Answer> + Send>>;

/// What a [`PendingAnswer`] resolves to.
pub(super) type Answer = (
    PeerId,
    String,
    Option<RpcResponse>,
    ResponseChannel<RpcResponse>,
);

impl EventLoop {
    pub(super) fn send_rpc(
        &mut self,
        peer: PeerId,
        mut addrs: Vec<Multiaddr>,
        request: RpcRequest,
        reply: oneshot::Sender<Result<RpcResponse, RpcFailure>>,
    ) {
        if let Some(node) = self.book.get(&peer) {
            addrs.extend(node.addrs.iter().cloned());
        }
        let id = self
            .swarm
            .behaviour_mut()
            .rpc
            .send_request_with_addresses(&peer, request, addrs);
        self.pending_rpcs.insert(id, reply);
        self.begin_use(peer);
    }

    pub(super) fn on_rpc_event(&mut self, event: request_response::Event<RpcRequest, RpcResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_inbound_rpc(peer, request, channel),
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                self.end_use(peer);
                if let Some(reply) = self.pending_rpcs.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let failure = match RpcFailure::of(peer, error) {
                    RpcFailure::Dial { peer, reason } => RpcFailure::Dial {
                        peer,
                        reason: self.dial_failure_reason(&peer).unwrap_or(reason),
                    },
                    other => other,
                };
                if let RpcFailure::Stream { reason, .. } = &failure {
                    warn!(%peer, %reason, "RPC stream failed (malformed or oversized response?)");
                }
                debug!(%peer, %failure, "outbound RPC failed");
                self.end_use(peer);
                if let Some(reply) = self.pending_rpcs.remove(&request_id) {
                    let _ = reply.send(Err(failure));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound RPC failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    fn on_inbound_rpc(
        &mut self,
        peer: PeerId,
        request: RpcRequest,
        channel: ResponseChannel<RpcResponse>,
    ) {
        let (tx, rx) = oneshot::channel();
        let request_id = request.id.clone();
        let inbound = Inbound::Rpc {
            peer,
            request,
            responder: RpcResponder { tx },
        };
        match self.inbound.try_send(inbound) {
            Ok(()) => {
                self.begin_use(peer);
                let limit = self.config.rpc.max_timeout;
                self.answering.push(Box::pin(async move {
                    let response = tokio::time::timeout(limit, rx)
                        .await
                        .ok()
                        .and_then(Result::ok);
                    (peer, request_id, response, channel)
                }));
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!(%peer, "node busy: inbound RPC refused with 503");
                let busy = error_response(
                    &request_id,
                    ERROR_ID,
                    503,
                    "node busy: too many calls in progress",
                );
                let _ = self.swarm.behaviour_mut().rpc.send_response(channel, busy);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                let gone = error_response(&request_id, ERROR_ID, 503, "node shutting down");
                let _ = self.swarm.behaviour_mut().rpc.send_response(channel, gone);
            }
        }
    }

    /// Why a dial of `peer` failed: the error the swarm reported (this node's connection
    /// limit, a refused handshake...), or that no address was known at all (the swarm then
    /// reports nothing).
    fn dial_failure_reason(&mut self, peer: &PeerId) -> Option<String> {
        if let Some(error) = self.dial_errors.remove(peer) {
            return Some(error);
        }
        let known = self.connections.contains_key(peer)
            || self.book.get(peer).is_some_and(|n| !n.addrs.is_empty())
            || !self.kad_addrs(peer).is_empty();
        (!known).then(|| "no address known".to_owned())
    }

    pub(super) fn send_rpc_response(&mut self, answer: Answer) {
        let (peer, request_id, response, channel) = answer;
        let request_id = request_id.as_str();
        self.end_use(peer);
        let response = response.unwrap_or_else(|| {
            error_response(request_id, ERROR_ID, 500, "the node gave no answer in time")
        });
        if self
            .swarm
            .behaviour_mut()
            .rpc
            .send_response(channel, response)
            .is_err()
        {
            debug!(request_id, "RPC caller went away before the response");
        }
    }
}
