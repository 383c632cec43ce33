//! The gateway's checks of a presented token, in the order a caller meets them: present,
//! genuine and from a trusted issuer, not revoked, not expired (401); allowed by the rules
//! (403); within its spend limit (402). Each refusal is a [`Denied`] with its HTTP status.

use micro_overlay::PeerId;
use tracing::warn;

use super::ApiTokens;
use super::error::TokensError;
use super::rules::{self, Rule};
use super::store::Meter;
use super::token::{self, ApiToken, TokenError, TokenId};

/// Why the gateway refuses a call. [`Denied::status`] is the HTTP status; the message is the
/// detail the caller reads (it never repeats the token).
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    #[error(
        "missing API token: send `Authorization: Bearer <token>` (get one with `micro-node token issue`)"
    )]
    Missing,
    /// It does not decode, or its signature does not match its issuer.
    #[error("forged or malformed API token: {0}")]
    Forged(TokenError),
    /// Genuine, but from a node this gateway does not trust.
    #[error(
        "forged API token for this gateway: {id} was issued by {issuer}, which it does not trust"
    )]
    Untrusted {
        /// The token.
        id: TokenId,
        /// Its issuer.
        issuer: Box<PeerId>,
    },
    /// Its issuer revoked it (or refreshed it into another).
    #[error("API token {0} is revoked")]
    Revoked(TokenId),
    /// Past its expiry.
    #[error("API token {id} expired; refresh it with `micro-node token refresh <token>`")]
    Expired {
        /// The token.
        id: TokenId,
    },
    /// Issued further in the future than the clock skew allows.
    #[error(
        "API token {0} is not valid yet: it was issued in the future (check the issuer's clock)"
    )]
    NotYetValid(TokenId),
    /// The rules do not allow this endpoint for this token.
    #[error("API token {id} does not allow {service}/{endpoint}")]
    OutOfScope {
        /// The token.
        id: TokenId,
        /// The service called.
        service: String,
        /// The endpoint called.
        endpoint: String,
    },
    /// The call could take the token over its spend limit.
    #[error(
        "API token {id} may spend {limit} in all; it spent {spent}, and this call may cost {price}"
    )]
    SpendLimit {
        /// The token.
        id: TokenId,
        /// Its limit.
        limit: u64,
        /// Spent so far through this node.
        spent: u64,
        /// What the call was priced at.
        price: u64,
    },
    /// The check itself failed (the store).
    #[error("cannot check the API token: {0}")]
    Internal(TokensError),
}

impl Denied {
    /// The HTTP status of this refusal.
    pub fn status(&self) -> u16 {
        match self {
            Self::Missing
            | Self::Forged(_)
            | Self::Untrusted { .. }
            | Self::Revoked(_)
            | Self::Expired { .. }
            | Self::NotYetValid(_) => 401,
            Self::OutOfScope { .. } => 403,
            Self::SpendLimit { .. } => 402,
            Self::Internal(e) => e.status(),
        }
    }
}

/// A token whose scope allows the call about to be made.
#[derive(Debug)]
pub struct Admitted(ApiToken);

impl Admitted {
    /// The token's id.
    pub fn id(&self) -> TokenId {
        self.0.id
    }
}

/// A call let through, with what it reserved against the token's spend limit; hand it back
/// to [`ApiTokens::settle`] once the call is over. Dropped unsettled (the caller went away
/// and the call was cancelled), it refunds the reservation.
#[must_use = "a grant refunds its reservation when dropped; settle it with the call's cost"]
pub struct Grant {
    tokens: ApiTokens,
    token: ApiToken,
    reserved: u64,
    settled: bool,
}

impl Grant {
    /// The token's id.
    pub fn id(&self) -> TokenId {
        self.token.id
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("token", &self.token.id)
            .field("reserved", &self.reserved)
            .finish_non_exhaustive()
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        if !self.settled {
            self.settled = true;
            self.tokens
                .settle_reservation(&self.token, self.reserved, None);
        }
    }
}

