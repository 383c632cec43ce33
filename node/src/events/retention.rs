//! Retention: deleting each topic's oldest events until it is within its [`Retention`] bounds.
//!
//! Deletion is oldest-first by offset, from the log and both indexes, in transactions of at
//! most [`StoreConfig::retention_batch`] events; offsets are never renumbered. Publisher
//! cursors stay where they are, so a deleted event arriving again is
//! [`Appended::Stale`](super::Appended::Stale), never stored twice.
//!
//! Age is judged by the publisher's `timestamp_ms` of the oldest event: deletion stops at the
//! first event young enough, so an event stamped in the future holds back age-based deletion
//! behind it (the count and byte bounds still apply).
//!
//! [`Retention`]: super::Retention
//! [`StoreConfig::retention_batch`]: super::StoreConfig

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use tracing::{debug, warn};

use super::error::{StoreError, sled_err, tx_err};
use super::id::EventId;
use super::keys;
use super::read::decode_entry;
use super::store::{EventStore, lock};
use crate::broker::TopicName;

/// One log entry retention deletes.
struct Doomed {
    offset: u64,
    /// Its id and pubseq key; `None` for an entry that does not decode (its index entries,
    /// unknown, stay behind: harmless, they only make that event a duplicate).
    index: Option<(EventId, Vec<u8>)>,
}

impl EventStore {
    /// Deletes `topic`'s oldest events until it is within the configured retention at
    /// `now_ms` (unix milliseconds); returns how many were deleted. Entries at the front that
    /// do not decode are deleted too (with a warning): they can never be read. Does not flush.
    /// [`StoreError::UnknownTopic`] for a topic never stored.
    pub fn enforce_retention(&self, topic: &TopicName, now_ms: u64) -> Result<usize, StoreError> {
        let mut deleted = 0;
        loop {
            // The writer lock is taken per batch, so appends interleave with a long cleanup.
            let n = self.retention_batch(topic, now_ms)?;
            if n == 0 {
                if deleted > 0 {
                    debug!(%topic, deleted, "retention deleted events");
                }
                return Ok(deleted);
            }
            deleted += n;
        }
    }

    /// [`EventStore::enforce_retention`] on every topic; returns the total deleted.
    pub fn enforce_retention_all(&self, now_ms: u64) -> Result<usize, StoreError> {
        let topics = self
            .meta
            .iter()
            .keys()
            .map(|k| keys::parse_topic(&k.map_err(sled_err("listing topics"))?))
            .collect::<Result<Vec<_>, _>>()?;
        let mut deleted = 0;
        for topic in topics {
            deleted += self.enforce_retention(&topic, now_ms)?;
        }
        Ok(deleted)
    }

