//! The service registry: signed service records and the directory of what the network serves.
//!
//! Every node announces what it serves as [`ServiceRecord`]s: one per service name, signed
//! with the node's own identity key ([`ServiceRecord::sign`]), carrying its addresses,
//! endpoints, price, an expiry and a sequence number. Records travel as bytes (gossip on
//! [`GOSSIP_TOPIC`], Kademlia, RPC) and every receiver checks them with [`verify`]: size first,
//! then signature, then that the signer is the record's owner, so no node can announce (or
//! withdraw) a service on another's behalf.
//!
//! Verified records go into the node's [`Directory`], which keeps the newest record per
//! (service, owner), remembers withdrawals so old records cannot be replayed, and drops
//! providers whose records are not refreshed in time: owners re-announce before their
//! records expire, and that heartbeat is what keeps them listed.
//!
//! This module is pure logic: no networking, no clock of its own (times are passed in, see
//! [`now_ms`]). Wiring it to gossipsub, Kademlia and RPC is done elsewhere.

mod directory;
mod name;
mod record;

/// Generated protobuf types (the wire contract in `node/proto/registry.proto`).
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/micro.registry.v1.rs"));
}

/// The gossipsub topic on which nodes publish their [`proto::Announcement`]s.
pub const GOSSIP_TOPIC: &str = "micro/registry/1";

pub use directory::{Directory, DirectoryConfig, Insert, ProviderSummary, ServiceSummary};
pub use name::{
    EndpointName, MAX_ENDPOINT_NAME_LEN, MAX_SERVICE_NAME_LEN, MAX_VERSION_PIN_LEN, NameError,
    ServiceName, ServiceRef,
};
pub use record::{
    Endpoint, RecordError, RecordLimits, SIGNING_DOMAIN, ServiceRecord, now_ms, verify,
};
