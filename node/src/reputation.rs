//! The node's reputation: first-hand observations from the overlay, trust reports gossiped on
//! [`REPUTATION_TOPIC`], and the EigenTrust scores (`micro-reputation`) that weigh the ledger.
//!
//! One [`micro_reputation::Reputation`] per node, behind a mutex that only short, synchronous
//! operations take; the periodic work (observe connections, sign and publish this node's
//! report, recompute, checkpoint) runs in [`NodeReputation::run`] on a blocking thread. Readers
//! (ledger weights, the CLI) use the latest [`Scores`] snapshot and never wait for a recompute.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use libp2p::identity::Keypair;
use micro_overlay::{GossipMessage, MessageAcceptance, Overlay, PeerId, Role};
pub use micro_reputation::{Explanation, Penalty, Scores};
use micro_reputation::{Reputation, TrustReport, UnixMillis};
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval};
use tracing::{debug, info, warn};

use crate::registry::now_ms;

pub use micro_reputation::{Allowance, Weight};

/// The gossipsub topic of trust reports.
pub const REPUTATION_TOPIC: &str = "micro/reputation/1";

/// The node's reputation knobs.
#[derive(Debug, Clone)]
pub struct ReputationConfig {
    /// The reputation model (observations, trust formula, reports, EigenTrust, admission).
    pub model: micro_reputation::Config,
    /// How often connections are observed, this node's report is published and the scores
    /// are recomputed.
    pub interval: Duration,
}

impl Default for ReputationConfig {
    /// The model's defaults; every 30 s.
    fn default() -> Self {
        Self {
            model: micro_reputation::Config::default(),
            interval: Duration::from_secs(30),
        }
    }
}

