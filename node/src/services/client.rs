//! Calling a service anywhere in the network: find providers (cache, directory, DHT), pick
//! one, call it, retry another on failures that another provider may not have.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use micro_overlay::rpc_proto::{RpcRequest, RpcResponse};
use micro_overlay::{PeerId, RpcFailure};
use micro_wasm_runtime::version_matches;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::dispatch::NOT_SERVED;
use super::registry::provider_key;
use super::{BUILTIN_SERVICE, Services, lock};
use crate::api::ApiError;
use crate::config::Balance;
use crate::registry::{EndpointName, ServiceName};

/// Where client errors say they came from.
const ERROR_ID: &str = "micro.node.client";

/// Response codes after which another provider is tried.
const RETRYABLE: [u32; 4] = [408, 500, 502, 503];

/// One call, as the CLI, the gateway or a service makes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRequest {
    /// The service.
    pub service: ServiceName,
    /// The endpoint, e.g. `Say.Hello`.
    pub endpoint: EndpointName,
    /// The payload.
    #[serde(default)]
    pub body: Vec<u8>,
    /// MIME type of the payload.
    #[serde(default = "json")]
    pub content_type: String,
    /// Metadata headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Deadline for the whole call, retries included; the node's default if absent.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Call this node's instance of the service, no other.
    #[serde(default)]
    pub node: Option<PeerId>,
    /// Call this version only (`service@version`): the whole version or a prefix of at least
    /// seven hex digits of it. Without it, each provider answers with its current version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

fn json() -> String {
    "application/json".to_owned()
}

/// A successful call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallOutcome {
    /// HTTP-like status (2xx).
    pub status: u16,
    /// The payload.
    pub body: Vec<u8>,
    /// Its MIME type.
    pub content_type: String,
    /// Metadata headers.
    pub headers: BTreeMap<String, String>,
    /// Who answered.
    pub provider: PeerId,
    /// Providers tried, the one that answered included.
    pub attempts: u32,
    /// Time of the successful attempt, in milliseconds.
    pub latency_ms: f64,
    /// Tokens the provider charged (0 for free services and free-allowance calls).
    #[serde(default)]
    pub charged: u64,
}

fn error_of(response: &RpcResponse) -> ApiError {
    match &response.error {
        Some(e) => ApiError {
            id: e.id.clone(),
            code: u16::try_from(e.code).unwrap_or(500),
            detail: e.detail.clone(),
            status: e.status.clone(),
        },
        None => ApiError::new(
            ERROR_ID,
            u16::try_from(response.status).unwrap_or(500),
            "no detail",
        ),
    }
}

impl Services {
    /// Calls a service. Fails with 404 if no node serves it, 408 when the deadline passes,
    /// the provider's error for 4xx (never retried), or the last error after trying up to
    /// `max_attempts` providers.
    pub async fn call(&self, call: CallRequest) -> Result<CallOutcome, ApiError> {
        let config = &self.0.config;
        let timeout = call
            .timeout_ms
            .map_or(config.default_timeout, Duration::from_millis);
        let deadline = Instant::now() + timeout;
        let local = self.0.overlay.local_peer_id();
        let mut providers = match call.node {
            Some(node) => vec![node],
            None => self.lookup(&call, deadline).await,
        };
        if providers.is_empty() {
            let detail = match &call.version {
                Some(pin) => format!(
                    "no provider of `{}` announces version `{pin}`",
                    call.service
                ),
                None => format!("service `{}` not found on the network", call.service),
            };
            return Err(ApiError::new(ERROR_ID, 404, detail));
        }
        let mut tried = HashSet::new();
        let mut last_error = None;
        // Every provider asked said it does not serve the service (stale records).
        let mut only_not_served = true;
        for attempt in 1..=config.max_attempts.max(1) {
            providers.retain(|p| !tried.contains(p));
            let Some(peer) = self.pick(&providers) else {
                break;
            };
            tried.insert(peer);
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            // A priced service on another node gets a receipt: past the free allowance
            // the provider bills the call against it.
            let price = if peer == local {
                0
            } else {
                self.price_per_call(&call.service, &peer)
            };
            let metering = self.0.metering.get().filter(|_| price > 0);
            let receipt = metering
                .and_then(|m| m.receipt(&peer, call.service.as_str(), price))
                .unwrap_or_default();
            let request = RpcRequest {
                id: format!("{:016x}", rand::random::<u64>()),
                service: call.service.to_string(),
                endpoint: call.endpoint.to_string(),
                content_type: call.content_type.clone(),
                headers: call.headers.clone().into_iter().collect(),
                body: call.body.clone(),
                timeout_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
                version: call.version.clone().unwrap_or_default(),
                receipt,
            };
            let started = Instant::now();
            let result = if peer == local {
                Ok(self.dispatch(local, request).await)
            } else {
                // The provider's signed record says where it listens: a caller that never
                // met it (it learned the provider from the gossiped directory, not from a
                // DHT lookup that brings addresses) has no other way to dial it.
                let addrs = self.directory_addrs(&call.service, &peer);
                self.0.overlay.rpc(peer, addrs, request, remaining).await
            };
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            match result {
                Ok(response) if (200..300).contains(&response.status) => {
                    lock(&self.0.latency).record(peer, latency_ms);
                    let charged = match metering {
                        Some(metering) => {
                            let charged = response
                                .headers
                                .get(crate::metering::CHARGED_HEADER)
                                .and_then(|v| v.parse::<u64>().ok())
                                .unwrap_or(0);
                            metering.charged(&peer, charged, price)
                        }
                        None => 0,
                    };
                    return Ok(CallOutcome {
                        status: u16::try_from(response.status).unwrap_or(200),
                        body: response.body,
                        content_type: response.content_type,
                        headers: response.headers.into_iter().collect(),
                        provider: peer,
                        attempts: attempt,
                        latency_ms,
                        charged,
                    });
                }
                Ok(response) if RETRYABLE.contains(&response.status) => {
                    lock(&self.0.latency).record(peer, latency_ms);
                    let error = error_of(&response);
                    debug!(%peer, %error, attempt, "provider failed; trying another");
                    if error.detail.contains(NOT_SERVED) {
                        self.forget_provider(&call.service, &peer);
                    } else {
                        only_not_served = false;
                    }
                    last_error = Some(error);
                }
                Ok(response) => return Err(error_of(&response)),
                Err(RpcFailure::Stopped) => {
                    return Err(ApiError::new(ERROR_ID, 503, "this node is shutting down"));
                }
                Err(failure) => {
                    only_not_served = false;
                    lock(&self.0.latency).mark_unreachable(peer);
                    warn!(%peer, %failure, attempt, "provider unreachable; trying another");
                    lock(&self.0.cache).remove(&call.service);
                    let code = if matches!(failure, RpcFailure::Timeout { .. }) {
                        408
                    } else {
                        503
                    };
                    last_error = Some(ApiError::new(ERROR_ID, code, failure.to_string()));
                }
            }
            if providers.len() <= tried.len() && call.node.is_none() {
                // Everyone known was tried: look again, someone may have joined.
                providers = self.lookup(&call, deadline).await;
            }
        }
        if only_not_served && last_error.is_some() {
            return Err(ApiError::new(
                ERROR_ID,
                404,
                format!(
                    "service `{}` not found on the network (its last providers stopped serving it)",
                    call.service
                ),
            ));
        }
        if Instant::now() >= deadline {
            return Err(ApiError::new(
                ERROR_ID,
                408,
                format!("calling `{}` took longer than {timeout:?}", call.service),
            ));
        }
        Err(last_error.unwrap_or_else(|| {
            ApiError::new(
                ERROR_ID,
                503,
                format!("no provider of `{}` answered", call.service),
            )
        }))
    }

