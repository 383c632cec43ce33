//! [`Reputation`]: the one object the node holds, tying observations, reports, EigenTrust,
//! admission and persistence together.

use crate::admission::{Admission, Allowance, Standing};
use crate::collapsed::CollapsedSet;
use crate::config::Config;
use crate::eigentrust::{self, TrustGraph};
use crate::error::Error;
use crate::explain::{Endorsement, Explanation, LocalView};
use crate::gossip;
use crate::observation::{Observations, Penalty};
use crate::report::{ReportError, TrustReport};
use crate::report_store::ReportStore;
use crate::scores::Scores;
use crate::store::Store;
use crate::time::UnixMillis;
use crate::trust::{LocalTrust, local_trust};
use libp2p::PeerId;
use libp2p::identity::Keypair;
use std::collections::HashSet;

/// This node's reputation state: first-hand observations, received trust reports, collapsed
/// peers and the last global scores.
///
/// Not shared by design: one actor owns it and other tasks ask that actor. Every method is
/// synchronous and some block (sled flushes, [`Reputation::recompute`]), so the actor is best
/// run on a thread of its own or in `spawn_blocking`. Observations and reports are kept in memory and written by
/// [`Reputation::checkpoint`] (and, best effort, on drop); a collapse is written at once.
#[derive(Debug)]
pub struct Reputation {
    self_peer: PeerId,
    config: Config,
    store: Store,
    observations: Observations,
    reports: ReportStore,
    collapsed: CollapsedSet,
    admission: Admission,
    scores: Scores,
}

impl Reputation {
    /// Opens the reputation state of node `self_peer` in `db`, restoring what was persisted.
    ///
    /// Stored reports are verified again; unreadable entries are dropped with a warning. The
    /// scores start empty until the first [`Reputation::recompute`].
    ///
    /// # Errors
    /// A sled failure.
    pub fn open(db: &sled::Db, config: Config, self_peer: PeerId) -> Result<Reputation, Error> {
        let store = Store::open(db)?;
        let mut collapsed = CollapsedSet::new(config.max_collapsed);
        for (peer, seq) in store.load_collapsed()? {
            collapsed.restore(peer, seq);
        }
        while collapsed.trim().is_some() {}
        let mut observations = Observations::new(config.observations.clone(), config.trust.clone());
        let mut latest = UnixMillis::ZERO;
        for (peer, obs) in store.load_observations()? {
            if peer == self_peer || collapsed.contains(&peer) {
                observations.discard_stored(peer);
                continue;
            }
            latest = latest.max(obs.last_seen);
            observations.restore(peer, obs);
        }
        observations.trim(latest);
        let mut reports = ReportStore::new(config.reports.clone(), self_peer);
        for (key, bytes) in store.load_reports()? {
            match TrustReport::decode(&bytes, &config.reports) {
                Ok(report)
                    if report.issuer().to_bytes() == key.as_ref()
                        && !collapsed.contains(&report.issuer())
                        && reports.len() < config.reports.max_reports =>
                {
                    reports.restore(report);
                }
                Ok(_) => store.delete_report(&key)?,
                Err(e) => {
                    tracing::warn!(error = %e, "dropping a stored trust report that no longer verifies");
                    store.delete_report(&key)?;
                }
            }
        }
        tracing::info!(
            peers = observations.len(),
            reports = reports.len(),
            collapsed = collapsed.len(),
            "reputation state opened"
        );
        Ok(Reputation {
            self_peer,
            admission: Admission::new(config.admission.clone()),
            config,
            store,
            observations,
            reports,
            collapsed,
            scores: Scores::default(),
        })
    }

