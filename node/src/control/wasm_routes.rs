//! `/v1/deployments` routes: deploy a wasm component, list and stop deployments, read and
//! follow a service's log.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use futures::StreamExt;
use micro_wasm_runtime::{DeployError, LogLine, Manifest, RuntimeError};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::source::Progress;
use tracing::info;

use super::{AppState, error};
use crate::api::{ApiError, DeployBody, DeployEvent, KillReply, LogsQuery, SourceDeployBody};
use crate::source::{BuildError, FetchError};
use crate::wasm::WasmError;

/// Most history lines one logs request returns.
const MAX_LOG_LINES: usize = 10_000;

pub(crate) fn routes(max_component_bytes: usize) -> Router<AppState> {
    // Base64 grows the component by a third; the manifest and JSON add a little.
    let body_limit = max_component_bytes / 3 * 4 + 256 * 1024;
    Router::new()
        .route(
            "/v1/deployments",
            post(deploy)
                .get(list)
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/v1/deployments/{name}", get(one).delete(kill))
        .route("/v1/sources", post(deploy_source))
        .route("/v1/deployments/{name}/update", post(update))
        .route("/v1/deployments/{name}/build-log", get(build_log))
        .route("/v1/deployments/{name}/logs", get(logs))
}

fn wasm_error(e: WasmError) -> Response {
    let status = status_of(&e);
    error(status, e.to_string())
}

pub(crate) fn status_of(e: &WasmError) -> StatusCode {
    match e {
        WasmError::Name(_) => StatusCode::BAD_REQUEST,
        WasmError::Conflict(_) => StatusCode::CONFLICT,
        WasmError::Deploy(DeployError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        WasmError::Deploy(DeployError::TooMany(_)) => StatusCode::TOO_MANY_REQUESTS,
        WasmError::Deploy(DeployError::Io { .. } | DeployError::Db(_)) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        WasmError::Deploy(_) => StatusCode::UNPROCESSABLE_ENTITY,
        WasmError::Serve(_) => StatusCode::CONFLICT,
        WasmError::Runtime(RuntimeError::NotDeployed(_) | RuntimeError::NoSuchVersion { .. }) => {
            StatusCode::NOT_FOUND
        }
        WasmError::Runtime(_) => StatusCode::INTERNAL_SERVER_ERROR,
        WasmError::Build(BuildError::Spec(_) | BuildError::Manifest(_)) => StatusCode::BAD_REQUEST,
        WasmError::Build(BuildError::Fetch(FetchError::UnknownRev { .. })) => StatusCode::NOT_FOUND,
        WasmError::Build(BuildError::Fetch(FetchError::Unreachable { .. })) => {
            StatusCode::BAD_GATEWAY
        }
        WasmError::Build(_) => StatusCode::UNPROCESSABLE_ENTITY,
        WasmError::Follow(_) => StatusCode::BAD_REQUEST,
        WasmError::Remote { code, .. } => {
            StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY)
        }
    }
}

fn event_line(event: &DeployEvent) -> Result<Bytes, Infallible> {
    let mut text = serde_json::to_string(event).unwrap_or_default();
    text.push('\n');
    Ok(Bytes::from(text))
}

fn error_event(e: &WasmError) -> DeployEvent {
    DeployEvent::Error(ApiError::new(
        "micro.node.deploy",
        status_of(e).as_u16(),
        e.to_string(),
    ))
}

/// Runs `work` on its own task (a client that goes away does not cancel a build halfway) and
/// streams its progress, then its outcome, as NDJSON.
fn stream_deploy<F, Fut>(work: F) -> Response
where
    F: FnOnce(mpsc::Sender<Progress>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = DeployEvent> + Send + 'static,
{
    // Bounded: build lines beyond it are dropped from the stream (the build log keeps them).
    let (events_tx, events_rx) = mpsc::channel::<DeployEvent>(256);
    let (progress_tx, mut progress_rx) = mpsc::channel::<Progress>(256);
    let forward = {
        let events_tx = events_tx.clone();
        tokio::spawn(async move {
            while let Some(p) = progress_rx.recv().await {
                let _ = events_tx.try_send(DeployEvent::Progress(p));
            }
        })
    };
    tokio::spawn(async move {
        let outcome = work(progress_tx).await;
        let _ = forward.await;
        let _ = events_tx.send(outcome).await;
    });
    let stream = futures::stream::unfold(events_rx, |mut rx| async move {
        let event = rx.recv().await?;
        Some((event_line(&event), rx))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn deploy_source(
    State(s): State<AppState>,
    body: Result<Json<SourceDeployBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    info!(source = %body.source, follow = ?body.follow_secs, "deploy from source requested");
    let wasm = s.wasm.clone();
    stream_deploy(move |progress| async move {
        let follow = body.follow_secs.map(Duration::from_secs);
        let deployed = match body.on {
            Some(peer) => wasm.deploy_on(peer, &body.source, follow, &progress).await,
            None => wasm.deploy_source(&body.source, follow, &progress).await,
        };
        match deployed {
            Ok(done) => DeployEvent::Done(done),
            Err(e) => error_event(&e),
        }
    })
}

async fn update(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    if s.wasm.followed(&name).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            format!("`{name}` was not deployed from source on this node"),
        );
    }
    let wasm = s.wasm.clone();
    stream_deploy(move |progress| async move {
        match wasm.update(&name, &progress).await {
            Ok(Some(done)) => DeployEvent::Done(done),
            Ok(None) => DeployEvent::UpToDate {
                commit: wasm.followed(&name).map(|f| f.commit).unwrap_or_default(),
            },
            Err(e) => error_event(&e),
        }
    })
}

async fn build_log(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    let Some(path) = s.wasm.builder().latest_log(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no build log for `{name}`"));
    };
    match tokio::fs::read_to_string(&path).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}: {e}", path.display()),
        ),
    }
}

