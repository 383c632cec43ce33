//! API tokens: what a caller presents to the HTTP gateway (`Authorization: Bearer <token>`).
//!
//! A token is issued and signed by a node ([`token`]): which services and endpoints it may
//! call ([`rules::Scope`]), until when, and how many ledger tokens its calls may cost. The
//! issuing node's account pays for the calls a token allows, so a token is a delegation of its
//! issuer's spending, capped by the spend limit; for the same reason a refresh is free for the
//! issuer (participation is what earns the right to issue): it replaces a token (even an
//! expired one, up to [`TokensConfig::refresh_window`] after its expiry) with a new one of the
//! same scopes and the remaining spend, and revokes the old one.
//!
//! Revocations are signed by the issuer and gossiped on [`TOKENS_TOPIC`]; every node that
//! trusts the issuer keeps them (bounded) so its gateway refuses the token too. Invalid
//! revocation gossip is rejected and costs its forwarder reputation.
//!
//! [`ApiTokens`] is the node's subsystem: issue, refresh, revoke, list (the control API), the
//! gateway's checks ([`ApiTokens::verify_presented`], [`ApiTokens::admit`],
//! [`ApiTokens::reserve`], [`ApiTokens::settle`]), [`ApiTokens::charge`] for metering, and
//! the gossip handler.

mod auth;
mod config;
mod error;
mod revocation;
pub mod rules;
mod spread;
mod store;
mod token;
mod view;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use libp2p::identity::Keypair;
use micro_overlay::{Overlay, PeerId};
use tracing::{info, warn};

pub use auth::{Admitted, Denied, Grant};
pub use config::{IssueRequest, TokensConfig};
pub use error::TokensError;
pub use revocation::{MAX_REVOCATION_BYTES, Revocation};
pub use rules::{Access, Pattern, Rule, RuleError, Scope};
pub use token::{
    ApiToken, BadTokenId, MAX_PAYLOAD_BYTES, MAX_SCOPES, MAX_TOKEN_CHARS, TOKEN_PREFIX, TokenError,
    TokenId, decode,
};
pub use view::{IssuedToken, TokenStatus, TokenView};

use crate::registry::now_ms;
use crate::reputation::NodeReputation;
use store::{Issued, StoreLimits, TokenStore};

/// The gossipsub topic of token revocations.
pub const TOKENS_TOPIC: &str = "micro/tokens/1";

struct Inner {
    store: TokenStore,
    overlay: Overlay,
    key: Keypair,
    local: PeerId,
    trusted: HashSet<PeerId>,
    reputation: NodeReputation,
    config: TokensConfig,
}

