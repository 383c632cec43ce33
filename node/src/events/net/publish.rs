//! Publishing this node's events, and taking in events from gossip.

use std::collections::BTreeMap;

use micro_overlay::{GossipMessage, MessageAcceptance};
use tracing::{debug, warn};

use super::{EventPublished, Events, EventsError, gossip_topic};
use crate::broker::TopicName;
use crate::events::{Appended, Event, verify};

impl Events {
    /// Publishes an event on `topic`: signs it with the node key under the next seq of this
    /// node on the topic, stores it, flushes the store to disk, then gossips it (to 0 peers
    /// is fine) and makes sure this node carries the topic.
    ///
    /// When this returns `Ok`, the event survives a crash of this node and will reach every
    /// carrier of the topic (by gossip now, or by backfill later). Publishes of one node are
    /// serialized. On any error, nothing was published; a failed flush may leave the event
    /// in the store (it is then published, with the seq it got).
    pub async fn publish(
        &self,
        topic: TopicName,
        body: Vec<u8>,
        content_type: String,
        headers: BTreeMap<String, String>,
    ) -> Result<EventPublished, EventsError> {
        let inner = &self.0;
        let me = inner.overlay.local_peer_id();
        let _turn = inner.publishing.lock().await;
        let seq = inner
            .store
            .cursors(&topic)?
            .into_iter()
            .find(|(publisher, _)| *publisher == me)
            .map_or(1, |(_, next)| next);
        let event = Event {
            topic: topic.clone(),
            publisher: me,
            seq,
            timestamp_ms: crate::registry::now_ms(),
            headers,
            content_type,
            body,
        };
        let signed = event.sign(&inner.key, &inner.config.limits)?;
        let offset = match inner.store.append(&signed)? {
            Appended::Stored { offset, .. } => offset,
            other => return Err(EventsError::NotStored(format!("{other:?}"))),
        };
        inner.store.flush().await?;
        inner.appended.notify_waiters();
        if let Err(e) = self.carry(&topic).await {
            warn!(%topic, error = %e, "published event stored, but the topic is not carried on the network");
        }
        let delivered_to = match inner
            .overlay
            .publish(&gossip_topic(&topic), signed.signed().to_vec())
            .await
        {
            Ok(n) => n,
            Err(e) => {
                // Stored and flushed: carriers get it by backfill.
                warn!(%topic, seq, error = %e, "event stored but not gossiped");
                0
            }
        };
        debug!(%topic, seq, offset, delivered_to, "event published");
        Ok(EventPublished {
            id: signed.id(),
            seq,
            offset,
            delivered_to,
        })
    }

    /// Checks an event from gossip, stores it, and reports the verdict to gossipsub:
    /// invalid, forged, oversized, misrouted or equivocating events are rejected (the sender
    /// is penalised) and never stored; duplicates and events out of turn are ignored; an
    /// event ahead of its turn starts a backfill of its topic from the peer that sent it.
    pub async fn on_gossip(&self, gossip: GossipMessage) {
        let verdict = self.judge(&gossip);
        self.0.overlay.report_message(&gossip, verdict).await;
    }

    fn judge(&self, gossip: &GossipMessage) -> MessageAcceptance {
        let peer = gossip.propagation_source;
        let event = match verify(&gossip.data, &self.0.config.limits) {
            Ok(event) => event,
            Err(e) => {
                warn!(%peer, topic = %gossip.topic, error = %e, "rejected an event from gossip");
                return MessageAcceptance::Reject;
            }
        };
        let topic = event.event().topic.clone();
        if gossip.topic != gossip_topic(&topic) {
            warn!(%peer, %topic, gossip_topic = %gossip.topic, "rejected an event that came on another topic's gossip");
            return MessageAcceptance::Reject;
        }
        match self.0.store.append(&event) {
            Ok(Appended::Stored { .. }) => {
                self.0.appended.notify_waiters();
                MessageAcceptance::Accept
            }
            Ok(Appended::Duplicate | Appended::Stale { .. }) => MessageAcceptance::Ignore,
            Ok(Appended::Pending { expected } | Appended::PendingFull { expected }) => {
                debug!(%peer, %topic, expected, seq = event.event().seq, "event ahead of its turn; backfilling");
                self.schedule_backfill(topic, peer);
                MessageAcceptance::Ignore
            }
            Ok(Appended::Conflict { existing }) => {
                warn!(
                    %peer, %topic, publisher = %event.event().publisher, seq = event.event().seq,
                    %existing, "rejected an equivocating event (another event has its seq)"
                );
                MessageAcceptance::Reject
            }
            Err(e) => {
                warn!(%topic, error = %e, "could not store an event from gossip");
                MessageAcceptance::Ignore
            }
        }
    }
}
