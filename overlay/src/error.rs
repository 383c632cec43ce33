//! The overlay's error type.

use libp2p::{Multiaddr, PeerId};

use crate::behaviour::BehaviourError;
use crate::peer_exchange::PeerExchangeError;

/// What can go wrong when starting or talking to the overlay.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The overlay actor has stopped (the node is shutting down).
    #[error("the overlay has shut down")]
    Stopped,
    /// The protocols could not be set up from the configuration.
    #[error(transparent)]
    Behaviour(#[from] BehaviourError),
    /// A transport could not be built.
    #[error("could not set up the {transport} transport: {reason}")]
    Transport {
        /// Which transport.
        transport: &'static str,
        /// Why.
        reason: String,
    },
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why (e.g. the port is in use).
        reason: String,
    },
    /// A dial could not even be started.
    #[error("cannot dial {addr}: {reason}")]
    Dial {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// A peer-exchange request failed: dial failure, timeout, unsupported protocol or a
    /// malformed reply.
    #[error("peer exchange with {peer} failed: {reason}")]
    PeerExchange {
        /// The asked peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// A gossipsub operation failed.
    #[error("gossip: {0}")]
    Gossip(String),
    /// A DHT operation failed.
    #[error("DHT: {0}")]
    Dht(String),
    /// A peer-exchange reply was well-formed but broke a limit.
    #[error("peer {peer} sent an invalid peer list: {source}")]
    InvalidPeerList {
        /// The responder.
        peer: PeerId,
        /// What was wrong.
        source: PeerExchangeError,
    },
    /// The peer is in this node's block list: no connection to or from it is allowed until
    /// [`crate::Overlay::unblock_peer`].
    #[error("peer {peer} is blocked")]
    PeerBlocked {
        /// The blocked peer.
        peer: PeerId,
    },
    /// The block list already holds its configured maximum
    /// (`OverlayConfig::limits.max_blocked_peers`); unblock a peer first or raise the bound.
    #[error("cannot block {peer}: the block list is full ({limit} peers)")]
    BlockListFull {
        /// The peer that was not blocked.
        peer: PeerId,
        /// The configured bound.
        limit: usize,
    },
}
