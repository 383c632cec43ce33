//! What peers ask a store when they backfill: how far it has each publisher, and that
//! publisher's signed events from a seq on.
//!
//! These answer for topics the store has never seen with "nothing" rather than an error:
//! that is a valid answer to a peer.

use libp2p::PeerId;

use super::error::{StoreError, sled_err};
use super::keys;
use super::store::EventStore;
use crate::broker::TopicName;

impl EventStore {
    /// Each publisher seen on `topic` with its next expected seq: this node has (or skipped,
    /// or retention removed) everything below it. One entry per publisher ever stored or
    /// skipped on the topic, sorted by publisher bytes; empty for an unknown topic.
    pub fn cursors(&self, topic: &TopicName) -> Result<Vec<(PeerId, u64)>, StoreError> {
        let prefix = keys::topic_prefix(topic);
        self.cursors
            .scan_prefix(&prefix)
            .map(|entry| {
                let (k, v) = entry.map_err(sled_err("scanning publisher cursors"))?;
                let publisher = keys::parse_publisher(&k[prefix.len()..])?;
                Ok((publisher, keys::be_u64(&v, "publisher cursor")?))
            })
            .collect()
    }

    /// The signed bytes of `publisher`'s events on `topic` with seq `>= from_seq`, in seq
    /// order: at most `max_events` of them, totalling at most `max_bytes` (never more, so the
    /// answer fits a response of that size; pass `max_bytes >=`
    /// [`EventLimits::max_signed_bytes`](super::EventLimits) to always make progress). Empty
    /// for an unknown topic or publisher. The seqs returned are contiguous except where
    /// [`EventStore::skip_to`] skipped.
    pub fn range(
        &self,
        topic: &TopicName,
        publisher: &PeerId,
        from_seq: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        if self.meta_of(topic)?.is_none() {
            return Ok(Vec::new());
        }
        let trees = self.trees(topic)?;
        let prefix = keys::publisher_prefix(publisher);
        let mut out = Vec::new();
        let mut total = 0usize;
        for entry in trees.pubseq.range(keys::pubseq_key(publisher, from_seq)..) {
            if out.len() >= max_events {
                break;
            }
            let (k, v) = entry.map_err(sled_err("scanning a publisher's events"))?;
            if !k.starts_with(&prefix) {
                break;
            }
            let (offset, _) = keys::parse_pubseq_value(&v)?;
            // Absent only if retention removed a corrupt entry without its indexes.
            let Some(bytes) = trees
                .log
                .get(offset.to_be_bytes())
                .map_err(sled_err("reading the log"))?
            else {
                continue;
            };
            total = total.saturating_add(bytes.len());
            if total > max_bytes {
                break;
            }
            out.push(bytes.to_vec());
        }
        Ok(out)
    }

    /// The lowest seq of `publisher` this node still holds on `topic`, so a peer asking for
    /// less can learn that the gap is gone (and [`EventStore::skip_to`] it). `None` if none
    /// is held (unknown topic or publisher, or all removed by retention).
    pub fn lowest_seq(
        &self,
        topic: &TopicName,
        publisher: &PeerId,
    ) -> Result<Option<u64>, StoreError> {
        if self.meta_of(topic)?.is_none() {
            return Ok(None);
        }
        let trees = self.trees(topic)?;
        for entry in trees.pubseq.scan_prefix(keys::publisher_prefix(publisher)) {
            let (k, v) = entry.map_err(sled_err("scanning a publisher's events"))?;
            let (offset, _) = keys::parse_pubseq_value(&v)?;
            let present = trees
                .log
                .contains_key(offset.to_be_bytes())
                .map_err(sled_err("reading the log"))?;
            if present {
                return keys::pubseq_key_seq(&k).map(Some);
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use crate::events::StoreConfig;
    use crate::events::testkit::{Publisher, temp_store};
    use crate::events::verify;

    #[test]
    fn range_is_bounded_by_count_and_bytes() {
        let store = temp_store(StoreConfig::default());
        let (a, b) = (Publisher::new(1), Publisher::new(2));
        for seq in 1..=10 {
            store.append(&a.event("t", seq)).unwrap();
            store.append(&b.event("t", seq)).unwrap();
        }
        let t = "t".parse().unwrap();
        let seqs = |bytes: Vec<Vec<u8>>| -> Vec<u64> {
            bytes
                .iter()
                .map(|b| verify(b, &Default::default()).unwrap().event().seq)
                .collect()
        };
        assert_eq!(
            seqs(store.range(&t, &a.peer(), 3, 4, usize::MAX).unwrap()),
            vec![3, 4, 5, 6]
        );
        assert_eq!(
            seqs(store.range(&t, &b.peer(), 8, 100, usize::MAX).unwrap()),
            vec![8, 9, 10]
        );
        let one = a.event("t", 1).signed().len();
        let two = one + a.event("t", 2).signed().len();
        assert_eq!(
            seqs(store.range(&t, &a.peer(), 1, 100, two).unwrap()),
            vec![1, 2]
        );
        assert_eq!(
            seqs(store.range(&t, &a.peer(), 1, 100, two - 1).unwrap()),
            vec![1]
        );
        assert!(
            store
                .range(&t, &a.peer(), 1, 100, one - 1)
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .range(&t, &a.peer(), 11, 100, usize::MAX)
                .unwrap()
                .is_empty()
        );
        let stranger = Publisher::new(3).peer();
        assert!(
            store
                .range(&t, &stranger, 1, 100, usize::MAX)
                .unwrap()
                .is_empty()
        );
        let unknown = "unknown".parse().unwrap();
        assert!(
            store
                .range(&unknown, &a.peer(), 1, 100, usize::MAX)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.lowest_seq(&unknown, &a.peer()), Ok(None));
        assert_eq!(store.cursors(&unknown), Ok(vec![]));
        assert_eq!(store.lowest_seq(&t, &stranger), Ok(None));
        let mut cursors = store.cursors(&t).unwrap();
        cursors.sort();
        let mut want = vec![(a.peer(), 11), (b.peer(), 11)];
        want.sort();
        assert_eq!(cursors, want);
    }
}
