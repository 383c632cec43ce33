//! What can go wrong issuing, refreshing, revoking or charging a token.

use std::time::Duration;

use micro_overlay::PeerId;

use super::token::{TokenError, TokenId};

/// Why a token operation failed. [`TokensError::status`] gives the HTTP status the control
/// API answers with.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The sled trees failed.
    #[error("token store: {0}")]
    Store(#[from] sled::Error),
    /// Something stored does not read back.
    #[error("token store is corrupt: {0}")]
    Corrupt(String),
    /// The token presented does not decode or verify.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Only the issuer refreshes or revokes a token.
    #[error("token {id} was issued by {issuer}, not this node: ask its issuer")]
    NotIssuedHere {
        /// The token.
        id: TokenId,
        /// Its issuer.
        issuer: Box<PeerId>,
    },
    /// This node never issued it (or pruned it long after it expired).
    #[error("no token {0} issued by this node")]
    Unknown(TokenId),
    /// Revoked tokens cannot be refreshed.
    #[error("token {id} is revoked{}", replaced_by.map(|n| format!(" (refreshed into {n})")).unwrap_or_default())]
    Revoked {
        /// The token.
        id: TokenId,
        /// The token a refresh replaced it with, if that is why.
        replaced_by: Option<TokenId>,
    },
    /// Expired too long ago to be refreshed.
    #[error(
        "token {id} expired more than {window:?} ago and can no longer be refreshed; issue a new one"
    )]
    TooOld {
        /// The token.
        id: TokenId,
        /// How long after expiry a refresh is allowed.
        window: Duration,
    },
    /// The request asks for something out of bounds (no service, a bad pattern, a TTL too long).
    #[error("{0}")]
    BadRequest(String),
    /// A bounded table is full.
    #[error(
        "this node holds the most {what} it may ({max}); revoke tokens or wait for expired ones to be pruned"
    )]
    Full {
        /// Which table.
        what: &'static str,
        /// Its bound.
        max: usize,
    },
    /// Charging would take the token over its spend limit.
    #[error(
        "token {id} may spend {limit} in all; it spent {spent}, and {amount} more would go over"
    )]
    SpendLimit {
        /// The token.
        id: TokenId,
        /// Its limit.
        limit: u64,
        /// Spent so far.
        spent: u64,
        /// The charge refused.
        amount: u64,
    },
}

impl TokensError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Store(_) | Self::Corrupt(_) => 500,
            Self::Token(_) | Self::BadRequest(_) => 400,
            Self::NotIssuedHere { .. } => 403,
            Self::Unknown(_) => 404,
            Self::Revoked { .. } => 409,
            Self::TooOld { .. } => 410,
            Self::SpendLimit { .. } => 402,
            Self::Full { .. } => 507,
        }
    }
}
