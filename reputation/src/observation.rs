//! What this node has seen of each peer, first hand, and the bounded table that holds it.
//!
//! The node reports events (connected, disconnected, a call receipt, a penalty) with the time
//! they happened; nothing here reads the clock. Observations are the only input of local trust
//! ([`crate::trust`]) and are never taken from other nodes.

use crate::time::UnixMillis;
use crate::trust::{TrustConfig, local_trust};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// A kind of misbehaviour the node observed first hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Penalty {
    /// A message that did not decode, had a bad signature, or broke a limit.
    InvalidMessage,
    /// A signed record that lies (names another owner, forged fields).
    ForgedRecord,
    /// A call to the peer that failed or timed out.
    FailedCall,
    /// Two conflicting signed ledger statements: a proof of equivocation. This is not weighed
    /// like the others: it collapses the peer (see [`crate::Reputation::collapse`]).
    Equivocation,
}

/// The first-hand numbers this node keeps about one peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerObservation {
    /// When this node first saw the peer (its age is measured from here).
    pub first_seen: UnixMillis,
    /// The latest event about the peer, or the latest checkpoint while it was connected.
    pub last_seen: UnixMillis,
    /// Time seen connected up to `last_seen`, in milliseconds.
    pub connected_ms: u64,
    /// Whether the peer is connected now (time since `last_seen` then counts as connected).
    pub connected: bool,
    /// Calls the peer served to us with a valid receipt.
    pub receipts: u64,
    /// Calls to the peer that failed.
    pub failed_calls: u64,
    /// Invalid messages received from the peer (lifetime count, for explanation).
    pub invalid_messages: u64,
    /// Forged records received from the peer (lifetime count, for explanation).
    pub forged_records: u64,
    /// Penalty points as of `penalty_at`; they halve every `penalty_half_life_ms`.
    pub penalty_points: f64,
    /// When `penalty_points` was last updated.
    pub penalty_at: UnixMillis,
}

impl PeerObservation {
    /// A peer first seen at `now`, not connected, with nothing to its name.
    pub fn new(now: UnixMillis) -> PeerObservation {
        PeerObservation {
            first_seen: now,
            last_seen: now,
            connected_ms: 0,
            connected: false,
            receipts: 0,
            failed_calls: 0,
            invalid_messages: 0,
            forged_records: 0,
            penalty_points: 0.0,
            penalty_at: now,
        }
    }

    /// How long this node has known the peer.
    pub fn age_ms(&self, now: UnixMillis) -> u64 {
        now.since(self.first_seen)
    }

    /// Time seen connected up to `now`.
    pub fn connected_ms_at(&self, now: UnixMillis) -> u64 {
        let open = if self.connected {
            now.since(self.last_seen)
        } else {
            0
        };
        self.connected_ms.saturating_add(open)
    }

    /// Uptime ratio in `[0, 1]`: time seen connected over time known (0 for a peer known for
    /// no time at all).
    pub fn uptime(&self, now: UnixMillis) -> f64 {
        let age = self.age_ms(now);
        if age == 0 {
            return 0.0;
        }
        (self.connected_ms_at(now) as f64 / age as f64).clamp(0.0, 1.0)
    }

    /// Penalty points decayed to `now`.
    pub fn penalty_points_at(&self, now: UnixMillis, half_life_ms: u64) -> f64 {
        if self.penalty_points <= 0.0 || !self.penalty_points.is_finite() {
            return 0.0;
        }
        if half_life_ms == 0 {
            return self.penalty_points;
        }
        let half_lives = now.since(self.penalty_at) as f64 / half_life_ms as f64;
        self.penalty_points * 0.5f64.powf(half_lives)
    }

    /// Moves `last_seen` to `now`, adding the time since to `connected_ms` if connected. A
    /// `now` earlier than `last_seen` (clock went back) adds nothing and moves nothing.
    pub(crate) fn advance(&mut self, now: UnixMillis) {
        if now <= self.last_seen {
            return;
        }
        if self.connected {
            self.connected_ms = self.connected_ms.saturating_add(now.since(self.last_seen));
        }
        self.last_seen = now;
    }

