//! The Micro Network overlay: the libp2p swarm and every wire protocol a node speaks.
//!
//! One task, the overlay actor, owns the [`libp2p::Swarm`]; the rest of the node holds an
//! [`Overlay`] handle whose async methods send it commands, and receives [`OverlayEvent`]s on
//! a bounded broadcast channel. The overlay moves bytes and exposes typed views; it knows
//! nothing of wasm, tokens or HTTP.
//!
//! Protocols: TCP+Noise+Yamux, in-memory (`/memory/<n>`, for simulations) and QUIC
//! transports, with optional [`link`] shaping of the TCP and memory ones; identify (which also
//! carries the node's [`Role`]), ping, Kademlia under [`KAD_PROTOCOL`], gossipsub, connection
//! limits, a peer block list ([`Overlay::block_peer`]), and peer exchange
//! ([`peer_exchange::PROTOCOL`]). [`crawl`] walks the network over peer exchange.

mod actor;
mod behaviour;
pub mod codec;
pub mod config;
pub mod crawl;
mod error;
mod event;
pub mod framing;
mod handle;
pub mod link;
pub mod peer_book;
pub mod peer_exchange;
mod role;
pub mod rpc;
pub mod sync;
mod transport;

/// Generated protobuf types of peer exchange (`overlay/proto/peers.proto`).
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/micro.peers.v1.rs"));
}

/// Generated protobuf types of RPC (`overlay/proto/rpc.proto`).
pub mod rpc_proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/micro.rpc.v1.rs"));
}

pub use actor::spawn;
pub use behaviour::{IDENTIFY_PROTOCOL_VERSION, KAD_PROTOCOL};
pub use config::{BootstrapAddr, KadMode, OverlayConfig};
pub use error::OverlayError;
pub use event::{Direction, LocalInfo, OverlayEvent, PeerConnection, ProviderLookup};
pub use handle::Overlay;
pub use link::{LinkProfile, LinkShaper, LinkStats};
pub use peer_book::{NodeInfo, Reach, Route};
pub use role::Role;
pub use rpc::{GossipMessage, Inbound, RpcFailure, RpcResponder};
pub use sync::SyncResponder;

pub use libp2p::gossipsub::MessageAcceptance;
pub use libp2p::identity::Keypair;
pub use libp2p::{Multiaddr, PeerId};