    /// This node's peer id.
    pub fn self_peer(&self) -> PeerId {
        self.self_peer
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Records that `peer` connected at `now`. Call it for the first connection to a peer
    /// (libp2p's `num_established == 1`); repeating it is harmless.
    pub fn observe_connected(&mut self, peer: PeerId, now: UnixMillis) {
        if self.tracks(&peer) {
            self.observations.connected(peer, now);
        }
    }

    /// Records that the last connection to `peer` closed at `now` (libp2p's
    /// `remaining_established == 0`).
    pub fn observe_disconnected(&mut self, peer: PeerId, now: UnixMillis) {
        if self.tracks(&peer) {
            self.observations.disconnected(peer, now);
        }
    }

    /// Records `calls` calls served to us by `peer`, each with a receipt the node verified.
    pub fn observe_receipt(&mut self, peer: PeerId, calls: u64, now: UnixMillis) {
        if self.tracks(&peer) {
            self.observations.receipt(peer, calls, now);
        }
    }

    /// Records misbehaviour of `peer`. [`Penalty::Equivocation`] collapses it (see
    /// [`Reputation::collapse`]).
    ///
    /// # Errors
    /// Only for equivocation: writing the collapse failed.
    pub fn penalise(
        &mut self,
        peer: PeerId,
        penalty: Penalty,
        now: UnixMillis,
    ) -> Result<(), Error> {
        match penalty {
            Penalty::Equivocation => self.collapse(peer).map(drop),
            _ if self.tracks(&peer) => {
                self.observations.penalise(peer, penalty, now);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Collapses `peer` after a proof of equivocation was seen: from now on it scores 0, its
    /// reports are dropped and refused, edges to it are ignored, its observations are
    /// forgotten, and it is no longer pre-trusted, even if it is a super node. Permanent, and written to disk at once.
    /// Returns whether it was not collapsed before. Collapsing ourselves is refused (returns
    /// false): a node that equivocated learns it from the ledger, not from here.
    ///
    /// # Errors
    /// Writing the collapse failed (it holds in memory regardless).
    pub fn collapse(&mut self, peer: PeerId) -> Result<bool, Error> {
        if peer == self.self_peer {
            tracing::warn!("refusing to collapse this node itself");
            return Ok(false);
        }
        let Some(collapse) = self.collapsed.insert(peer) else {
            return Ok(false);
        };
        tracing::warn!(%peer, "peer collapsed: proven equivocation");
        self.reports.remove(&peer);
        // Its observations can no longer matter; free the slot.
        self.observations.forget(&peer);
        self.store
            .write_collapse(peer, collapse.seq, collapse.forgotten)?;
        Ok(true)
    }

    /// Whether `peer` is collapsed.
    pub fn is_collapsed(&self, peer: &PeerId) -> bool {
        self.collapsed.contains(peer)
    }

    /// This node's local trust vector at `now` (collapsed peers excluded).
    pub fn local_trust(&self, now: UnixMillis) -> LocalTrust {
        LocalTrust::from_trust(
            self.observations
                .iter()
                .filter(|(p, _)| !self.collapsed.contains(p))
                .map(|(p, o)| (*p, local_trust(o, &self.config.trust, now))),
        )
    }

    /// Signs this node's trust report at `now` (its top-K local trust) for the node to gossip,
    /// and keeps it as this node's own row for [`Reputation::recompute`].
    ///
    /// # Errors
    /// `keypair` is not this node's ([`ReportError::IssuerMismatch`]) or cannot sign.
    pub fn local_report(
        &mut self,
        keypair: &Keypair,
        now: UnixMillis,
    ) -> Result<TrustReport, ReportError> {
        let key_owner = keypair.public().to_peer_id();
        if key_owner != self.self_peer {
            return Err(ReportError::IssuerMismatch {
                issuer: self.self_peer,
                key_owner: Box::new(key_owner),
            });
        }
        let entries = self
            .local_trust(now)
            .top_entries(self.config.reports.max_entries);
        let report = TrustReport::sign(keypair, now, entries, &self.config.reports)?;
        self.reports.set_own(report.clone());
        Ok(report)
    }

    /// Takes a verified report received from the network at `now`.
    ///
    /// # Errors
    /// Why it was not taken; [`ReportError::is_invalid`] says whether to penalise the sender.
    pub fn accept_report(
        &mut self,
        report: TrustReport,
        now: UnixMillis,
    ) -> Result<(), ReportError> {
        if report.issuer() == self.self_peer {
            // Our own report coming back through gossip: we hold the newest already.
            return Err(ReportError::Stale {
                issuer: self.self_peer,
                issued_at: report.issued_at(),
                held: self
                    .reports
                    .get(&self.self_peer)
                    .map_or(UnixMillis::ZERO, TrustReport::issued_at),
            });
        }
        let collapsed = self.collapsed.contains(&report.issuer());
        let scores = &self.scores;
        self.reports
            .accept(report, now, collapsed, |p| scores.score(p))
    }

    /// The reports held.
    pub fn reports(&self) -> &ReportStore {
        &self.reports
    }

    /// The observations held.
    pub fn observations(&self) -> &Observations {
        &self.observations
    }

    /// Recomputes the global scores at `now`, with `supers` as the pre-trusted set.
    ///
    /// Drops expired reports, builds the trust graph from the held reports plus this node's
    /// own row (its last published report; before the first, its live local trust), and runs
    /// EigenTrust. With no usable super node (none given, or all collapsed), this node seeds
    /// the computation itself. Updates the peers the observation table protects (the supers and
    /// the `protect_top` best scored).
    ///
    /// CPU-bound: about 0.1 s for 10 000 issuers × 64 entries in a release build, 0.4 s if the
    /// graph mixed so slowly that all 200 iterations ran (`examples/eigentrust_bench.rs`). Run
    /// it where blocking is fine (the reputation actor's own thread).
    pub fn recompute(&mut self, supers: &[PeerId], now: UnixMillis) -> &Scores {
        let expired = self.reports.expire(now);
        let mut graph = TrustGraph::new();
        for report in self.reports.iter() {
            if self.collapsed.contains(&report.issuer()) {
                continue;
            }
            graph.set_report(report);
        }
        if self.reports.get(&self.self_peer).is_none() {
            let own = self
                .local_trust(now)
                .top_entries(self.config.reports.max_entries);
            graph.set_row(
                self.self_peer,
                own.iter().map(|e| (e.peer, e.trust.as_fraction())),
            );
        }
        let mut seeds: Vec<PeerId> = supers
            .iter()
            .filter(|p| !self.collapsed.contains(p))
            .copied()
            .collect();
        if seeds.is_empty() {
            seeds.push(self.self_peer);
        }
        self.scores = eigentrust::compute(
            &graph,
            &seeds,
            self.collapsed.as_set(),
            &self.config.eigentrust,
        );
        let protected: HashSet<PeerId> = supers
            .iter()
            .copied()
            .chain(
                self.scores
                    .top(self.config.observations.protect_top)
                    .iter()
                    .map(|(p, _)| *p),
            )
            .collect();
        self.observations.set_protected(protected);
        tracing::debug!(
            issuers = graph.issuers(),
            edges = graph.edges(),
            scored = self.scores.len(),
            iterations = self.scores.iterations(),
            residual = self.scores.residual(),
            expired,
            "reputation recomputed"
        );
        &self.scores
    }

    /// The scores of the last [`Reputation::recompute`] (empty before the first).
    pub fn scores(&self) -> &Scores {
        &self.scores
    }

    /// Where `peer` stands for admission.
    pub fn standing(&self, peer: &PeerId) -> Standing {
        Standing::of(&self.scores, peer, self.collapsed.contains(peer))
    }

    /// What `peer` may consume here (feed it to a [`crate::RateLimiter`]).
    pub fn admission(&self, peer: &PeerId) -> Allowance {
        self.admission.allowance(self.standing(peer))
    }

    /// The gossipsub application score of `peer` at `now` (see [`crate::gossip`]).
    pub fn app_specific_score(&self, peer: &PeerId, now: UnixMillis) -> f64 {
        let penalty = self.observations.get(peer).map_or(0.0, |o| {
            o.penalty_points_at(now, self.config.trust.penalty_half_life_ms)
        });
        gossip::app_specific_score(
            self.scores.score(peer),
            self.scores.median(),
            penalty,
            self.collapsed.contains(peer),
            &self.config.gossip,
        )
    }

    /// Everything behind `peer`'s reputation at `now`: its score, this node's observations of
    /// it, and who reports trust in it (from the reports held now, weighed by the last scores).
    pub fn explain(&self, peer: &PeerId, now: UnixMillis) -> Explanation {
        let scores = &self.scores;
        let local = self.observations.get(peer).map(|o| {
            let half_life = self.config.trust.penalty_half_life_ms;
            LocalView {
                observation: o.clone(),
                age_ms: o.age_ms(now),
                maturity: self.config.trust.maturity(o.age_ms(now)),
                uptime: o.uptime(now),
                penalty_points: o.penalty_points_at(now, half_life),
                local_trust: local_trust(o, &self.config.trust, now),
                normalised: self.local_trust(now).normalised(peer),
            }
        });
        let a = scores.damping();
        let mut reported_by: Vec<Endorsement> = self
            .reports
            .iter()
            .filter_map(|r| {
                let trust = r.trust_in(peer).as_fraction();
                (trust > 0.0).then(|| {
                    let issuer_score = scores.score(&r.issuer());
                    Endorsement {
                        issuer: r.issuer(),
                        issued_at: r.issued_at(),
                        trust,
                        issuer_score,
                        contribution: (1.0 - a) * issuer_score * trust,
                    }
                })
            })
            .collect();
        reported_by.sort_by(|x, y| {
            y.contribution
                .total_cmp(&x.contribution)
                .then(y.trust.total_cmp(&x.trust))
                .then(x.issuer.cmp(&y.issuer))
        });
        Explanation {
            peer: *peer,
            score: scores.score(peer),
            weight: scores.weight(peer),
            total_weight: scores.total(),
            rank: scores.rank(peer),
            ranked_peers: scores.len(),
            percentile: scores.percentile(peer),
            pre_trusted: scores.is_pre_trusted(peer),
            collapsed: self.collapsed.contains(peer),
            local,
            reported_by,
            allowance: self.admission(peer),
            app_specific_score: self.app_specific_score(peer, now),
        }
    }

    /// Accrues connected time up to `now`, writes every change since the last checkpoint and
    /// flushes to disk. Blocking (an fsync): call it from a blocking thread, every minute or so
    /// and at shutdown. A crash loses at most what happened since the last checkpoint.
    ///
    /// # Errors
    /// A sled failure; the unwritten changes are kept for the next attempt.
    pub fn checkpoint(&mut self, now: UnixMillis) -> Result<(), Error> {
        self.observations.checkpoint(now);
        self.write_changes()?;
        self.store.flush()
    }

    /// Whether events about `peer` are recorded (not ourselves, not collapsed).
    fn tracks(&self, peer: &PeerId) -> bool {
        *peer != self.self_peer && !self.collapsed.contains(peer)
    }

    fn write_changes(&mut self) -> Result<(), Error> {
        let (changed, removed) = self.observations.take_changes();
        if let Err(e) = self.store.write_observations(&changed, &removed) {
            self.observations.restore_changes(&changed, &removed);
            return Err(e);
        }
        let (changed, removed) = self.reports.take_changes();
        if let Err(e) = self.store.write_reports(&changed, &removed) {
            self.reports.restore_changes(&changed, &removed);
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for Reputation {
    /// Writes what changed since the last checkpoint (no flush: sled flushes on its own).
    /// Connected time since the last event or checkpoint is not accrued: there is no `now`.
    fn drop(&mut self) {
        if let Err(e) = self.write_changes() {
            tracing::warn!(error = %e, "reputation changes lost at shutdown");
        }
    }
}

#[cfg(test)]
mod tests;
