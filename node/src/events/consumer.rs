//! Consumer groups: a durable position per (topic, group), for at-least-once delivery.
//!
//! A group's position is the next offset to deliver (the last committed offset + 1).
//! [`EventStore::consume`] reads from it without moving it; the caller delivers, then
//! [`EventStore::commit`]s. A crash between the two redelivers, never skips.

use super::error::{StoreError, sled_err};
use super::group::GroupName;
use super::keys;
use super::read::{ReadFrom, Stored};
use super::store::{EventStore, lock};
use crate::broker::TopicName;

impl EventStore {
    /// The group's position on `topic` (the next offset to deliver), or `None` if the group
    /// has never consumed or committed there. [`StoreError::UnknownTopic`] for a topic never
    /// stored.
    pub fn group_position(
        &self,
        topic: &TopicName,
        group: &GroupName,
    ) -> Result<Option<u64>, StoreError> {
        self.require_meta(topic)?;
        self.position(topic, group)
    }

    /// Records that the group has handled everything below `next_offset` on `topic`.
    ///
    /// Positions only move forward: committing below the current one is
    /// [`StoreError::CommitBackwards`] (committing it again is fine); beyond the topic's next
    /// offset it is [`StoreError::InvalidOffset`]. Like appends, commits reach disk on the next
    /// [`EventStore::flush`].
    pub fn commit(
        &self,
        topic: &TopicName,
        group: &GroupName,
        next_offset: u64,
    ) -> Result<(), StoreError> {
        let _writer = lock(&self.writer);
        let meta = self.require_meta(topic)?;
        if next_offset > meta.next_offset {
            return Err(StoreError::InvalidOffset {
                offset: next_offset,
                next: meta.next_offset,
            });
        }
        if let Some(committed) = self.position(topic, group)?
            && next_offset < committed
        {
            return Err(StoreError::CommitBackwards {
                committed,
                requested: next_offset,
            });
        }
        self.set_position(topic, group, next_offset)
    }

    /// Up to `max` events for the group, from its position; a group new to the topic starts
    /// at `start_if_new`, and that start is recorded as its position right away (so a group
    /// starting at [`ReadFrom::Latest`] sees what arrives after its first call).
    ///
    /// Does not commit: deliver the events, then [`EventStore::commit`] the last offset + 1.
    /// If retention removed events below the group's position, it resumes at the oldest
    /// retained one. Errors as [`EventStore::read`].
    pub fn consume(
        &self,
        topic: &TopicName,
        group: &GroupName,
        start_if_new: ReadFrom,
        max: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let meta = self.require_meta(topic)?;
        let trees = self.trees(topic)?;
        let start = match self.position(topic, group)? {
            Some(position) => position,
            None => {
                let _writer = lock(&self.writer);
                match self.position(topic, group)? {
                    Some(position) => position,
                    None => {
                        let start = self.resolve(topic, &trees, meta, start_if_new)?;
                        self.set_position(topic, group, start)?;
                        start
                    }
                }
            }
        };
        self.read_at(topic, &trees, start, max)
    }

    /// Forgets the group's position on `topic`; returns whether it had one.
    pub fn remove_group(&self, topic: &TopicName, group: &GroupName) -> Result<bool, StoreError> {
        let _writer = lock(&self.writer);
        let old = self
            .groups
            .remove(keys::topic_key(topic, group.as_str().as_bytes()))
            .map_err(sled_err("removing a consumer group"))?;
        Ok(old.is_some())
    }

    /// The group's stored position, if any.
    fn position(&self, topic: &TopicName, group: &GroupName) -> Result<Option<u64>, StoreError> {
        self.groups
            .get(keys::topic_key(topic, group.as_str().as_bytes()))
            .map_err(sled_err("reading a consumer group"))?
            .map(|v| keys::be_u64(&v, "consumer group position"))
            .transpose()
    }