/// The manifest a deploy runs under: the given `micro.toml` (or a minimal one), with the
/// name and version overrides applied.
fn manifest_of(body: &DeployBody) -> Result<Manifest, String> {
    let mut manifest = match &body.manifest {
        Some(text) => Manifest::parse(text).map_err(|e| e.to_string())?,
        None => {
            let name = body.name.clone().ok_or(
                "no micro.toml and no --name: a service needs a name (pass --name or --manifest)",
            )?;
            Manifest::minimal(name, "0.0.0")
        }
    };
    if let Some(name) = &body.name {
        manifest.name = name.clone();
    }
    if let Some(version) = &body.version {
        manifest.version = version.clone();
    }
    manifest.validate().map_err(|e| e.to_string())?;
    Ok(manifest)
}

async fn deploy(
    State(s): State<AppState>,
    body: Result<Json<DeployBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(JsonRejection::BytesRejection(e)) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, e.body_text());
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let manifest = match manifest_of(&body) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let bytes = match base64::engine::general_purpose::STANDARD.decode(body.component.as_bytes()) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("component: not base64: {e}"),
            );
        }
    };
    info!(service = %manifest.name, version = %manifest.version, bytes = bytes.len(), "deploy requested");
    match s.wasm.deploy(manifest, bytes).await {
        Ok(deployed) => (StatusCode::CREATED, Json(deployed)).into_response(),
        Err(e) => wasm_error(e),
    }
}

async fn list(State(s): State<AppState>) -> Response {
    Json(s.wasm.status()).into_response()
}

async fn one(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match s.wasm.runtime().service(&name) {
        Some(status) => Json(status).into_response(),
        None => wasm_error(RuntimeError::NotDeployed(name).into()),
    }
}

async fn kill(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match s.wasm.kill(&name).await {
        Ok(stopped) => {
            let service = name.split_once('@').map_or(name.as_str(), |(n, _)| n);
            let running = s.wasm.runtime().versions(service);
            Json(KillReply { stopped, running }).into_response()
        }
        Err(e) => wasm_error(e),
    }
}

fn line(item: &LogLine) -> Result<Bytes, Infallible> {
    let mut text = serde_json::to_string(item).unwrap_or_default();
    text.push('\n');
    Ok(Bytes::from(text))
}

async fn logs(
    State(s): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<LogsQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let Some(book) = s.wasm.logs(&name) else {
        return wasm_error(RuntimeError::NotDeployed(name).into());
    };
    let (history, follow) = book.tail_and_follow(query.lines.min(MAX_LOG_LINES));
    let history = futures::stream::iter(history.into_iter().map(|l| line(&l)));
    if !query.follow {
        return (
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            Body::from_stream(history),
        )
            .into_response();
    }
    let live = futures::stream::unfold(follow, |mut follow| async move {
        loop {
            match follow.recv().await {
                Ok(l) => return Some((line(&l), follow)),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let mut stop = s.stop.clone();
    let stopped = async move {
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(history.chain(live).take_until(stopped)),
    )
        .into_response()
}