impl ApiTokens {
    /// Checks a presented token (the text after `Bearer `): present, genuine, from this node
    /// or a trusted issuer, not revoked, not expired at `now_ms`.
    pub fn verify_presented(
        &self,
        presented: Option<&str>,
        now_ms: u64,
    ) -> Result<ApiToken, Denied> {
        let text = presented.map(str::trim).filter(|t| !t.is_empty());
        let token = token::decode(text.ok_or(Denied::Missing)?).map_err(Denied::Forged)?;
        if !self.is_trusted(&token.issuer) {
            return Err(Denied::Untrusted {
                id: token.id,
                issuer: Box::new(token.issuer),
            });
        }
        if self
            .0
            .store
            .is_revoked(&token.id)
            .map_err(Denied::Internal)?
        {
            return Err(Denied::Revoked(token.id));
        }
        if token.is_expired(now_ms) {
            return Err(Denied::Expired { id: token.id });
        }
        let skew = u64::try_from(self.0.config.max_clock_skew.as_millis()).unwrap_or(u64::MAX);
        if token.issued_at_ms > now_ms.saturating_add(skew) {
            return Err(Denied::NotYetValid(token.id));
        }
        Ok(token)
    }

    /// Whether the token's scopes (allow rules at priority 0) and the gateway's `rules` allow
    /// `endpoint` of `service` (see [`rules::decide`]).
    pub fn admit(
        &self,
        token: ApiToken,
        service: &str,
        endpoint: &str,
        rules: &[Rule],
    ) -> Result<Admitted, Denied> {
        let scopes: Vec<Rule> = token.scopes.iter().cloned().map(Rule::allow).collect();
        if rules::allows(scopes.iter().chain(rules), service, endpoint) {
            Ok(Admitted(token))
        } else {
            Err(Denied::OutOfScope {
                id: token.id,
                service: service.to_owned(),
                endpoint: endpoint.to_owned(),
            })
        }
    }

    /// Reserves `price` (the most the call may cost) against the token's spend limit; refused
    /// if that could take it over.
    pub fn reserve(&self, admitted: Admitted, price: u64) -> Result<Grant, Denied> {
        let token = admitted.0;
        match self
            .0
            .store
            .add_spend(&token.id, price, Some(Meter::fresh(&token)), true)
        {
            Ok(_) => Ok(Grant {
                tokens: self.clone(),
                token,
                reserved: price,
                settled: false,
            }),
            Err(TokensError::SpendLimit {
                id, limit, spent, ..
            }) => Err(Denied::SpendLimit {
                id,
                limit,
                spent,
                price,
            }),
            Err(e) => Err(Denied::Internal(e)),
        }
    }

    /// Ends a call: `Some(cost)` if it succeeded (the token is charged `cost`, the reservation
    /// adjusted to it), `None` if it failed (the reservation is refunded).
    pub fn settle(&self, mut grant: Grant, cost: Option<u64>) {
        grant.settled = true;
        self.settle_reservation(&grant.token, grant.reserved, cost);
    }

    fn settle_reservation(&self, token: &ApiToken, reserved: u64, cost: Option<u64>) {
        let id = token.id;
        let result = match cost {
            None => self.0.store.refund(&id, reserved),
            Some(cost) if cost <= reserved => self.0.store.refund(&id, reserved - cost),
            Some(cost) => {
                // The provider's price rose between the estimate and the call: the cost is
                // real, so it is recorded even past the limit.
                let extra = cost - reserved;
                self.0
                    .store
                    .add_spend(&id, extra, Some(Meter::fresh(token)), false)
                    .map(|meter| {
                        if meter.limit.is_some_and(|limit| meter.spent > limit) {
                            warn!(token = %id, spent = meter.spent, "API token went over its spend limit: the price rose during the call");
                        }
                    })
            }
        };
        if let Err(e) = result {
            warn!(token = %id, error = %e, "could not settle an API token's spend");
        }
    }
}
