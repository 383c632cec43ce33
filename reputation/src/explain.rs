//! Why a peer has the score it has: the numbers behind [`crate::Reputation::explain`].

use crate::admission::Allowance;
use crate::observation::PeerObservation;
use crate::scores::{WEIGHT_SCALE, Weight};
use crate::time::{HOUR_MS, UnixMillis};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Everything this node knows about one peer's reputation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Explanation {
    /// The peer.
    pub peer: PeerId,
    /// Global score (share of all trust, `[0, 1]`).
    pub score: f64,
    /// Ledger weight.
    pub weight: Weight,
    /// Sum of all weights.
    pub total_weight: Weight,
    /// Rank by score (1 = highest), `None` at score 0.
    pub rank: Option<usize>,
    /// Number of peers with a positive score.
    pub ranked_peers: usize,
    /// Percentile among scored peers.
    pub percentile: f64,
    /// Whether the peer was pre-trusted (a super node) in the last recompute.
    pub pre_trusted: bool,
    /// Whether the peer is collapsed.
    pub collapsed: bool,
    /// This node's first-hand view, if it tracks the peer.
    pub local: Option<LocalView>,
    /// Who reports trust in the peer, largest contribution first.
    pub reported_by: Vec<Endorsement>,
    /// What the peer may consume here.
    pub allowance: Allowance,
    /// The gossipsub application score.
    pub app_specific_score: f64,
}

/// This node's first-hand numbers about a peer, and the local trust they make.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LocalView {
    /// The raw observations.
    pub observation: PeerObservation,
    /// Time known.
    pub age_ms: u64,
    /// The maturity factor `min(1, age / maturity)`.
    pub maturity: f64,
    /// Time connected over time known.
    pub uptime: f64,
    /// Penalty points decayed to now.
    pub penalty_points: f64,
    /// `s_ij`.
    pub local_trust: f64,
    /// `c_ij = s_ij / Σ s_ik`.
    pub normalised: f64,
}

/// One issuer's trust in the peer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Endorsement {
    /// The reporting node.
    pub issuer: PeerId,
    /// When its report was issued.
    pub issued_at: UnixMillis,
    /// Its `c_ij` for the peer.
    pub trust: f64,
    /// Its own global score `t_i`.
    pub issuer_score: f64,
    /// What it adds to the peer's score per step: `(1 − a) · t_i · c_ij`.
    pub contribution: f64,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "peer        {}", self.peer)?;
        let rank = self.rank.map_or_else(
            || "-".to_string(),
            |r| format!("{r} of {}", self.ranked_peers),
        );
        writeln!(
            f,
            "score       {:.6e}  rank {rank}  percentile {:.1}%",
            self.score,
            self.percentile * 100.0
        )?;
        writeln!(
            f,
            "weight      {} of {} ({:.4}%)",
            self.weight.0,
            self.total_weight.0,
            self.weight.0 as f64 / WEIGHT_SCALE as f64 * 100.0
        )?;
        let mut flags = Vec::new();
        if self.pre_trusted {
            flags.push("super node (pre-trusted)");
        }
        if self.collapsed {
            flags.push("COLLAPSED (proven equivocation)");
        }
        if !flags.is_empty() {
            writeln!(f, "status      {}", flags.join(", "))?;
        }
        match &self.local {
            Some(l) => {
                let o = &l.observation;
                writeln!(
                    f,
                    "local       known {:.1} h (maturity {:.2}), uptime {:.1}%{}",
                    l.age_ms as f64 / HOUR_MS as f64,
                    l.maturity,
                    l.uptime * 100.0,
                    if o.connected { ", connected" } else { "" }
                )?;
                writeln!(
                    f,
                    "            receipts {}, failed calls {}, invalid messages {}, forged records {}, penalty {:.2}",
                    o.receipts,
                    o.failed_calls,
                    o.invalid_messages,
                    o.forged_records,
                    l.penalty_points
                )?;
                writeln!(
                    f,
                    "            local trust {:.4} (normalised {:.4})",
                    l.local_trust, l.normalised
                )?;
            }
            None => writeln!(f, "local       not observed first hand")?,
        }
        writeln!(f, "reported by {} issuer(s)", self.reported_by.len())?;
        for e in &self.reported_by {
            writeln!(
                f,
                "  {}  trust {:.4}  issuer score {:.3e}  contribution {:.3e}",
                e.issuer, e.trust, e.issuer_score, e.contribution
            )?;
        }
        write!(
            f,
            "allowance   {} free calls/h, {} calls/s{}; gossipsub app score {:.2}",
            self.allowance.free_calls_per_hour,
            self.allowance.max_calls_per_second,
            if self.allowance.newcomer {
                " (newcomer pool)"
            } else {
                ""
            },
            self.app_specific_score
        )
    }
}
