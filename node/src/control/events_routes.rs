//! `/v1/events` routes: publish, consume (long-poll), ack, topics.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::{AppState, error};
use crate::api::{
    AckBody, ConsumeBody, ConsumeReply, ConsumedEvent, EventTopicView, PublishBody, parse_read_from,
};
use crate::broker::TopicName;
use crate::events::{EventError, EventsError, GroupName, ReadFrom, StoreError};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/events/publish", post(publish))
        .route("/v1/events/consume", post(consume))
        .route("/v1/events/ack", post(ack))
        .route("/v1/events/topics", get(topics))
        .route("/v1/events/topics/{*topic}", get(topic))
}

fn events_error(e: EventsError) -> Response {
    let status = match &e {
        EventsError::Invalid(EventError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        EventsError::Invalid(_) => StatusCode::BAD_REQUEST,
        EventsError::UnknownTopic(_) | EventsError::Store(StoreError::UnknownTopic(_)) => {
            StatusCode::NOT_FOUND
        }
        EventsError::Store(StoreError::InvalidOffset { .. } | StoreError::InvalidGroup(_)) => {
            StatusCode::BAD_REQUEST
        }
        EventsError::Store(StoreError::CommitBackwards { .. }) => StatusCode::CONFLICT,
        EventsError::Store(StoreError::TooManyTopics { .. }) => StatusCode::TOO_MANY_REQUESTS,
        EventsError::Store(_) | EventsError::NotStored(_) => StatusCode::INTERNAL_SERVER_ERROR,
        EventsError::Overlay(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let detail = match e {
        EventsError::Store(StoreError::UnknownTopic(topic)) => {
            EventsError::UnknownTopic(topic).to_string()
        }
        other => other.to_string(),
    };
    error(status, detail)
}

fn bad_request(detail: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, detail)
}

fn parse_topic(text: &str) -> Result<TopicName, String> {
    text.parse().map_err(|e| format!("topic `{text}`: {e}"))
}

fn parse_group(text: &str) -> Result<GroupName, String> {
    text.parse().map_err(|e| format!("group `{text}`: {e}"))
}

async fn publish(
    State(s): State<AppState>,
    body: Result<Json<PublishBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return bad_request(e.body_text()),
    };
    let topic = match parse_topic(&body.topic) {
        Ok(t) => t,
        Err(e) => return bad_request(e),
    };
    let content_type = body
        .content_type
        .unwrap_or_else(|| "application/json".to_owned());
    match s
        .events
        .publish(topic, body.body.into_bytes(), content_type, body.headers)
        .await
    {
        Ok(published) => Json(published).into_response(),
        Err(e) => events_error(e),
    }
}

async fn consume(
    State(s): State<AppState>,
    body: Result<Json<ConsumeBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return bad_request(e.body_text()),
    };
    let (topic, group) = match (parse_topic(&body.topic), parse_group(&body.group)) {
        (Ok(t), Ok(g)) => (t, g),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    let from = match body.from.as_deref().map(parse_read_from) {
        None => ReadFrom::Earliest,
        Some(Ok(from)) => from,
        Some(Err(e)) => return bad_request(e),
    };
    let max = body.max.unwrap_or(usize::MAX).max(1);
    let wait = Duration::from_millis(body.wait_ms.unwrap_or(0));
    match s.events.consume(&topic, &group, from, max, wait).await {
        Ok(consumed) => Json(ConsumeReply {
            events: consumed
                .events
                .into_iter()
                .map(|stored| ConsumedEvent {
                    offset: stored.offset,
                    id: stored.id,
                    publisher: stored.event.publisher,
                    seq: stored.event.seq,
                    timestamp_ms: stored.event.timestamp_ms,
                    headers: stored.event.headers,
                    content_type: stored.event.content_type,
                    body: String::from_utf8_lossy(&stored.event.body).into_owned(),
                })
                .collect(),
            next_offset: consumed.next_offset,
        })
        .into_response(),
        Err(e) => events_error(e),
    }
}

async fn ack(State(s): State<AppState>, body: Result<Json<AckBody>, JsonRejection>) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(e) => return bad_request(e.body_text()),
    };
    let (topic, group) = match (parse_topic(&body.topic), parse_group(&body.group)) {
        (Ok(t), Ok(g)) => (t, g),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    match s.events.ack(&topic, &group, body.next_offset).await {
        Ok(()) => Json(body).into_response(),
        Err(e) => events_error(e),
    }
}

async fn topics(State(s): State<AppState>) -> Response {
    match s.events.store().topics() {
        Ok(topics) => Json(topics).into_response(),
        Err(e) => events_error(e.into()),
    }
}

async fn topic(State(s): State<AppState>, Path(topic): Path<String>) -> Response {
    let topic = match parse_topic(&topic) {
        Ok(t) => t,
        Err(e) => return bad_request(e),
    };
    let info = match s.events.info(&topic) {
        Ok(info) => info,
        Err(e) => return events_error(e),
    };
    Json(EventTopicView {
        info,
        gossip_peers: s.events.gossip_peers(&topic).await,
        providers: s.events.providers(&topic).await,
    })
    .into_response()
}
