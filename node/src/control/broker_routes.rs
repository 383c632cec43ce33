//! `/v1/broker` routes: publish, and subscribe as an NDJSON stream.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::{AppState, error};
use crate::api::{PublishBody, StreamLine};
use crate::broker::{BrokerError, TopicName};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/broker/publish", post(publish))
        .route("/v1/broker/subscribe", get(subscribe))
}

fn broker_error(e: BrokerError) -> Response {
    let status = match e {
        BrokerError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BrokerError::TooManyTopics(_) => StatusCode::TOO_MANY_REQUESTS,
        BrokerError::Overlay(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e.to_string())
}

async fn publish(
    State(s): State<AppState>,
    body: Result<Json<PublishBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let topic: TopicName = match body.topic.parse() {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("{e}")),
    };
    let content_type = body
        .content_type
        .unwrap_or_else(|| "application/json".to_owned());
    match s
        .broker
        .publish(topic, body.body.into_bytes(), content_type, body.headers)
        .await
    {
        Ok(published) => Json(published).into_response(),
        Err(e) => broker_error(e),
    }
}

#[derive(Deserialize)]
struct SubscribeQuery {
    topic: String,
}

fn line(item: &StreamLine) -> Result<Bytes, Infallible> {
    let mut text = serde_json::to_string(item).unwrap_or_default();
    text.push('\n');
    Ok(Bytes::from(text))
}

async fn subscribe(
    State(s): State<AppState>,
    query: Result<Query<SubscribeQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let topic: TopicName = match query.topic.parse() {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("{e}")),
    };
    let receiver = match s.broker.subscribe(topic).await {
        Ok(r) => r,
        Err(e) => return broker_error(e),
    };
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        let item = match receiver.recv().await {
            Ok(m) => StreamLine::Message {
                id: m.id.clone(),
                topic: m.topic.to_string(),
                headers: m.headers.clone(),
                content_type: m.content_type.clone(),
                body: String::from_utf8_lossy(&m.body).into_owned(),
                publisher: m.publisher,
                timestamp_ms: m.timestamp_ms,
            },
            Err(RecvError::Lagged(n)) => StreamLine::Missed(n),
            Err(RecvError::Closed) => return None,
        };
        Some((line(&item), receiver))
    });
    // The stream ends when the node stops, so a subscriber never holds up shutdown.
    let mut stop = s.stop.clone();
    let stopped = async move {
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    let stream = stream.take_until(stopped);
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}
