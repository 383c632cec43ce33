//! The `/v1` routes: thin adapters from HTTP to the overlay handle.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use micro_overlay::OverlayError;
use micro_overlay::crawl::{self, CrawlLimits};

use super::{AppState, error};
use crate::api::GraphQuery;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/id", get(id))
        .route("/v1/peers", get(peers))
        .route("/v1/peers/graph", get(peers_graph))
        .route("/v1/network/nodes", get(network_nodes))
        .route("/v1/network/routes", get(network_routes))
        .route("/v1/network/graph", get(network_graph))
}

fn overlay_error(e: OverlayError) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

fn reply<T: serde::Serialize>(result: Result<T, OverlayError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => overlay_error(e),
    }
}

async fn id(State(s): State<AppState>) -> Response {
    reply(s.overlay.info().await)
}

async fn peers(State(s): State<AppState>) -> Response {
    reply(s.overlay.connected_peers().await)
}

async fn peers_graph(State(s): State<AppState>) -> Response {
    reply(crawl::local_view(&s.overlay).await)
}

async fn network_nodes(State(s): State<AppState>) -> Response {
    reply(s.overlay.known_nodes().await)
}

async fn network_routes(State(s): State<AppState>) -> Response {
    match s.overlay.routes().await {
        Ok(nodes) => Json(super::service_routes::routes_view(&s, nodes)).into_response(),
        Err(e) => overlay_error(e),
    }
}

async fn network_graph(
    State(s): State<AppState>,
    query: Result<Query<GraphQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let limits = crawl_limits(query, &s.config.max_crawl);
    reply(crawl::crawl(&s.overlay, limits).await)
}

/// The caller's limits, defaulted and capped by the node's.
fn crawl_limits(query: GraphQuery, max: &CrawlLimits) -> CrawlLimits {
    let default = CrawlLimits::default();
    CrawlLimits {
        max_depth: query
            .depth
            .unwrap_or(default.max_depth)
            .clamp(1, max.max_depth),
        max_nodes: query
            .max_nodes
            .unwrap_or(default.max_nodes)
            .clamp(1, max.max_nodes),
        timeout: query
            .timeout_ms
            .map_or(default.timeout, Duration::from_millis)
            .min(max.timeout),
        concurrency: default.concurrency.min(max.concurrency),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crawl_limits_are_defaulted_and_capped() {
        let max = crate::config::ControlConfig::default().max_crawl;
        assert_eq!(
            crawl_limits(GraphQuery::default(), &max),
            CrawlLimits::default()
        );
        let greedy = GraphQuery {
            depth: Some(1000),
            max_nodes: Some(0),
            timeout_ms: Some(u64::MAX),
        };
        let capped = crawl_limits(greedy, &max);
        assert_eq!(capped.max_depth, max.max_depth);
        assert_eq!(capped.max_nodes, 1);
        assert_eq!(capped.timeout, max.timeout);
    }
}
