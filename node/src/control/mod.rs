//! The control API: HTTP/JSON on loopback, every request authenticated with the node's
//! bearer credential. The CLI is its client.

mod auth;
mod broker_routes;
mod events_routes;
mod ledger_routes;
mod reputation_routes;
mod routes;
mod service_routes;
mod tokens_routes;
mod wasm_routes;

use std::net::SocketAddr;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use micro_overlay::Overlay;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::NodeError;
use crate::api::ApiError;
use crate::broker::Broker;
use crate::config::ControlConfig;
use crate::credential::Credential;
use crate::events::Events;
use crate::services::Services;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub overlay: Overlay,
    pub services: Services,
    pub broker: Broker,
    pub events: Events,
    pub config: ControlConfig,
    pub wasm: crate::wasm::Wasm,
    pub reputation: crate::reputation::NodeReputation,
    pub ledger: crate::ledger::NodeLedger,
    pub metering: crate::metering::Metering,
    pub tokens: crate::tokens::ApiTokens,
    /// Turns true at shutdown: long-lived responses (subscriptions) end then.
    pub stop: watch::Receiver<bool>,
}

/// Binds the control address, refusing anything but loopback.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, NodeError> {
    if !addr.ip().is_loopback() {
        return Err(NodeError::ControlNotLoopback(addr));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::ControlBind { addr, source })
}

/// Serves the API on `listener` until `state.stop` turns true.
pub(crate) async fn serve(listener: TcpListener, state: AppState, credential: Credential) {
    let mut shutdown = state.stop.clone();
    let app = router(state, credential);
    let addr = listener.local_addr().ok();
    info!(?addr, "control API listening");
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        warn!(error = %e, "control API stopped with an error");
    }
}

fn router(state: AppState, credential: Credential) -> Router {
    routes::routes()
        .merge(service_routes::routes())
        .merge(broker_routes::routes())
        .merge(events_routes::routes())
        .merge(reputation_routes::routes())
        .merge(ledger_routes::routes())
        .merge(tokens_routes::routes())
        .merge(wasm_routes::routes(
            state.wasm.runtime().config().max_component_bytes,
        ))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(
            credential,
            auth::require_credential,
        ))
        .with_state(state)
}

/// An error response in Micro's model.
/// The HTTP status a wasm error maps to (for answers outside the control API too).
pub(crate) fn status_code_of(e: &crate::wasm::WasmError) -> u16 {
    wasm_routes::status_of(e).as_u16()
}

pub(crate) fn error(status: StatusCode, detail: impl Into<String>) -> Response {
    let body = ApiError {
        id: "micro.node.control".to_owned(),
        code: status.as_u16(),
        detail: detail.into(),
        status: status.canonical_reason().unwrap_or("error").to_owned(),
    };
    (status, axum::Json(body)).into_response()
}
