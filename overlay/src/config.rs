//! Overlay configuration: every limit and interval is a named, documented field here.

use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::Role;
use crate::link::LinkShaper;
use crate::rpc::RpcConfig;

/// How the node runs Kademlia.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KadMode {
    /// Client until libp2p confirms an external address, then server (libp2p's own rule).
    #[default]
    Auto,
    /// Always answer Kademlia queries (super nodes, and tests on loopback).
    Server,
    /// Never answer Kademlia queries.
    Client,
}

/// Everything the overlay needs to start. `Default` is a peer node on a laptop.
#[derive(Debug, Clone)]
pub struct OverlayConfig {
    /// Peer or super node.
    pub role: Role,
    /// Addresses to listen on. Default: TCP and QUIC on every interface, OS-chosen ports.
    /// `/memory/0` listens in memory on a free port (for many nodes in one process).
    pub listen: Vec<Multiaddr>,
    /// Nodes to join through. Each must end in `/p2p/<PeerId>`.
    pub bootstrap: Vec<BootstrapAddr>,
    /// Kademlia mode; `Server` is forced for super nodes.
    pub kad_mode: KadMode,
    /// Connection limits and the bound of the peer block list (super nodes get
    /// [`ConnectionLimitsConfig::super_node`]).
    pub limits: ConnectionLimitsConfig,
    /// Peer-exchange protocol bounds.
    pub peer_exchange: PeerExchangeConfig,
    /// How long one round of routing-table refresh takes: a lookup of this node's own key,
    /// then one of a random key in every bucket beyond the closest neighbour, to learn nodes
    /// beyond its direct peers. The lookups are spread evenly over the interval, one at a
    /// time, rather than run back to back as Kademlia's bootstrap does.
    pub discovery_interval: Duration,
    /// How often a super node asks other super nodes for theirs and dials the ones it
    /// lacks (the backbone mesh).
    pub backbone_interval: Duration,
    /// First wait before re-dialling bootstrap nodes when none answered; doubles each time.
    pub bootstrap_backoff_min: Duration,
    /// Longest wait between bootstrap attempts.
    pub bootstrap_backoff_max: Duration,
    /// How long a connection with no open streams stays up.
    pub idle_connection_timeout: Duration,
    /// Capacity of the command channel into the overlay actor. When full, callers wait.
    pub command_capacity: usize,
    /// Capacity of the broadcast channel of [`crate::OverlayEvent`]s. A subscriber that falls
    /// this far behind misses the oldest events and is told how many.
    pub event_capacity: usize,
    /// Most nodes the peer book remembers; beyond it the longest-unseen unconnected node is
    /// forgotten.
    pub peer_book_capacity: usize,
    /// Most addresses remembered per node.
    pub max_addrs_per_peer: usize,
    /// Largest gossipsub message sent or accepted, in bytes. Above the largest event (260 KiB
    /// signed) and broker message (240 KiB), so both always fit.
    pub gossip_max_message_bytes: usize,
    /// RPC protocol bounds.
    pub rpc: RpcConfig,
    /// State-sync protocol bounds.
    pub sync: crate::sync::SyncConfig,
    /// Capacity of the channel of [`crate::Inbound`] traffic to the node. When full, inbound
    /// RPCs are answered 503 at once and gossip is ignored (not forwarded).
    pub inbound_capacity: usize,
    /// Longest a Kademlia query (provider lookup, bootstrap) may run.
    pub kad_query_timeout: Duration,
    /// A provider lookup answers as soon as it found this many providers (else when the
    /// query ends).
    pub provider_lookup_enough: usize,
    /// How long a DHT provider record lives without being re-published (re-published at half
    /// this), so a provider that vanished stops being found.
    pub provider_record_ttl: Duration,
    /// Link shaping for simulations: when set, every TCP and in-memory connection of this
    /// node (dialled and accepted) is counted, delayed and possibly refused by this shaper,
    /// below Noise and Yamux; QUIC is not shaped. See [`crate::link`]. Default `None`: no
    /// shaping, no counting.
    pub link: Option<LinkShaper>,
}