    /// Deletes one batch of `topic`'s oldest events that break retention; returns how many.
    fn retention_batch(&self, topic: &TopicName, now_ms: u64) -> Result<usize, StoreError> {
        let _writer = lock(&self.writer);
        let mut meta = self.require_meta(topic)?;
        let trees = self.trees(topic)?;
        let limits = self.config.retention;
        let mut doomed = Vec::new();
        for entry in trees.log.iter() {
            if doomed.len() >= self.config.retention_batch.max(1) {
                break;
            }
            let (k, v) = entry.map_err(sled_err("scanning the log"))?;
            let offset = keys::be_u64(&k, "log offset")?;
            let decoded = decode_entry(topic, offset, &v);
            let over_count = limits.max_events.is_some_and(|max| meta.events > max);
            let over_bytes = limits.max_bytes.is_some_and(|max| meta.bytes > max);
            let too_old = match &decoded {
                Ok(stored) => limits
                    .max_age_ms
                    .is_some_and(|age| now_ms.saturating_sub(stored.event.timestamp_ms) > age),
                Err(e) => {
                    warn!(%topic, offset, error = %e, "retention deletes an undecodable event");
                    true
                }
            };
            if !(over_count || over_bytes || too_old) {
                break;
            }
            meta.events = meta.events.saturating_sub(1);
            meta.bytes = meta
                .bytes
                .saturating_sub(u64::try_from(v.len()).unwrap_or(u64::MAX));
            doomed.push(Doomed {
                offset,
                index: decoded.ok().map(|s| {
                    let key = keys::pubseq_key(&s.event.publisher, s.event.seq);
                    (s.id, key)
                }),
            });
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        let meta_value = meta.encode();
        (&trees.log, &trees.pubseq, &self.ids, &self.meta)
            .transaction(|(log, pubseq, ids, meta_tree)| {
                for d in &doomed {
                    log.remove(&d.offset.to_be_bytes())?;
                    if let Some((id, pubseq_key)) = &d.index {
                        ids.remove(id.as_bytes())?;
                        pubseq.remove(pubseq_key.as_slice())?;
                    }
                }
                meta_tree.insert(topic.as_str().as_bytes(), &meta_value)?;
                Ok::<_, ConflictableTransactionError<std::convert::Infallible>>(())
            })
            .map_err(tx_err("deleting old events"))?;
        Ok(doomed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::testkit::{BASE_MS, Publisher, temp_store};
    use crate::events::{Appended, ReadFrom, Retention, StoreConfig};

    fn config(retention: Retention) -> StoreConfig {
        StoreConfig {
            retention,
            retention_batch: 3,
            ..StoreConfig::default()
        }
    }

    const NONE: Retention = Retention {
        max_events: None,
        max_age_ms: None,
        max_bytes: None,
    };

    fn first_offset(store: &EventStore) -> Option<u64> {
        store.info(&"t".parse().unwrap()).unwrap().first_offset
    }

    #[test]
    fn by_count_keeps_offsets_and_refuses_old_events() {
        let store = temp_store(config(Retention {
            max_events: Some(4),
            ..NONE
        }));
        let t: TopicName = "t".parse().unwrap();
        let p = Publisher::new(1);
        for seq in 1..=10 {
            store.append(&p.event("t", seq)).unwrap();
        }
        assert_eq!(store.enforce_retention(&t, BASE_MS), Ok(6));
        assert_eq!(store.enforce_retention(&t, BASE_MS), Ok(0));
        let info = store.info(&t).unwrap();
        assert_eq!(
            (info.first_offset, info.next_offset, info.events),
            (Some(6), 10, 4)
        );
        let bytes: u64 = (7..=10)
            .map(|s| p.event("t", s).signed().len() as u64)
            .sum();
        assert_eq!(info.bytes, bytes);
        // Offsets below the oldest start at the oldest.
        let read = store.read(&t, ReadFrom::Offset(2), 10).unwrap();
        assert_eq!(read.first().map(|s| s.offset), Some(6));
        // A deleted event is no longer known by id, and still not accepted again.
        let old = p.event("t", 3);
        assert_eq!(store.get(&old.id()), Ok(None));
        assert_eq!(store.append(&old), Ok(Appended::Stale { expected: 11 }));
        assert_eq!(store.lowest_seq(&t, &p.peer()), Ok(Some(7)));
        assert!(
            store
                .range(&t, &p.peer(), 1, 100, usize::MAX)
                .unwrap()
                .len()
                == 4
        );
        assert!(matches!(
            store.append(&p.event("t", 11)),
            Ok(Appended::Stored { offset: 10, .. })
        ));
    }

    #[test]
    fn by_bytes() {
        let p = Publisher::new(1);
        let size = p.event("t", 1).signed().len() as u64;
        let store = temp_store(config(Retention {
            max_bytes: Some(size * 5 / 2),
            ..NONE
        }));
        for seq in 1..=9 {
            // Same-length bodies, so every event has the same size.
            store.append(&p.event("t", seq)).unwrap();
        }
        assert_eq!(store.enforce_retention_all(BASE_MS), Ok(7));
        assert_eq!(first_offset(&store), Some(7));
        assert_eq!(store.info(&"t".parse().unwrap()).unwrap().bytes, 2 * size);
    }

    #[test]
    fn by_age_of_the_publishers_timestamp() {
        let store = temp_store(config(Retention {
            max_age_ms: Some(1_000),
            ..NONE
        }));
        let t: TopicName = "t".parse().unwrap();
        let p = Publisher::new(1);
        for seq in 1..=5 {
            store
                .append(&p.event_full("t", seq, seq * 1_000, b"x"))
                .unwrap();
        }
        // At 3 500 ms, events stamped 1 000 and 2 000 are more than 1 000 ms old.
        assert_eq!(store.enforce_retention(&t, 3_500), Ok(2));
        assert_eq!(first_offset(&store), Some(2));
        assert_eq!(store.enforce_retention(&t, 100_000), Ok(3));
        assert_eq!(first_offset(&store), None);
        let info = store.info(&t).unwrap();
        assert_eq!((info.next_offset, info.events, info.bytes), (5, 0, 0));
        assert_eq!(
            store.enforce_retention(&"nope".parse().unwrap(), 0),
            Err(StoreError::UnknownTopic("nope".parse().unwrap()))
        );
    }

    #[test]
    fn undecodable_entries_at_the_front_are_removed() {
        let store = temp_store(config(NONE));
        let t: TopicName = "t".parse().unwrap();
        let p = Publisher::new(1);
        for seq in 1..=3 {
            store.append(&p.event("t", seq)).unwrap();
        }
        store
            .trees(&t)
            .unwrap()
            .log
            .insert(0u64.to_be_bytes(), &b"rot"[..])
            .unwrap();
        assert_eq!(store.enforce_retention(&t, BASE_MS), Ok(1));
        assert_eq!(first_offset(&store), Some(1));
        assert_eq!(store.lowest_seq(&t, &p.peer()), Ok(Some(2)));
    }
}
