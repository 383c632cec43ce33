//! Events that arrived ahead of their turn, held in memory until the events before them do.
//!
//! Bounded three ways (see [`StoreConfig`]): in total, in bytes, and per (topic, publisher).
//! Nothing here is durable: after a restart, backfill fetches what was pending.

use std::collections::{BTreeMap, HashMap};

use libp2p::PeerId;

use super::config::StoreConfig;
use super::event::VerifiedEvent;
use super::id::EventId;
use crate::broker::TopicName;

/// What [`Pending::hold`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    /// Held until its turn.
    Held,
    /// The same event is already held.
    Duplicate,
    /// A different event with the same (topic, publisher, seq) is held (equivocation); the new
    /// one was dropped.
    Conflict(EventId),
    /// A bound was reached; the event was dropped.
    Full,
}

/// The pending buffer.
#[derive(Debug, Default)]
pub(super) struct Pending {
    held: HashMap<(TopicName, PeerId), BTreeMap<u64, VerifiedEvent>>,
    count: usize,
    bytes: usize,
}

impl Pending {
    /// Holds `ev` (keyed by its topic, publisher and seq) unless a bound in `config` is hit.
    pub fn hold(&mut self, ev: &VerifiedEvent, config: &StoreConfig) -> Hold {
        let e = ev.event();
        let key = (e.topic.clone(), e.publisher);
        if let Some(existing) = self.held.get(&key).and_then(|q| q.get(&e.seq)) {
            return if existing.id() == ev.id() {
                Hold::Duplicate
            } else {
                Hold::Conflict(existing.id())
            };
        }
        let queue_len = self.held.get(&key).map_or(0, BTreeMap::len);
        let size = ev.signed().len();
        if self.count >= config.max_pending
            || self.bytes.saturating_add(size) > config.max_pending_bytes
            || queue_len >= config.max_pending_per_publisher
        {
            return Hold::Full;
        }
        self.held.entry(key).or_default().insert(e.seq, ev.clone());
        self.count += 1;
        self.bytes = self.bytes.saturating_add(size);
        Hold::Held
    }

    /// Takes the held event of (topic, publisher) with exactly `seq`, if any.
    pub fn take(
        &mut self,
        topic: &TopicName,
        publisher: &PeerId,
        seq: u64,
    ) -> Option<VerifiedEvent> {
        let key = (topic.clone(), *publisher);
        let queue = self.held.get_mut(&key)?;
        let ev = queue.remove(&seq)?;
        if queue.is_empty() {
            self.held.remove(&key);
        }
        self.forget(&ev);
        Some(ev)
    }

    /// Drops the held events of (topic, publisher) with a seq below `seq`; returns how many.
    pub fn drop_below(&mut self, topic: &TopicName, publisher: &PeerId, seq: u64) -> usize {
        let key = (topic.clone(), *publisher);
        let Some(queue) = self.held.get_mut(&key) else {
            return 0;
        };
        let kept = queue.split_off(&seq);
        let dropped = std::mem::replace(queue, kept);
        if queue.is_empty() {
            self.held.remove(&key);
        }
        for ev in dropped.values() {
            self.forget(ev);
        }
        dropped.len()
    }

    /// Events held now.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Updates the totals for an event no longer held.
    fn forget(&mut self, ev: &VerifiedEvent) {
        self.count = self.count.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(ev.signed().len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::testkit::Publisher;

    #[test]
    fn bounds_duplicates_and_conflicts() {
        let config = StoreConfig {
            max_pending: 3,
            max_pending_per_publisher: 2,
            ..StoreConfig::default()
        };
        let (a, b) = (Publisher::new(1), Publisher::new(2));
        let mut p = Pending::default();
        let a2 = a.event("t", 2);
        assert_eq!(p.hold(&a2, &config), Hold::Held);
        assert_eq!(p.hold(&a2, &config), Hold::Duplicate);
        let other = a.event_with_body("t", 2, b"other");
        assert_eq!(p.hold(&other, &config), Hold::Conflict(a2.id()));
        assert_eq!(p.hold(&a.event("t", 3), &config), Hold::Held);
        assert_eq!(
            p.hold(&a.event("t", 4), &config),
            Hold::Full,
            "per publisher"
        );
        assert_eq!(p.hold(&b.event("t", 2), &config), Hold::Held);
        assert_eq!(p.hold(&b.event("t", 3), &config), Hold::Full, "in total");
        assert_eq!(p.len(), 3);

        let topic = "t".parse().unwrap();
        assert_eq!(p.take(&topic, &a.peer(), 2), Some(a2));
        assert_eq!(p.take(&topic, &a.peer(), 2), None);
        assert_eq!(p.drop_below(&topic, &a.peer(), 4), 1);
        assert_eq!(p.drop_below(&topic, &b.peer(), 2), 0);
        assert_eq!(p.len(), 1);
        assert_eq!(p.bytes, b.event("t", 2).signed().len());
    }
}
