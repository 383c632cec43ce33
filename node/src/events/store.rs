//! The event store itself: opening it, appending in per-publisher seq order, skipping gaps,
//! and flushing to disk.
//!
//! Reads, backfill queries, consumer groups, topic info and retention are further `impl`
//! blocks in their own modules; the tree layout is in [`keys`](super::keys).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use libp2p::PeerId;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use tracing::debug;

use super::config::StoreConfig;
use super::error::{StoreError, sled_err, tx_err};
use super::event::VerifiedEvent;
use super::id::EventId;
use super::keys::{self, TopicMeta};
use super::pending::{Hold, Pending};
use crate::broker::TopicName;

/// What [`EventStore::append`] did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored at `offset`. Pending events of the same publisher that became contiguous were
    /// stored right after it, at the offsets in `released` (in seq order).
    Stored {
        /// The event's offset.
        offset: u64,
        /// Offsets of the pending events this one released, in seq order.
        released: Vec<u64>,
    },
    /// The same event (same id) is already stored (or already pending); nothing changed.
    Duplicate,
    /// The event is ahead of the publisher's next expected seq `expected`; it is held in memory
    /// until the events before it arrive (or [`EventStore::skip_to`] skips them). The caller
    /// should backfill `expected..seq` from peers.
    Pending {
        /// The publisher's next expected seq on this topic.
        expected: u64,
    },
    /// Like [`Appended::Pending`], but the pending buffer is full, so the event was dropped;
    /// backfill will fetch it again.
    PendingFull {
        /// The publisher's next expected seq on this topic.
        expected: u64,
    },
    /// The seq is below the publisher's next expected seq and no event with that seq is
    /// stored: it was skipped past ([`EventStore::skip_to`]) or removed by retention. Dropped,
    /// so retention never lets an old event back in.
    Stale {
        /// The publisher's next expected seq on this topic.
        expected: u64,
    },
    /// A different event with the same (topic, publisher, seq) is already stored or pending:
    /// the publisher equivocated. The first one wins; this one was dropped.
    Conflict {
        /// The id of the event kept.
        existing: EventId,
    },
}

/// The two trees of one topic.
#[derive(Clone)]
pub(super) struct TopicTrees {
    /// `offset -> signed event bytes`.
    pub log: sled::Tree,
    /// `len(publisher) ++ publisher ++ seq -> offset ++ id`.
    pub pubseq: sled::Tree,
}

/// The durable, ordered, replayable event store over a sled database.
///
/// Per (topic, publisher), events are appended strictly in seq order, so by offset each
/// publisher's events are in increasing seq order with no gaps except those explicitly skipped.
/// Offsets are node-local, start at 0 per topic, increase by one per stored event and are never
/// reused, not even after retention deletes the events before them.
///
/// Each write is one sled transaction across every tree it touches, so after a crash an event
/// is either fully stored (log, indexes, counters) or absent. Writes are not flushed to disk by
/// themselves: await [`EventStore::flush`] before telling anyone an event is stored (an
/// acknowledged publish must await it), and batch appends between flushes.
///
/// The store is `Send + Sync`; share one per database (e.g. in an `Arc`, or owned by one task).
/// Writes are serialized by an internal lock; reads do not take it. Every method is a blocking
/// call, but sled serves them from memory (flushing happens on sled's own threads), so they are
/// cheap enough to call from async code; callers appending or reading large batches should do
/// so from `spawn_blocking`.
pub struct EventStore {
    pub(super) db: sled::Db,
    pub(super) config: StoreConfig,
    pub(super) meta: sled::Tree,
    pub(super) ids: sled::Tree,
    pub(super) cursors: sled::Tree,
    pub(super) groups: sled::Tree,
    /// Open per-topic trees (sled's `open_tree` takes a lock; cache them). At most one entry
    /// per topic in `meta`, so bounded by `max_topics`.
    topic_trees: Mutex<HashMap<TopicName, TopicTrees>>,
    /// Serializes writes; owns the pending buffer. Taken before `topic_trees`, never after.
    pub(super) writer: Mutex<Pending>,
}

