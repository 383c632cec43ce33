//! The bounded set of trust reports this node holds: the newest per issuer.

use crate::report::{ReportConfig, ReportError, TrustReport};
use crate::time::UnixMillis;
use libp2p::PeerId;
use std::collections::{HashMap, HashSet};

/// Newest valid report per issuer, at most [`ReportConfig::max_reports`] of them besides this
/// node's own, with the changes not yet persisted.
#[derive(Debug)]
pub struct ReportStore {
    reports: HashMap<PeerId, TrustReport>,
    dirty: HashSet<PeerId>,
    removed: HashSet<PeerId>,
    config: ReportConfig,
    /// Our own issuer id: its report is never evicted for room.
    own: PeerId,
}

impl ReportStore {
    /// An empty store for a node whose own id is `own`.
    pub fn new(config: ReportConfig, own: PeerId) -> ReportStore {
        ReportStore {
            reports: HashMap::new(),
            dirty: HashSet::new(),
            removed: HashSet::new(),
            config,
            own,
        }
    }

    /// Offers a verified report received at `now`.
    ///
    /// `collapsed` says whether the issuer is collapsed; `score` gives an issuer's current global
    /// score, used to decide who keeps a place when the store is full.
    ///
    /// # Errors
    /// [`ReportError::CollapsedIssuer`], [`ReportError::TooManyEntries`] (more than this node's
    /// K), [`ReportError::FromTheFuture`], [`ReportError::Expired`], [`ReportError::Stale`] (not
    /// newer than the held report: old or replayed) or [`ReportError::StoreFull`].
    pub fn accept(
        &mut self,
        report: TrustReport,
        now: UnixMillis,
        collapsed: bool,
        score: impl Fn(&PeerId) -> f64,
    ) -> Result<(), ReportError> {
        let issuer = report.issuer();
        let issued_at = report.issued_at();
        if collapsed {
            return Err(ReportError::CollapsedIssuer { issuer });
        }
        if report.entries().len() > self.config.max_entries {
            return Err(ReportError::TooManyEntries {
                count: report.entries().len(),
                max: self.config.max_entries,
            });
        }
        if issued_at > now.plus(self.config.max_clock_skew_ms) {
            return Err(ReportError::FromTheFuture {
                issued_at,
                now,
                max_skew_ms: self.config.max_clock_skew_ms,
            });
        }
        if now.since(issued_at) > self.config.ttl_ms {
            return Err(ReportError::Expired {
                issued_at,
                now,
                ttl_ms: self.config.ttl_ms,
            });
        }
        if let Some(held) = self.reports.get(&issuer) {
            if held.issued_at() >= issued_at {
                return Err(ReportError::Stale {
                    issuer,
                    issued_at,
                    held: held.issued_at(),
                });
            }
        } else if self.reports.len() >= self.config.max_reports && issuer != self.own {
            let newcomer = score(&issuer);
            let victim = self
                .reports
                .values()
                .filter(|r| r.issuer() != self.own)
                .map(|r| (score(&r.issuer()), r.issued_at(), r.issuer()))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            match victim {
                Some((lowest, _, victim)) if newcomer > lowest => self.remove(&victim),
                _ => {
                    return Err(ReportError::StoreFull {
                        issuer,
                        max: self.config.max_reports,
                    });
                }
            }
        }
        self.dirty.insert(issuer);
        self.removed.remove(&issuer);
        self.reports.insert(issuer, report);
        Ok(())
    }

    /// Holds this node's own report, replacing the previous one unconditionally (it is never
    /// refused for room, so the store can hold `max_reports + 1`).
    pub(crate) fn set_own(&mut self, report: TrustReport) {
        let issuer = report.issuer();
        self.dirty.insert(issuer);
        self.removed.remove(&issuer);
        self.reports.insert(issuer, report);
    }

    /// Drops every report older than the lifetime at `now`; returns how many.
    pub fn expire(&mut self, now: UnixMillis) -> usize {
        let expired: Vec<PeerId> = self
            .reports
            .values()
            .filter(|r| now.since(r.issued_at()) > self.config.ttl_ms)
            .map(|r| r.issuer())
            .collect();
        for issuer in &expired {
            self.remove(issuer);
        }
        expired.len()
    }

    /// Drops the report of `issuer`, if held.
    pub fn remove(&mut self, issuer: &PeerId) {
        if self.reports.remove(issuer).is_some() {
            self.dirty.remove(issuer);
            self.removed.insert(*issuer);
        }
    }

    /// The report held from `issuer`.
    pub fn get(&self, issuer: &PeerId) -> Option<&TrustReport> {
        self.reports.get(issuer)
    }

