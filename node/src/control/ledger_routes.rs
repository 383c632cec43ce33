//! `/v1/ledger` routes: balances, history and transfers from this node's account.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use micro_ledger::{Account, LedgerError, Tokens};
use micro_overlay::PeerId;

use super::{AppState, error};
use crate::api::{AccountQuery, BalanceView, TransferBody, TransferReply};
use crate::ledger::{NodeLedgerError, account_of};

/// Most history entries one request returns.
const MAX_HISTORY: usize = 1000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/ledger/balance", get(balance))
        .route("/v1/ledger/history", get(history))
        .route("/v1/ledger/transfers", post(transfer))
        .route("/v1/metering", get(metering))
}

/// `text` as an account: 64 hex digits, or a peer id whose key is ed25519.
fn parse_account(text: &str) -> Result<Account, String> {
    if let Ok(account) = text.parse::<Account>() {
        return Ok(account);
    }
    text.parse::<PeerId>()
        .ok()
        .and_then(|p| account_of(&p))
        .ok_or_else(|| {
            format!("`{text}` is neither an account (64 hex digits) nor an ed25519 peer id")
        })
}

/// The account a balance or history query names (this node's if none) and its limit, or why
/// the query is bad.
fn account_in(
    s: &AppState,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<(Account, usize), String> {
    let Query(query) = query.map_err(|e| e.body_text())?;
    let account = match &query.account {
        Some(text) => parse_account(text)?,
        None => s.ledger.account(),
    };
    Ok((account, query.limit))
}

fn ledger_error(e: NodeLedgerError) -> Response {
    let status = match &e {
        NodeLedgerError::Ledger(LedgerError::InsufficientFunds { .. }) => {
            StatusCode::PAYMENT_REQUIRED
        }
        NodeLedgerError::Ledger(LedgerError::Invalid(_) | LedgerError::Frozen { .. }) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

async fn balance(
    State(s): State<AppState>,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> Response {
    let (account, _) = match account_in(&s, query) {
        Ok(found) => found,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    Json(BalanceView {
        account: account.to_string(),
        balance: s.ledger.balance(&account).0,
        next_seq: s.ledger.next_seq(&account),
        frozen_from: s.ledger.frozen(&account),
        own: account == s.ledger.account(),
        network: s.ledger.network().to_string(),
    })
    .into_response()
}

async fn history(
    State(s): State<AppState>,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> Response {
    let (account, limit) = match account_in(&s, query) {
        Ok(found) => found,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match s.ledger.history(&account, limit.min(MAX_HISTORY)) {
        Ok(entries) => Json(entries).into_response(),
        Err(e) => ledger_error(e),
    }
}

async fn transfer(
    State(s): State<AppState>,
    body: Result<Json<TransferBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let to = match parse_account(&body.to) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match s.ledger.transfer(to, Tokens(body.amount), body.memo).await {
        Ok(transfer) => (
            StatusCode::CREATED,
            Json(TransferReply {
                id: transfer.id().to_string(),
                seq: transfer.transfer.seq,
                to: to.to_string(),
                amount: body.amount,
                balance: s.ledger.balance(&s.ledger.account()).0,
            }),
        )
            .into_response(),
        Err(e) => ledger_error(e),
    }
}

/// `GET /v1/metering`: what this node owes its providers and what callers owe it.
async fn metering(State(s): State<AppState>) -> Json<crate::metering::MeteringStatus> {
    Json(s.metering.status())
}
