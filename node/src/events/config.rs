//! The event store's configuration: retention and the bounds on memory and reads.

use serde::{Deserialize, Serialize};

/// How much of each topic's log a node keeps. Every bound is per topic; `None` = unbounded.
/// [`EventStore::enforce_retention`](super::EventStore::enforce_retention) deletes the oldest
/// events (by offset) until the topic is within every bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Most events kept.
    pub max_events: Option<u64>,
    /// Oldest event kept, by the publisher's `timestamp_ms` against the `now_ms` given.
    pub max_age_ms: Option<u64>,
    /// Most signed bytes kept.
    pub max_bytes: Option<u64>,
}

impl Default for Retention {
    /// 100 000 events, 7 days and 256 MiB per topic, whichever is hit first.
    fn default() -> Self {
        Self {
            max_events: Some(100_000),
            max_age_ms: Some(7 * 24 * 60 * 60 * 1000),
            max_bytes: Some(256 * 1024 * 1024),
        }
    }
}

/// Bounds of an [`EventStore`](super::EventStore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreConfig {
    /// What each topic keeps.
    pub retention: Retention,
    /// Most out-of-order events held in memory (all topics and publishers together) while
    /// waiting for the events before them. When full, a new out-of-order event is dropped
    /// ([`Appended::PendingFull`](super::Appended::PendingFull)); backfill fetches it later.
    pub max_pending: usize,
    /// Most signed bytes held in memory as pending events; full behaves like `max_pending`.
    pub max_pending_bytes: usize,
    /// Most pending events of one (topic, publisher), so one publisher far ahead cannot take
    /// the whole pending buffer; full behaves like `max_pending`.
    pub max_pending_per_publisher: usize,
    /// Most topics the store holds; appending to or creating one more fails with
    /// [`StoreError::TooManyTopics`](super::StoreError::TooManyTopics).
    pub max_topics: usize,
    /// Most events one `read` or `consume` returns, whatever the caller asks for.
    pub max_read_events: usize,
    /// Most signed bytes one `read` or `consume` returns (always at least one event, if any).
    pub max_read_bytes: usize,
    /// Most events retention deletes in one sled transaction.
    pub retention_batch: usize,
}

impl Default for StoreConfig {
    /// [`Retention::default`]; 10 000 pending events within 64 MiB, 1 000 per publisher;
    /// 1 024 topics; reads of at most 1 000 events and 16 MiB; retention batches of 1 000.
    fn default() -> Self {
        Self {
            retention: Retention::default(),
            max_pending: 10_000,
            max_pending_bytes: 64 * 1024 * 1024,
            max_pending_per_publisher: 1_000,
            max_topics: 1_024,
            max_read_events: 1_000,
            max_read_bytes: 16 * 1024 * 1024,
            retention_batch: 1_000,
        }
    }
}