/// Locks `m`; a panic while it was held does not make the data unusable (every write to disk
/// is a transaction, and the pending buffer is only a cache of what backfill can fetch again).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EventStore {
    /// Opens the event store in `db` (creating its trees if needed). The caller opens the
    /// database, and may use other trees in it: every tree here is named `events/...`.
    pub fn open(db: &sled::Db, config: StoreConfig) -> Result<Self, StoreError> {
        let open = |name: &str| db.open_tree(name).map_err(sled_err("opening a tree"));
        Ok(Self {
            db: db.clone(),
            config,
            meta: open(keys::META_TREE)?,
            ids: open(keys::IDS_TREE)?,
            cursors: open(keys::CURSORS_TREE)?,
            groups: open(keys::GROUPS_TREE)?,
            topic_trees: Mutex::new(HashMap::new()),
            writer: Mutex::new(Pending::default()),
        })
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Appends a verified event, keeping each publisher's events in seq order on its topic.
    ///
    /// In order: an event whose id is stored is a [`Appended::Duplicate`]; one whose (topic,
    /// publisher, seq) holds a different event is a [`Appended::Conflict`]; one below the
    /// publisher's next expected seq is [`Appended::Stale`]; one above it is
    /// [`Appended::Pending`] (or [`Appended::PendingFull`]); one equal to it is stored, then
    /// any pending events that became contiguous. The next expected seq of a publisher never
    /// seen on the topic is 1. Does not flush: see [`EventStore::flush`].
    pub fn append(&self, ev: &VerifiedEvent) -> Result<Appended, StoreError> {
        let mut pending = lock(&self.writer);
        let e = ev.event();
        if self
            .ids
            .contains_key(ev.id().as_bytes())
            .map_err(sled_err("looking up an event id"))?
        {
            return Ok(Appended::Duplicate);
        }
        let meta = self.meta_of(&e.topic)?;
        if meta.is_some() {
            let trees = self.trees(&e.topic)?;
            let existing = trees
                .pubseq
                .get(keys::pubseq_key(&e.publisher, e.seq))
                .map_err(sled_err("looking up a publisher's seq"))?;
            if let Some(value) = existing {
                let (_, existing) = keys::parse_pubseq_value(&value)?;
                return Ok(Appended::Conflict { existing });
            }
        }
        let expected = self.next_seq(&e.topic, &e.publisher)?;
        if e.seq < expected {
            return Ok(Appended::Stale { expected });
        }
        if e.seq > expected {
            return Ok(match pending.hold(ev, &self.config) {
                Hold::Held => Appended::Pending { expected },
                Hold::Duplicate => Appended::Duplicate,
                Hold::Conflict(existing) => Appended::Conflict { existing },
                Hold::Full => Appended::PendingFull { expected },
            });
        }
        let meta = match meta {
            Some(meta) => meta,
            None => self.room_for_new_topic()?,
        };
        let (offset, meta) = self.store_next(meta, ev)?;
        let released = self.release(&mut pending, &e.topic, &e.publisher, meta)?;
        Ok(Appended::Stored { offset, released })
    }

    /// Moves the publisher's next expected seq on `topic` up to `seq` (never down), giving up
    /// on the events in between: they are not stored, and arriving later they are
    /// [`Appended::Stale`]. Use it when peers report those events are gone (see
    /// [`EventStore::lowest_seq`]) or for a publisher first seen mid-stream. Pending events
    /// below `seq` are dropped; those from `seq` on that became contiguous are stored.
    /// Returns their offsets in seq order. Creates the topic if it is new.
    pub fn skip_to(
        &self,
        topic: &TopicName,
        publisher: &PeerId,
        seq: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let mut pending = lock(&self.writer);
        if seq <= self.next_seq(topic, publisher)? {
            return Ok(Vec::new());
        }
        let meta = match self.meta_of(topic)? {
            Some(meta) => meta,
            None => self.room_for_new_topic()?,
        };
        let cursor_key = keys::topic_key(topic, &publisher.to_bytes());
        (&self.cursors, &self.meta)
            .transaction(|(cursors, meta_tree)| {
                cursors.insert(cursor_key.as_slice(), &seq.to_be_bytes())?;
                meta_tree.insert(topic.as_str().as_bytes(), &meta.encode())?;
                Ok::<_, ConflictableTransactionError<std::convert::Infallible>>(())
            })
            .map_err(tx_err("skipping a publisher's gap"))?;
        let dropped = pending.drop_below(topic, publisher, seq);
        debug!(%topic, %publisher, seq, dropped, "skipped to seq");
        self.release(&mut pending, topic, publisher, meta)
    }

    /// Creates `topic` with no events, so reads and consumer groups can start on it before
    /// anything arrives. Returns whether it was new. Fails with
    /// [`StoreError::TooManyTopics`] at the limit.
    pub fn create_topic(&self, topic: &TopicName) -> Result<bool, StoreError> {
        let _writer = lock(&self.writer);
        if self.meta_of(topic)?.is_some() {
            return Ok(false);
        }
        let meta = self.room_for_new_topic()?;
        self.meta
            .insert(topic.as_str().as_bytes(), &meta.encode())
            .map_err(sled_err("creating a topic"))?;
        Ok(true)
    }

    /// Flushes everything written so far to disk, on a blocking thread. When it returns
    /// `Ok`, every event appended before the call survives a crash.
    ///
    /// Not sled's `flush_async`: it parks one of sled's own pool threads until the log is
    /// stable, while the log writes it waits for queue on that same pool; eight concurrent
    /// flushes (many nodes in one process, or busy publishers) deadlocked it.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Corrupt(format!("flush task failed: {e}")))?
            .map_err(sled_err("flushing to disk"))?;
        Ok(())
    }

    /// Events held in memory waiting for the events before them.
    pub fn pending_len(&self) -> usize {
        lock(&self.writer).len()
    }

    /// The topic's counters, if the topic exists.
    pub(super) fn meta_of(&self, topic: &TopicName) -> Result<Option<TopicMeta>, StoreError> {
        self.meta
            .get(topic.as_str().as_bytes())
            .map_err(sled_err("reading topic counters"))?
            .map(|v| TopicMeta::decode(&v))
            .transpose()
    }

    /// The topic's counters, or [`StoreError::UnknownTopic`].
    pub(super) fn require_meta(&self, topic: &TopicName) -> Result<TopicMeta, StoreError> {
        self.meta_of(topic)?
            .ok_or_else(|| StoreError::UnknownTopic(topic.clone()))
    }

    /// The topic's trees, opening them on first use. Only call for topics that exist or are
    /// being created (opening creates them).
    pub(super) fn trees(&self, topic: &TopicName) -> Result<TopicTrees, StoreError> {
        let mut cache = lock(&self.topic_trees);
        if let Some(trees) = cache.get(topic) {
            return Ok(trees.clone());
        }
        let open = |name: Vec<u8>| {
            self.db
                .open_tree(name)
                .map_err(sled_err("opening a topic's tree"))
        };
        let trees = TopicTrees {
            log: open(keys::log_tree(topic))?,
            pubseq: open(keys::pubseq_tree(topic))?,
        };
        cache.insert(topic.clone(), trees.clone());
        Ok(trees)
    }

    /// The publisher's next expected seq on `topic` (1 if never seen).
    pub(super) fn next_seq(
        &self,
        topic: &TopicName,
        publisher: &PeerId,
    ) -> Result<u64, StoreError> {
        self.cursors
            .get(keys::topic_key(topic, &publisher.to_bytes()))
            .map_err(sled_err("reading a publisher cursor"))?
            .map_or(Ok(1), |v| keys::be_u64(&v, "publisher cursor"))
    }

    /// Counters for a topic about to be created, or [`StoreError::TooManyTopics`].
    fn room_for_new_topic(&self) -> Result<TopicMeta, StoreError> {
        // The meta tree has one key per topic and at most `max_topics` of them: a short scan.
        if self.meta.len() >= self.config.max_topics {
            return Err(StoreError::TooManyTopics {
                limit: self.config.max_topics,
            });
        }
        Ok(TopicMeta::default())
    }

    /// Stores `ev` (whose seq is its publisher's next expected) at the topic's next offset, in
    /// one transaction with its indexes, the publisher's cursor and the topic's counters.
    /// Returns the offset and the new counters.
    fn store_next(
        &self,
        meta: TopicMeta,
        ev: &VerifiedEvent,
    ) -> Result<(u64, TopicMeta), StoreError> {
        let e = ev.event();
        let trees = self.trees(&e.topic)?;
        let offset = meta.next_offset;
        let size = u64::try_from(ev.signed().len()).unwrap_or(u64::MAX);
        let new_meta = TopicMeta {
            next_offset: offset.checked_add(1).ok_or_else(|| {
                StoreError::Corrupt(format!("topic {} has no offsets left", e.topic))
            })?,
            events: meta.events.saturating_add(1),
            bytes: meta.bytes.saturating_add(size),
        };
        let offset_key = offset.to_be_bytes();
        let pubseq_key = keys::pubseq_key(&e.publisher, e.seq);
        let pubseq_value = keys::pubseq_value(offset, &ev.id());
        let ids_value = keys::ids_value(offset, &e.topic);
        let cursor_key = keys::topic_key(&e.topic, &e.publisher.to_bytes());
        // At u64::MAX the cursor stays put; the pubseq lookup in `append` still refuses a second
        // event with that seq.
        let next_seq = e.seq.saturating_add(1).to_be_bytes();
        let meta_value = new_meta.encode();
        (
            &trees.log,
            &trees.pubseq,
            &self.ids,
            &self.cursors,
            &self.meta,
        )
            .transaction(|(log, pubseq, ids, cursors, meta_tree)| {
                log.insert(&offset_key, ev.signed())?;
                pubseq.insert(pubseq_key.as_slice(), pubseq_value.as_slice())?;
                ids.insert(ev.id().as_bytes(), ids_value.as_slice())?;
                cursors.insert(cursor_key.as_slice(), &next_seq)?;
                meta_tree.insert(e.topic.as_str().as_bytes(), &meta_value)?;
                Ok::<_, ConflictableTransactionError<std::convert::Infallible>>(())
            })
            .map_err(tx_err("appending an event"))?;
        debug!(topic = %e.topic, publisher = %e.publisher, seq = e.seq, offset, "stored event");
        Ok((offset, new_meta))
    }

    /// Stores the pending events of (topic, publisher) that are now contiguous with its cursor,
    /// in seq order; returns their offsets.
    fn release(
        &self,
        pending: &mut Pending,
        topic: &TopicName,
        publisher: &PeerId,
        mut meta: TopicMeta,
    ) -> Result<Vec<u64>, StoreError> {
        let mut released = Vec::new();
        let mut next = self.next_seq(topic, publisher)?;
        while let Some(ev) = pending.take(topic, publisher, next) {
            let (offset, new_meta) = self.store_next(meta, &ev)?;
            released.push(offset);
            meta = new_meta;
            next = next.saturating_add(1);
        }
        Ok(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ReadFrom;
    use crate::events::testkit::{Publisher, temp_store};
    use proptest::prelude::*;

    fn topic(name: &str) -> TopicName {
        name.parse().unwrap()
    }

    fn bodies(store: &EventStore, t: &str) -> Vec<(u64, Vec<u8>)> {
        store
            .read(&topic(t), ReadFrom::Earliest, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|s| (s.offset, s.event.body))
            .collect()
    }

    #[test]
    fn append_and_read_round_trip_with_offsets_from_zero() {
        let store = temp_store(StoreConfig::default());
        let p = Publisher::new(1);
        for seq in 1..=5 {
            let ev = p.event("orders", seq);
            assert_eq!(
                store.append(&ev),
                Ok(Appended::Stored {
                    offset: seq - 1,
                    released: vec![]
                })
            );
        }
        let read = store
            .read(&topic("orders"), ReadFrom::Earliest, 100)
            .unwrap();
        assert_eq!(read.len(), 5);
        for (i, s) in read.iter().enumerate() {
            let ev = p.event("orders", i as u64 + 1);
            assert_eq!(s.offset, i as u64);
            assert_eq!(&s.event, ev.event());
            assert_eq!(s.id, ev.id());
        }
        assert_eq!(store.get(&read[2].id).unwrap(), Some(read[2].clone()));
        assert_eq!(store.get(&EventId([0; 32])).unwrap(), None);
    }

    #[test]
    fn duplicates_stale_and_conflicts_are_dropped() {
        let store = temp_store(StoreConfig::default());
        let p = Publisher::new(1);
        store.append(&p.event("t", 1)).unwrap();
        store.append(&p.event("t", 2)).unwrap();
        assert_eq!(store.append(&p.event("t", 2)), Ok(Appended::Duplicate));
        let forked = p.event_with_body("t", 2, b"equivocation");
        assert_eq!(
            store.append(&forked),
            Ok(Appended::Conflict {
                existing: p.event("t", 2).id()
            })
        );
        // A pending conflict: seq 5 held, then another seq 5.
        assert_eq!(
            store.append(&p.event("t", 5)),
            Ok(Appended::Pending { expected: 3 })
        );
        assert_eq!(store.append(&p.event("t", 5)), Ok(Appended::Duplicate));
        assert_eq!(
            store.append(&p.event_with_body("t", 5, b"fork")),
            Ok(Appended::Conflict {
                existing: p.event("t", 5).id()
            })
        );
        // Skip past 3 and 4: they become stale.
        assert_eq!(
            store.skip_to(&topic("t"), &p.peer(), 5),
            Ok(vec![2]),
            "the pending seq 5 is released"
        );
        assert_eq!(
            store.append(&p.event("t", 3)),
            Ok(Appended::Stale { expected: 6 })
        );
        assert_eq!(bodies(&store, "t").len(), 3);
        assert_eq!(store.info(&topic("t")).unwrap().events, 3);
    }

    #[test]
    fn out_of_order_arrivals_are_stored_in_seq_order() {
        let store = temp_store(StoreConfig::default());
        let p = Publisher::new(1);
        assert_eq!(
            store.append(&p.event("t", 3)),
            Ok(Appended::Pending { expected: 1 })
        );
        assert!(matches!(
            store.read(&topic("t"), ReadFrom::Earliest, 10),
            Err(StoreError::UnknownTopic(_))
        ));
        assert_eq!(
            store.append(&p.event("t", 1)),
            Ok(Appended::Stored {
                offset: 0,
                released: vec![]
            })
        );
        assert_eq!(
            store.append(&p.event("t", 2)),
            Ok(Appended::Stored {
                offset: 1,
                released: vec![2]
            })
        );
        assert_eq!(store.pending_len(), 0);
        assert_eq!(
            bodies(&store, "t"),
            vec![
                (0, b"t#1".to_vec()),
                (1, b"t#2".to_vec()),
                (2, b"t#3".to_vec())
            ]
        );
        assert_eq!(store.cursors(&topic("t")), Ok(vec![(p.peer(), 4)]));
    }

    #[test]
    fn a_publisher_first_seen_mid_stream_waits_for_skip_to() {
        let store = temp_store(StoreConfig::default());
        let p = Publisher::new(1);
        assert_eq!(
            store.append(&p.event("t", 5)),
            Ok(Appended::Pending { expected: 1 })
        );
        assert_eq!(
            store.append(&p.event("t", 7)),
            Ok(Appended::Pending { expected: 1 })
        );
        assert_eq!(store.skip_to(&topic("t"), &p.peer(), 5), Ok(vec![0]));
        assert_eq!(
            store.skip_to(&topic("t"), &p.peer(), 2),
            Ok(vec![]),
            "never back"
        );
        assert_eq!(
            store.append(&p.event("t", 6)),
            Ok(Appended::Stored {
                offset: 1,
                released: vec![2]
            })
        );
        assert_eq!(store.cursors(&topic("t")), Ok(vec![(p.peer(), 8)]));
        assert_eq!(store.lowest_seq(&topic("t"), &p.peer()), Ok(Some(5)));
    }

    #[test]
    fn pending_buffer_is_bounded() {
        let store = temp_store(StoreConfig {
            max_pending: 2,
            ..StoreConfig::default()
        });
        let p = Publisher::new(1);
        for seq in [2, 3] {
            store.append(&p.event("t", seq)).unwrap();
        }
        assert_eq!(
            store.append(&p.event("t", 4)),
            Ok(Appended::PendingFull { expected: 1 })
        );
        assert_eq!(
            store.append(&p.event("t", 1)),
            Ok(Appended::Stored {
                offset: 0,
                released: vec![1, 2]
            })
        );
        // Seq 4 was dropped; backfill would bring it again, and now it is in order.
        assert!(matches!(
            store.append(&p.event("t", 4)),
            Ok(Appended::Stored { offset: 3, .. })
        ));
    }

    #[test]
    fn topics_are_bounded() {
        let store = temp_store(StoreConfig {
            max_topics: 2,
            ..StoreConfig::default()
        });
        let p = Publisher::new(1);
        store.append(&p.event("a", 1)).unwrap();
        assert_eq!(store.create_topic(&topic("b")), Ok(true));
        assert_eq!(store.create_topic(&topic("b")), Ok(false));
        assert_eq!(
            store.append(&p.event("c", 1)),
            Err(StoreError::TooManyTopics { limit: 2 })
        );
        assert!(store.append(&p.event("a", 2)).is_ok());
    }

    #[test]
    fn the_store_and_its_flush_can_move_between_tasks() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let store = temp_store(StoreConfig::default());
        send_sync(&store);
        send(store.flush());
    }

    #[tokio::test]
    async fn flushed_events_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let p = Publisher::new(1);
        {
            let db = sled::open(dir.path()).unwrap();
            let store = EventStore::open(&db, StoreConfig::default()).unwrap();
            for seq in 1..=3 {
                store.append(&p.event("t", seq)).unwrap();
            }
            store.flush().await.unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let store = EventStore::open(&db, StoreConfig::default()).unwrap();
        assert_eq!(
            bodies(&store, "t"),
            vec![
                (0, b"t#1".to_vec()),
                (1, b"t#2".to_vec()),
                (2, b"t#3".to_vec())
            ]
        );
        assert_eq!(store.append(&p.event("t", 3)), Ok(Appended::Duplicate));
        assert!(matches!(
            store.append(&p.event("t", 4)),
            Ok(Appended::Stored { offset: 3, .. })
        ));
    }

    /// For each publisher, how many events it publishes; then the order (with repeats) in
    /// which (publisher, seq) pairs arrive.
    fn arrivals() -> impl Strategy<Value = (Vec<u64>, Vec<(usize, u64)>)> {
        proptest::collection::vec(1..50u64, 2..=3).prop_flat_map(|counts| {
            let all: Vec<(usize, u64)> = counts
                .iter()
                .enumerate()
                .flat_map(|(p, &n)| (1..=n).map(move |seq| (p, seq)))
                .collect();
            let len = all.len();
            let dups = proptest::collection::vec(0..len, 0..20);
            (Just(counts), Just(all), dups).prop_flat_map(|(counts, mut all, dups)| {
                let extra: Vec<_> = dups.iter().map(|&i| all[i]).collect();
                all.extend(extra);
                (Just(counts), Just(all).prop_shuffle())
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn any_interleaving_stores_each_event_once_in_seq_order(
            (counts, order) in arrivals(),
        ) {
            let store = temp_store(StoreConfig::default());
            let publishers: Vec<_> = (0..counts.len()).map(|i| Publisher::new(i as u8 + 1)).collect();
            let events: Vec<Vec<_>> = publishers
                .iter()
                .zip(&counts)
                .map(|(p, &n)| (1..=n).map(|seq| p.event("t", seq)).collect())
                .collect();
            for (p, seq) in order {
                let got = store.append(&events[p][seq as usize - 1]);
                prop_assert!(got.is_ok(), "{:?}", got);
            }
            let read = store.read(&topic("t"), ReadFrom::Earliest, usize::MAX).unwrap();
            let total: u64 = counts.iter().sum();
            prop_assert_eq!(read.len() as u64, total);
            prop_assert_eq!(store.pending_len(), 0);
            for (i, s) in read.iter().enumerate() {
                prop_assert_eq!(s.offset, i as u64);
            }
            for (p, publisher) in publishers.iter().enumerate() {
                let seqs: Vec<u64> = read
                    .iter()
                    .filter(|s| s.event.publisher == publisher.peer())
                    .map(|s| s.event.seq)
                    .collect();
                prop_assert_eq!(seqs, (1..=counts[p]).collect::<Vec<_>>());
            }
        }
    }
}
