//! `/v1/tokens` routes: issue, refresh, list and revoke the API tokens this node signs.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::{AppState, error};
use crate::api::{IssueTokenBody, RefreshTokenBody};
use crate::tokens::{IssueRequest, TokenId, TokensError};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", get(list).post(issue))
        .route("/v1/tokens/refresh", post(refresh))
        .route("/v1/tokens/{id}", delete(revoke))
}

fn tokens_error(e: TokensError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(status, e.to_string())
}

async fn issue(
    State(s): State<AppState>,
    body: Result<Json<IssueTokenBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let scopes = match IssueRequest::scopes_for(&body.services, &body.endpoints) {
        Ok(scopes) => scopes,
        Err(e) => return tokens_error(e),
    };
    let request = IssueRequest {
        scopes,
        ttl: body
            .ttl_ms
            .map_or(s.tokens.default_ttl(), Duration::from_millis),
        spend_limit: body.spend_limit,
    };
    match s.tokens.issue(request).await {
        Ok(issued) => (StatusCode::CREATED, Json(issued)).into_response(),
        Err(e) => tokens_error(e),
    }
}

async fn refresh(
    State(s): State<AppState>,
    body: Result<Json<RefreshTokenBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let ttl = body.ttl_ms.map(Duration::from_millis);
    match s.tokens.refresh(&body.token, ttl).await {
        Ok(issued) => (StatusCode::CREATED, Json(issued)).into_response(),
        Err(e) => tokens_error(e),
    }
}

async fn list(State(s): State<AppState>) -> Response {
    match s.tokens.list() {
        Ok(views) => Json(views).into_response(),
        Err(e) => tokens_error(e),
    }
}

async fn revoke(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let id: TokenId = match id.parse() {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("`{id}`: {e}")),
    };
    match s.tokens.revoke(&id).await {
        Ok(view) => Json(view).into_response(),
        Err(e) => tokens_error(e),
    }
}
