//! `/micro/peers/1.0.0` traffic: answering requests and feeding replies into the book.

use libp2p::PeerId;
use libp2p::request_response::{self};
use tracing::{debug, warn};

use crate::peer_exchange::{PeerEntry, PeerList};
use crate::{OverlayError, proto};

use super::{EventLoop, PendingAsk};

impl EventLoop {
    pub(super) fn on_peers_event(
        &mut self,
        event: request_response::Event<proto::PeersRequest, proto::PeersResponse>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                self.touch(peer);
                let max = usize::try_from(request.max_peers).unwrap_or(usize::MAX);
                let reply = self
                    .local_peer_list(max)
                    .to_wire(&self.config.peer_exchange);
                if self
                    .swarm
                    .behaviour_mut()
                    .peers
                    .send_response(channel, reply)
                    .is_err()
                {
                    debug!(%peer, "peer-exchange asker went away before the reply");
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
                self.touch(peer);
                let result = PeerList::from_wire(response, &self.config.peer_exchange)
                    .map_err(|source| OverlayError::InvalidPeerList { peer, source });
                match &result {
                    Ok(list) => {
                        if list.dropped > 0 {
                            warn!(%peer, dropped = list.dropped, "peer-exchange reply had invalid entries");
                        }
                        self.learn_from(peer, list);
                    }
                    Err(e) => warn!(%peer, error = %e, "dropping peer-exchange reply"),
                }
                if let Some((_, PendingAsk::Caller(reply))) = self.pending_asks.remove(&request_id)
                {
                    let _ = reply.send(result);
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if matches!(error, request_response::OutboundFailure::Io(_)) {
                    warn!(%peer, %error, "malformed or oversized peer-exchange reply dropped");
                } else {
                    debug!(%peer, %error, "peer-exchange request failed");
                }
                if let Some((_, PendingAsk::Caller(reply))) = self.pending_asks.remove(&request_id)
                {
                    let _ = reply.send(Err(OverlayError::PeerExchange {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound peer-exchange request failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    /// Feeds a peer-exchange reply from `reporter` into the peer book.
    pub(super) fn learn_from(&mut self, reporter: PeerId, list: &PeerList) {
        self.book.reported(
            *self.swarm.local_peer_id(),
            &PeerEntry {
                peer_id: reporter,
                role: list.role,
                addrs: list.listen_addrs.clone(),
                rtt: None,
            },
        );
        for entry in &list.peers {
            self.book.reported(reporter, entry);
        }
    }
}
