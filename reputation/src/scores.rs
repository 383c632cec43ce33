//! The result of one EigenTrust run: a global score per peer, and what follows from it.

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Ledger weight: a score in fixed point, `floor(score × WEIGHT_SCALE)`.
///
/// Integers make "acked weight > 2/3 of total" an exact comparison (`3 × acked > 2 × total`)
/// that every node evaluates the same way from the same scores.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Weight(pub u64);

/// Weight of a score of 1.0 (all the trust in the network). 10¹² leaves 3 × total far below
/// `u64::MAX` and resolves scores down to 10⁻¹².
pub const WEIGHT_SCALE: u64 = 1_000_000_000_000;

/// Global scores: the EigenTrust vector `t`, `Σ t = 1` (or empty when nothing is pre-trusted).
///
/// Peers not listed score 0: unknown, unreachable from the pre-trusted set, or collapsed.
#[derive(Clone, Debug, Default)]
pub struct Scores {
    /// Positive scores with their 1-based rank.
    by_peer: HashMap<PeerId, (f64, usize)>,
    /// Positive scores, highest first (ties by peer id).
    ranked: Vec<(PeerId, f64)>,
    /// The same scores ascending, for percentiles.
    ascending: Vec<f64>,
    pre_trusted: Vec<PeerId>,
    iterations: u32,
    residual: f64,
    damping: f64,
}

impl Scores {
    /// Builds scores from `(peer, t)` pairs (non-positive and non-finite ones are dropped; the
    /// rest are renormalised to sum to 1), with the run's diagnostics.
    pub(crate) fn new(
        pairs: impl IntoIterator<Item = (PeerId, f64)>,
        pre_trusted: Vec<PeerId>,
        iterations: u32,
        residual: f64,
        damping: f64,
    ) -> Scores {
        let mut ranked: Vec<(PeerId, f64)> = pairs
            .into_iter()
            .filter(|(_, t)| t.is_finite() && *t > 0.0)
            .collect();
        let sum: f64 = ranked.iter().map(|(_, t)| t).sum();
        for (_, t) in &mut ranked {
            *t /= sum;
        }
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let by_peer = ranked
            .iter()
            .enumerate()
            .map(|(i, (p, t))| (*p, (*t, i + 1)))
            .collect();
        let ascending = ranked.iter().rev().map(|(_, t)| *t).collect();
        Scores {
            by_peer,
            ranked,
            ascending,
            pre_trusted,
            iterations,
            residual,
            damping,
        }
    }

    /// The global score of `peer` in `[0, 1]`; all scores sum to 1.
    pub fn score(&self, peer: &PeerId) -> f64 {
        self.by_peer.get(peer).map_or(0.0, |(t, _)| *t)
    }

    /// The ledger weight of `peer`.
    pub fn weight(&self, peer: &PeerId) -> Weight {
        Weight(to_weight(self.score(peer)))
    }

    /// The sum of every peer's weight (at most [`WEIGHT_SCALE`]; slightly less from rounding).
    pub fn total(&self) -> Weight {
        Weight(self.ranked.iter().map(|(_, t)| to_weight(*t)).sum())
    }

    /// Position of `peer` by score, 1 for the highest; `None` for a peer scoring 0.
    pub fn rank(&self, peer: &PeerId) -> Option<usize> {
        self.by_peer.get(peer).map(|(_, r)| *r)
    }

    /// Fraction of scored peers that score strictly lower than `peer`, scaled so the lowest
    /// scored peer is at 0 and the highest at 1 (a lone scored peer is at 1). Peers scoring 0
    /// are at 0. Equal scores have equal percentiles, and a higher score never has a lower one.
    pub fn percentile(&self, peer: &PeerId) -> f64 {
        let Some((t, _)) = self.by_peer.get(peer) else {
            return 0.0;
        };
        let n = self.ascending.len();
        if n <= 1 {
            return 1.0;
        }
        let below = self.ascending.partition_point(|x| x < t);
        below as f64 / (n - 1) as f64
    }

    /// The median of the positive scores (0 if none).
    pub fn median(&self) -> f64 {
        let n = self.ascending.len();
        match n {
            0 => 0.0,
            _ if n % 2 == 1 => self.ascending[n / 2],
            _ => (self.ascending[n / 2 - 1] + self.ascending[n / 2]) / 2.0,
        }
    }

    /// The `n` highest-scored peers, highest first.
    pub fn top(&self, n: usize) -> &[(PeerId, f64)] {
        &self.ranked[..n.min(self.ranked.len())]
    }

    /// Every peer with a positive score, highest first.
    pub fn iter(&self) -> impl Iterator<Item = (PeerId, f64)> + '_ {
        self.ranked.iter().copied()
    }

    /// Number of peers with a positive score.
    pub fn len(&self) -> usize {
        self.ranked.len()
    }

    /// Whether no peer has a positive score.
    pub fn is_empty(&self) -> bool {
        self.ranked.is_empty()
    }

    /// The pre-trusted set the scores were seeded with (collapsed ones removed).
    pub fn pre_trusted(&self) -> &[PeerId] {
        &self.pre_trusted
    }

    /// Whether `peer` was pre-trusted in this run.
    pub fn is_pre_trusted(&self, peer: &PeerId) -> bool {
        self.pre_trusted.contains(peer)
    }

    /// Power iterations the run took.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// L1 change of the last iteration (below `epsilon` unless `max_iterations` stopped it).
    pub fn residual(&self) -> f64 {
        self.residual
    }

    /// The damping `a` of the run.
    pub fn damping(&self) -> f64 {
        self.damping
    }
}

fn to_weight(score: f64) -> u64 {
    // Scores are in [0, 1], so the product is in [0, 1e12] and the cast is exact after floor.
    (score.clamp(0.0, 1.0) * WEIGHT_SCALE as f64).floor() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::peer;

    #[test]
    fn ranks_percentiles_and_weights() {
        let scores = Scores::new(
            [
                (peer(1), 0.5),
                (peer(2), 0.25),
                (peer(3), 0.25),
                (peer(4), 0.0),
            ],
            vec![peer(1)],
            3,
            0.0,
            0.15,
        );
        assert_eq!(scores.len(), 3);
        assert_eq!(scores.rank(&peer(1)), Some(1));
        assert_eq!(scores.rank(&peer(4)), None);
        assert_eq!(scores.percentile(&peer(1)), 1.0);
        assert_eq!(scores.percentile(&peer(2)), 0.0);
        assert_eq!(scores.percentile(&peer(3)), 0.0);
        assert_eq!(scores.percentile(&peer(4)), 0.0);
        assert_eq!(scores.median(), 0.25);
        assert_eq!(scores.weight(&peer(1)), Weight(WEIGHT_SCALE / 2));
        assert_eq!(scores.total(), Weight(WEIGHT_SCALE));
        assert_eq!(scores.top(1), &[(peer(1), 0.5)]);
        assert!(scores.is_pre_trusted(&peer(1)));
    }

    #[test]
    fn scores_are_renormalised() {
        let scores = Scores::new([(peer(1), 2.0), (peer(2), 2.0)], vec![], 0, 0.0, 0.15);
        assert_eq!(scores.score(&peer(1)), 0.5);
        assert!(Scores::default().is_empty());
        assert_eq!(Scores::default().median(), 0.0);
    }
}
