//! The token subsystem's knobs, and what `issue` asks for.

use std::time::Duration;

use super::error::TokensError;
use super::rules::{Pattern, RuleError, Scope};
use super::token::MAX_SCOPES;

/// The token subsystem's knobs.
#[derive(Debug, Clone)]
pub struct TokensConfig {
    /// Lifetime of a token issued without one.
    pub default_ttl: Duration,
    /// Longest lifetime a token may be issued or refreshed with.
    pub max_ttl: Duration,
    /// How long after its expiry a token may still be refreshed.
    pub refresh_window: Duration,
    /// Most tokens this node keeps as issued (expired ones go after the refresh window).
    pub max_issued: usize,
    /// Most tokens whose spend this node's gateway keeps.
    pub max_meters: usize,
    /// Most revocations kept; beyond it the one whose token expires soonest is dropped.
    pub max_revocations: usize,
    /// How often expired state is pruned and this node's live revocations are gossiped again
    /// (for nodes that missed them or joined since).
    pub upkeep_interval: Duration,
    /// Most of this node's revocations gossiped again per upkeep (the newest).
    pub max_republish: usize,
    /// How far in the future a token's issue time may be (the issuer's clock may run ahead).
    pub max_clock_skew: Duration,
}

impl Default for TokensConfig {
    /// 24 h tokens, at most a year; refreshable 30 days after expiry; 100 000 issued and
    /// metered tokens, 65 536 revocations; upkeep every 5 minutes re-gossiping at most 256
    /// revocations; 60 s of clock skew.
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(24 * 3600),
            max_ttl: Duration::from_secs(365 * 24 * 3600),
            refresh_window: Duration::from_secs(30 * 24 * 3600),
            max_issued: 100_000,
            max_meters: 100_000,
            max_revocations: 65_536,
            upkeep_interval: Duration::from_secs(300),
            max_republish: 256,
            max_clock_skew: Duration::from_secs(60),
        }
    }
}

/// What `issue` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    /// What the token may call (1 to [`MAX_SCOPES`]).
    pub scopes: Vec<Scope>,
    /// Its lifetime (at most [`TokensConfig::max_ttl`]).
    pub ttl: Duration,
    /// Most its calls may cost in all; `None` = no limit, `Some(0)` = free calls only.
    pub spend_limit: Option<u64>,
}

impl IssueRequest {
    /// The scopes "every endpoint matching one of `endpoints` (all when empty) of every
    /// service matching one of `services`", checked against the bounds.
    pub fn scopes_for(
        services: &[String],
        endpoints: &[String],
    ) -> Result<Vec<Scope>, TokensError> {
        let bad = |e: RuleError| TokensError::BadRequest(e.to_string());
        if services.is_empty() {
            return Err(TokensError::BadRequest(
                "name at least one service (`*` for all)".to_owned(),
            ));
        }
        let endpoints: Vec<Pattern> = if endpoints.is_empty() {
            vec![Pattern::any()]
        } else {
            endpoints
                .iter()
                .map(|e| e.trim().parse())
                .collect::<Result<_, _>>()
                .map_err(bad)?
        };
        let mut scopes = Vec::new();
        for service in services {
            let service: Pattern = service.trim().parse().map_err(bad)?;
            for endpoint in &endpoints {
                let scope = Scope {
                    service: service.clone(),
                    endpoint: endpoint.clone(),
                };
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
        }
        if scopes.len() > MAX_SCOPES {
            return Err(TokensError::BadRequest(format!(
                "{} scopes (services × endpoints); a token holds at most {MAX_SCOPES}",
                scopes.len()
            )));
        }
        Ok(scopes)
    }
}
