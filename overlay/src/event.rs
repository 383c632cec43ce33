//! What the overlay tells the rest of the node, and the read-only views it answers with.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::Role;

/// Something that happened in the overlay. Delivered on a bounded broadcast channel: a
/// subscriber that falls behind loses the oldest events (and learns how many it lost).
#[derive(Debug, Clone, PartialEq)]
pub enum OverlayEvent {
    /// A listener is up at this address.
    Listening {
        /// The bound address (without `/p2p/`).
        addr: Multiaddr,
    },
    /// The first connection to `peer` opened.
    PeerConnected {
        /// The remote.
        peer: PeerId,
        /// Its address on this connection.
        endpoint: Multiaddr,
    },
    /// The last connection to `peer` closed.
    PeerDisconnected {
        /// The remote.
        peer: PeerId,
    },
    /// Identify told us what `peer` is.
    PeerIdentified {
        /// The remote.
        peer: PeerId,
        /// Its advertised role, if it is a Micro node.
        role: Option<Role>,
    },
    /// Kademlia added or updated `peer` in the routing table.
    RoutingUpdated {
        /// The peer.
        peer: PeerId,
    },
    /// The node is connected and its first Kademlia bootstrap finished.
    Joined {
        /// Time since the overlay started.
        elapsed: Duration,
        /// Connected peers at that moment.
        peers: usize,
    },
    /// No peer is connected; bootstrap nodes will be dialled again after `retry_in`.
    Alone {
        /// Wait before the next attempt.
        retry_in: Duration,
    },
}

/// This node, as `micro-node id` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalInfo {
    /// The node's identity.
    pub peer_id: PeerId,
    /// Its role.
    pub role: Role,
    /// Its identify agent version.
    pub agent: String,
    /// Bound listen addresses, each ending in `/p2p/<PeerId>`: what others pass to
    /// `--bootstrap`.
    pub listen_addrs: Vec<Multiaddr>,
    /// Addresses other nodes confirmed as reachable.
    pub external_addrs: Vec<Multiaddr>,
    /// Current Kademlia mode (`server` or `client`).
    pub kad_mode: String,
    /// Peers with an open connection.
    pub connected_peers: usize,
    /// Nodes in the peer book.
    pub known_nodes: usize,
    /// Whether the node has joined (connected and bootstrapped).
    pub joined: bool,
    /// How long after the overlay started it joined, in milliseconds.
    #[serde(default)]
    pub joined_after_ms: Option<u64>,
    /// Seconds since the overlay started.
    pub uptime_secs: u64,
    /// Protocol messages this node has received since it started: gossip messages (first
    /// copies), RPC, sync and peer-exchange requests and responses, Kademlia requests it
    /// served, identify answers and ping round trips. Gossipsub's duplicates and control
    /// messages are not counted.
    #[serde(default)]
    pub messages_received: u64,
    /// Peers the connection manager disconnected to stay below the connection cap (see
    /// [`crate::config::ConnectionLimitsConfig`]).
    #[serde(default)]
    pub connections_trimmed: u64,
    /// Routing-table refresh lookups started, one at a time over each
    /// [`crate::OverlayConfig::discovery_interval`].
    #[serde(default)]
    pub routing_refreshes: u64,
    /// Kademlia requests sent to keep the routing table: by the join's lookup of the node's
    /// own key, and by refreshes. Service lookups are not counted.
    #[serde(default)]
    pub routing_requests: u64,
}

/// The result of a DHT provider lookup and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderLookup {
    /// The providers found, sorted.
    pub providers: Vec<PeerId>,
    /// Kademlia requests the lookup sent (its messages; with α = 3 parallel requests per
    /// round, hops ≥ requests / 3).
    pub requests: u32,
    /// Of those, how many were answered.
    pub successes: u32,
}

/// Which side opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// This node dialled.
    Outbound,
    /// The remote dialled.
    Inbound,
}

/// One connected peer, as `micro-node peers` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerConnection {
    /// The remote.
    pub peer_id: PeerId,
    /// Its role, once identified.
    pub role: Option<Role>,
    /// Its agent string, once identified.
    pub agent: Option<String>,
    /// The remote address of each open connection.
    pub remote_addrs: Vec<Multiaddr>,
    /// Who opened the oldest open connection.
    pub direction: Direction,
    /// When the oldest open connection opened, Unix ms.
    pub connected_since_unix_ms: u64,
    /// Last measured round-trip time, in milliseconds.
    pub rtt_ms: Option<f64>,
}