    /// Providers for `call`: of its version if it pins one, else of the service.
    async fn lookup(&self, call: &CallRequest, deadline: Instant) -> Vec<PeerId> {
        match &call.version {
            Some(pin) => self.providers_of(&call.service, pin),
            None => self.providers(&call.service, deadline).await,
        }
    }

    /// Providers of version `pin` of `name`: this node and those whose records announce it
    /// (the DHT knows providers, not versions).
    fn providers_of(&self, name: &ServiceName, pin: &str) -> Vec<PeerId> {
        let mut found = self.directory_providers_of(name, pin);
        let local = self.served(name).is_some_and(|served| {
            std::iter::once(&served.spec.version)
                .chain(&served.spec.older_versions)
                .any(|v| version_matches(v, pin))
        });
        if local {
            found.push(self.0.overlay.local_peer_id());
        }
        found.sort();
        found.dedup();
        found
    }

    /// Live providers of `name`: from the short-lived cache, else this node, the directory
    /// and (if those know none) the DHT.
    async fn providers(&self, name: &ServiceName, deadline: Instant) -> Vec<PeerId> {
        let ttl = self.0.config.provider_cache_ttl;
        if let Some((at, cached)) = lock(&self.0.cache).get(name)
            && at.elapsed() < ttl
            && !cached.is_empty()
        {
            return cached.clone();
        }
        let local = self.0.overlay.local_peer_id();
        if name.as_str() == BUILTIN_SERVICE {
            return vec![local];
        }
        let mut found: Vec<PeerId> = Vec::new();
        if self.served(name).is_some() {
            found.push(local);
        }
        found.extend(self.directory_providers(name));
        if found.is_empty() {
            let budget = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(budget, self.0.overlay.get_providers(provider_key(name)))
                .await
            {
                Ok(Ok(peers)) => found.extend(peers),
                Ok(Err(e)) => debug!(service = %name, error = %e, "DHT lookup failed"),
                Err(_) => debug!(service = %name, "DHT lookup ran out of time"),
            }
        }
        found.sort();
        found.dedup();
        if !found.is_empty() {
            lock(&self.0.cache).insert(name.clone(), (Instant::now(), found.clone()));
        }
        found
    }

    /// Picks a provider, preferring those not found unreachable in the last seconds.
    fn pick(&self, candidates: &[PeerId]) -> Option<PeerId> {
        let healthy: Vec<PeerId> = {
            let latency = lock(&self.0.latency);
            candidates
                .iter()
                .filter(|p| !latency.is_suspect(p))
                .copied()
                .collect()
        };
        let candidates = if healthy.is_empty() {
            candidates
        } else {
            &healthy
        };
        let mut rng = rand::rng();
        match self.0.config.balance {
            Balance::Random => candidates.choose(&mut rng).copied(),
            Balance::PowerOfTwo => {
                let two: Vec<&PeerId> = candidates.choose_multiple(&mut rng, 2).collect();
                let latency = lock(&self.0.latency);
                two.into_iter()
                    .min_by(|a, b| {
                        let (la, lb) =
                            (latency.get(a).unwrap_or(0.0), latency.get(b).unwrap_or(0.0));
                        la.total_cmp(&lb)
                    })
                    .copied()
            }
        }
    }
}
