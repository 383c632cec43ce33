//! Local trust: how much this node trusts one peer, from its own observations only.
//!
//! ```text
//! s_ij = max(0,  m · (w_up · uptime + w_rc · ln(1 + receipts))
//!               − w_fail · ln(1 + failed_calls)
//!               − penalty_points(now))
//! m    = min(1, age / maturity)
//! c_ij = s_ij / Σ_k s_ik
//! ```
//!
//! The maturity factor `m` is the Sybil brake on the observation side: a key that appeared an
//! hour ago earns at most `1/168` of what it would earn after a week (with the default
//! maturity), however many calls it serves. Receipts count logarithmically so that volume buys
//! little. Failed calls are logarithmic too, so together the call terms read
//! `ln(1 + r)·w_rc·m − ln(1 + f)·w_fail`: a log of the success/failure ratio once mature, not a
//! raw count that punishes busy peers for an unavoidable failure rate. Penalty points decay
//! with a half-life, so an honest peer that once sent a malformed message recovers; equivocation
//! is not a penalty here but a collapse (see the crate docs), and never decays.

use crate::observation::PeerObservation;
use crate::report::{TrustEntry, TrustWeight};
use crate::time::{DAY_MS, UnixMillis};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// How much each kind of misbehaviour costs, in trust points (the unit of `s_ij`; a mature
/// peer that is always connected and has served no call scores `uptime_weight` = 1.0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PenaltyWeights {
    /// Points per invalid message (undecodable, bad signature, over a limit). Default 0.25: four
    /// in a day cancel a perfect uptime record. Decays with `penalty_half_life_ms`.
    pub invalid_message: f64,
    /// Points per forged record (a signed record that names another node, or lies about its
    /// owner). Default 1.0. Decays with `penalty_half_life_ms`.
    pub forged_record: f64,
    /// Coefficient of `ln(1 + failed_calls)`. Default 0.5, equal to `receipt_weight`, so a mature
    /// peer with as many failures as successes has no call credit left. Does not decay: it is
    /// weighed against the lifetime receipt count.
    pub failed_call: f64,
}

impl Default for PenaltyWeights {
    fn default() -> Self {
        PenaltyWeights {
            invalid_message: 0.25,
            forged_record: 1.0,
            failed_call: 0.5,
        }
    }
}

/// Parameters of the local trust formula (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrustConfig {
    /// Time known after which a peer's age no longer limits its trust. Default 7 days.
    pub maturity_ms: u64,
    /// Weight of the uptime ratio (time seen connected / time known, in `[0, 1]`). Default 1.0.
    pub uptime_weight: f64,
    /// Weight of `ln(1 + receipts)`. Default 0.5: 100 good calls are worth ~2.3 points, 10 000
    /// are worth ~4.6.
    pub receipt_weight: f64,
    /// Costs of misbehaviour.
    pub penalties: PenaltyWeights,
    /// Half-life of penalty points (invalid messages, forged records). Default 1 day.
    pub penalty_half_life_ms: u64,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            maturity_ms: 7 * DAY_MS,
            uptime_weight: 1.0,
            receipt_weight: 0.5,
            penalties: PenaltyWeights::default(),
            penalty_half_life_ms: DAY_MS,
        }
    }
}

impl TrustConfig {
    /// The maturity factor `m = min(1, age / maturity)` for a peer known for `age_ms`.
    pub fn maturity(&self, age_ms: u64) -> f64 {
        if self.maturity_ms == 0 {
            return 1.0;
        }
        (age_ms as f64 / self.maturity_ms as f64).min(1.0)
    }
}

/// The local trust `s_ij` (unnormalised, `>= 0`, finite) in a peer with these observations.
pub fn local_trust(obs: &PeerObservation, config: &TrustConfig, now: UnixMillis) -> f64 {
    let m = config.maturity(obs.age_ms(now));
    let earned = m
        * (config.uptime_weight * obs.uptime(now)
            + config.receipt_weight * (obs.receipts as f64).ln_1p());
    let lost = config.penalties.failed_call * (obs.failed_calls as f64).ln_1p()
        + obs.penalty_points_at(now, config.penalty_half_life_ms);
    let s = earned - lost;
    if s.is_finite() && s > 0.0 { s } else { 0.0 }
}

/// A node's local trust vector: `s_ij` for every peer it trusts at all, highest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocalTrust {
    /// `(peer, s_ij)` with `s_ij > 0`, sorted by trust descending, then by peer id.
    entries: Vec<(PeerId, f64)>,
    /// `Σ_j s_ij` over all entries.
    total: f64,
}