    /// Every held report, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &TrustReport> {
        self.reports.values()
    }

    /// Number of held reports.
    pub fn len(&self) -> usize {
        self.reports.len()
    }

    /// Whether no report is held.
    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    /// Inserts a report read back from disk (not marked dirty; checks done by the caller).
    pub(crate) fn restore(&mut self, report: TrustReport) {
        self.reports.insert(report.issuer(), report);
    }

    /// Takes the changes since the last call: `(changed, removed)`.
    pub(crate) fn take_changes(&mut self) -> (Vec<(PeerId, Vec<u8>)>, Vec<PeerId>) {
        let changed = self
            .dirty
            .drain()
            .filter_map(|p| self.reports.get(&p).map(|r| (p, r.encode())))
            .collect();
        (changed, self.removed.drain().collect())
    }

    /// Puts changes back after a failed write.
    pub(crate) fn restore_changes(&mut self, changed: &[(PeerId, Vec<u8>)], removed: &[PeerId]) {
        self.dirty.extend(
            changed
                .iter()
                .map(|(p, _)| *p)
                .filter(|p| self.reports.contains_key(p)),
        );
        self.removed.extend(
            removed
                .iter()
                .copied()
                .filter(|p| !self.reports.contains_key(p)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{TrustEntry, TrustWeight};
    use crate::test_support::{keypair, peer};
    use crate::time::HOUR_MS;

    fn report(issuer: u32, at: u64) -> TrustReport {
        let entries = vec![TrustEntry {
            peer: peer(issuer + 1000),
            trust: TrustWeight::ONE,
        }];
        TrustReport::sign(
            &keypair(issuer),
            UnixMillis(at),
            entries,
            &ReportConfig::default(),
        )
        .expect("valid")
    }

    fn store(max_reports: usize) -> ReportStore {
        let config = ReportConfig {
            max_reports,
            ..ReportConfig::default()
        };
        ReportStore::new(config, peer(0))
    }

    #[test]
    fn newer_replaces_older_and_replays_are_refused() {
        let mut store = store(10);
        let now = UnixMillis(HOUR_MS);
        store
            .accept(report(1, 100), now, false, |_| 0.0)
            .expect("first");
        store
            .accept(report(1, 200), now, false, |_| 0.0)
            .expect("newer");
        let err = store
            .accept(report(1, 100), now, false, |_| 0.0)
            .unwrap_err();
        assert!(matches!(err, ReportError::Stale { .. }));
        let err = store
            .accept(report(1, 200), now, false, |_| 0.0)
            .unwrap_err();
        assert!(
            matches!(err, ReportError::Stale { .. }),
            "same report replayed"
        );
        assert!(!err.is_invalid());
        assert_eq!(
            store.get(&peer(1)).map(|r| r.issued_at()),
            Some(UnixMillis(200))
        );
    }

    #[test]
    fn time_rules_and_collapse() {
        let mut store = store(10);
        let now = UnixMillis(10 * HOUR_MS);
        let future = report(1, now.plus(2 * 60_000).as_millis());
        assert!(matches!(
            store.accept(future, now, false, |_| 0.0),
            Err(ReportError::FromTheFuture { .. })
        ));
        assert!(matches!(
            store.accept(report(1, HOUR_MS), now, false, |_| 0.0),
            Err(ReportError::Expired { .. })
        ));
        assert!(matches!(
            store.accept(report(1, now.as_millis()), now, true, |_| 0.0),
            Err(ReportError::CollapsedIssuer { .. })
        ));
        store
            .accept(report(2, now.as_millis()), now, false, |_| 0.0)
            .expect("fresh");
        assert_eq!(store.expire(now.plus(7 * HOUR_MS)), 1);
        assert!(store.is_empty());
    }

    #[test]
    fn when_full_a_higher_scored_issuer_replaces_the_lowest() {
        let mut store = store(2);
        let now = UnixMillis(HOUR_MS);
        let score = |p: &PeerId| {
            [(peer(1), 0.1), (peer(2), 0.3), (peer(3), 0.2)]
                .iter()
                .find(|(q, _)| q == p)
                .map_or(0.0, |(_, s)| *s)
        };
        store.accept(report(1, 1), now, false, score).expect("room");
        store.accept(report(2, 1), now, false, score).expect("room");
        store
            .accept(report(3, 1), now, false, score)
            .expect("beats peer 1");
        assert!(store.get(&peer(1)).is_none());
        assert!(matches!(
            store.accept(report(4, 1), now, false, score),
            Err(ReportError::StoreFull { .. })
        ));
        // Our own report always finds room.
        store
            .accept(report(0, 1), now, false, score)
            .expect("own report");
        assert_eq!(store.len(), 3);
        let (changed, removed) = store.take_changes();
        assert_eq!(changed.len(), 3);
        assert_eq!(removed, vec![peer(1)]);
    }
}
