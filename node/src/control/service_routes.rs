//! `/v1` routes of the service layer: serve, list, call, deregister.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use micro_overlay::{Reach, Route};

use super::{AppState, error};
use crate::api::{ApiError, CallBody, CallReply, RoutesView, ServiceRoute};
use crate::registry::{EndpointName, ServiceName, ServiceRef};
use crate::services::{CallRequest, ServeError, ServeSpec};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/services", get(local).post(serve))
        .route("/v1/services/{name}", delete(deregister))
        .route("/v1/network/services", get(network))
        .route("/v1/call", post(call))
}

fn api_error(e: ApiError) -> Response {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e)).into_response()
}

fn serve_error(e: ServeError) -> Response {
    let status = match e {
        ServeError::AlreadyServed(_) | ServeError::Reserved(_) => StatusCode::CONFLICT,
        ServeError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        ServeError::NotServed(_) => StatusCode::NOT_FOUND,
        ServeError::BadBackend { .. } | ServeError::Record(_) => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

async fn local(State(s): State<AppState>) -> Response {
    Json(s.services.local()).into_response()
}

async fn network(State(s): State<AppState>) -> Response {
    Json(s.services.network_services()).into_response()
}

async fn serve(
    State(s): State<AppState>,
    spec: Result<Json<ServeSpec>, JsonRejection>,
) -> Response {
    let Json(spec) = match spec {
        Ok(spec) => spec,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match s.services.serve(spec).await {
        Ok(record) => (StatusCode::CREATED, Json(record)).into_response(),
        Err(e) => serve_error(e),
    }
}

async fn deregister(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    let name: ServiceName = match name.parse() {
        Ok(name) => name,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match s.services.deregister(&name).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => serve_error(e),
    }
}

async fn call(State(s): State<AppState>, body: Result<Json<CallBody>, JsonRejection>) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let service: ServiceRef = match body.service.parse() {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let endpoint: EndpointName = match body.endpoint.parse() {
        Ok(e) => e,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let request = CallRequest {
        service: service.name,
        version: service.version,
        endpoint,
        body: body.body.into_bytes(),
        content_type: body
            .content_type
            .unwrap_or_else(|| "application/json".to_owned()),
        headers: Default::default(),
        timeout_ms: body.timeout_ms,
        node: body.node,
    };
    match s.services.call(request).await {
        Ok(outcome) => Json(CallReply {
            status: outcome.status,
            provider: outcome.provider,
            attempts: outcome.attempts,
            latency_ms: outcome.latency_ms,
            content_type: outcome.content_type,
            body: String::from_utf8_lossy(&outcome.body).into_owned(),
        })
        .into_response(),
        Err(e) => api_error(e),
    }
}

/// Routes to nodes, plus one row per (service, provider) joined with the node routes.
pub(super) fn routes_view(s: &AppState, nodes: Vec<Route>) -> RoutesView {
    let local = s.overlay.local_peer_id();
    let mut services = Vec::new();
    for summary in s.services.network_services() {
        for provider in &summary.providers {
            let route = nodes.iter().find(|r| r.peer_id == provider.peer_id);
            let (reach, hops) = if provider.peer_id == local {
                ("local".to_owned(), Some(0))
            } else {
                let reach = route.map_or(Reach::Unknown, |r| r.reach);
                let name = serde_json::to_value(reach)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                (name, route.and_then(|r| r.hops))
            };
            services.push(ServiceRoute {
                service: summary.name.to_string(),
                version: provider.version.clone(),
                peer_id: provider.peer_id,
                reach,
                hops,
                rtt_ms: route.and_then(|r| r.rtt_ms),
                call_latency_ms: s.services.latency_ms(&provider.peer_id),
            });
        }
    }
    RoutesView { nodes, services }
}
