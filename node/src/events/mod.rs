//! Events: Micro's durable, ordered, replayable messages — a stream per topic with offsets,
//! acknowledgement by consumer groups, replay from any retained point, and retention.
//!
//! An [`Event`] is published by one node and signed with that node's identity key
//! ([`Event::sign`]); every receiver checks it with [`verify`] (size first, then a
//! domain-separated signature, then that the signer is the publisher, then the fields). It is
//! identified by its publisher and a per-publisher, per-topic sequence number `seq` (1, 2, 3,
//! ...), and by its [`EventId`], the SHA-256 of its signed bytes.
//!
//! The [`EventStore`] keeps verified events in sled, one log per topic:
//!
//! - **Order.** Each publisher's events are appended strictly in `seq` order: an event ahead of
//!   its turn waits in a bounded in-memory buffer ([`Appended::Pending`]) while the caller
//!   backfills the gap from peers ([`EventStore::cursors`], [`EventStore::range`],
//!   [`EventStore::lowest_seq`]) or gives up on it ([`EventStore::skip_to`]). Duplicates,
//!   stale and equivocating events are dropped ([`Appended`]).
//! - **Offsets.** Node-local: each topic's log numbers events 0, 1, 2, ... in the order this
//!   node stored them; retention deletes from the front and never renumbers.
//! - **Durability.** Each append is one sled transaction across the log and its indexes;
//!   [`EventStore::flush`] makes everything before it durable (an acknowledged publish awaits
//!   it).
//! - **Reading and replay.** [`EventStore::read`] from the earliest, the latest, an offset or
//!   a time ([`ReadFrom`]).
//! - **Consumer groups.** A durable position per (topic, [`GroupName`]):
//!   [`EventStore::consume`] reads from it, [`EventStore::commit`] moves it forward after
//!   delivery — at-least-once.
//! - **Retention.** Per-topic bounds on count, age and bytes ([`Retention`]), enforced by
//!   [`EventStore::enforce_retention`].
//!
//! # Tree layout
//!
//! All trees are named `events/...`, so the database can be shared; every integer is
//! big-endian (sled's byte order is numeric order); `topic` is the topic name's bytes, which
//! never contain `0x00`; `publisher` is the PeerId's binary form.
//!
//! | tree | key | value |
//! |------|-----|-------|
//! | `events/log/<topic>` | offset `u64` | signed event bytes (an encoded [`proto::SignedEvent`]) |
//! | `events/pubseq/<topic>` | `len u8 ++ publisher ++ seq u64` | `offset u64 ++ id [32]` |
//! | `events/ids` | id `[32]` | `offset u64 ++ topic` |
//! | `events/cursors` | `topic ++ 0x00 ++ publisher` | next expected seq `u64` |
//! | `events/groups` | `topic ++ 0x00 ++ group` | next offset to deliver `u64` |
//! | `events/meta` | `topic` | `next_offset u64 ++ events u64 ++ bytes u64` |
//!
//! The keys of `events/meta` are the topics the store knows.
//!
//! The store is pure storage logic: no networking and no clock of its own (retention takes
//! `now_ms`). [`Events`] (`net/`) puts it on the network: publishing, gossip delivery, the
//! backfill protocol `/micro/events-sync/1.0.0`, consumption and retention.

mod backfill;
mod config;
mod consumer;
mod error;
mod event;
mod group;
mod id;
mod info;
mod keys;
mod net;
mod pending;
mod read;
mod retention;
mod store;
#[cfg(test)]
mod testkit;

/// Generated protobuf types (the wire contract in `node/proto/events.proto`).
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/micro.events.v1.rs"));
}

pub use config::{Retention, StoreConfig};
pub use error::StoreError;
pub use event::{Event, EventError, EventLimits, SIGNING_DOMAIN, VerifiedEvent, verify};
pub use group::{GroupName, GroupNameError, MAX_GROUP_LEN};
pub use id::{EventId, EventIdError};
pub use info::TopicInfo;
pub use net::{
    Consumed, EventPublished, Events, EventsConfig, EventsError, GOSSIP_PREFIX, SyncError,
    gossip_topic, provider_key,
};
pub use read::{ReadFrom, Stored};
pub use store::{Appended, EventStore};
