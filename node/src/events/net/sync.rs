//! The backfill protocol `/micro/events-sync/1.0.0` (`node/proto/events_sync.proto`): the
//! asker sends its cursors on a topic, the responder sends the signed events beyond them in
//! bounded batches; the asker verifies each one as if it came by gossip.

use std::collections::HashMap;

use micro_overlay::sync::EVENTS_SYNC;
use micro_overlay::{PeerId, RpcFailure, SyncResponder};
use prost::Message;
use tracing::{debug, warn};

use super::Events;
use crate::broker::TopicName;
use crate::events::{Appended, EventError, EventStore, StoreError, verify};

/// Generated protobuf types (`node/proto/events_sync.proto`).
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/micro.events.sync.v1.rs"));
}

/// Bytes a response may spend on framing per event (field tag and length prefix) on top of
/// the event itself; counted against the byte budget so a full batch still fits the frame.
const PER_EVENT_OVERHEAD: u64 = 16;

/// Why a backfill round or an inbound request failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The request did not reach the peer or got no answer.
    #[error("backfill request failed: {0}")]
    Request(#[from] RpcFailure),
    /// The peer's message does not decode or breaks a bound.
    #[error("malformed backfill message: {0}")]
    Malformed(String),
    /// The peer sent an event that does not verify; the round was abandoned.
    #[error("peer sent an invalid event: {0}")]
    InvalidEvent(#[from] EventError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task running the round died.
    #[error("backfill task failed: {0}")]
    Task(String),
}

/// What one round stored.
struct Round {
    /// Events stored plus publishers skipped forward.
    progress: usize,
    more: bool,
}

impl Events {
    /// Answers an inbound backfill request on its own task. A bad request is logged and its
    /// stream reset (the responder dropped).
    pub fn spawn_serve_sync(&self, peer: PeerId, request: Vec<u8>, responder: SyncResponder) {
        let store = self.0.store.clone();
        let bounds = Bounds {
            max_events: self.0.config.sync_batch_events,
            max_bytes: self.0.config.sync_batch_bytes,
            max_cursors: self.0.config.max_sync_cursors,
            max_event_bytes: self.0.config.limits.max_signed_bytes as u64,
        };
        tokio::spawn(async move {
            let answer =
                tokio::task::spawn_blocking(move || answer(&store, &request, bounds)).await;
            match answer {
                Ok(Ok(response)) => {
                    let _ = responder.respond(response);
                }
                Ok(Err(e)) => warn!(%peer, error = %e, "refused a backfill request"),
                Err(e) => warn!(%peer, error = %e, "backfill answer task failed"),
            }
        });
    }

    /// Backfills `topic` from `peer`: rounds of "here is how far I am" until the peer has
    /// nothing more, a round makes no progress, or `max_sync_rounds` is reached. Returns how
    /// many events were stored (plus publishers skipped forward). An invalid event from the
    /// peer ends the backfill with [`SyncError::InvalidEvent`]; what was stored stays.
    pub async fn backfill(&self, topic: &TopicName, peer: PeerId) -> Result<usize, SyncError> {
        let config = &self.0.config;
        let mut total = 0;
        for _ in 0..config.max_sync_rounds {
            let have = self.0.store.cursors(topic)?;
            let request = proto::SyncRequest {
                topic: topic.to_string(),
                have: have
                    .iter()
                    .map(|(publisher, next_seq)| proto::Cursor {
                        publisher: publisher.to_bytes(),
                        next_seq: *next_seq,
                    })
                    .collect(),
                max_events: config.sync_batch_events,
                max_bytes: config.sync_batch_bytes,
            }
            .encode_to_vec();
            let response = self
                .0
                .overlay
                .request(EVENTS_SYNC, peer, request, config.sync_timeout)
                .await?;
            let store = self.0.store.clone();
            let (topic_owned, limits) = (topic.clone(), config.limits.clone());
            let max_events = config.sync_batch_events as usize;
            let round = tokio::task::spawn_blocking(move || {
                apply(&store, &topic_owned, &response, &limits, max_events)
            })
            .await
            .map_err(|e| SyncError::Task(e.to_string()))??;
            if round.progress > 0 {
                self.0.appended.notify_waiters();
            }
            total += round.progress;
            if !round.more || round.progress == 0 {
                break;
            }
        }
        debug!(%topic, %peer, total, "backfill done");
        Ok(total)
    }
}

/// The responder's bounds on one answer.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    max_events: u32,
    max_bytes: u64,
    max_cursors: usize,
    /// The largest event: with less budget left than this, the answer may be cut.
    max_event_bytes: u64,
}

