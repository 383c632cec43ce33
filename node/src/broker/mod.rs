//! The broker: fire-and-forget publish/subscribe on named topics, over gossipsub.
//!
//! A user topic `T` is the gossipsub topic `micro/broker/T`. Messages carry an id, headers, a
//! content type, the body, the publisher and a timestamp; there is no ordering promise and no
//! storage (that is what events are for). Publishing with nobody subscribed is not an error:
//! the message reached 0 peers. Local subscribers on the publishing node get it too.

mod topic;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use libp2p::identity::Keypair;
use micro_overlay::{GossipMessage, MessageAcceptance, Overlay, OverlayError, PeerId};
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tracing::{debug, warn};

pub use topic::{TopicError, TopicName};

/// Prefix of every broker topic on gossipsub.
pub const GOSSIP_PREFIX: &str = "micro/broker/";

/// Generated protobuf types (`node/proto/broker.proto`).
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/micro.broker.v1.rs"));
}

/// Broker limits.
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfig {
    /// Largest encoded message published or accepted, in bytes, before the publisher's
    /// signature ([`wire::ENVELOPE_OVERHEAD`] more on the wire; under gossipsub's own bound).
    pub max_message_bytes: usize,
    /// Messages a local subscriber may fall behind before it loses the oldest.
    pub subscriber_buffer: usize,
    /// Most topics this node subscribes to at once.
    pub max_topics: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 240 * 1024,
            subscriber_buffer: 1024,
            max_topics: 256,
        }
    }
}

/// A message as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerMessage {
    /// Unique id.
    pub id: String,
    /// The topic.
    pub topic: TopicName,
    /// Metadata headers.
    pub headers: BTreeMap<String, String>,
    /// MIME type of the body.
    pub content_type: String,
    /// The payload.
    pub body: Vec<u8>,
    /// Who published it.
    pub publisher: PeerId,
    /// When, Unix ms, by the publisher's clock.
    pub timestamp_ms: u64,
}

/// What a publish achieved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The message id.
    pub id: String,
    /// Subscribed peers it was sent to (0 is fine: nobody listens yet).
    pub delivered_to: usize,
}

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The encoded message is too large.
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// This node subscribes to the most topics it may.
    #[error("this node already subscribes to {0} topics, the most it may")]
    TooManyTopics(usize),
    /// The overlay refused.
    #[error(transparent)]
    Overlay(#[from] OverlayError),
}

struct Inner {
    overlay: Overlay,
    /// Signs what this node publishes.
    key: Keypair,
    config: BrokerConfig,
    topics: Mutex<HashMap<TopicName, broadcast::Sender<Arc<BrokerMessage>>>>,
}