impl Default for OverlayConfig {
    fn default() -> Self {
        Self {
            role: Role::Peer,
            listen: vec![
                "/ip4/0.0.0.0/tcp/0"
                    .parse()
                    .expect("static multiaddr is valid"),
                "/ip4/0.0.0.0/udp/0/quic-v1"
                    .parse()
                    .expect("static multiaddr is valid"),
            ],
            bootstrap: Vec::new(),
            kad_mode: KadMode::Auto,
            limits: ConnectionLimitsConfig::default(),
            peer_exchange: PeerExchangeConfig::default(),
            discovery_interval: Duration::from_secs(300),
            backbone_interval: Duration::from_secs(30),
            bootstrap_backoff_min: Duration::from_secs(1),
            bootstrap_backoff_max: Duration::from_secs(60),
            idle_connection_timeout: Duration::from_secs(60),
            command_capacity: 256,
            event_capacity: 1024,
            peer_book_capacity: 10_000,
            max_addrs_per_peer: 8,
            gossip_max_message_bytes: 320 * 1024,
            rpc: RpcConfig::default(),
            sync: crate::sync::SyncConfig::default(),
            inbound_capacity: 1024,
            kad_query_timeout: Duration::from_secs(10),
            provider_lookup_enough: 3,
            provider_record_ttl: Duration::from_secs(600),
            link: None,
        }
    }
}

impl OverlayConfig {
    /// A super node's defaults: Kademlia server and the higher connection limits.
    pub fn super_node() -> Self {
        Self {
            role: Role::Super,
            kad_mode: KadMode::Server,
            limits: ConnectionLimitsConfig::super_node(),
            ..Self::default()
        }
    }

    /// The Kademlia mode actually used: super nodes always serve.
    pub fn effective_kad_mode(&self) -> KadMode {
        match self.role {
            Role::Super => KadMode::Server,
            Role::Peer => self.kad_mode,
        }
    }
}

/// Connection limits enforced by libp2p's `connection_limits` behaviour, the connection
/// manager that keeps room below them, and the size bound of the peer block list
/// ([`crate::Overlay::block_peer`]).
///
/// `max_established` is a hard cap: a connection beyond it is refused. A node that sat at
/// its cap would refuse every new caller, so above `trim_above` connections the node closes
/// its least useful ones (idle, outside the gossip mesh, least recently used) until
/// `trim_to` are left. Connections younger than `trim_grace`, and peers with a request in
/// flight or used within `trim_grace`, are not closed; above `trim_urgent_above` the grace
/// shrinks to `trim_urgent_grace` (and the node trims to `trim_above`), so that a burst of
/// new connections, a Kademlia put's twenty at once, does not hold the node at its cap
/// and turn callers away. Peers with a request in flight and mesh peers a topic needs are
/// never closed.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimitsConfig {
    /// Most established connections in total.
    pub max_established: u32,
    /// Most established connections the node did not dial. Below `max_established`, so a
    /// node that others' lookups fill up can still dial out (a call to a provider).
    pub max_established_incoming: u32,
    /// Above this many established connections the node trims.
    pub trim_above: u32,
    /// How many established connections trimming leaves.
    pub trim_to: u32,
    /// How long a new connection, or a peer's last request, protects it from trimming.
    pub trim_grace: Duration,
    /// Above this many established connections, trimming uses `trim_urgent_grace`.
    pub trim_urgent_above: u32,
    /// The grace near the cap: long enough for a new connection's first request to arrive.
    pub trim_urgent_grace: Duration,
    /// Most established connections to one peer.
    pub max_established_per_peer: u32,
    /// Most incoming connections still in the handshake.
    pub max_pending_incoming: u32,
    /// Most outgoing connections still in the handshake.
    pub max_pending_outgoing: u32,
    /// Most peers the block list holds; blocking one more fails with
    /// [`crate::OverlayError::BlockListFull`]. Each entry costs a `PeerId` (about 80 bytes).
    pub max_blocked_peers: usize,
}

