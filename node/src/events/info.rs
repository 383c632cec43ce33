//! What the store holds per topic: offsets, counts, publishers and consumer groups.

use serde::{Deserialize, Serialize};

use super::error::{StoreError, sled_err};
use super::group::GroupName;
use super::keys::{self, TopicMeta};
use super::store::EventStore;
use crate::broker::TopicName;

/// A summary of one topic on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    /// The topic.
    pub topic: TopicName,
    /// The oldest retained offset; `None` when the log is empty.
    pub first_offset: Option<u64>,
    /// The offset the next stored event gets.
    pub next_offset: u64,
    /// Events retained.
    pub events: u64,
    /// Signed bytes retained.
    pub bytes: u64,
    /// Publishers seen (stored or skipped) on the topic.
    pub publishers: usize,
    /// Consumer groups with their positions (next offset to deliver), sorted by name.
    pub groups: Vec<(GroupName, u64)>,
}

impl EventStore {
    /// Every topic, sorted by name (at most [`StoreConfig::max_topics`](super::StoreConfig)).
    pub fn topics(&self) -> Result<Vec<TopicInfo>, StoreError> {
        self.meta
            .iter()
            .map(|entry| {
                let (k, v) = entry.map_err(sled_err("listing topics"))?;
                let topic = keys::parse_topic(&k)?;
                self.summarize(topic, TopicMeta::decode(&v)?)
            })
            .collect()
    }

    /// One topic; [`StoreError::UnknownTopic`] if it was never stored.
    pub fn info(&self, topic: &TopicName) -> Result<TopicInfo, StoreError> {
        let meta = self.require_meta(topic)?;
        self.summarize(topic.clone(), meta)
    }

    /// The summary of `topic`, whose counters are `meta`.
    fn summarize(&self, topic: TopicName, meta: TopicMeta) -> Result<TopicInfo, StoreError> {
        let trees = self.trees(&topic)?;
        let first_offset = trees
            .log
            .first()
            .map_err(sled_err("reading the log"))?
            .map(|(k, _)| keys::be_u64(&k, "log offset"))
            .transpose()?;
        let prefix = keys::topic_prefix(&topic);
        let mut publishers = 0;
        for key in self.cursors.scan_prefix(&prefix).keys() {
            key.map_err(sled_err("counting publishers"))?;
            publishers += 1;
        }
        let groups = self
            .groups
            .scan_prefix(&prefix)
            .map(|entry| {
                let (k, v) = entry.map_err(sled_err("listing consumer groups"))?;
                let name = String::from_utf8(k[prefix.len()..].to_vec()).map_err(|_| {
                    StoreError::Corrupt("a consumer group name is not UTF-8".into())
                })?;
                let group = GroupName::try_from(name)
                    .map_err(|e| StoreError::Corrupt(format!("stored consumer group: {e}")))?;
                Ok((group, keys::be_u64(&v, "consumer group position")?))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(TopicInfo {
            topic,
            first_offset,
            next_offset: meta.next_offset,
            events: meta.events,
            bytes: meta.bytes,
            publishers,
            groups,
        })
    }
}
