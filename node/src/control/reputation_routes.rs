//! `/v1/reputation` routes: the scores this node computes and why a peer scores what it does.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use micro_overlay::PeerId;

use super::{AppState, error};
use crate::api::{ReputationView, ScoreRow};

/// Peers listed by `GET /v1/reputation`.
const TOP: usize = 100;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/reputation", get(scores))
        .route("/v1/reputation/{peer}", get(explain))
}

async fn scores(State(s): State<AppState>) -> Response {
    let scores = s.reputation.scores();
    let view = ReputationView {
        peer: s.overlay.local_peer_id(),
        total_weight: scores.total().0,
        ranked_peers: scores.len(),
        top: scores
            .top(TOP)
            .iter()
            .enumerate()
            .map(|(i, (peer, score))| ScoreRow {
                peer: *peer,
                rank: i + 1,
                score: *score,
                weight: scores.weight(peer).0,
                pre_trusted: scores.is_pre_trusted(peer),
            })
            .collect(),
    };
    Json(view).into_response()
}

async fn explain(State(s): State<AppState>, Path(peer): Path<String>) -> Response {
    match peer.parse::<PeerId>() {
        Ok(peer) => Json(s.reputation.explain(&peer)).into_response(),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            format!("`{peer}` is not a peer id: {e}"),
        ),
    }
}
