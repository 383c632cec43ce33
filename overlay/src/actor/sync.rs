//! State-sync traffic (`/micro/events-sync/1.0.0`, ...): opaque frames to and from the node.

use std::pin::Pin;

use futures::Future;
use libp2p::request_response::{self, ResponseChannel};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::EventLoop;
use crate::rpc::{Inbound, RpcFailure};
use crate::sync::SyncResponder;

/// An inbound sync request being handled: resolves to the asker, the node's answer (`None`
/// if it gave none in time: the stream is reset) and the stream to answer on.
pub(super) type PendingSync = Pin<Box<dyn Future<Output = SyncAnswer> + Send>>;

/// What a [`PendingSync`] resolves to.
pub(super) type SyncAnswer = (
    PeerId,
    StreamProtocol,
    Option<Vec<u8>>,
    ResponseChannel<Vec<u8>>,
);

impl EventLoop {
    /// The behaviour serving `protocol` (one of [`crate::sync::PROTOCOLS`]).
    fn sync_behaviour(
        &mut self,
        protocol: &StreamProtocol,
    ) -> &mut request_response::Behaviour<crate::sync::BytesCodec> {
        let behaviour = self.swarm.behaviour_mut();
        if *protocol == crate::sync::LEDGER_SYNC {
            &mut behaviour.ledger_sync
        } else {
            &mut behaviour.sync
        }
    }

    pub(super) fn send_sync(
        &mut self,
        protocol: StreamProtocol,
        peer: PeerId,
        request: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, RpcFailure>>,
    ) {
        if !crate::sync::PROTOCOLS.contains(&protocol) {
            let _ = reply.send(Err(RpcFailure::Unsupported { peer }));
            return;
        }
        let addrs = self
            .book
            .get(&peer)
            .map(|n| n.addrs.clone())
            .unwrap_or_default();
        let id = self.sync_behaviour(&protocol).send_request_with_addresses(
            &peer,
            (protocol.clone(), request),
            addrs,
        );
        self.pending_sync.insert((protocol, id), reply);
        self.begin_use(peer);
    }

    pub(super) fn on_sync_event(
        &mut self,
        lane: StreamProtocol,
        event: request_response::Event<(StreamProtocol, Vec<u8>), Vec<u8>>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request: (protocol, request),
                        channel,
                        ..
                    },
                ..
            } => {
                let (tx, rx) = oneshot::channel();
                let inbound = Inbound::Sync {
                    protocol: protocol.clone(),
                    peer,
                    request,
                    responder: SyncResponder { tx },
                };
                match self.inbound.try_send(inbound) {
                    Ok(()) => {
                        self.begin_use(peer);
                        let limit = self.config.sync.timeout;
                        self.answering_sync.push(Box::pin(async move {
                            let answer = tokio::time::timeout(limit, rx)
                                .await
                                .ok()
                                .and_then(Result::ok);
                            (peer, protocol, answer, channel)
                        }));
                    }
                    // Dropping the channel resets the stream: the asker retries elsewhere.
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        warn!(%peer, "node busy: sync request refused")
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
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
                if let Some(reply) = self.pending_sync.remove(&(lane, request_id)) {
                    let _ = reply.send(Ok(response));
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, %error, "sync request failed");
                self.end_use(peer);
                let failure = RpcFailure::of(peer, error);
                if let Some(reply) = self.pending_sync.remove(&(lane, request_id)) {
                    let _ = reply.send(Err(failure));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound sync request failed")
            }
            Event::ResponseSent { .. } => {}
        }
    }

    pub(super) fn send_sync_answer(
        &mut self,
        protocol: StreamProtocol,
        answer: Option<Vec<u8>>,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        match answer {
            Some(answer) => {
                if self
                    .sync_behaviour(&protocol)
                    .send_response(channel, answer)
                    .is_err()
                {
                    debug!("sync asker went away before the answer");
                }
            }
            None => debug!("node gave no sync answer: resetting the stream"),
        }
    }
}