impl LocalTrust {
    /// Builds the vector from `(peer, s_ij)` pairs; pairs with `s_ij <= 0` or non-finite are
    /// dropped. Sorting makes the result (and so the published report) deterministic.
    pub fn from_trust(pairs: impl IntoIterator<Item = (PeerId, f64)>) -> LocalTrust {
        let mut entries: Vec<(PeerId, f64)> = pairs
            .into_iter()
            .filter(|(_, s)| s.is_finite() && *s > 0.0)
            .collect();
        entries.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total = entries.iter().map(|(_, s)| s).sum();
        LocalTrust { entries, total }
    }

    /// `(peer, s_ij)`, highest trust first.
    pub fn entries(&self) -> &[(PeerId, f64)] {
        &self.entries
    }

    /// `Σ_j s_ij`.
    pub fn total(&self) -> f64 {
        self.total
    }

    /// The normalised trust `c_ij = s_ij / Σ_k s_ik` in `peer` (0 if not trusted).
    pub fn normalised(&self, peer: &PeerId) -> f64 {
        if self.total <= 0.0 {
            return 0.0;
        }
        self.entries
            .iter()
            .find(|(p, _)| p == peer)
            .map_or(0.0, |(_, s)| s / self.total)
    }

    /// The `k` most trusted peers as report entries, each `c_ij` in fixed point.
    ///
    /// Entries are normalised by the sum over *all* trusted peers, not over the `k` kept, so the
    /// report never overstates a peer's share; the mass of the peers left out (and the rounding
    /// remainder) is not reassigned here and goes to the pre-trusted set in EigenTrust. Entries
    /// that round to zero are omitted.
    pub fn top_entries(&self, k: usize) -> Vec<TrustEntry> {
        if self.total <= 0.0 {
            return Vec::new();
        }
        self.entries
            .iter()
            .take(k)
            .filter_map(|(peer, s)| {
                let weight = TrustWeight::from_fraction(s / self.total);
                (weight.get() > 0).then_some(TrustEntry {
                    peer: *peer,
                    trust: weight,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::peer;
    use crate::time::HOUR_MS;

    fn mature_connected() -> PeerObservation {
        let mut obs = PeerObservation::new(UnixMillis(0));
        obs.connect(UnixMillis(0));
        obs
    }

    #[test]
    fn a_newcomer_has_no_trust() {
        let obs = PeerObservation::new(UnixMillis(1_000));
        assert_eq!(
            local_trust(&obs, &TrustConfig::default(), UnixMillis(1_000)),
            0.0
        );
    }

    #[test]
    fn trust_grows_with_age_until_maturity() {
        let config = TrustConfig::default();
        let obs = mature_connected();
        let day1 = local_trust(&obs, &config, UnixMillis(DAY_MS));
        let day3 = local_trust(&obs, &config, UnixMillis(3 * DAY_MS));
        let day7 = local_trust(&obs, &config, UnixMillis(7 * DAY_MS));
        let day30 = local_trust(&obs, &config, UnixMillis(30 * DAY_MS));
        assert!(day1 < day3 && day3 < day7);
        assert!(
            (day7 - 1.0).abs() < 1e-12,
            "always connected, mature: {day7}"
        );
        assert_eq!(day7, day30);
    }

    #[test]
    fn receipts_count_logarithmically_and_failures_cancel_them() {
        let config = TrustConfig::default();
        let now = UnixMillis(8 * DAY_MS);
        let mut obs = mature_connected();
        obs.add_receipts(99, now);
        let with_receipts = local_trust(&obs, &config, now);
        assert!((with_receipts - (1.0 + 0.5 * 100f64.ln())).abs() < 1e-9);
        for _ in 0..99 {
            obs.add_failed_call(now);
        }
        let with_failures = local_trust(&obs, &config, now);
        assert!((with_failures - 1.0).abs() < 1e-9, "{with_failures}");
    }

    #[test]
    fn penalties_subtract_clamp_at_zero_and_decay() {
        let config = TrustConfig::default();
        let now = UnixMillis(8 * DAY_MS);
        let mut obs = mature_connected();
        obs.add_penalty_points(config.penalties.forged_record * 3.0, now, &config);
        assert_eq!(local_trust(&obs, &config, now), 0.0);
        // Three half-lives later, 3.0 points are 0.375.
        let later = now.plus(3 * DAY_MS);
        assert!((local_trust(&obs, &config, later) - 0.625).abs() < 1e-9);
        assert!(local_trust(&obs, &config, later.plus(HOUR_MS * 24 * 30)) > 0.99);
    }

    #[test]
    fn top_entries_normalise_over_everyone_and_sort() {
        let (a, b, c) = (peer(1), peer(2), peer(3));
        let local = LocalTrust::from_trust([(a, 1.0), (b, 3.0), (c, 0.0), (peer(4), f64::NAN)]);
        assert_eq!(local.entries().len(), 2);
        assert_eq!(local.normalised(&b), 0.75);
        let top = local.top_entries(1);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].peer, b);
        assert_eq!(top[0].trust, TrustWeight::from_fraction(0.75));
        assert!(LocalTrust::default().top_entries(8).is_empty());
    }
}
