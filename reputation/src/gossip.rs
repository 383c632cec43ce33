//! The application-specific score for libp2p gossipsub.
//!
//! ```text
//! app(peer) = collapsed_score                                          if collapsed
//!           = min(max_score, scale · ln(1 + t/median)) − penalty_scale · penalty_points
//! ```
//!
//! where `t` is the global score, `median` the median positive score and `penalty_points` this
//! node's decayed first-hand penalty points ([`crate::PeerObservation::penalty_points_at`]).
//! Unknown peers get 0 (neutral: a newcomer must be able to join meshes); any trusted peer gets
//! a bonus that grows with its score relative to the median (`scale · ln 2 ≈ 2.1` at the
//! median, about 7.2 at ten times the median, capped); misbehaviour seen first hand is negative
//! at once, before it has travelled through trust reports; a collapsed peer is far below any
//! graylist threshold.
//!
//! To plug it in, set `PeerScoreParams::app_specific_weight = 1.0`, call
//! `Behaviour::set_application_score(peer, app_specific_score)` after every recompute (and
//! after a penalty), and pick thresholds against this scale, for example
//! `gossip_threshold = -10`, `publish_threshold = -50`, `graylist_threshold = -80` (one forged
//! record, 10 points, stops gossip to the peer until it decays; eight stop everything).

use serde::{Deserialize, Serialize};

/// Parameters of the gossipsub application score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GossipScoreConfig {
    /// Multiplier of `ln(1 + t/median)`. Default 3.0.
    pub scale: f64,
    /// Largest bonus. Default 10.0.
    pub max_score: f64,
    /// Multiplier of the decayed penalty points. Default 10.0.
    pub penalty_scale: f64,
    /// Score of a collapsed peer. Default -1 000.
    pub collapsed_score: f64,
}

impl Default for GossipScoreConfig {
    fn default() -> Self {
        GossipScoreConfig {
            scale: 3.0,
            max_score: 10.0,
            penalty_scale: 10.0,
            collapsed_score: -1_000.0,
        }
    }
}

/// The gossipsub application score of a peer with global score `score`, given the `median`
/// positive score, its decayed first-hand `penalty_points` and whether it is `collapsed`.
/// Never below `collapsed_score` and never above `max_score`.
pub fn app_specific_score(
    score: f64,
    median: f64,
    penalty_points: f64,
    collapsed: bool,
    config: &GossipScoreConfig,
) -> f64 {
    if collapsed {
        return config.collapsed_score;
    }
    let bonus = if score > 0.0 && median > 0.0 {
        (config.scale * (score / median).ln_1p()).min(config.max_score)
    } else {
        0.0
    };
    let malus = config.penalty_scale * penalty_points.max(0.0);
    let app = bonus - malus;
    if app.is_nan() {
        0.0
    } else {
        app.max(config.collapsed_score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_of_the_score() {
        let c = GossipScoreConfig::default();
        assert_eq!(app_specific_score(0.0, 0.01, 0.0, false, &c), 0.0);
        let at_median = app_specific_score(0.01, 0.01, 0.0, false, &c);
        assert!((at_median - 3.0 * 2f64.ln()).abs() < 1e-12);
        assert!(app_specific_score(0.02, 0.01, 0.0, false, &c) > at_median);
        assert_eq!(app_specific_score(1.0, 1e-9, 0.0, false, &c), 10.0);
        assert!(app_specific_score(0.01, 0.01, 1.0, false, &c) < 0.0);
        assert_eq!(app_specific_score(1.0, 0.01, 0.0, true, &c), -1_000.0);
        assert_eq!(
            app_specific_score(0.0, 0.0, f64::INFINITY, false, &c),
            -1_000.0
        );
    }
}
