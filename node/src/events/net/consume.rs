//! Consuming: consumer groups reading a topic, long-polling for what comes next, and
//! acknowledging.

use std::time::Duration;

use tokio::time::Instant;

use super::{Events, EventsError};
use crate::broker::TopicName;
use crate::events::{GroupName, ReadFrom, StoreError, Stored, TopicInfo};

/// What one consume call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// The events, in offset order.
    pub events: Vec<Stored>,
    /// What to acknowledge once they are handled: the offset after the last one (the
    /// group's position when there are none).
    pub next_offset: u64,
}

impl Events {
    /// Up to `max` events of `topic` for `group` from its position, without committing it;
    /// a group new to the topic starts at `from`. Waits up to `wait` (capped at
    /// `max_consume_wait`) for an event when there is none yet.
    ///
    /// Consuming carries the topic. A topic this node does not store is looked up in the
    /// DHT: if a peer carries it, this node starts carrying it (and backfilling it) and
    /// reads what has arrived; if none does, [`EventsError::UnknownTopic`].
    pub async fn consume(
        &self,
        topic: &TopicName,
        group: &GroupName,
        from: ReadFrom,
        max: usize,
        wait: Duration,
    ) -> Result<Consumed, EventsError> {
        self.require_topic(topic).await?;
        let deadline = Instant::now() + wait.min(self.0.config.max_consume_wait);
        let mut stop = self.0.stop.clone();
        loop {
            // Registered before reading, so an append between the read and the wait wakes us.
            let appended = self.0.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let events = self.0.store.consume(topic, group, from, max)?;
            let stopping = *stop.borrow() || stop.has_changed().is_err();
            if !events.is_empty() || Instant::now() >= deadline || stopping {
                let next_offset = match events.last() {
                    Some(last) => last.offset + 1,
                    None => self.0.store.group_position(topic, group)?.unwrap_or(0),
                };
                return Ok(Consumed {
                    events,
                    next_offset,
                });
            }
            tokio::select! {
                _ = appended => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = super::stopped(&mut stop) => {}
            }
        }
    }

    /// Records that `group` handled everything of `topic` below `next_offset`, and flushes
    /// it to disk before returning: an acknowledged event is never delivered to the group
    /// again, even after a crash.
    pub async fn ack(
        &self,
        topic: &TopicName,
        group: &GroupName,
        next_offset: u64,
    ) -> Result<(), EventsError> {
        self.0.store.commit(topic, group, next_offset)?;
        self.0.store.flush().await?;
        Ok(())
    }

    /// The summary of `topic` on this node.
    pub fn info(&self, topic: &TopicName) -> Result<TopicInfo, EventsError> {
        self.0.store.info(topic).map_err(|e| match e {
            StoreError::UnknownTopic(t) => EventsError::UnknownTopic(t),
            other => other.into(),
        })
    }

    /// Makes sure `topic` is carried: known locally, or found at a peer through the DHT.
    async fn require_topic(&self, topic: &TopicName) -> Result<(), EventsError> {
        match self.0.store.info(topic) {
            Ok(_) => {}
            Err(StoreError::UnknownTopic(_)) => {
                if self.providers(topic).await.is_empty() {
                    return Err(EventsError::UnknownTopic(topic.clone()));
                }
            }
            Err(e) => return Err(e.into()),
        }
        self.carry(topic).await
    }
}