    /// Stores the group's position (the caller holds the writer lock and checked it).
    fn set_position(
        &self,
        topic: &TopicName,
        group: &GroupName,
        next_offset: u64,
    ) -> Result<(), StoreError> {
        self.groups
            .insert(
                keys::topic_key(topic, group.as_str().as_bytes()),
                &next_offset.to_be_bytes(),
            )
            .map_err(sled_err("committing a consumer group"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::StoreConfig;
    use crate::events::testkit::{Publisher, temp_store};

    fn offsets(read: Vec<Stored>) -> Vec<u64> {
        read.into_iter().map(|s| s.offset).collect()
    }

    #[test]
    fn commits_survive_reopening_and_only_move_forward() {
        let dir = tempfile::tempdir().unwrap();
        let t: TopicName = "t".parse().unwrap();
        let g: GroupName = "workers".parse().unwrap();
        let p = Publisher::new(1);
        {
            let db = sled::open(dir.path()).unwrap();
            let store = EventStore::open(&db, StoreConfig::default()).unwrap();
            for seq in 1..=12 {
                store.append(&p.event("t", seq)).unwrap();
            }
            assert_eq!(store.group_position(&t, &g), Ok(None));
            let got = store.consume(&t, &g, ReadFrom::Earliest, 10).unwrap();
            assert_eq!(offsets(got), (0..10).collect::<Vec<_>>());
            // Not committed: consuming again redelivers.
            let again = store.consume(&t, &g, ReadFrom::Latest, 3).unwrap();
            assert_eq!(offsets(again), vec![0, 1, 2]);
            store.commit(&t, &g, 5).unwrap();
            store.commit(&t, &g, 5).unwrap();
            assert_eq!(
                store.commit(&t, &g, 4),
                Err(StoreError::CommitBackwards {
                    committed: 5,
                    requested: 4
                })
            );
            assert_eq!(
                store.commit(&t, &g, 13),
                Err(StoreError::InvalidOffset {
                    offset: 13,
                    next: 12
                })
            );
            db.flush().unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let store = EventStore::open(&db, StoreConfig::default()).unwrap();
        assert_eq!(store.group_position(&t, &g), Ok(Some(5)));
        let got = store.consume(&t, &g, ReadFrom::Earliest, 100).unwrap();
        assert_eq!(offsets(got), (5..12).collect::<Vec<_>>());
        store.commit(&t, &g, 12).unwrap();
        assert!(
            store
                .consume(&t, &g, ReadFrom::Earliest, 100)
                .unwrap()
                .is_empty()
        );
        let info = store.info(&t).unwrap();
        assert_eq!(info.groups, vec![(g.clone(), 12)]);
        assert_eq!(store.remove_group(&t, &g), Ok(true));
        assert_eq!(store.remove_group(&t, &g), Ok(false));
        assert_eq!(store.group_position(&t, &g), Ok(None));
    }

    #[test]
    fn a_new_group_starting_at_latest_sees_what_comes_after() {
        let store = temp_store(StoreConfig::default());
        let t: TopicName = "t".parse().unwrap();
        let g: GroupName = "late".parse().unwrap();
        let p = Publisher::new(1);
        assert!(matches!(
            store.consume(&t, &g, ReadFrom::Latest, 10),
            Err(StoreError::UnknownTopic(_))
        ));
        assert_eq!(store.create_topic(&t), Ok(true));
        store.append(&p.event("t", 1)).unwrap();
        assert!(
            store
                .consume(&t, &g, ReadFrom::Latest, 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.group_position(&t, &g), Ok(Some(1)));
        store.append(&p.event("t", 2)).unwrap();
        let got = store.consume(&t, &g, ReadFrom::Latest, 10).unwrap();
        assert_eq!(offsets(got), vec![1]);
        assert_eq!(
            store.consume(&t, &g, ReadFrom::Offset(99), 10).map(offsets),
            Ok(vec![1]),
            "start_if_new is ignored for a known group"
        );
    }

    #[test]
    fn group_names_are_checked_at_the_edge() {
        let err: StoreError = "no spaces".parse::<GroupName>().unwrap_err().into();
        assert!(matches!(err, StoreError::InvalidGroup(_)));
    }
}