    /// Records a connection (idempotent).
    pub(crate) fn connect(&mut self, now: UnixMillis) {
        self.advance(now);
        self.connected = true;
    }

    /// Records the end of the last connection (idempotent).
    pub(crate) fn disconnect(&mut self, now: UnixMillis) {
        self.advance(now);
        self.connected = false;
    }

    /// Adds `calls` served with valid receipts.
    pub(crate) fn add_receipts(&mut self, calls: u64, now: UnixMillis) {
        self.advance(now);
        self.receipts = self.receipts.saturating_add(calls);
    }

    /// Adds one failed call.
    pub(crate) fn add_failed_call(&mut self, now: UnixMillis) {
        self.advance(now);
        self.failed_calls = self.failed_calls.saturating_add(1);
    }

    /// Adds `points` to the decaying penalty.
    pub(crate) fn add_penalty_points(
        &mut self,
        points: f64,
        now: UnixMillis,
        config: &TrustConfig,
    ) {
        self.advance(now);
        let current = self.penalty_points_at(now, config.penalty_half_life_ms);
        let points = if points.is_finite() {
            points.max(0.0)
        } else {
            0.0
        };
        self.penalty_points = current + points;
        self.penalty_at = now.max(self.penalty_at);
    }
}

/// Limits of the observation table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservationConfig {
    /// Peers tracked at most. Default 10 000 (about 1.5 MB in memory and on disk). When a new
    /// peer arrives at the limit, the unprotected peer with the lowest local trust (then the one
    /// seen longest ago) is forgotten; if every peer is protected, the new one is not tracked.
    /// Finding that peer scans the table (well under a millisecond at 10 000).
    pub max_peers: usize,
    /// The best-scored peers (by global score) never evicted, besides the super nodes.
    /// Default 256.
    pub protect_top: usize,
}

impl Default for ObservationConfig {
    fn default() -> Self {
        ObservationConfig {
            max_peers: 10_000,
            protect_top: 256,
        }
    }
}

/// The bounded table of [`PeerObservation`]s, with the set of changes not yet persisted.
///
/// Eviction never removes a protected peer (super nodes and the best-scored, set by
/// [`Observations::set_protected`]). Among the rest it removes the lowest local trust first, so a
/// flood of new keys (trust 0 until they age) only displaces other untrusted newcomers.
#[derive(Debug)]
pub struct Observations {
    peers: HashMap<PeerId, PeerObservation>,
    protected: HashSet<PeerId>,
    dirty: HashSet<PeerId>,
    removed: HashSet<PeerId>,
    config: ObservationConfig,
    trust: TrustConfig,
}

impl Observations {
    /// An empty table.
    pub fn new(config: ObservationConfig, trust: TrustConfig) -> Observations {
        Observations {
            peers: HashMap::new(),
            protected: HashSet::new(),
            dirty: HashSet::new(),
            removed: HashSet::new(),
            config,
            trust,
        }
    }

    /// The observations of `peer`, if tracked.
    pub fn get(&self, peer: &PeerId) -> Option<&PeerObservation> {
        self.peers.get(peer)
    }

