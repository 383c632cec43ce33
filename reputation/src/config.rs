//! The crate's configuration: one section per part, each with safe defaults.

use crate::admission::AdmissionConfig;
use crate::eigentrust::EigenTrustConfig;
use crate::gossip::GossipScoreConfig;
use crate::observation::ObservationConfig;
use crate::report::ReportConfig;
use crate::trust::TrustConfig;
use serde::{Deserialize, Serialize};

/// Everything [`crate::Reputation`] can be tuned with. The defaults suit a laptop and a
/// network of up to ~10 000 peers; see each section's type for its own defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The observation table's bound and protections.
    pub observations: ObservationConfig,
    /// The local trust formula.
    pub trust: TrustConfig,
    /// Trust report limits and lifetimes.
    pub reports: ReportConfig,
    /// The EigenTrust power iteration.
    pub eigentrust: EigenTrustConfig,
    /// Allowances by standing.
    pub admission: AdmissionConfig,
    /// The gossipsub application score.
    pub gossip: GossipScoreConfig,
    /// Collapsed peers remembered at most. Default 100 000 (~4 MB); the oldest go first.
    pub max_collapsed: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            observations: ObservationConfig::default(),
            trust: TrustConfig::default(),
            reports: ReportConfig::default(),
            eigentrust: EigenTrustConfig::default(),
            admission: AdmissionConfig::default(),
            gossip: GossipScoreConfig::default(),
            max_collapsed: 100_000,
        }
    }
}
