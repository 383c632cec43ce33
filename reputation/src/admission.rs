//! Admission: how many calls a peer may make, free and per second, given its reputation.
//!
//! ```text
//! v(p) = exp( ln(1 + newcomer) + p · (ln(1 + cap) − ln(1 + newcomer)) ) − 1     (floored)
//! ```
//!
//! for each of the two limits, where `p` is the peer's percentile among scored peers
//! ([`crate::Scores::percentile`]): geometric growth from the newcomer allowance at `p = 0` to
//! the cap at `p = 1`, so the middle of the network gets the geometric mean (1 000 free calls an
//! hour with the defaults) and only the best-trusted get the cap. Unknown and zero-score peers
//! get the newcomer allowance and draw their free calls from a shared pool too (see
//! [`crate::RateLimiter`]); collapsed peers get nothing.

use crate::scores::Scores;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// What a peer may consume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    /// Calls per hour served without payment (over that, answer 402 Payment Required unless the
    /// call pays). Also the burst: a peer that was idle for an hour may make them all at once.
    pub free_calls_per_hour: u32,
    /// Calls per second at most, paid or free (over that, answer 429 Too Many Requests). The
    /// burst is one second's worth.
    pub max_calls_per_second: u32,
    /// Whether the peer has no reputation: its free calls also draw from the pool all such
    /// peers share, so minting keys does not mint free calls.
    pub newcomer: bool,
}

/// Where a peer stands, for admission.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Standing {
    /// Proven equivocator: no calls at all.
    Collapsed,
    /// Unknown, or scoring 0 (unreachable from the super nodes).
    Newcomer,
    /// Scoring above 0, at this percentile in `[0, 1]`.
    Scored {
        /// [`Scores::percentile`] of the peer.
        percentile: f64,
    },
}

impl Standing {
    /// The standing of `peer` in `scores`.
    pub fn of(scores: &Scores, peer: &PeerId, collapsed: bool) -> Standing {
        if collapsed {
            Standing::Collapsed
        } else if scores.score(peer) > 0.0 {
            Standing::Scored {
                percentile: scores.percentile(peer),
            }
        } else {
            Standing::Newcomer
        }
    }
}

/// Limits of the admission policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdmissionConfig {
    /// Free calls per hour of a newcomer. Default 100.
    pub newcomer_free_calls_per_hour: u32,
    /// Calls per second of a newcomer. Default 10.
    pub newcomer_calls_per_second: u32,
    /// Free calls per hour of the best-trusted peer. Default 10 000.
    pub max_free_calls_per_hour: u32,
    /// Calls per second of the best-trusted peer. Default 200.
    pub max_calls_per_second: u32,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            newcomer_free_calls_per_hour: 100,
            newcomer_calls_per_second: 10,
            max_free_calls_per_hour: 10_000,
            max_calls_per_second: 200,
        }
    }
}

/// The admission policy: standing to allowance.
#[derive(Clone, Debug, Default)]
pub struct Admission {
    config: AdmissionConfig,
}

impl Admission {
    /// A policy with these limits. A cap below the newcomer value is raised to it, so the
    /// allowance never shrinks as reputation grows.
    pub fn new(config: AdmissionConfig) -> Admission {
        Admission { config }
    }

    /// The allowance of a peer with this standing. Monotone: a higher percentile never gets
    /// less of either limit, a scored peer never less than a newcomer, a collapsed one nothing.
    pub fn allowance(&self, standing: Standing) -> Allowance {
        let c = &self.config;
        let p = match standing {
            Standing::Collapsed => {
                return Allowance {
                    free_calls_per_hour: 0,
                    max_calls_per_second: 0,
                    newcomer: false,
                };
            }
            Standing::Newcomer => 0.0,
            Standing::Scored { percentile } => percentile,
        };
        Allowance {
            free_calls_per_hour: grow(c.newcomer_free_calls_per_hour, c.max_free_calls_per_hour, p),
            max_calls_per_second: grow(c.newcomer_calls_per_second, c.max_calls_per_second, p),
            newcomer: matches!(standing, Standing::Newcomer),
        }
    }
}

