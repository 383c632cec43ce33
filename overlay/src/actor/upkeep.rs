//! Staying joined: bootstrap retries with backoff, the super-node backbone.

use libp2p::multiaddr::Protocol;
use libp2p::swarm::DialError;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, kad};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::event::OverlayEvent;
use crate::peer_book::NodeInfo;
use crate::{Role, proto};

use super::{EventLoop, PendingAsk};

impl EventLoop {
    /// Dials every bootstrap node that is not blocked and not being dialled already; returns
    /// how many dials started and how many were still under way.
    pub(super) fn dial_bootstrap_nodes(&mut self) -> (usize, usize) {
        let (mut started, mut pending) = (0, 0);
        for boot in self.config.bootstrap.clone() {
            if self.skip_blocked(&boot.peer_id, "bootstrap") {
                continue;
            }
            let addr_without_p2p: Multiaddr = boot
                .addr
                .iter()
                .filter(|p| !matches!(p, Protocol::P2p(_)))
                .collect();
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&boot.peer_id, addr_without_p2p.clone());
            let opts = DialOpts::peer_id(boot.peer_id)
                .addresses(vec![addr_without_p2p])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match self.swarm.dial(opts) {
                Ok(()) => started += 1,
                Err(DialError::DialPeerConditionFalse(_)) => pending += 1,
                Err(e) => debug!(peer = %boot.peer_id, error = %e, "bootstrap dial not started"),
            }
        }
        (started, pending)
    }

    pub(super) fn maintain(&mut self) {
        self.trim_connections();
        self.refresh_routing();
        let now = Instant::now();
        let alone = self.swarm.connected_peers().next().is_none();
        if alone && !self.config.bootstrap.is_empty() && now >= self.bootstrap.next_attempt {
            self.bootstrap.attempts += 1;
            let retry_in = self.bootstrap.backoff;
            // Blocked bootstrap nodes are skipped; the backoff still grows, so a node whose
            // every bootstrap node is blocked retries (cheaply) at the slowest pace.
            let (dialled, pending) = self.dial_bootstrap_nodes();
            warn!(
                attempt = self.bootstrap.attempts,
                retry_in_secs = retry_in.as_secs_f32(),
                "no peer connected; dialled {dialled} of {} bootstrap node(s) again, {pending} \
                 still being dialled",
                self.config.bootstrap.len()
            );
            self.bootstrap.next_attempt = now + retry_in;
            self.bootstrap.backoff = (retry_in * 2).min(self.config.bootstrap_backoff_max);
            self.emit(OverlayEvent::Alone { retry_in });
        }
        if self.config.role == Role::Super && now >= self.next_backbone {
            self.next_backbone = now + self.config.backbone_interval;
            self.tend_backbone();
        }
    }

    /// Super nodes: ask connected supers for their peers (to learn more supers) and dial every
    /// known super that is not connected.
    pub(super) fn tend_backbone(&mut self) {
        let supers: Vec<NodeInfo> = self
            .book
            .iter()
            .filter(|n| n.role == Some(Role::Super))
            .cloned()
            .collect();
        for node in supers {
            if node.connected {
                let id = self.swarm.behaviour_mut().peers.send_request(
                    &node.peer_id,
                    proto::PeersRequest {
                        max_peers: self.config.peer_exchange.max_peers_per_reply as u32,
                    },
                );
                self.pending_asks
                    .insert(id, (node.peer_id, PendingAsk::Backbone));
            } else if !node.addrs.is_empty() && !self.skip_blocked(&node.peer_id, "backbone") {
                debug!(peer = %node.peer_id, "dialling super node to keep the backbone meshed");
                let opts = DialOpts::peer_id(node.peer_id)
                    .addresses(node.addrs.clone())
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                let _ = self.swarm.dial(opts);
            }
        }
    }

    pub(super) fn start_kad_bootstrap(&mut self) {
        match self.swarm.behaviour_mut().kad.bootstrap() {
            Ok(_) => self.bootstrapping = true,
            // Nobody in the routing table yet: identify will add the peer, then we retry.
            Err(kad::NoKnownPeers()) => debug!("kademlia bootstrap deferred: routing table empty"),
        }
    }

    pub(super) fn mark_joined(&mut self) {
        if self.joined || self.connections.is_empty() {
            return;
        }
        self.joined = true;
        let elapsed = self.started.elapsed();
        self.joined_after = Some(elapsed);
        let peers = self.connections.len();
        info!(
            peers,
            elapsed_ms = elapsed.as_millis() as u64,
            "joined the network"
        );
        self.emit(OverlayEvent::Joined { elapsed, peers });
    }
}
