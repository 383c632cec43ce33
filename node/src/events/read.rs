//! Reading a topic's log by offset: from the start, from now, from an offset or a time.

use serde::{Deserialize, Serialize};

use super::error::{StoreError, sled_err};
use super::event::{Event, decode_stored};
use super::id::EventId;
use super::keys::{self, TopicMeta};
use super::store::{EventStore, TopicTrees};
use crate::broker::TopicName;

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadFrom {
    /// The oldest event retained.
    Earliest,
    /// The topic's next offset: only events appended from now on.
    Latest,
    /// This offset. Below the oldest retained offset, the read starts at the oldest; above the
    /// topic's next offset it is [`StoreError::InvalidOffset`].
    Offset(u64),
    /// The first event (by offset) whose publisher timestamp is at or after this unix
    /// millisecond; found by scanning from the oldest, so publishers' clocks decide.
    Timestamp(u64),
}

/// An event as stored on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// Its node-local offset in the topic's log.
    pub offset: u64,
    /// The event.
    pub event: Event,
    /// Its id.
    pub id: EventId,
}

impl EventStore {
    /// Up to `max` events of `topic` in offset order, starting at `from`.
    ///
    /// Also bounded by [`StoreConfig::max_read_events`](super::StoreConfig) and
    /// [`StoreConfig::max_read_bytes`](super::StoreConfig) (at least one event is returned if
    /// any is there). Fails with [`StoreError::UnknownTopic`] for a topic never stored,
    /// [`StoreError::InvalidOffset`] past the next offset, and [`StoreError::Corrupt`] if an
    /// entry on disk does not decode.
    pub fn read(
        &self,
        topic: &TopicName,
        from: ReadFrom,
        max: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let meta = self.require_meta(topic)?;
        let trees = self.trees(topic)?;
        let start = self.resolve(topic, &trees, meta, from)?;
        self.read_at(topic, &trees, start, max)
    }

    /// The stored event with this id, if it is still retained.
    pub fn get(&self, id: &EventId) -> Result<Option<Stored>, StoreError> {
        let Some(value) = self
            .ids
            .get(id.as_bytes())
            .map_err(sled_err("looking up an event id"))?
        else {
            return Ok(None);
        };
        let (offset, topic) = keys::parse_ids_value(&value)?;
        if self.meta_of(&topic)?.is_none() {
            return Err(StoreError::Corrupt(format!(
                "event {id} is indexed under unknown topic {topic}"
            )));
        }
        let trees = self.trees(&topic)?;
        let Some(bytes) = trees
            .log
            .get(offset.to_be_bytes())
            .map_err(sled_err("reading the log"))?
        else {
            return Ok(None);
        };
        decode_entry(&topic, offset, &bytes).map(Some)
    }

    /// The offset `from` designates in a topic with counters `meta`.
    pub(super) fn resolve(
        &self,
        topic: &TopicName,
        trees: &TopicTrees,
        meta: TopicMeta,
        from: ReadFrom,
    ) -> Result<u64, StoreError> {
        let next = meta.next_offset;
        match from {
            ReadFrom::Latest => Ok(next),
            ReadFrom::Offset(offset) if offset > next => {
                Err(StoreError::InvalidOffset { offset, next })
            }
            ReadFrom::Offset(offset) => Ok(offset),
            ReadFrom::Earliest => match trees.log.first().map_err(sled_err("reading the log"))? {
                Some((k, _)) => keys::be_u64(&k, "log offset"),
                None => Ok(next),
            },
            ReadFrom::Timestamp(t) => {
                for entry in trees.log.iter() {
                    let (k, v) = entry.map_err(sled_err("scanning the log"))?;
                    let offset = keys::be_u64(&k, "log offset")?;
                    if decode_entry(topic, offset, &v)?.event.timestamp_ms >= t {
                        return Ok(offset);
                    }
                }
                Ok(next)
            }
        }
    }

    /// Up to `max` events from offset `start` on, within the configured read bounds.
    pub(super) fn read_at(
        &self,
        topic: &TopicName,
        trees: &TopicTrees,
        start: u64,
        max: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let max = max.min(self.config.max_read_events);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for entry in trees.log.range(start.to_be_bytes()..) {
            if out.len() >= max {
                break;
            }
            let (k, v) = entry.map_err(sled_err("reading the log"))?;
            bytes = bytes.saturating_add(v.len());
            if bytes > self.config.max_read_bytes && !out.is_empty() {
                break;
            }
            out.push(decode_entry(topic, keys::be_u64(&k, "log offset")?, &v)?);
        }
        Ok(out)
    }
}