/// Default bound of the block list: far more misbehaving peers than an operator blocks by
/// hand, and enough for a simulation to partition a few thousand nodes.
const DEFAULT_MAX_BLOCKED_PEERS: usize = 4096;

/// Default [`ConnectionLimitsConfig::trim_grace`]: long enough for a new connection to carry
/// its first request (a lookup's, or the call that follows it), short enough that a burst of
/// lookups does not hold the node at its cap.
const DEFAULT_TRIM_GRACE: Duration = Duration::from_secs(10);

/// Default [`ConnectionLimitsConfig::trim_urgent_grace`].
const DEFAULT_TRIM_URGENT_GRACE: Duration = Duration::from_secs(1);

impl Default for ConnectionLimitsConfig {
    fn default() -> Self {
        Self::with_max_established(128)
    }
}

impl ConnectionLimitsConfig {
    /// Limits for a backbone node, which many peers connect to.
    pub fn super_node() -> Self {
        Self {
            max_pending_incoming: 256,
            max_pending_outgoing: 256,
            ..Self::with_max_established(2048)
        }
    }

    /// Peer limits with a cap of `max` connections, trimming from half of it down to three
    /// eighths. Half the cap stays free: one Kademlia lookup alone opens a dozen or more
    /// connections within a second, and each is protected for `trim_grace`. Connections
    /// others opened may fill three quarters of the cap; the last quarter is for the node's
    /// own dials. Above five eighths, young connections are protected for
    /// `trim_urgent_grace` only.
    pub fn with_max_established(max: u32) -> Self {
        let max = max.max(1);
        let part = |num: u64| {
            u32::try_from(u64::from(max) * num / 8)
                .unwrap_or(max)
                .max(1)
        };
        Self {
            max_established: max,
            max_established_incoming: part(6),
            trim_above: part(4),
            trim_to: part(3),
            trim_grace: DEFAULT_TRIM_GRACE,
            trim_urgent_above: part(5),
            trim_urgent_grace: DEFAULT_TRIM_URGENT_GRACE,
            max_established_per_peer: 2,
            max_pending_incoming: 32,
            max_pending_outgoing: 64,
            max_blocked_peers: DEFAULT_MAX_BLOCKED_PEERS,
        }
    }
}

/// Bounds of the `/micro/peers/1.0.0` protocol.
#[derive(Debug, Clone, Copy)]
pub struct PeerExchangeConfig {
    /// Largest encoded message read or written, in bytes. Larger frames are refused unread.
    pub max_message_bytes: usize,
    /// Most peer entries put in (and accepted from) one reply.
    pub max_peers_per_reply: usize,
    /// Most addresses per entry in a reply.
    pub max_addrs_per_entry: usize,
    /// How long a request may take, dial included.
    pub request_timeout: Duration,
    /// Most concurrent peer-exchange streams per connection.
    pub max_concurrent_streams: usize,
}

impl Default for PeerExchangeConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_peers_per_reply: 128,
            max_addrs_per_entry: 4,
            request_timeout: Duration::from_secs(10),
            max_concurrent_streams: 16,
        }
    }
}

/// A node to join through: a full multiaddr ending in `/p2p/<PeerId>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapAddr {
    /// The node's identity, taken from the trailing `/p2p/` component.
    pub peer_id: PeerId,
    /// The full address, `/p2p/` included.
    pub addr: Multiaddr,
}

/// Why a bootstrap address was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BootstrapAddrError {
    /// Not a multiaddr at all.
    #[error(
        "`{input}` is not a multiaddr ({reason}); expected e.g. /ip4/203.0.113.7/tcp/4001/p2p/12D3Koo…"
    )]
    Invalid {
        /// What was given.
        input: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A multiaddr without the node's identity.
    #[error(
        "`{0}` has no /p2p/<PeerId> at the end; copy the full address the node printed at start"
    )]
    MissingPeerId(String),
}

