//! The peer book: every node this node knows of, from its own connections, Kademlia, and
//! what other nodes reported over peer exchange. Bounded; owned by the overlay actor.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::Role;
use crate::peer_exchange::PeerEntry;

/// Longest chain of "learned from" links followed when computing hops.
const MAX_ROUTE_HOPS: u32 = 32;

/// What this node knows about another node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's identity.
    pub peer_id: PeerId,
    /// Its role, once identify or a peer-exchange reply told it.
    pub role: Option<Role>,
    /// Its agent string, from identify.
    pub agent: Option<String>,
    /// Addresses it can be dialled at.
    pub addrs: Vec<Multiaddr>,
    /// Whether this node has a connection to it now.
    pub connected: bool,
    /// Whether it is in this node's Kademlia routing table.
    pub in_routing_table: bool,
    /// When this node last heard from it directly (connection, identify, ping), Unix ms.
    pub last_seen_unix_ms: Option<u64>,
    /// Last measured round-trip time, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// The node that told us about it, if we did not meet it first-hand.
    pub learned_from: Option<PeerId>,
}

/// How a known node is reached from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    /// Over an open connection.
    Direct,
    /// Not connected, but has addresses: it would be dialled directly on demand.
    Dial,
    /// Known only by name: no address to dial.
    Unknown,
}

/// One row of `network routes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The destination.
    pub peer_id: PeerId,
    /// Its role, if known.
    pub role: Option<Role>,
    /// How it is reached.
    pub reach: Reach,
    /// Overlay distance: 1 for a direct neighbour, n+1 for a node learned from one n away.
    pub hops: Option<u32>,
    /// The neighbour through which this node learned of it (none for direct neighbours).
    pub via: Option<PeerId>,
    /// Round-trip time, when measured.
    pub rtt_ms: Option<f64>,
}

/// The bounded table of known nodes.
#[derive(Debug)]
pub(crate) struct PeerBook {
    local: PeerId,
    nodes: HashMap<PeerId, NodeInfo>,
    capacity: usize,
    max_addrs: usize,
}

pub(crate) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

