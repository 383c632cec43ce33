//! Keeping the routing table fresh at a steady pace instead of in bursts.
//!
//! Kademlia's bootstrap is a lookup of the node's own key and then, one after the other, a
//! lookup of a random key in every bucket beyond the closest neighbour: about log₂N + 1
//! lookups of some twenty requests each, every one a connection. rust-libp2p runs it when a
//! node joins, again as soon as a joining node's routing table has passed through fewer than
//! 20 entries (kad 0.49 offers no way to turn that off), and every 5 minutes. At 200
//! simulated nodes joining within a minute and a half, those bursts kept 36 of a node's 48
//! connection slots younger than the trimming grace, and the node's own calls found no room
//! (docs/SIMULATIONS.md).
//!
//! So every bootstrap stops after its first lookup, the node's own key: that is what a joining
//! node needs (its neighbourhood, which also makes its records findable), and it costs one
//! lookup. The bucket refreshes run here instead, one lookup at a time, spread evenly over
//! [`crate::OverlayConfig::discovery_interval`]: each round looks up the node's own key and
//! then one random key per bucket, from the farthest to just beyond the closest neighbour.
//! A lookup starts only once the previous one has ended, so a node too busy to finish its
//! lookups slows its own refresh instead of piling lookups up (docs/SIMULATIONS.md, "What
//! stopped it from scaling", has what refresh rounds did to 1,000 nodes on two cores).

use libp2p::PeerId;
use libp2p::kad::{self, KBucketDistance};
use libp2p::multihash::Multihash;
use rand::Rng;
use tokio::time::Instant;
use tracing::debug;

use super::EventLoop;

/// Tries at finding a key in a given bucket, as rust-libp2p's own bootstrap does: a random
/// key lands in bucket 255 − j with probability 2^−(j+1), so near buckets are best effort.
const TARGET_TRIES: usize = 16;

/// The paced refresh: which lookup comes next and when.
#[derive(Debug)]
pub(super) struct Refresh {
    /// When the next lookup is due.
    pub next: Instant,
    /// The lookups left in this round: `None` is the node's own key, `Some(i)` bucket `i`.
    pub round: Vec<Option<u32>>,
    /// The time between two lookups of this round: the interval over its length.
    pub spacing: std::time::Duration,
    /// The refresh lookup under way: the next waits for it, so a node too busy to finish
    /// its lookups in time does not pile up more of them.
    pub running: bool,
}

impl Refresh {
    /// A refresh whose first round starts one interval after `now` (the join's own lookup
    /// has just done the first step's work).
    pub fn new(now: Instant, interval: std::time::Duration) -> Self {
        Refresh {
            next: now + interval,
            round: Vec::new(),
            spacing: interval,
            running: false,
        }
    }

    /// Whether the next lookup may start: its time has come and the last one has ended.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next && !self.running
    }
}

/// One round: the node's own key, then every bucket from the farthest (255) down to the one
/// just beyond the closest neighbour's (`closest`, if any is known).
pub(super) fn round(closest: Option<u32>) -> Vec<Option<u32>> {
    let nearest = closest.map_or(255, |c| (c + 1).min(255));
    // Popped from the back: own key first, then the farthest bucket.
    let mut round: Vec<Option<u32>> = (nearest..=255).map(Some).collect();
    round.push(None);
    round
}

/// A random peer id whose key falls in `bucket` of `local`'s routing table, or the last one
/// tried if none did in [`TARGET_TRIES`].
pub(super) fn target_in_bucket(local: &PeerId, bucket: u32, rng: &mut impl Rng) -> PeerId {
    let local = kad::KBucketKey::from(*local);
    let mut target = random_peer(rng);
    for _ in 1..TARGET_TRIES {
        if bucket_of(&local.distance(&kad::KBucketKey::from(target))) == Some(bucket) {
            break;
        }
        target = random_peer(rng);
    }
    target
}

fn bucket_of(distance: &KBucketDistance) -> Option<u32> {
    distance.ilog2()
}

