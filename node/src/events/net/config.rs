//! The events layer's configuration: the store's bounds, the event limits every node must
//! share, and the timers and batch sizes of backfill.

use std::time::Duration;

use crate::events::{EventLimits, StoreConfig};

/// How a node stores, validates and backfills events.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// The event store's bounds and retention.
    pub store: StoreConfig,
    /// What an event may be. Must be the same network-wide: a node with tighter limits
    /// refuses (and penalises the senders of) events its peers accept.
    pub limits: EventLimits,
    /// How often every carried topic is backfilled from the peers carrying it, catching what
    /// gossip lost.
    pub anti_entropy_interval: Duration,
    /// Most events asked for (and served) in one backfill round.
    pub sync_batch_events: u32,
    /// Most signed-event bytes asked for (and served) in one backfill round. Must stay
    /// below the overlay's sync `max_response_bytes` (8 MiB) with room for framing, or
    /// responses are cut off by the transport.
    pub sync_batch_bytes: u64,
    /// Longest one backfill round may take.
    pub sync_timeout: Duration,
    /// Most rounds of one backfill from one peer (a peer cannot keep a node busy forever).
    pub max_sync_rounds: usize,
    /// Most publishers a backfill request may name; larger requests are refused.
    pub max_sync_cursors: usize,
    /// Most peers one topic is backfilled from per anti-entropy tick (DHT providers first,
    /// then connected peers).
    pub max_backfill_peers: usize,
    /// How often retention runs over every topic.
    pub retention_interval: Duration,
    /// Longest a consumer may long-poll for new events.
    pub max_consume_wait: Duration,
}

impl Default for EventsConfig {
    /// [`StoreConfig::default`] and [`EventLimits::default`]; anti-entropy every 30 s;
    /// rounds of 500 events and 4 MiB within 10 s, at most 1 000 rounds (500 000 events) per
    /// backfill, 4 096 publishers per request, 8 peers per topic and tick; retention every
    /// 60 s; long polls of at most 30 s.
    fn default() -> Self {
        Self {
            store: StoreConfig::default(),
            limits: EventLimits::default(),
            anti_entropy_interval: Duration::from_secs(30),
            sync_batch_events: 500,
            sync_batch_bytes: 4 * 1024 * 1024,
            sync_timeout: Duration::from_secs(10),
            max_sync_rounds: 1_000,
            max_sync_cursors: 4_096,
            max_backfill_peers: 8,
            retention_interval: Duration::from_secs(60),
            max_consume_wait: Duration::from_secs(30),
        }
    }
}
