//! The peer block list: who may not connect, and keeping the rest of the actor from chasing
//! blocked peers.
//!
//! libp2p's `allow_block_list` behaviour does the enforcement: a blocked peer's dials are
//! refused before they start, its inbound connections are dropped once its identity is known
//! (after the Noise handshake), and blocking closes every established connection to it.

use libp2p::swarm::{ConnectionDenied, DialError, ListenError};
use libp2p::{PeerId, allow_block_list, connection_limits};
use tracing::{debug, info};

use crate::OverlayError;

use super::EventLoop;

impl EventLoop {
    /// Adds `peer` to the block list and closes its connections. Blocking a blocked peer is a
    /// no-op; a new entry beyond `limits.max_blocked_peers` is refused.
    pub(super) fn block_peer(&mut self, peer: PeerId) -> Result<(), OverlayError> {
        let limit = self.config.limits.max_blocked_peers;
        let behaviour = self.swarm.behaviour_mut();
        if behaviour.blocked.blocked_peers().contains(&peer) {
            return Ok(());
        }
        if behaviour.blocked.blocked_peers().len() >= limit {
            return Err(OverlayError::BlockListFull { peer, limit });
        }
        // Queues a close of every established connection to `peer`; the swarm reports each
        // as `ConnectionClosed`, which emits `PeerDisconnected` as usual.
        behaviour.blocked.block_peer(peer);
        // Kademlia would keep handing the peer out and trying it in queries, and gossipsub
        // re-dials explicit peers on its own: both forget it. Identify restores both after
        // an unblock and a new connection.
        behaviour.kad.remove_peer(&peer);
        behaviour.gossipsub.remove_explicit_peer(&peer);
        info!(%peer, "peer blocked");
        Ok(())
    }

    /// Removes `peer` from the block list. Does not dial it.
    pub(super) fn unblock_peer(&mut self, peer: PeerId) {
        if self.swarm.behaviour_mut().blocked.unblock_peer(peer) {
            info!(%peer, "peer unblocked");
        }
    }

    /// The blocked peers, sorted.
    pub(super) fn blocked_peers(&self) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = self
            .swarm
            .behaviour()
            .blocked
            .blocked_peers()
            .iter()
            .copied()
            .collect();
        peers.sort();
        peers
    }

    pub(super) fn is_blocked(&self, peer: &PeerId) -> bool {
        self.swarm
            .behaviour()
            .blocked
            .blocked_peers()
            .contains(peer)
    }

    /// The actor's own dials skip blocked peers (they would be refused anyway); says so at
    /// debug level and returns true if `peer` is blocked.
    pub(super) fn skip_blocked(&self, peer: &PeerId, why: &str) -> bool {
        let blocked = self.is_blocked(peer);
        if blocked {
            debug!(%peer, "not dialling blocked peer ({why})");
        }
        blocked
    }
}

/// Whether an outgoing connection was refused because the peer is in the block list.
pub(super) fn dial_denied_by_block_list(error: &DialError) -> bool {
    matches!(error, DialError::Denied { cause } if is_block_list(cause))
}

/// Whether an incoming connection was refused because the peer is in the block list.
pub(super) fn listen_denied_by_block_list(error: &ListenError) -> bool {
    matches!(error, ListenError::Denied { cause } if is_block_list(cause))
}

impl EventLoop {
    /// Keeps why a dial of a known peer failed, for the RPC failure it causes.
    pub(super) fn remember_dial_error(&mut self, peer: Option<PeerId>, error: &DialError) {
        let Some(peer) = peer else {
            return;
        };
        if self.dial_errors.len() >= super::MAX_DIAL_ERRORS && !self.dial_errors.contains_key(&peer)
        {
            // Bounded: errors nobody asked about are dropped wholesale.
            self.dial_errors.clear();
        }
        self.dial_errors.insert(peer, describe_dial_error(error));
    }
}

/// Whether an outgoing connection was refused by this node's own connection limits.
pub(super) fn dial_denied_by_limits(error: &DialError) -> bool {
    matches!(error, DialError::Denied { cause }
        if cause.downcast_ref::<connection_limits::Exceeded>().is_some())
}

fn is_block_list(cause: &ConnectionDenied) -> bool {
    cause.downcast_ref::<allow_block_list::Blocked>().is_some()
}

/// A dial error with its causes: libp2p's `Display` of a denied dial is only "Dial error",
/// which hides which limit or list refused it.
pub(super) fn describe_dial_error(error: &DialError) -> String {
    describe(error)
}

/// An incoming connection's error with its causes (see [`describe_dial_error`]).
pub(super) fn describe_listen_error(error: &ListenError) -> String {
    describe(error)
}

fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Transport errors already print their chain.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use libp2p::identity::Keypair;

    use crate::{OverlayConfig, OverlayError, spawn};

    use super::*;

    #[tokio::test]
    async fn the_block_list_is_bounded() {
        let mut config = OverlayConfig {
            listen: Vec::new(),
            ..OverlayConfig::default()
        };
        config.limits.max_blocked_peers = 2;
        let (overlay, _inbound, task) =
            spawn(Keypair::generate_ed25519(), config).expect("an overlay with no listener");
        let [p1, p2, p3] = [PeerId::random(), PeerId::random(), PeerId::random()];

        overlay.block_peer(p1).await.expect("room for p1");
        overlay.block_peer(p2).await.expect("room for p2");
        overlay
            .block_peer(p1)
            .await
            .expect("blocking again changes nothing");
        let full = overlay.block_peer(p3).await;
        assert!(
            matches!(full, Err(OverlayError::BlockListFull { peer, limit: 2 }) if peer == p3),
            "{full:?}"
        );

        overlay.unblock_peer(p1).await.expect("overlay running");
        overlay
            .block_peer(p3)
            .await
            .expect("room again after an unblock");
        let mut expected = vec![p2, p3];
        expected.sort();
        assert_eq!(overlay.blocked_peers().await.expect("running"), expected);

        overlay.shutdown().await;
        task.await.expect("the actor ends cleanly");
    }

    #[test]
    fn denied_dials_say_why() {
        let peer = PeerId::random();
        let error = DialError::Denied {
            cause: ConnectionDenied::new(std::io::Error::other(format!("{peer} is refused"))),
        };
        assert!(!dial_denied_by_block_list(&error));
        let text = describe_dial_error(&error);
        assert!(text.contains("is refused"), "{text}");
    }
}