/// The node's API tokens. Clone freely.
#[derive(Clone)]
pub struct ApiTokens(Arc<Inner>);

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ApiTokens {
    /// Opens the token state in `db`. Tokens signed by this node's `key` or by one of
    /// `trusted_issuers` pass the gateway; revocations from them are kept.
    pub fn open(
        db: &sled::Db,
        overlay: Overlay,
        key: Keypair,
        reputation: NodeReputation,
        config: TokensConfig,
        trusted_issuers: &[PeerId],
    ) -> Result<Self, TokensError> {
        let store = TokenStore::open(
            db,
            StoreLimits {
                max_issued: config.max_issued,
                max_meters: config.max_meters,
                max_revocations: config.max_revocations,
            },
        )?;
        let local = key.public().to_peer_id();
        info!(
            revocations = store.revocations(),
            trusted = trusted_issuers.len(),
            "API tokens open"
        );
        Ok(Self(Arc::new(Inner {
            store,
            overlay,
            key,
            local,
            trusted: trusted_issuers.iter().copied().collect(),
            reputation,
            config,
        })))
    }

    /// Whether `topic` is the revocation topic.
    pub fn owns(topic: &str) -> bool {
        topic == TOKENS_TOPIC
    }

    /// The lifetime of a token issued without one.
    pub fn default_ttl(&self) -> Duration {
        self.0.config.default_ttl
    }

    /// Whether tokens of `issuer` are accepted here: this node's own, and the trusted ones.
    pub fn is_trusted(&self, issuer: &PeerId) -> bool {
        *issuer == self.0.local || self.0.trusted.contains(issuer)
    }

    fn check_ttl(&self, ttl: Duration) -> Result<u64, TokensError> {
        if ttl.is_zero() || ttl > self.0.config.max_ttl {
            return Err(TokensError::BadRequest(format!(
                "a token lives more than 0 and at most {:?}; asked {ttl:?}",
                self.0.config.max_ttl
            )));
        }
        Ok(millis(ttl))
    }

    fn view(&self, issued: &Issued, now_ms: u64) -> TokenView {
        let t = &issued.token;
        let status = match (issued.revoked_at_ms, issued.replaced_by) {
            (Some(_), Some(_)) => TokenStatus::Refreshed,
            (Some(_), None) => TokenStatus::Revoked,
            (None, _) if t.is_expired(now_ms) => TokenStatus::Expired,
            (None, _) => TokenStatus::Active,
        };
        TokenView {
            id: t.id,
            issuer: t.issuer,
            scopes: t.scopes.clone(),
            issued_at_ms: t.issued_at_ms,
            expires_at_ms: t.expires_at_ms,
            spend_limit: t.spend_limit,
            spent: self.0.store.spent(&t.id).unwrap_or_else(|e| {
                warn!(token = %t.id, error = %e, "cannot read a token's spend");
                0
            }),
            refreshed_from: t.refreshed_from,
            revoked_at_ms: issued.revoked_at_ms,
            replaced_by: issued.replaced_by,
            status,
        }
    }

    /// Issues a token signed by this node, kept (and flushed) before it is returned.
    pub async fn issue(&self, request: IssueRequest) -> Result<IssuedToken, TokensError> {
        self.issue_at(request, now_ms()).await
    }

    /// [`ApiTokens::issue`] at `now` (Unix ms), for tests that control time.
    pub async fn issue_at(
        &self,
        request: IssueRequest,
        now: u64,
    ) -> Result<IssuedToken, TokensError> {
        let ttl = self.check_ttl(request.ttl)?;
        if request.scopes.is_empty() || request.scopes.len() > MAX_SCOPES {
            return Err(TokensError::BadRequest(format!(
                "a token has 1 to {MAX_SCOPES} scopes, not {}",
                request.scopes.len()
            )));
        }
        let token = ApiToken {
            id: TokenId::random(),
            issuer: self.0.local,
            scopes: request.scopes,
            issued_at_ms: now,
            expires_at_ms: now.saturating_add(ttl),
            spend_limit: request.spend_limit,
            refreshed_from: None,
        };
        let text = token.sign(&self.0.key)?;
        self.0.store.insert_issued(&token, &text)?;
        self.0.store.flush().await?;
        info!(token = %token.id, scopes = token.scopes.len(), expires_at_ms = token.expires_at_ms, "API token issued");
        Ok(self.fresh(token, text, now))
    }

    /// Replaces a token this node issued (expired or not, but not revoked, and expired at
    /// most [`TokensConfig::refresh_window`] ago) by a new one: same scopes, the spend left,
    /// `ttl` (the old token's lifetime when `None`), `refreshed_from` = the old id. The old
    /// token is revoked and the revocation gossiped. Free for the issuer (see the module doc).
    pub async fn refresh(
        &self,
        presented: &str,
        ttl: Option<Duration>,
    ) -> Result<IssuedToken, TokensError> {
        self.refresh_at(presented, ttl, now_ms()).await
    }

    /// [`ApiTokens::refresh`] at `now` (Unix ms), for tests that control time.
    pub async fn refresh_at(
        &self,
        presented: &str,
        ttl: Option<Duration>,
        now: u64,
    ) -> Result<IssuedToken, TokensError> {
        let old = token::decode(presented.trim())?;
        if old.issuer != self.0.local {
            return Err(TokensError::NotIssuedHere {
                id: old.id,
                issuer: Box::new(old.issuer),
            });
        }
        let stored = self
            .0
            .store
            .issued(&old.id)?
            .ok_or(TokensError::Unknown(old.id))?;
        if stored.revoked_at_ms.is_some() {
            return Err(TokensError::Revoked {
                id: old.id,
                replaced_by: stored.replaced_by,
            });
        }
        let window = self.0.config.refresh_window;
        if old.expires_at_ms.saturating_add(millis(window)) < now {
            return Err(TokensError::TooOld { id: old.id, window });
        }
        let ttl = match ttl {
            Some(ttl) => self.check_ttl(ttl)?,
            None => old.ttl_ms().min(millis(self.0.config.max_ttl)),
        };
        let spent = self.0.store.spent(&old.id)?;
        let new = ApiToken {
            id: TokenId::random(),
            issuer: self.0.local,
            scopes: stored.token.scopes.clone(),
            issued_at_ms: now,
            expires_at_ms: now.saturating_add(ttl),
            spend_limit: stored.token.spend_limit.map(|l| l.saturating_sub(spent)),
            refreshed_from: Some(old.id),
        };
        let text = new.sign(&self.0.key)?;
        self.0.store.replace(&old.id, &new, &text, now)?;
        let signed = self.record_revocation(&stored.token, now)?;
        self.0.store.flush().await?;
        info!(old = %old.id, new = %new.id, expires_at_ms = new.expires_at_ms, "API token refreshed");
        self.publish(signed).await;
        Ok(self.fresh(new, text, now))
    }

    /// A token just issued or refreshed, as the caller gets it.
    fn fresh(&self, token: ApiToken, text: String, now: u64) -> IssuedToken {
        let issued = Issued {
            token,
            text: text.clone(),
            revoked_at_ms: None,
            replaced_by: None,
        };
        IssuedToken {
            token: text,
            view: self.view(&issued, now),
        }
    }

    /// Signs and keeps the revocation of `token` (this node's) at `revoked_at_ms`.
    fn record_revocation(
        &self,
        token: &ApiToken,
        revoked_at_ms: u64,
    ) -> Result<Vec<u8>, TokensError> {
        let revocation = Revocation {
            token_id: token.id,
            issuer: self.0.local,
            revoked_at_ms,
            expires_at_ms: token.expires_at_ms,
        };
        let signed = revocation.sign(&self.0.key)?;
        self.0.store.put_revocation(&revocation, &signed)?;
        Ok(signed)
    }

    /// Revokes a token this node issued: recorded and flushed, then the signed revocation is
    /// gossiped. Revoking it again gossips the same revocation again.
    pub async fn revoke(&self, id: &TokenId) -> Result<TokenView, TokensError> {
        let now = now_ms();
        let issued = self
            .0
            .store
            .revoke_issued(id, now)?
            .ok_or(TokensError::Unknown(*id))?;
        let signed = match self.0.store.revocation_bytes(id)? {
            Some(signed) => signed,
            None => self.record_revocation(&issued.token, issued.revoked_at_ms.unwrap_or(now))?,
        };
        self.0.store.flush().await?;
        info!(token = %id, "API token revoked");
        self.publish(signed).await;
        Ok(self.view(&issued, now))
    }

    /// The tokens this node issued (and has not pruned), newest first.
    pub fn list(&self) -> Result<Vec<TokenView>, TokensError> {
        let now = now_ms();
        let mut views: Vec<TokenView> = self
            .0
            .store
            .list_issued()?
            .iter()
            .map(|issued| self.view(issued, now))
            .collect();
        views.sort_by(|a, b| b.issued_at_ms.cmp(&a.issued_at_ms).then(a.id.cmp(&b.id)));
        Ok(views)
    }

    /// Charges `amount` to token `id`'s spend: for metering, once a call's real price is
    /// known. Refused (nothing charged) if it would go over the limit. Works for tokens this
    /// node issued and for tokens its gateway already let through. Returns the total spent.
    pub fn charge(&self, id: &TokenId, amount: u64) -> Result<u64, TokensError> {
        let fresh = self
            .0
            .store
            .issued(id)?
            .map(|issued| store::Meter::fresh(&issued.token));
        Ok(self.0.store.add_spend(id, amount, fresh, true)?.spent)
    }

    /// What token `id` spent through this node so far.
    pub fn spent(&self, id: &TokenId) -> Result<u64, TokensError> {
        self.0.store.spent(id)
    }

    /// Whether this node holds a revocation of `id` (its own or a trusted issuer's).
    pub fn is_revoked(&self, id: &TokenId) -> Result<bool, TokensError> {
        self.0.store.is_revoked(id)
    }
}