/// The responder's side: what this store holds of the topic beyond the asker's cursors.
fn answer(store: &EventStore, request: &[u8], bounds: Bounds) -> Result<Vec<u8>, SyncError> {
    let Bounds {
        max_events,
        max_bytes,
        max_cursors,
        max_event_bytes,
    } = bounds;
    let request = proto::SyncRequest::decode(request)
        .map_err(|e| SyncError::Malformed(format!("not a SyncRequest: {e}")))?;
    if request.have.len() > max_cursors {
        return Err(SyncError::Malformed(format!(
            "{} cursors, over the limit of {max_cursors}",
            request.have.len()
        )));
    }
    let topic: TopicName = request
        .topic
        .parse()
        .map_err(|e| SyncError::Malformed(format!("topic: {e}")))?;
    let mut have = HashMap::with_capacity(request.have.len());
    for cursor in &request.have {
        let publisher = PeerId::from_bytes(&cursor.publisher)
            .map_err(|_| SyncError::Malformed("a cursor's publisher is not a PeerId".into()))?;
        have.insert(publisher, cursor.next_seq.max(1));
    }
    let mut events_left = max_events.min(request.max_events) as usize;
    let mut bytes_left = max_bytes.min(request.max_bytes);
    let mut response = proto::SyncResponse::default();
    for (publisher, ours) in store.cursors(&topic)? {
        let theirs = have.get(&publisher).copied().unwrap_or(1);
        if ours <= theirs {
            continue;
        }
        let mut from = theirs;
        let lowest = store.lowest_seq(&topic, &publisher)?.unwrap_or(ours);
        if lowest > theirs {
            response.lowest.push(proto::Cursor {
                publisher: publisher.to_bytes(),
                next_seq: lowest,
            });
            from = lowest;
        }
        if from >= ours {
            continue;
        }
        if events_left == 0 || bytes_left == 0 {
            response.more = true;
            break;
        }
        let batch = store.range(
            &topic,
            &publisher,
            from,
            events_left,
            usize::try_from(bytes_left).unwrap_or(usize::MAX),
        )?;
        let given: u64 = batch
            .iter()
            .map(|e| e.len() as u64 + PER_EVENT_OVERHEAD)
            .sum();
        // `range` counts only the events' bytes: keep the framing inside the budget too.
        bytes_left = bytes_left.saturating_sub(given);
        events_left -= batch.len();
        // With less than one largest event of budget left, `range` may have stopped short.
        let cut = events_left == 0 || bytes_left < max_event_bytes + PER_EVENT_OVERHEAD;
        response.events.extend(batch);
        if cut {
            response.more = true;
            break;
        }
    }
    Ok(response.encode_to_vec())
}

