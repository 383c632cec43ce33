//! Tokens as the control API and the CLI show them.

use micro_overlay::PeerId;
use serde::{Deserialize, Serialize};

use super::rules::Scope;
use super::token::TokenId;

/// Where a token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    /// Usable.
    Active,
    /// Past its expiry (refreshable within the window).
    Expired,
    /// Revoked by its issuer.
    Revoked,
    /// Replaced by a refresh (and so revoked).
    Refreshed,
}

/// A token this node issued, as `micro-node token list` shows it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    /// Its id.
    pub id: TokenId,
    /// Its issuer.
    pub issuer: PeerId,
    /// What it may call.
    pub scopes: Vec<Scope>,
    /// Issued at, Unix ms.
    pub issued_at_ms: u64,
    /// Expires at, Unix ms.
    pub expires_at_ms: u64,
    /// Its spend limit; `None` = unlimited.
    pub spend_limit: Option<u64>,
    /// What its calls cost so far through this node.
    pub spent: u64,
    /// The token it replaced.
    pub refreshed_from: Option<TokenId>,
    /// When it was revoked, Unix ms.
    pub revoked_at_ms: Option<u64>,
    /// The token that replaced it.
    pub replaced_by: Option<TokenId>,
    /// Where it stands now.
    pub status: TokenStatus,
}

/// A newly issued (or refreshed) token: the printable token, shown once, and its view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    /// The token to present as `Authorization: Bearer <token>`.
    pub token: String,
    /// What it is.
    pub view: TokenView,
}
