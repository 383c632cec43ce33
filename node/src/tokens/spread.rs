//! Revocations on the network: published at revoke and refresh, re-published by the upkeep
//! for nodes that were away, and taken in from gossip.

use micro_overlay::{GossipMessage, MessageAcceptance};
use micro_reputation::Penalty;
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval};
use tracing::{debug, info, warn};

use super::revocation::Revocation;
use super::{ApiTokens, TOKENS_TOPIC, TokensError, millis};
use crate::registry::now_ms;

impl ApiTokens {
    pub(super) async fn publish(&self, signed: Vec<u8>) {
        match self.0.overlay.publish(TOKENS_TOPIC, signed).await {
            Ok(peers) => debug!(peers, "revocation gossiped"),
            Err(e) => {
                debug!(error = %e, "revocation not gossiped now (no peer on the topic?); upkeep repeats it")
            }
        }
    }

    /// Handles a revocation from gossip: an invalid one is rejected and penalises the
    /// forwarder; a valid one is forwarded, and kept when its issuer is trusted here; one for
    /// a token already expired is ignored (late, not malicious).
    pub async fn on_gossip(&self, message: GossipMessage) {
        let acceptance = match Revocation::verify(&message.data) {
            Err(e) => {
                warn!(peer = %message.propagation_source, error = %e, "invalid token revocation");
                self.0
                    .reputation
                    .penalise(message.propagation_source, Penalty::InvalidMessage);
                MessageAcceptance::Reject
            }
            Ok(r) if r.expires_at_ms <= now_ms() => {
                debug!(token = %r.token_id, "revocation of an expired token ignored");
                MessageAcceptance::Ignore
            }
            Ok(r) => {
                if self.is_trusted(&r.issuer) {
                    match self.0.store.put_revocation(&r, &message.data) {
                        Ok(true) => {
                            info!(token = %r.token_id, issuer = %r.issuer, "API token revoked by its issuer")
                        }
                        Ok(false) => {}
                        Err(e) => {
                            warn!(token = %r.token_id, error = %e, "could not keep a revocation")
                        }
                    }
                }
                MessageAcceptance::Accept
            }
        };
        self.0.overlay.report_message(&message, acceptance).await;
    }

    /// Prunes expired state and gossips this node's live revocations again, every
    /// [`TokensConfig::upkeep_interval`] until told to stop.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut tick = interval(self.0.config.upkeep_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.upkeep().await,
                _ = stop.changed() => return,
            }
        }
    }

    async fn upkeep(&self) {
        let this = self.clone();
        let work = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            let pruned = this
                .0
                .store
                .prune(now, millis(this.0.config.refresh_window))?;
            let again = this
                .0
                .store
                .own_revocations(now, this.0.config.max_republish)?;
            Ok::<_, TokensError>((pruned, again))
        })
        .await;
        match work {
            Ok(Ok((pruned, again))) => {
                if pruned != Default::default() {
                    info!(?pruned, "expired API token state pruned");
                }
                for signed in again {
                    self.publish(signed).await;
                }
            }
            Ok(Err(e)) => warn!(error = %e, "API token upkeep failed"),
            Err(e) => warn!(error = %e, "API token upkeep task failed"),
        }
    }
}
