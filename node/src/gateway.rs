//! The HTTP gateway: `POST /{service}/{endpoint}` with a body → RPC anywhere in the network →
//! the answer as HTTP. Loopback by default; every failure is a JSON error in Micro's model.
//!
//! When it requires API tokens ([`crate::config::GatewayConfig::requires_token`]) every call
//! passes, in order: a token present, genuine and from a trusted issuer, not revoked, not
//! expired (401); the rules allow the endpoint (403); the call's price fits the token's spend
//! limit (402, reserved before the call and settled after it).

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::NodeError;
use crate::api::ApiError;
use crate::registry::{EndpointName, ServiceRef, now_ms};
use crate::services::{CallRequest, Services};
use crate::tokens::{ApiTokens, Denied, Rule};

/// Where gateway errors say they came from.
const ERROR_ID: &str = "micro.node.gateway";

/// Request header carrying the call's deadline in milliseconds.
pub const TIMEOUT_HEADER: &str = "micro-timeout-ms";
/// Response header naming the node that answered.
pub const PROVIDER_HEADER: &str = "micro-provider";

/// Binds the gateway's address.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::GatewayBind { addr, source })
}

/// Who may call through the gateway.
#[derive(Clone)]
pub(crate) struct Gate {
    /// The node's tokens.
    pub tokens: ApiTokens,
    /// Whether every call needs a token.
    pub required: bool,
    /// The config's rules, weighed with each token's scopes.
    pub rules: Arc<[Rule]>,
}

#[derive(Clone)]
struct GatewayState {
    services: Services,
    gate: Gate,
}

/// Serves the gateway until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    services: Services,
    gate: Gate,
    max_body: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let required = gate.required;
    let app = router(GatewayState { services, gate }, max_body);
    info!(addr = ?listener.local_addr().ok(), tokens_required = required, "HTTP gateway listening");
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        warn!(error = %e, "HTTP gateway stopped with an error");
    }
}

fn router(state: GatewayState, max_body: usize) -> Router {
    Router::new()
        .route("/{service}/{endpoint}", post(call))
        .fallback(|| async {
            error(ApiError::new(
                ERROR_ID,
                404,
                "use POST /{service}/{endpoint}, e.g. POST /greeter/Say.Hello",
            ))
        })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

fn error(e: ApiError) -> Response {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(e)).into_response()
}

/// A refused call: logged, and answered in Micro's model (401s say how to authenticate).
fn denied(d: Denied, service: &str, endpoint: &str) -> Response {
    warn!(service = ?service, endpoint = ?endpoint, status = d.status(), reason = %d, "gateway call refused");
    let mut response = error(ApiError::new(ERROR_ID, d.status(), d.to_string()));
    if d.status() == 401 {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"micro\""),
        );
    }
    response
}

/// The token after `Bearer ` in the `Authorization` header, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

fn parse<T: FromStr>(what: &str, value: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| ApiError::new(ERROR_ID, 400, format!("bad {what}: {e}")))
}

async fn call(
    State(GatewayState { services, gate }): State<GatewayState>,
    Path((service, endpoint)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let code = rejection.status().as_u16();
            return error(ApiError::new(ERROR_ID, code, rejection.body_text()));
        }
    };
    let token = if gate.required {
        match gate.tokens.verify_presented(bearer(&headers), now_ms()) {
            Ok(token) => Some(token),
            Err(d) => return denied(d, &service, &endpoint),
        }
    } else {
        None
    };
    let service: ServiceRef = match parse("service name", &service) {
        Ok(s) => s,
        Err(e) => return error(e),
    };
    let endpoint: EndpointName = match parse("endpoint name", &endpoint) {
        Ok(e) => e,
        Err(e) => return error(e),
    };
    let admitted = match token {
        Some(token) => {
            match gate
                .tokens
                .admit(token, service.name.as_str(), endpoint.as_str(), &gate.rules)
            {
                Ok(admitted) => Some(admitted),
                Err(d) => return denied(d, service.name.as_str(), endpoint.as_str()),
            }
        }
        None => None,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    if content_type.starts_with("application/json")
        && let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body)
    {
        return error(ApiError::new(
            ERROR_ID,
            400,
            format!("malformed JSON body: {e}"),
        ));
    }
    let timeout_ms = match headers
        .get(TIMEOUT_HEADER)
        .map(|v| v.to_str().map(str::parse::<u64>))
    {
        None => None,
        Some(Ok(Ok(ms))) => Some(ms),
        Some(_) => {
            return error(ApiError::new(
                ERROR_ID,
                400,
                format!("{TIMEOUT_HEADER} must be a number of milliseconds"),
            ));
        }
    };
    let grant = match admitted {
        Some(admitted) => {
            let price = services.max_price_per_call(&service.name);
            match gate.tokens.reserve(admitted, price) {
                Ok(grant) => Some(grant),
                Err(d) => return denied(d, service.name.as_str(), endpoint.as_str()),
            }
        }
        None => None,
    };
    let request = CallRequest {
        service: service.name,
        version: service.version,
        endpoint,
        body: body.to_vec(),
        content_type,
        headers: Default::default(),
        timeout_ms,
        node: None,
    };
    let result = services.call(request).await;
    if let Some(grant) = grant {
        // What the provider really charged: 0 for a call from the free allowance.
        let cost = result.as_ref().ok().map(|outcome| outcome.charged);
        gate.tokens.settle(grant, cost);
    }
    match result {
        Ok(outcome) => {
            let status = StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::OK);
            let mut response = (status, outcome.body).into_response();
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&outcome.content_type) {
                headers.insert(header::CONTENT_TYPE, v);
            }
            if let Ok(v) = HeaderValue::from_str(&outcome.provider.to_string()) {
                headers.insert(PROVIDER_HEADER, v);
            }
            response
        }
        Err(e) => error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_come_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer mt1_a.b"),
        );
        assert_eq!(bearer(&headers), Some("mt1_a.b"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer mt1_a.b"),
        );
        assert_eq!(bearer(&headers), Some("mt1_a.b"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcg=="),
        );
        assert_eq!(bearer(&headers), None);
    }
}
