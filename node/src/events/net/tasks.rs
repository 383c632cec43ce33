//! Background work: backfills (one task per topic at a time), the anti-entropy tick and
//! retention.

use std::collections::VecDeque;

use micro_overlay::PeerId;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tracing::{debug, info, warn};

use super::{Events, lock, stopped};
use crate::broker::TopicName;

/// Most peers waiting in one topic's backfill queue; more requests for it are dropped (the
/// next anti-entropy tick asks again).
const MAX_QUEUED_PEERS: usize = 32;

impl Events {
    /// Backfills `topic` from `peer` on a background task. At most one backfill per topic
    /// runs at a time: a request for a topic already being backfilled queues the peer.
    pub fn schedule_backfill(&self, topic: TopicName, peer: PeerId) {
        if peer == self.0.overlay.local_peer_id() {
            return;
        }
        {
            let mut queues = lock(&self.0.backfills);
            if let Some(queue) = queues.get_mut(&topic) {
                if !queue.contains(&peer) && queue.len() < MAX_QUEUED_PEERS {
                    queue.push_back(peer);
                }
                return;
            }
            queues.insert(topic.clone(), VecDeque::from([peer]));
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut stop = this.0.stop.clone();
            loop {
                let next = {
                    let mut queues = lock(&this.0.backfills);
                    match queues.get_mut(&topic).and_then(VecDeque::pop_front) {
                        Some(peer) => peer,
                        None => {
                            queues.remove(&topic);
                            return;
                        }
                    }
                };
                tokio::select! {
                    result = this.backfill(&topic, next) => match result {
                        Ok(n) if n > 0 => info!(%topic, peer = %next, events = n, "backfilled"),
                        Ok(_) => {}
                        Err(e) => debug!(%topic, peer = %next, error = %e, "backfill failed"),
                    },
                    _ = stopped(&mut stop) => {
                        lock(&this.0.backfills).remove(&topic);
                        return;
                    }
                }
            }
        });
    }

    /// Backfills `topic` from the peers carrying it (DHT providers, then connected peers as a
    /// fallback, at most `max_backfill_peers`), on a background task.
    pub(super) fn spawn_sync_with_carriers(&self, topic: TopicName) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut peers = this.providers(&topic).await;
            if let Ok(connected) = this.0.overlay.connected_peers().await {
                peers.extend(connected.into_iter().map(|c| c.peer_id));
            }
            let me = this.0.overlay.local_peer_id();
            let mut seen = std::collections::HashSet::new();
            peers.retain(|p| *p != me && seen.insert(*p));
            peers.truncate(this.0.config.max_backfill_peers);
            for peer in peers {
                this.schedule_backfill(topic.clone(), peer);
            }
        });
    }

    /// Runs anti-entropy (every carried topic backfilled from its carriers) and retention on
    /// their intervals until `stop` turns true.
    pub async fn run_upkeep(self, mut stop: watch::Receiver<bool>) {
        let config = &self.0.config;
        let mut anti_entropy = interval_at(
            Instant::now() + config.anti_entropy_interval,
            config.anti_entropy_interval,
        );
        anti_entropy.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut retention = interval_at(
            Instant::now() + config.retention_interval,
            config.retention_interval,
        );
        retention.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = anti_entropy.tick() => {
                    for topic in self.carried() {
                        self.spawn_sync_with_carriers(topic);
                    }
                }
                _ = retention.tick() => self.enforce_retention().await,
                _ = stopped(&mut stop) => return,
            }
        }
    }

    async fn enforce_retention(&self) {
        let store = self.0.store.clone();
        let now = crate::registry::now_ms();
        match tokio::task::spawn_blocking(move || store.enforce_retention_all(now)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => info!(removed = n, "event retention"),
            Ok(Err(e)) => warn!(error = %e, "event retention failed"),
            Err(e) => warn!(error = %e, "event retention task failed"),
        }
    }
}