/// Geometric interpolation from `low` (p = 0) to `high` (p = 1), in `ln(1 + v)` so 0 is allowed.
fn grow(low: u32, high: u32, p: f64) -> u32 {
    let high = high.max(low);
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
    let (l, h) = (f64::from(low).ln_1p(), f64::from(high).ln_1p());
    let v = (l + p * (h - l)).exp_m1().floor();
    // Clamping keeps the result in [low, high] whatever the rounding of exp/ln.
    (v.max(f64::from(low)).min(f64::from(high))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::node;
    use proptest::prelude::*;

    #[test]
    fn the_ends_are_the_configured_limits() {
        let admission = Admission::default();
        let newcomer = admission.allowance(Standing::Newcomer);
        assert_eq!(
            newcomer,
            Allowance {
                free_calls_per_hour: 100,
                max_calls_per_second: 10,
                newcomer: true
            }
        );
        let best = admission.allowance(Standing::Scored { percentile: 1.0 });
        assert_eq!(
            (best.free_calls_per_hour, best.max_calls_per_second),
            (10_000, 200)
        );
        let middle = admission.allowance(Standing::Scored { percentile: 0.5 });
        assert!(
            (990..=1_010).contains(&middle.free_calls_per_hour),
            "{middle:?}"
        );
        let collapsed = admission.allowance(Standing::Collapsed);
        assert_eq!(
            (
                collapsed.free_calls_per_hour,
                collapsed.max_calls_per_second
            ),
            (0, 0)
        );
    }

    #[test]
    fn standing_follows_scores() {
        let scores = Scores::new([(node(1), 0.7), (node(2), 0.3)], vec![], 1, 0.0, 0.15);
        assert_eq!(Standing::of(&scores, &node(9), false), Standing::Newcomer);
        assert_eq!(Standing::of(&scores, &node(1), true), Standing::Collapsed);
        assert_eq!(
            Standing::of(&scores, &node(1), false),
            Standing::Scored { percentile: 1.0 }
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Allowance never decreases with percentile, and every limit stays in its range.
        #[test]
        fn allowance_is_monotone_in_percentile(
            a in 0.0f64..=1.0,
            b in 0.0f64..=1.0,
            newcomer_free in 0u32..1_000,
            newcomer_rate in 0u32..100,
            max_free in 0u32..1_000_000,
            max_rate in 0u32..10_000,
        ) {
            let admission = Admission::new(AdmissionConfig {
                newcomer_free_calls_per_hour: newcomer_free,
                newcomer_calls_per_second: newcomer_rate,
                max_free_calls_per_hour: max_free,
                max_calls_per_second: max_rate,
            });
            let (lo, hi) = (a.min(b), a.max(b));
            let low = admission.allowance(Standing::Scored { percentile: lo });
            let high = admission.allowance(Standing::Scored { percentile: hi });
            let newcomer = admission.allowance(Standing::Newcomer);
            let collapsed = admission.allowance(Standing::Collapsed);
            for (x, y) in [(collapsed, newcomer), (newcomer, low), (low, high)] {
                prop_assert!(x.free_calls_per_hour <= y.free_calls_per_hour);
                prop_assert!(x.max_calls_per_second <= y.max_calls_per_second);
            }
            prop_assert!(high.free_calls_per_hour <= max_free.max(newcomer_free));
            prop_assert!(high.max_calls_per_second <= max_rate.max(newcomer_rate));
        }

        /// Through real scores: a higher score never gets a smaller allowance.
        #[test]
        fn allowance_is_monotone_in_score(raw in proptest::collection::vec(0.0f64..1.0, 1..40)) {
            let pairs: Vec<(PeerId, f64)> =
                raw.iter().enumerate().map(|(i, s)| (node(i as u32), *s)).collect();
            let scores = Scores::new(pairs.clone(), vec![], 1, 0.0, 0.15);
            let admission = Admission::default();
            let allowance = |p: &PeerId| admission.allowance(Standing::of(&scores, p, false));
            for (p, _) in &pairs {
                for (q, _) in &pairs {
                    if scores.score(p) <= scores.score(q) {
                        let (x, y) = (allowance(p), allowance(q));
                        prop_assert!(x.free_calls_per_hour <= y.free_calls_per_hour);
                        prop_assert!(x.max_calls_per_second <= y.max_calls_per_second);
                    }
                }
            }
        }
    }
}