/// The asker's side of one round: skips what the peer says is gone, verifies and stores
/// every event. Stops at the first invalid event.
fn apply(
    store: &EventStore,
    topic: &TopicName,
    response: &[u8],
    limits: &crate::events::EventLimits,
    max_events: usize,
) -> Result<Round, SyncError> {
    let response = proto::SyncResponse::decode(response)
        .map_err(|e| SyncError::Malformed(format!("not a SyncResponse: {e}")))?;
    if response.events.len() > max_events {
        return Err(SyncError::Malformed(format!(
            "{} events, more than the {max_events} asked for",
            response.events.len()
        )));
    }
    let mut progress = 0;
    let ours: HashMap<PeerId, u64> = store.cursors(topic)?.into_iter().collect();
    for cursor in &response.lowest {
        let publisher = PeerId::from_bytes(&cursor.publisher)
            .map_err(|_| SyncError::Malformed("a cursor's publisher is not a PeerId".into()))?;
        if cursor.next_seq > ours.get(&publisher).copied().unwrap_or(1) {
            store.skip_to(topic, &publisher, cursor.next_seq)?;
            progress += 1;
        }
    }
    for bytes in &response.events {
        let event = verify(bytes, limits)?;
        if event.event().topic != *topic {
            return Err(SyncError::Malformed(format!(
                "asked for topic `{topic}`, got an event of `{}`",
                event.event().topic
            )));
        }
        match store.append(&event)? {
            Appended::Stored { released, .. } => progress += 1 + released.len(),
            Appended::Conflict { existing } => warn!(
                %topic, publisher = %event.event().publisher, seq = event.event().seq, %existing,
                "backfill brought an equivocating event; kept the first"
            ),
            _ => {}
        }
    }
    Ok(Round {
        progress,
        more: response.more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::StoreConfig;
    use crate::events::testkit::{Publisher, temp_store};

    fn ask(store: &EventStore, topic: &TopicName, max_events: u32) -> Vec<u8> {
        proto::SyncRequest {
            topic: topic.to_string(),
            have: store
                .cursors(topic)
                .unwrap()
                .into_iter()
                .map(|(p, next_seq)| proto::Cursor {
                    publisher: p.to_bytes(),
                    next_seq,
                })
                .collect(),
            max_events,
            max_bytes: u64::MAX,
        }
        .encode_to_vec()
    }

    const BOUNDS: Bounds = Bounds {
        max_events: 500,
        max_bytes: 4 * 1024 * 1024,
        max_cursors: 16,
        max_event_bytes: 260 * 1024,
    };

    #[test]
    fn rounds_bring_the_asker_up_to_date_in_bounded_batches() {
        let (holder, asker) = (
            temp_store(StoreConfig::default()),
            temp_store(StoreConfig::default()),
        );
        let (a, b) = (Publisher::new(1), Publisher::new(2));
        for seq in 1..=10 {
            holder.append(&a.event("t", seq)).unwrap();
            holder.append(&b.event("t", seq)).unwrap();
        }
        for seq in 1..=3 {
            asker.append(&a.event("t", seq)).unwrap();
        }
        let t: TopicName = "t".parse().unwrap();
        let limits = Default::default();
        let mut rounds = 0;
        loop {
            rounds += 1;
            let response = answer(&holder, &ask(&asker, &t, 4), BOUNDS).unwrap();
            let round = apply(&asker, &t, &response, &limits, 4).unwrap();
            if !round.more {
                break;
            }
            assert!(round.progress > 0 && rounds < 10);
        }
        assert_eq!(rounds, 5, "17 events in batches of 4");
        let mut cursors = asker.cursors(&t).unwrap();
        cursors.sort();
        let mut want = vec![(a.peer(), 11), (b.peer(), 11)];
        want.sort();
        assert_eq!(cursors, want);
        assert_eq!(asker.info(&t).unwrap().events, 20);
    }

    #[test]
    fn bad_requests_and_invalid_events_are_refused() {
        let store = temp_store(StoreConfig::default());
        assert!(matches!(
            answer(&store, b"\xff\xff garbage", BOUNDS),
            Err(SyncError::Malformed(_))
        ));
        let too_many = proto::SyncRequest {
            topic: "t".into(),
            have: vec![proto::Cursor::default(); 17],
            max_events: 1,
            max_bytes: 1,
        }
        .encode_to_vec();
        assert!(matches!(
            answer(&store, &too_many, BOUNDS),
            Err(SyncError::Malformed(_))
        ));
        let mut tampered = Publisher::new(1).event("t", 1).signed().to_vec();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let response = proto::SyncResponse {
            events: vec![tampered],
            lowest: vec![],
            more: false,
        }
        .encode_to_vec();
        let t: TopicName = "t".parse().unwrap();
        assert!(matches!(
            apply(&store, &t, &response, &Default::default(), 10),
            Err(SyncError::InvalidEvent(_))
        ));
        assert!(store.cursors(&t).unwrap().is_empty(), "nothing stored");
    }
}