/// The broker of one node. Clone freely.
#[derive(Clone)]
pub struct Broker(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn gossip_topic(topic: &TopicName) -> String {
    format!("{GOSSIP_PREFIX}{topic}")
}

impl Broker {
    /// A broker over `overlay`, publishing as `key` (the node's identity).
    pub fn new(overlay: Overlay, key: Keypair, config: BrokerConfig) -> Self {
        Self(Arc::new(Inner {
            overlay,
            key,
            config,
            topics: Mutex::new(HashMap::new()),
        }))
    }

    /// Publishes `body` on `topic`.
    pub async fn publish(
        &self,
        topic: TopicName,
        body: Vec<u8>,
        content_type: String,
        headers: BTreeMap<String, String>,
    ) -> Result<Published, BrokerError> {
        let message = BrokerMessage {
            id: format!("{:032x}", rand::random::<u128>()),
            topic,
            headers,
            content_type,
            body,
            publisher: self.0.overlay.local_peer_id(),
            timestamp_ms: crate::registry::now_ms(),
        };
        let unsigned = proto::BrokerMessage {
            id: message.id.clone(),
            topic: message.topic.to_string(),
            headers: message.headers.clone(),
            content_type: message.content_type.clone(),
            body: message.body.clone(),
            publisher: message.publisher.to_bytes(),
            timestamp_ms: message.timestamp_ms,
        };
        let size = unsigned.encoded_len();
        if size > self.0.config.max_message_bytes {
            return Err(BrokerError::TooLarge {
                size,
                limit: self.0.config.max_message_bytes,
            });
        }
        let sealed = wire::seal(&self.0.key, &unsigned);
        let delivered_to = self
            .0
            .overlay
            .publish(&gossip_topic(&message.topic), sealed)
            .await?;
        let id = message.id.clone();
        self.deliver_locally(message);
        Ok(Published { id, delivered_to })
    }

    /// Subscribes to `topic`: every message published on it from now on, until the receiver
    /// is dropped. A receiver that falls `subscriber_buffer` messages behind loses the oldest
    /// and is told how many.
    pub async fn subscribe(
        &self,
        topic: TopicName,
    ) -> Result<broadcast::Receiver<Arc<BrokerMessage>>, BrokerError> {
        let (receiver, first) = {
            let mut topics = lock(&self.0.topics);
            topics.retain(|_, sender| sender.receiver_count() > 0);
            match topics.get(&topic) {
                Some(sender) => (sender.subscribe(), false),
                None => {
                    if topics.len() >= self.0.config.max_topics {
                        return Err(BrokerError::TooManyTopics(self.0.config.max_topics));
                    }
                    let (sender, receiver) =
                        broadcast::channel(self.0.config.subscriber_buffer.max(1));
                    topics.insert(topic.clone(), sender);
                    (receiver, true)
                }
            }
        };
        if first {
            self.0
                .overlay
                .subscribe_topic(&gossip_topic(&topic))
                .await?;
        }
        Ok(receiver)
    }

    /// Peers known to subscribe to `topic`.
    pub async fn topic_peers(&self, topic: &TopicName) -> Result<usize, BrokerError> {
        Ok(self.0.overlay.topic_peers(&gossip_topic(topic)).await?)
    }

    fn deliver_locally(&self, message: BrokerMessage) {
        let mut topics = lock(&self.0.topics);
        if let Some(sender) = topics.get(&message.topic)
            && sender.send(Arc::new(message)).is_err()
        {
            // Nobody listens any more; the gossip topic is left when its next message comes.
            topics.retain(|_, s| s.receiver_count() > 0);
        }
    }

    /// Whether a gossip topic belongs to the broker.
    pub fn owns(gossip_topic: &str) -> bool {
        gossip_topic.starts_with(GOSSIP_PREFIX)
    }

    /// Checks a message from gossip, hands it to local subscribers, and reports its validity.
    pub async fn on_gossip(&self, gossip: GossipMessage) {
        let verdict = match self.check(&gossip) {
            Ok(message) => {
                let topic = message.topic.clone();
                self.deliver_locally(message);
                let listening = lock(&self.0.topics).contains_key(&topic);
                if !listening {
                    debug!(%topic, "no local subscriber left; leaving the topic");
                    let _ = self
                        .0
                        .overlay
                        .unsubscribe_topic(&gossip_topic(&topic))
                        .await;
                }
                MessageAcceptance::Accept
            }
            Err(reason) => {
                warn!(peer = %gossip.propagation_source, %reason, "rejected a broker message");
                MessageAcceptance::Reject
            }
        };
        self.0.overlay.report_message(&gossip, verdict).await;
    }

    fn check(&self, gossip: &GossipMessage) -> Result<BrokerMessage, String> {
        if gossip.data.len() > self.0.config.max_message_bytes + wire::ENVELOPE_OVERHEAD {
            return Err(format!("{} bytes, over the limit", gossip.data.len()));
        }
        let (wire, publisher) = wire::open(&gossip.data)?;
        let topic: TopicName = wire.topic.parse().map_err(|e: TopicError| e.to_string())?;
        if gossip.topic != gossip_topic(&topic) {
            return Err(format!(
                "names topic `{topic}` but came on `{}`",
                gossip.topic
            ));
        }
        if wire.id.is_empty() || wire.id.len() > 64 {
            return Err("bad message id".to_owned());
        }
        Ok(BrokerMessage {
            id: wire.id,
            topic,
            headers: wire.headers,
            content_type: wire.content_type,
            body: wire.body,
            publisher,
            timestamp_ms: wire.timestamp_ms,
        })
    }
}
