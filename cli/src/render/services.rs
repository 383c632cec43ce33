//! Views of the service layer: what this node serves, what the network serves, how each
//! provider is reached.

use micro_node::api::ServiceRoute;
use micro_node::registry::ServiceSummary;
use micro_node::services::{Backend, LocalService};

use super::Table;
use super::format::{rtt, sanitize, short_peer};

/// This node's services: NAME, VERSION, BACKEND, ENDPOINTS, CALLS, ERRORS.
pub fn local_services(services: &[LocalService]) -> String {
    let mut t = Table::new([
        "NAME",
        "VERSION",
        "BACKEND",
        "ENDPOINTS",
        "CALLS",
        "ERRORS",
        "PRICE",
        "FREE",
        "PAID",
        "EARNED",
        "REFUSED",
    ]);
    for s in services {
        let backend = match &s.spec.backend {
            Backend::Builtin => "built-in".to_owned(),
            Backend::Http { url } => sanitize(url),
            Backend::Wasm { digest } => {
                format!("wasm {}", sanitize(&digest[..digest.len().min(12)]))
            }
        };
        let endpoints = if s.spec.endpoints.is_empty() {
            "*".to_owned()
        } else {
            s.spec
                .endpoints
                .iter()
                .map(|e| e.name.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        t.push([
            s.spec.name.to_string(),
            sanitize(&s.spec.version),
            backend,
            endpoints,
            s.calls.to_string(),
            s.errors.to_string(),
            s.spec.price_per_call.to_string(),
            s.free_calls.to_string(),
            s.paid_calls.to_string(),
            s.earned.to_string(),
            s.refused.to_string(),
        ]);
    }
    t.to_string()
}

/// The network's services: NAME, VERSIONS, NODES, ENDPOINTS; one line per service.
pub fn network_services(services: &[ServiceSummary]) -> String {
    if services.is_empty() {
        return "no services announced on the network\n".to_owned();
    }
    let mut t = Table::new(["NAME", "VERSIONS", "NODES", "ENDPOINTS"]);
    for s in services {
        let nodes = s
            .providers
            .iter()
            .map(|p| short_peer(&p.peer_id))
            .collect::<Vec<_>>()
            .join(", ");
        let endpoints = s
            .endpoints
            .iter()
            .map(|e| e.name.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        t.push([
            s.name.to_string(),
            sanitize(&s.versions.join(", ")),
            nodes,
            if endpoints.is_empty() {
                "*".to_owned()
            } else {
                endpoints
            },
        ]);
    }
    t.to_string()
}

/// Service providers and how they are reached: SERVICE, VERSION, NODE, REACH, HOPS, RTT,
/// CALL LATENCY.
pub fn service_routes(routes: &[ServiceRoute]) -> String {
    if routes.is_empty() {
        return "no service providers known\n".to_owned();
    }
    let mut t = Table::new([
        "SERVICE",
        "VERSION",
        "NODE",
        "REACH",
        "HOPS",
        "RTT",
        "CALL LATENCY",
    ]);
    for r in routes {
        t.push([
            r.service.clone(),
            sanitize(&r.version),
            short_peer(&r.peer_id),
            r.reach.clone(),
            r.hops.map_or_else(|| "-".to_owned(), |h| h.to_string()),
            rtt(r.rtt_ms),
            rtt(r.call_latency_ms),
        ]);
    }
    t.to_string()
}