/// Why reputation could not start.
#[derive(Debug, thiserror::Error)]
#[error("reputation store: {0}")]
pub struct ReputationError(#[from] micro_reputation::Error);

struct Inner {
    state: Mutex<Reputation>,
    scores: RwLock<Arc<Scores>>,
    overlay: Overlay,
    key: Keypair,
    role: Role,
    config: ReputationConfig,
}

/// The node's reputation. Clone freely.
#[derive(Clone)]
pub struct NodeReputation(Arc<Inner>);

fn now() -> UnixMillis {
    UnixMillis(now_ms())
}

impl NodeReputation {
    /// Opens the reputation kept in `db` for the node with `key`.
    pub fn open(
        db: &sled::Db,
        overlay: Overlay,
        key: Keypair,
        role: Role,
        config: ReputationConfig,
    ) -> Result<Self, ReputationError> {
        let state = Reputation::open(db, config.model.clone(), key.public().to_peer_id())?;
        Ok(Self(Arc::new(Inner {
            scores: RwLock::new(Arc::new(state.scores().clone())),
            state: Mutex::new(state),
            overlay,
            key,
            role,
            config,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Reputation> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `topic` is the reputation topic.
    pub fn owns(topic: &str) -> bool {
        topic == REPUTATION_TOPIC
    }

    /// The latest scores (from the last recompute).
    pub fn scores(&self) -> Arc<Scores> {
        self.0
            .scores
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Why `peer` scores what it does, as `micro-node reputation PEER` shows it.
    pub fn explain(&self, peer: &PeerId) -> Explanation {
        self.state().explain(peer, now())
    }

    /// Records misbehaviour by `peer` seen first hand.
    pub fn penalise(&self, peer: PeerId, penalty: Penalty) {
        if let Err(e) = self.state().penalise(peer, penalty, now()) {
            warn!(%peer, error = %e, "could not record a penalty");
        }
    }

    /// Records calls `peer` served this node with valid receipts.
    pub fn observe_receipt(&self, peer: PeerId, calls: u64) {
        self.state().observe_receipt(peer, calls, now());
    }

    /// What `peer` may call here: free calls and calls per second, by its standing.
    pub fn admission(&self, peer: &PeerId) -> Allowance {
        self.state().admission(peer)
    }

    /// Collapses `peer` after a verified proof of equivocation: weight 0, reports ignored.
    pub fn collapse(&self, peer: PeerId) {
        match self.state().collapse(peer) {
            Ok(true) => warn!(%peer, "peer collapsed: it equivocated"),
            Ok(false) => {}
            Err(e) => warn!(%peer, error = %e, "could not record a collapse"),
        }
    }

    /// Handles a trust report from gossip: verified, kept if newer, forwarded if valid.
    pub async fn on_gossip(&self, message: GossipMessage) {
        let verdict = match TrustReport::decode(&message.data, &self.0.config.model.reports) {
            Err(e) => Err(e),
            // Signed by its issuer: who relayed it does not matter.
            Ok(report) => self.state().accept_report(report, now()),
        };
        let acceptance = match verdict {
            Ok(()) => MessageAcceptance::Accept,
            Err(e) if e.is_invalid() => {
                warn!(peer = %message.propagation_source, error = %e, "invalid trust report");
                self.penalise(message.propagation_source, Penalty::InvalidMessage);
                MessageAcceptance::Reject
            }
            Err(e) => {
                debug!(error = %e, "trust report not taken");
                MessageAcceptance::Ignore
            }
        };
        self.0.overlay.report_message(&message, acceptance).await;
    }

    /// One round: observes who is connected, publishes this node's report, recomputes the
    /// scores with the known super nodes as the pre-trusted seed, and checkpoints.
    pub async fn round(&self) {
        let connected = self.0.overlay.connected_peers().await.unwrap_or_default();
        let supers: Vec<PeerId> = {
            let mut supers: Vec<PeerId> = self
                .0
                .overlay
                .known_nodes()
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|n| n.role == Some(Role::Super))
                .map(|n| n.peer_id)
                .collect();
            if self.0.role == Role::Super {
                supers.push(self.0.overlay.local_peer_id());
            }
            supers.sort();
            supers.dedup();
            supers
        };
        let this = self.clone();
        let report = tokio::task::spawn_blocking(move || {
            let now = now();
            let mut state = this.state();
            let seen: Vec<PeerId> = state.observations().iter().map(|(p, _)| *p).collect();
            for peer in &seen {
                if !connected.iter().any(|c| c.peer_id == *peer) {
                    state.observe_disconnected(*peer, now);
                }
            }
            for peer in &connected {
                state.observe_connected(peer.peer_id, now);
            }
            let report = state.local_report(&this.0.key, now);
            let scores = Arc::new(state.recompute(&supers, now).clone());
            let app_scores: Vec<(PeerId, f64)> = connected
                .iter()
                .map(|c| (c.peer_id, state.app_specific_score(&c.peer_id, now)))
                .collect();
            if let Err(e) = state.checkpoint(now) {
                warn!(error = %e, "could not checkpoint reputation");
            }
            drop(state);
            *this.0.scores.write().unwrap_or_else(|e| e.into_inner()) = scores;
            (report, app_scores)
        })
        .await;
        let report = match report {
            Ok((report, app_scores)) => {
                // Gossipsub weighs peers by this node's view of them too.
                self.0.overlay.set_app_scores(app_scores).await;
                Ok(report)
            }
            Err(e) => Err(e),
        };
        match report {
            // Nobody observed yet (a node's first round): nothing worth a network-wide flood.
            Ok(Ok(report)) if report.entries().is_empty() => {
                debug!("trust report not published: no observations yet");
            }
            Ok(Ok(report)) => {
                if let Err(e) = self
                    .0
                    .overlay
                    .publish(REPUTATION_TOPIC, report.encode())
                    .await
                {
                    debug!(error = %e, "trust report not published (no peer on the topic yet)");
                }
            }
            Ok(Err(e)) => warn!(error = %e, "could not sign this node's trust report"),
            Err(e) => warn!(error = %e, "reputation round failed"),
        }
    }

    /// Runs a [`NodeReputation::round`] every interval until told to stop, then checkpoints.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        info!(interval = ?self.0.config.interval, "reputation running");
        let mut tick = interval(self.0.config.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.round().await,
                _ = stop.changed() => break,
            }
        }
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = this.state().checkpoint(now()) {
                warn!(error = %e, "could not checkpoint reputation at shutdown");
            }
        })
        .await;
    }
}
