//! Events on the network: publishing, gossip delivery, backfill over
//! `/micro/events-sync/1.0.0`, consumption and retention, around one [`EventStore`].
//!
//! A user topic `T` travels on the gossipsub topic `micro/events/T`; a node *carrying* `T`
//! (it published on it, a consumer read it, or it was in the store at start) subscribes to
//! that gossip topic, announces the DHT provider key `/micro/events/T`, and backfills `T`
//! from the other carriers: at once, whenever gossip brings an event ahead of its turn, and
//! every `anti_entropy_interval`.

mod config;
mod consume;
mod publish;
mod sync;
mod tasks;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use micro_overlay::{Keypair, Overlay, OverlayError, PeerId};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tracing::info;

use super::{EventError, EventId, EventStore, StoreError};
use crate::broker::TopicName;

pub use config::EventsConfig;
pub use consume::Consumed;
pub use sync::SyncError;

/// Prefix of every events topic on gossipsub.
pub const GOSSIP_PREFIX: &str = "micro/events/";

/// The gossipsub topic of user topic `topic`.
pub fn gossip_topic(topic: &TopicName) -> String {
    format!("{GOSSIP_PREFIX}{topic}")
}

/// The DHT provider key announced by the nodes carrying `topic`.
pub fn provider_key(topic: &TopicName) -> Vec<u8> {
    format!("/micro/events/{topic}").into_bytes()
}

/// What an acknowledged publish did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPublished {
    /// The event's id.
    pub id: EventId,
    /// Its seq among this node's events on the topic.
    pub seq: u64,
    /// Its offset in this node's log of the topic.
    pub offset: u64,
    /// Peers the gossip went to (0 is fine: carriers that join later backfill it).
    pub delivered_to: usize,
}

/// Why an events operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The event breaks the event limits (too large, too many headers, ...).
    #[error(transparent)]
    Invalid(#[from] EventError),
    /// The store failed (sled error, too many topics, invalid offset, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store refused this node's own next event; nothing was published.
    #[error("the event store did not take the event ({0}); nothing was published")]
    NotStored(String),
    /// Neither this node nor any peer it can find carries the topic.
    #[error(
        "unknown topic `{0}`: no events are stored on this node and no peer carries it \
         (publish on it first, or check the name)"
    )]
    UnknownTopic(TopicName),
    /// The overlay stopped or refused.
    #[error(transparent)]
    Overlay(#[from] OverlayError),
}

struct Inner {
    overlay: Overlay,
    key: Keypair,
    store: Arc<EventStore>,
    config: EventsConfig,
    /// Serializes this node's publishes, so two never take the same seq.
    publishing: tokio::sync::Mutex<()>,
    /// Topics this node carries (bounded by the store's `max_topics`: each one is in it).
    carried: Mutex<HashSet<TopicName>>,
    /// Per topic with a backfill running: the peers still to ask (one task per topic).
    backfills: Mutex<HashMap<TopicName, VecDeque<PeerId>>>,
    /// Signalled after every append that stored something, for long-polling consumers.
    appended: Notify,
    /// Turns true (or closes) when the node stops; background tasks end then.
    stop: watch::Receiver<bool>,
}

/// The events layer of one node. Clone freely.
#[derive(Clone)]
pub struct Events(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resolves when `stop` turns true or its sender is gone (the node stopped either way).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

impl Events {
    /// The events layer over `store`, publishing as `key` (the node's identity) through
    /// `overlay`. Background work ends when `stop` turns true or its sender is dropped.
    pub fn new(
        overlay: Overlay,
        key: Keypair,
        store: Arc<EventStore>,
        config: EventsConfig,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Self(Arc::new(Inner {
            overlay,
            key,
            store,
            config,
            publishing: tokio::sync::Mutex::new(()),
            carried: Mutex::new(HashSet::new()),
            backfills: Mutex::new(HashMap::new()),
            appended: Notify::new(),
            stop,
        }))
    }

    /// The store.
    pub fn store(&self) -> &Arc<EventStore> {
        &self.0.store
    }

    /// The configuration.
    pub fn config(&self) -> &EventsConfig {
        &self.0.config
    }

    /// Whether a gossip topic belongs to events.
    pub fn owns(gossip_topic: &str) -> bool {
        gossip_topic.starts_with(GOSSIP_PREFIX)
    }

    /// Topics this node carries, sorted.
    pub fn carried(&self) -> Vec<TopicName> {
        let mut topics: Vec<_> = lock(&self.0.carried).iter().cloned().collect();
        topics.sort();
        topics
    }

    /// Carries every topic already in the store (at start, so a restarted node serves and
    /// catches up on what it held).
    pub async fn carry_stored(&self) -> Result<(), EventsError> {
        for info in self.0.store.topics()? {
            self.carry(&info.topic).await?;
        }
        Ok(())
    }

    /// Makes this node carry `topic`: creates it in the store, joins its gossip topic,
    /// announces the DHT provider key and starts a backfill from the other carriers. Does
    /// nothing if already carried.
    pub async fn carry(&self, topic: &TopicName) -> Result<(), EventsError> {
        if !lock(&self.0.carried).insert(topic.clone()) {
            return Ok(());
        }
        let joined = async {
            self.0.store.create_topic(topic)?;
            self.0.overlay.subscribe_topic(&gossip_topic(topic)).await?;
            self.0.overlay.start_providing(provider_key(topic)).await?;
            Ok::<_, EventsError>(())
        }
        .await;
        if let Err(e) = joined {
            lock(&self.0.carried).remove(topic);
            return Err(e);
        }
        info!(%topic, "carrying event topic");
        self.spawn_sync_with_carriers(topic.clone());
        Ok(())
    }

    /// Flushes the store to disk.
    pub async fn flush(&self) -> Result<(), EventsError> {
        Ok(self.0.store.flush().await?)
    }

    /// Peers carrying `topic` by the DHT, this node left out (empty when the lookup fails).
    pub async fn providers(&self, topic: &TopicName) -> Vec<PeerId> {
        let me = self.0.overlay.local_peer_id();
        let mut providers = self
            .0
            .overlay
            .get_providers(provider_key(topic))
            .await
            .unwrap_or_default();
        providers.retain(|p| *p != me);
        providers
    }

    /// Connected peers subscribed to `topic`'s gossip topic, as gossipsub knows them.
    pub async fn gossip_peers(&self, topic: &TopicName) -> usize {
        self.0
            .overlay
            .topic_peers(&gossip_topic(topic))
            .await
            .unwrap_or(0)
    }
}