    /// Every tracked peer, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &PeerObservation)> {
        self.peers.iter()
    }

    /// Number of tracked peers (at most `max_peers`).
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is tracked.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Replaces the set of peers eviction must never remove.
    pub fn set_protected(&mut self, protected: HashSet<PeerId>) {
        self.protected = protected;
    }

    /// Records that `peer` connected at `now` (call it for the first connection to the peer).
    pub fn connected(&mut self, peer: PeerId, now: UnixMillis) {
        if let Some(obs) = self.entry(peer, now) {
            obs.connect(now);
        }
    }

    /// Records that the last connection to `peer` closed at `now`.
    pub fn disconnected(&mut self, peer: PeerId, now: UnixMillis) {
        // A peer we do not track is not worth tracking for leaving.
        if let Some(obs) = self.peers.get_mut(&peer) {
            obs.disconnect(now);
            self.dirty.insert(peer);
        }
    }

    /// Records `calls` calls served by `peer` with valid receipts.
    pub fn receipt(&mut self, peer: PeerId, calls: u64, now: UnixMillis) {
        if let Some(obs) = self.entry(peer, now) {
            obs.add_receipts(calls, now);
        }
    }

    /// Records a penalty. [`Penalty::Equivocation`] is ignored here: it is a collapse, handled by
    /// the caller.
    pub fn penalise(&mut self, peer: PeerId, penalty: Penalty, now: UnixMillis) {
        let weights = self.trust.penalties.clone();
        let trust = self.trust.clone();
        let Some(obs) = self.entry(peer, now) else {
            return;
        };
        match penalty {
            Penalty::InvalidMessage => {
                obs.invalid_messages = obs.invalid_messages.saturating_add(1);
                obs.add_penalty_points(weights.invalid_message, now, &trust);
            }
            Penalty::ForgedRecord => {
                obs.forged_records = obs.forged_records.saturating_add(1);
                obs.add_penalty_points(weights.forged_record, now, &trust);
            }
            Penalty::FailedCall => obs.add_failed_call(now),
            Penalty::Equivocation => {}
        }
    }

    /// Accrues connected time of every connected peer up to `now`, so that a crash loses at
    /// most the time since the last checkpoint.
    pub fn checkpoint(&mut self, now: UnixMillis) {
        for (peer, obs) in &mut self.peers {
            if obs.connected && now > obs.last_seen {
                obs.advance(now);
                self.dirty.insert(*peer);
            }
        }
    }

    /// Forgets `peer` entirely.
    pub fn forget(&mut self, peer: &PeerId) {
        if self.peers.remove(peer).is_some() {
            self.dirty.remove(peer);
            self.removed.insert(*peer);
        }
    }

    /// Schedules the deletion of a stored observation that was not restored.
    pub(crate) fn discard_stored(&mut self, peer: PeerId) {
        self.removed.insert(peer);
    }

    /// Inserts a loaded observation, as restored from disk (not marked dirty). A peer that was
    /// connected when the node stopped is marked disconnected as of its `last_seen`: the node
    /// cannot know how long the connection outlived its last checkpoint.
    pub(crate) fn restore(&mut self, peer: PeerId, mut obs: PeerObservation) {
        obs.connected = false;
        self.peers.insert(peer, obs);
    }

    /// Evicts (by the usual rule, as of `now`) until the table is within its bound, e.g. after
    /// restoring a table saved with a larger `max_peers`.
    pub(crate) fn trim(&mut self, now: UnixMillis) {
        while self.peers.len() > self.config.max_peers && self.evict_one(now) {}
    }

    /// Takes the changes since the last call: `(changed, removed)`.
    pub(crate) fn take_changes(&mut self) -> (Vec<(PeerId, PeerObservation)>, Vec<PeerId>) {
        let changed = self
            .dirty
            .drain()
            .filter_map(|p| self.peers.get(&p).map(|o| (p, o.clone())))
            .collect();
        let removed = self.removed.drain().collect();
        (changed, removed)
    }

    /// Puts changes back after a failed write, so the next checkpoint retries them.
    pub(crate) fn restore_changes(
        &mut self,
        changed: &[(PeerId, PeerObservation)],
        removed: &[PeerId],
    ) {
        for (peer, _) in changed {
            if self.peers.contains_key(peer) {
                self.dirty.insert(*peer);
            }
        }
        for peer in removed {
            if !self.peers.contains_key(peer) {
                self.removed.insert(*peer);
            }
        }
    }

    /// The entry for `peer`, created (evicting if full) if missing; `None` if the table is full
    /// of protected peers. Marks the peer dirty.
    fn entry(&mut self, peer: PeerId, now: UnixMillis) -> Option<&mut PeerObservation> {
        if !self.peers.contains_key(&peer) {
            if self.peers.len() >= self.config.max_peers && !self.evict_one(now) {
                tracing::debug!(%peer, "observation table full of protected peers; not tracked");
                return None;
            }
            self.peers.insert(peer, PeerObservation::new(now));
            self.removed.remove(&peer);
        }
        self.dirty.insert(peer);
        self.peers.get_mut(&peer)
    }

    /// Removes the least valuable unprotected peer; false if there is none.
    fn evict_one(&mut self, now: UnixMillis) -> bool {
        let victim = self
            .peers
            .iter()
            .filter(|(p, _)| !self.protected.contains(*p))
            .map(|(p, o)| {
                (
                    local_trust(o, &self.trust, now),
                    o.connected,
                    o.last_seen,
                    *p,
                )
            })
            .min_by(|a, b| {
                a.0.total_cmp(&b.0)
                    .then(a.1.cmp(&b.1))
                    .then(a.2.cmp(&b.2))
                    .then(a.3.cmp(&b.3))
            })
            .map(|(_, _, _, p)| p);
        match victim {
            Some(p) => {
                tracing::debug!(peer = %p, "observation table full; forgetting the least trusted peer");
                self.forget(&p);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::peer;
    use crate::time::DAY_MS;

    fn table(max_peers: usize) -> Observations {
        Observations::new(
            ObservationConfig {
                max_peers,
                protect_top: 0,
            },
            TrustConfig::default(),
        )
    }

    #[test]
    fn uptime_counts_connected_time_over_age() {
        let mut obs = table(10);
        let p = peer(1);
        obs.connected(p, UnixMillis(0));
        obs.disconnected(p, UnixMillis(30));
        obs.connected(p, UnixMillis(60));
        // Connected for 30 of the first 60 ms, then again until 100.
        let o = obs.get(&p).expect("tracked");
        assert_eq!(o.connected_ms_at(UnixMillis(100)), 70);
        assert!((o.uptime(UnixMillis(100)) - 0.7).abs() < 1e-12);
        // Reporting a connection twice does not count twice.
        obs.connected(p, UnixMillis(100));
        assert_eq!(obs.get(&p).expect("tracked").connected_ms, 70);
    }

    #[test]
    fn a_clock_going_back_never_adds_time() {
        let mut obs = table(10);
        let p = peer(1);
        obs.connected(p, UnixMillis(100));
        obs.disconnected(p, UnixMillis(50));
        let o = obs.get(&p).expect("tracked");
        assert_eq!(o.connected_ms, 0);
        assert_eq!(o.uptime(UnixMillis(40)), 0.0);
    }

    #[test]
    fn penalties_are_counted_by_kind() {
        let mut obs = table(10);
        let p = peer(1);
        obs.penalise(p, Penalty::InvalidMessage, UnixMillis(0));
        obs.penalise(p, Penalty::ForgedRecord, UnixMillis(0));
        obs.penalise(p, Penalty::FailedCall, UnixMillis(0));
        obs.penalise(p, Penalty::Equivocation, UnixMillis(0));
        let o = obs.get(&p).expect("tracked");
        assert_eq!(
            (o.invalid_messages, o.forged_records, o.failed_calls),
            (1, 1, 1)
        );
        assert!((o.penalty_points - 1.25).abs() < 1e-12);
    }

    #[test]
    fn eviction_removes_the_least_trusted_and_spares_the_protected() {
        let mut obs = table(3);
        let (old, protected, newcomer) = (peer(1), peer(2), peer(3));
        obs.connected(old, UnixMillis(0));
        obs.connected(protected, UnixMillis(DAY_MS));
        obs.connected(newcomer, UnixMillis(2 * DAY_MS));
        obs.set_protected([protected].into_iter().collect());
        // The newcomer has trust 0 and is evicted, not the old peer.
        obs.connected(peer(4), UnixMillis(2 * DAY_MS));
        assert!(obs.get(&newcomer).is_none());
        assert!(obs.get(&old).is_some() && obs.get(&protected).is_some());
        assert_eq!(obs.len(), 3);
        // Full of protected peers: the new one is not tracked.
        obs.set_protected([old, protected, peer(4)].into_iter().collect());
        obs.connected(peer(5), UnixMillis(2 * DAY_MS));
        assert!(obs.get(&peer(5)).is_none());
        let (_, removed) = obs.take_changes();
        assert_eq!(removed, vec![newcomer]);
    }

    #[test]
    fn disconnecting_an_unknown_peer_does_not_track_it() {
        let mut obs = table(3);
        obs.disconnected(peer(1), UnixMillis(5));
        assert!(obs.is_empty());
    }
}
