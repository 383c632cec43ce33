//! Test helpers: temporary stores and deterministic publishers.

use std::collections::BTreeMap;

use libp2p::PeerId;
use libp2p::identity::Keypair;

use super::config::StoreConfig;
use super::event::{Event, EventLimits, VerifiedEvent};
use super::store::EventStore;

/// Timestamp of [`Publisher::event`]'s events with seq 0 (seq `s` is `BASE_MS + s`).
pub const BASE_MS: u64 = 1_700_000_000_000;

/// A publishing node with a fixed key.
pub struct Publisher {
    key: Keypair,
}

impl Publisher {
    /// The publisher whose key is derived from `seed`.
    pub fn new(seed: u8) -> Self {
        Self {
            key: Keypair::ed25519_from_bytes([seed; 32]).unwrap(),
        }
    }

    /// Its PeerId.
    pub fn peer(&self) -> PeerId {
        self.key.public().to_peer_id()
    }

    /// Its event `seq` on `topic`, stamped `BASE_MS + seq`, with a body naming both.
    pub fn event(&self, topic: &str, seq: u64) -> VerifiedEvent {
        self.event_full(
            topic,
            seq,
            BASE_MS + seq,
            format!("{topic}#{seq}").as_bytes(),
        )
    }

    /// Like [`Publisher::event`] with another body (a different event: equivocation).
    pub fn event_with_body(&self, topic: &str, seq: u64, body: &[u8]) -> VerifiedEvent {
        self.event_full(topic, seq, BASE_MS + seq, body)
    }

    /// Its event `seq` on `topic` with the given timestamp and body.
    pub fn event_full(
        &self,
        topic: &str,
        seq: u64,
        timestamp_ms: u64,
        body: &[u8],
    ) -> VerifiedEvent {
        Event {
            topic: topic.parse().unwrap(),
            publisher: self.peer(),
            seq,
            timestamp_ms,
            headers: BTreeMap::new(),
            content_type: "text/plain".into(),
            body: body.to_vec(),
        }
        .sign(&self.key, &EventLimits::default())
        .unwrap()
    }
}

/// A store over a fresh temporary sled database.
pub fn temp_store(config: StoreConfig) -> EventStore {
    let db = sled::Config::new().temporary(true).open().unwrap();
    EventStore::open(&db, config).unwrap()
}