impl FromStr for BootstrapAddr {
    type Err = BootstrapAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let addr: Multiaddr = s.trim().parse().map_err(|e: libp2p::multiaddr::Error| {
            BootstrapAddrError::Invalid {
                input: s.to_owned(),
                reason: e.to_string(),
            }
        })?;
        match addr.iter().last() {
            Some(Protocol::P2p(peer_id)) => Ok(BootstrapAddr { peer_id, addr }),
            _ => Err(BootstrapAddrError::MissingPeerId(s.to_owned())),
        }
    }
}

/// A `NonZeroUsize` from a config value, treating 0 as 1.
pub(crate) fn non_zero(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PEER: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";

    #[test]
    fn bootstrap_addr_keeps_the_peer_id() {
        let input = format!("/ip4/127.0.0.1/tcp/4001/p2p/{PEER}");
        let parsed: BootstrapAddr = input.parse().expect("valid address");
        assert_eq!(parsed.peer_id.to_string(), PEER);
        assert_eq!(parsed.addr.to_string(), input);
    }

    #[test]
    fn bootstrap_addr_without_peer_id_is_refused() {
        let err = "/ip4/127.0.0.1/tcp/4001"
            .parse::<BootstrapAddr>()
            .unwrap_err();
        assert!(matches!(err, BootstrapAddrError::MissingPeerId(_)));
        assert!(err.to_string().contains("/p2p/"));
    }

    #[test]
    fn garbage_bootstrap_addr_is_refused() {
        let err = "127.0.0.1:4001".parse::<BootstrapAddr>().unwrap_err();
        assert!(matches!(err, BootstrapAddrError::Invalid { .. }));
    }

    #[test]
    fn super_nodes_always_serve_kademlia() {
        let config = OverlayConfig {
            kad_mode: KadMode::Client,
            ..OverlayConfig::super_node()
        };
        assert_eq!(config.effective_kad_mode(), KadMode::Server);
        assert!(config.limits.max_established > ConnectionLimitsConfig::default().max_established);
    }

    #[test]
    fn trimming_leaves_half_the_cap_free() {
        let peer = ConnectionLimitsConfig::default();
        assert_eq!(
            (peer.max_established, peer.trim_above, peer.trim_to),
            (128, 64, 48)
        );
        let sup = ConnectionLimitsConfig::super_node();
        assert_eq!((sup.trim_above, sup.trim_to), (1024, 768));
    }

    proptest! {
        #[test]
        fn trim_watermarks_stay_ordered_and_positive(max in any::<u32>()) {
            let limits = ConnectionLimitsConfig::with_max_established(max);
            prop_assert!(limits.trim_to >= 1);
            prop_assert!(limits.trim_to <= limits.trim_above);
            prop_assert!(limits.trim_above <= limits.max_established);
            prop_assert!(limits.trim_above <= limits.trim_urgent_above);
            prop_assert!(limits.trim_urgent_above <= limits.max_established_incoming);
            prop_assert!(limits.trim_above <= limits.max_established_incoming);
            prop_assert!(limits.max_established_incoming <= limits.max_established);
        }

        #[test]
        fn bootstrap_addr_parsing_never_panics(input in ".{0,200}") {
            let _ = input.parse::<BootstrapAddr>();
        }

        #[test]
        fn any_tcp_address_with_peer_id_parses(a in any::<u8>(), b in any::<u8>(), port in 1u16..) {
            let input = format!("/ip4/10.{a}.{b}.1/tcp/{port}/p2p/{PEER}");
            let parsed: BootstrapAddr = input.parse().expect("well-formed address");
            prop_assert_eq!(parsed.addr.to_string(), input);
        }
    }
}
