//! Read-only views the handle asks for: this node, its connections, the nodes it knows.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

use crate::event::{Direction, LocalInfo, PeerConnection};
use crate::peer_book::NodeInfo;
use crate::peer_exchange::{PeerEntry, PeerList};

use super::EventLoop;

impl EventLoop {
    pub(super) fn local_info(&mut self) -> LocalInfo {
        let kad_mode = self.swarm.behaviour().kad.mode().to_string();
        LocalInfo {
            peer_id: *self.swarm.local_peer_id(),
            role: self.config.role,
            agent: self.config.role.agent_version(),
            listen_addrs: self
                .listen_addrs
                .iter()
                .map(|a| self.share_addr(a))
                .collect(),
            external_addrs: self
                .swarm
                .external_addresses()
                .map(|a| self.share_addr(a))
                .collect(),
            kad_mode,
            connected_peers: self.connections.len(),
            known_nodes: self.book.len(),
            joined: self.joined,
            joined_after_ms: self.joined_after.map(|d| d.as_millis() as u64),
            uptime_secs: self.started.elapsed().as_secs(),
            messages_received: self.messages_received,
            connections_trimmed: self.connections_trimmed,
            routing_refreshes: self.routing_refreshes,
            routing_requests: self.routing_requests,
        }
    }

    pub(super) fn connected_peers(&self) -> Vec<PeerConnection> {
        let mut peers: Vec<PeerConnection> = self
            .connections
            .iter()
            .filter_map(|(peer, conns)| {
                let oldest = conns.iter().min_by_key(|c| c.since_unix_ms)?;
                let node = self.book.get(peer);
                Some(PeerConnection {
                    peer_id: *peer,
                    role: node.and_then(|n| n.role),
                    agent: node.and_then(|n| n.agent.clone()),
                    remote_addrs: conns.iter().map(|c| c.remote.clone()).collect(),
                    direction: oldest.direction,
                    connected_since_unix_ms: oldest.since_unix_ms,
                    rtt_ms: node.and_then(|n| n.rtt_ms),
                })
            })
            .collect();
        peers.sort_by_key(|p| p.peer_id);
        peers
    }

    pub(super) fn known_nodes(&mut self) -> Vec<NodeInfo> {
        let mut in_table: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                in_table.insert(
                    *entry.node.key.preimage(),
                    entry.node.value.iter().cloned().collect(),
                );
            }
        }
        for (peer, addrs) in &in_table {
            self.book.routable(*peer, addrs.iter().cloned());
        }
        let mut nodes: Vec<NodeInfo> = self
            .book
            .iter()
            .cloned()
            .map(|mut n| {
                n.in_routing_table = in_table.contains_key(&n.peer_id);
                n
            })
            .collect();
        nodes.sort_by_key(|n| n.peer_id);
        nodes
    }

    /// What this node answers to a peer-exchange request: its connections, best address first.
    pub(super) fn local_peer_list(&self, max: usize) -> PeerList {
        let limit = max.min(self.config.peer_exchange.max_peers_per_reply);
        let peers: Vec<PeerEntry> = self
            .connected_peers()
            .into_iter()
            .map(|p| {
                let mut addrs = self
                    .book
                    .get(&p.peer_id)
                    .map(|n| n.addrs.clone())
                    .unwrap_or_default();
                if addrs.is_empty() {
                    addrs = self.connections[&p.peer_id]
                        .iter()
                        .filter(|c| c.direction == Direction::Outbound)
                        .map(|c| c.remote.clone())
                        .collect();
                }
                PeerEntry {
                    peer_id: p.peer_id,
                    role: p.role,
                    addrs,
                    rtt: p.rtt_ms.map(|ms| Duration::from_secs_f64(ms / 1000.0)),
                }
            })
            .collect();
        let truncated = peers.len() > limit;
        PeerList {
            role: Some(self.config.role),
            agent: self.config.role.agent_version(),
            listen_addrs: self.listen_addrs.clone(),
            peers: peers.into_iter().take(limit).collect(),
            truncated,
            dropped: 0,
        }
    }
}