/// A random key to look up, like `PeerId::random` but from `rng`: lookups only need its
/// hash, never its owner.
fn random_peer(rng: &mut impl Rng) -> PeerId {
    const SHA2_256: u64 = 0x12;
    let digest: [u8; 32] = rng.random();
    Multihash::wrap(SHA2_256, &digest)
        .ok()
        .and_then(|hash| PeerId::from_multihash(hash).ok())
        .unwrap_or_else(PeerId::random)
}

impl EventLoop {
    /// Starts the next refresh lookup if it is due (called on every maintenance tick).
    pub(super) fn refresh_routing(&mut self) {
        let now = Instant::now();
        if !self.refresh.due(now) || self.connections.is_empty() {
            return;
        }
        let local = *self.swarm.local_peer_id();
        if self.refresh.round.is_empty() {
            let closest = self
                .swarm
                .behaviour_mut()
                .kad
                .kbuckets()
                .filter_map(|b| bucket_of(&b.range().0))
                .min();
            self.refresh.round = round(closest);
            // Evenly over the interval.
            let lookups = u32::try_from(self.refresh.round.len()).unwrap_or(u32::MAX);
            self.refresh.spacing =
                (self.config.discovery_interval / lookups.max(1)).max(super::MAINTENANCE_TICK);
        }
        let step = self.refresh.round.pop().flatten();
        self.refresh.next = now + self.refresh.spacing;
        let target = match step {
            None => local,
            Some(bucket) => target_in_bucket(&local, bucket, &mut rand::rng()),
        };
        debug!(bucket = ?step, "refreshing the routing table");
        self.swarm.behaviour_mut().kad.get_closest_peers(target);
        self.refresh.running = true;
        self.routing_refreshes += 1;
    }

    /// A refresh lookup's step ended (only refreshes ask Kademlia for closest peers): counts
    /// its requests, and frees the way for the next lookup once it is the last.
    pub(super) fn on_refresh_progress(
        &mut self,
        result: Result<kad::GetClosestPeersOk, kad::GetClosestPeersError>,
        stats: &kad::QueryStats,
        last: bool,
    ) {
        self.routing_requests += u64::from(stats.num_requests());
        if let Err(e) = result {
            debug!(error = ?e, "routing-table refresh lookup failed");
        }
        if last {
            self.refresh.running = false;
        }
    }

    /// A bootstrap step ended: after the first (the node's own key), the rest of the
    /// bootstrap is cut short; [`EventLoop::refresh_routing`] does that work at a pace.
    pub(super) fn cut_bootstrap_short(&mut self, id: kad::QueryId, step: &kad::ProgressStep) {
        if !step.last
            && let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id)
        {
            query.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn a_round_is_the_own_key_then_the_far_buckets_down_to_the_neighbourhood() {
        let mut r = round(Some(250));
        let mut order = Vec::new();
        while let Some(step) = r.pop() {
            order.push(step);
        }
        assert_eq!(
            order,
            vec![None, Some(255), Some(254), Some(253), Some(252), Some(251)]
        );
        assert_eq!(round(None), vec![Some(255), None]);
        assert_eq!(round(Some(255)), vec![Some(255), None]);
    }

    #[test]
    fn a_lookup_waits_for_its_time_and_for_the_last_one_to_end() {
        let start = Instant::now();
        let interval = std::time::Duration::from_secs(60);
        let mut refresh = Refresh::new(start, interval);
        assert!(!refresh.due(start), "the join's own lookup just ran");
        let later = start + interval;
        assert!(refresh.due(later));
        refresh.running = true;
        assert!(
            !refresh.due(later + interval),
            "the last lookup is still running"
        );
    }

    #[test]
    fn targets_land_in_the_asked_bucket_when_it_is_far() {
        let mut rng = StdRng::seed_from_u64(7);
        let local = random_peer(&mut rng);
        let local_key = kad::KBucketKey::from(local);
        for bucket in [255, 254, 253] {
            let hits = (0..20)
                .filter(|_| {
                    let t = target_in_bucket(&local, bucket, &mut rng);
                    bucket_of(&local_key.distance(&kad::KBucketKey::from(t))) == Some(bucket)
                })
                .count();
            // 1 − (1 − 2^−(j+1))^16 ≥ 0.88 for j ≤ 2.
            assert!(hits >= 14, "bucket {bucket}: {hits}/20");
        }
    }
}