/// Decodes a log entry read from disk.
pub(super) fn decode_entry(
    topic: &TopicName,
    offset: u64,
    bytes: &[u8],
) -> Result<Stored, StoreError> {
    let (event, id) = decode_stored(bytes).map_err(|e| {
        StoreError::Corrupt(format!(
            "log entry at offset {offset} of topic {topic}: {e}"
        ))
    })?;
    if event.topic != *topic {
        return Err(StoreError::Corrupt(format!(
            "log entry at offset {offset} of topic {topic} is an event of topic {}",
            event.topic
        )));
    }
    Ok(Stored { offset, event, id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::StoreConfig;
    use crate::events::testkit::{BASE_MS, Publisher, temp_store};

    fn topic(name: &str) -> TopicName {
        name.parse().unwrap()
    }

    fn offsets(read: Result<Vec<Stored>, StoreError>) -> Vec<u64> {
        read.unwrap().into_iter().map(|s| s.offset).collect()
    }

    fn store_with(n: u64) -> EventStore {
        let store = temp_store(StoreConfig::default());
        let p = Publisher::new(1);
        for seq in 1..=n {
            store.append(&p.event("t", seq)).unwrap();
        }
        store
    }

    #[test]
    fn reads_from_each_starting_point() {
        let store = store_with(5);
        let t = topic("t");
        assert_eq!(offsets(store.read(&t, ReadFrom::Earliest, 2)), vec![0, 1]);
        assert_eq!(
            offsets(store.read(&t, ReadFrom::Latest, 10)),
            Vec::<u64>::new()
        );
        assert_eq!(offsets(store.read(&t, ReadFrom::Offset(3), 10)), vec![3, 4]);
        assert_eq!(
            offsets(store.read(&t, ReadFrom::Offset(5), 10)),
            Vec::<u64>::new()
        );
        // Event seq s is stamped BASE_MS + s and sits at offset s - 1.
        let at = |ms| offsets(store.read(&t, ReadFrom::Timestamp(ms), 10));
        assert_eq!(at(BASE_MS + 3), vec![2, 3, 4]);
        assert_eq!(at(0), vec![0, 1, 2, 3, 4]);
        assert_eq!(at(u64::MAX), Vec::<u64>::new());
    }

    #[test]
    fn read_errors() {
        let store = store_with(2);
        assert_eq!(
            store.read(&topic("nope"), ReadFrom::Earliest, 10),
            Err(StoreError::UnknownTopic(topic("nope")))
        );
        assert_eq!(
            store.read(&topic("t"), ReadFrom::Offset(3), 10),
            Err(StoreError::InvalidOffset { offset: 3, next: 2 })
        );
    }

    #[test]
    fn reads_are_bounded_by_config() {
        let store = temp_store(StoreConfig {
            max_read_events: 3,
            max_read_bytes: 1,
            ..StoreConfig::default()
        });
        let p = Publisher::new(1);
        for seq in 1..=5 {
            store.append(&p.event("t", seq)).unwrap();
        }
        // One byte allows no event, but a read always makes progress.
        assert_eq!(
            offsets(store.read(&topic("t"), ReadFrom::Earliest, 10)),
            vec![0]
        );

        let store = temp_store(StoreConfig {
            max_read_events: 3,
            ..StoreConfig::default()
        });
        for seq in 1..=5 {
            store.append(&p.event("t", seq)).unwrap();
        }
        assert_eq!(
            offsets(store.read(&topic("t"), ReadFrom::Earliest, 10)),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn corrupt_log_entries_are_errors_not_panics() {
        let store = store_with(3);
        let t = topic("t");
        let trees = store.trees(&t).unwrap();
        trees
            .log
            .insert(1u64.to_be_bytes(), &b"\xff\xffgarbage"[..])
            .unwrap();
        assert!(matches!(
            store.read(&t, ReadFrom::Earliest, 10),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.read(&t, ReadFrom::Timestamp(u64::MAX), 10),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(offsets(store.read(&t, ReadFrom::Offset(2), 10)), vec![2]);
        // An event of another topic in this topic's log is corrupt too.
        let other = Publisher::new(2).event("other", 1);
        trees
            .log
            .insert(1u64.to_be_bytes(), other.signed())
            .unwrap();
        assert!(matches!(
            store.read(&t, ReadFrom::Offset(1), 1),
            Err(StoreError::Corrupt(_))
        ));
        // Broken counters.
        store.meta.insert("t", &b"short"[..]).unwrap();
        assert!(matches!(
            store.read(&t, ReadFrom::Earliest, 10),
            Err(StoreError::Corrupt(_))
        ));
    }
}