fn duration_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl PeerBook {
    pub(crate) fn new(local: PeerId, capacity: usize, max_addrs: usize) -> Self {
        Self {
            local,
            nodes: HashMap::new(),
            capacity: capacity.max(1),
            max_addrs,
        }
    }

    /// The entry for `peer`, created if there is room (or room can be made).
    fn entry(&mut self, peer: PeerId) -> Option<&mut NodeInfo> {
        if peer == self.local {
            return None;
        }
        if !self.nodes.contains_key(&peer) {
            if self.nodes.len() >= self.capacity && !self.evict_one() {
                return None;
            }
            self.nodes.insert(
                peer,
                NodeInfo {
                    peer_id: peer,
                    role: None,
                    agent: None,
                    addrs: Vec::new(),
                    connected: false,
                    in_routing_table: false,
                    last_seen_unix_ms: None,
                    rtt_ms: None,
                    learned_from: None,
                },
            );
        }
        self.nodes.get_mut(&peer)
    }

    /// Forgets the unconnected node seen longest ago. False when every node is connected.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .nodes
            .values()
            .filter(|n| !n.connected)
            .min_by_key(|n| n.last_seen_unix_ms.unwrap_or(0))
            .map(|n| n.peer_id);
        victim.is_some_and(|v| self.nodes.remove(&v).is_some())
    }

    fn add_addrs(node: &mut NodeInfo, addrs: impl IntoIterator<Item = Multiaddr>, max: usize) {
        for addr in addrs {
            if node.addrs.len() >= max {
                break;
            }
            if !node.addrs.contains(&addr) {
                node.addrs.push(addr);
            }
        }
    }

    pub(crate) fn connected(&mut self, peer: PeerId, dialed: Option<Multiaddr>) {
        let max = self.max_addrs;
        if let Some(node) = self.entry(peer) {
            node.connected = true;
            node.learned_from = None;
            node.last_seen_unix_ms = Some(unix_ms(SystemTime::now()));
            Self::add_addrs(node, dialed, max);
        }
    }

    pub(crate) fn disconnected(&mut self, peer: PeerId) {
        if let Some(node) = self.nodes.get_mut(&peer) {
            node.connected = false;
        }
    }

    /// Identify told us the node's agent and listen addresses: they replace hearsay.
    pub(crate) fn identified(&mut self, peer: PeerId, agent: &str, listen: Vec<Multiaddr>) {
        let max = self.max_addrs;
        if let Some(node) = self.entry(peer) {
            node.role = Role::from_agent_version(agent).or(node.role);
            node.agent = Some(agent.chars().take(128).collect());
            node.addrs.clear();
            Self::add_addrs(node, listen, max);
            node.last_seen_unix_ms = Some(unix_ms(SystemTime::now()));
        }
    }

    pub(crate) fn rtt(&mut self, peer: PeerId, rtt: Duration) {
        if let Some(node) = self.nodes.get_mut(&peer) {
            node.rtt_ms = Some(duration_ms(rtt));
            node.last_seen_unix_ms = Some(unix_ms(SystemTime::now()));
        }
    }

    pub(crate) fn routable(&mut self, peer: PeerId, addrs: impl IntoIterator<Item = Multiaddr>) {
        let max = self.max_addrs;
        if let Some(node) = self.entry(peer) {
            Self::add_addrs(node, addrs, max);
        }
    }

    /// `reporter` says it is connected to `entry`'s node. First-hand knowledge wins: hearsay
    /// only fills gaps.
    pub(crate) fn reported(&mut self, reporter: PeerId, entry: &PeerEntry) {
        let max = self.max_addrs;
        if let Some(node) = self.entry(entry.peer_id) {
            if node.role.is_none() {
                node.role = entry.role;
            }
            if !node.connected && node.learned_from.is_none() {
                node.learned_from = Some(reporter);
            }
            Self::add_addrs(node, entry.addrs.iter().cloned(), max);
        }
    }

    pub(crate) fn get(&self, peer: &PeerId) -> Option<&NodeInfo> {
        self.nodes.get(peer)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.values()
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Distance of `peer` along "learned from" links, and the direct neighbour it hangs off.
    fn hops(&self, peer: &PeerId) -> (Option<u32>, Option<PeerId>) {
        let mut current = *peer;
        let mut hops = 1;
        loop {
            let Some(node) = self.nodes.get(&current) else {
                return (None, None);
            };
            if node.connected {
                let via = (current != *peer).then_some(current);
                return (Some(hops), via);
            }
            match node.learned_from {
                Some(next) if hops < MAX_ROUTE_HOPS && next != *peer => {
                    current = next;
                    hops += 1;
                }
                _ => return (None, None),
            }
        }
    }

    pub(crate) fn routes(&self) -> Vec<Route> {
        let mut routes: Vec<Route> = self
            .nodes
            .values()
            .map(|node| {
                let (hops, via) = self.hops(&node.peer_id);
                let reach = if node.connected {
                    Reach::Direct
                } else if node.addrs.is_empty() {
                    Reach::Unknown
                } else {
                    Reach::Dial
                };
                Route {
                    peer_id: node.peer_id,
                    role: node.role,
                    reach,
                    hops,
                    via,
                    rtt_ms: node.rtt_ms,
                }
            })
            .collect();
        routes.sort_by_key(|r| (r.hops.unwrap_or(u32::MAX), r.peer_id));
        routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("addr")
    }

    fn entry(peer: PeerId, role: Role) -> PeerEntry {
        PeerEntry {
            peer_id: peer,
            role: Some(role),
            addrs: vec![addr(1)],
            rtt: None,
        }
    }

    #[test]
    fn routes_follow_learned_from_links() {
        let local = PeerId::random();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut book = PeerBook::new(local, 100, 4);
        book.connected(a, Some(addr(1)));
        book.reported(a, &entry(b, Role::Peer));
        book.reported(b, &entry(c, Role::Super));
        book.reported(a, &entry(local, Role::Peer));

        let routes: HashMap<PeerId, Route> =
            book.routes().into_iter().map(|r| (r.peer_id, r)).collect();
        assert_eq!(routes.len(), 3, "the local node is never in its own book");
        assert_eq!(routes[&a].reach, Reach::Direct);
        assert_eq!((routes[&a].hops, routes[&a].via), (Some(1), None));
        assert_eq!((routes[&b].hops, routes[&b].via), (Some(2), Some(a)));
        assert_eq!((routes[&c].hops, routes[&c].via), (Some(3), Some(a)));
        assert_eq!(routes[&c].reach, Reach::Dial);
        assert_eq!(routes[&c].role, Some(Role::Super));
    }

    #[test]
    fn hearsay_never_overrides_first_hand_knowledge() {
        let mut book = PeerBook::new(PeerId::random(), 100, 4);
        let (a, b) = (PeerId::random(), PeerId::random());
        book.connected(b, None);
        book.identified(b, &Role::Super.agent_version(), vec![addr(2)]);
        book.reported(a, &entry(b, Role::Peer));
        let node = book.get(&b).expect("known");
        assert_eq!(node.role, Some(Role::Super));
        assert_eq!(node.learned_from, None);
    }

    #[test]
    fn cycles_in_learned_from_do_not_loop() {
        let mut book = PeerBook::new(PeerId::random(), 100, 4);
        let (a, b) = (PeerId::random(), PeerId::random());
        book.reported(a, &entry(b, Role::Peer));
        book.reported(b, &entry(a, Role::Peer));
        assert!(book.routes().iter().all(|r| r.hops.is_none()));
    }

    #[test]
    fn capacity_evicts_unconnected_nodes_only() {
        let mut book = PeerBook::new(PeerId::random(), 2, 4);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        book.connected(a, None);
        book.reported(a, &entry(b, Role::Peer));
        book.reported(a, &entry(c, Role::Peer));
        assert_eq!(book.len(), 2);
        assert!(book.get(&a).is_some(), "connected nodes are kept");
        assert!(
            book.get(&c).is_some(),
            "the newest node took the evicted one's place"
        );
    }

    #[test]
    fn addresses_are_bounded() {
        let mut book = PeerBook::new(PeerId::random(), 10, 3);
        let a = PeerId::random();
        book.routable(a, (1..20).map(addr));
        assert_eq!(book.get(&a).expect("known").addrs.len(), 3);
    }
}
