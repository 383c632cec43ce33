//! The HTTP gateway: `POST /{service}/{endpoint}` with a body → RPC anywhere in the network →
//! the answer as HTTP. Loopback by default; every failure is a JSON error in Micro's model.

use std::net::SocketAddr;
use std::str::FromStr;

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
use crate::registry::{EndpointName, ServiceRef};
use crate::services::{CallRequest, Services};

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

/// Serves the gateway until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    services: Services,
    max_body: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = router(services, max_body);
    info!(addr = ?listener.local_addr().ok(), "HTTP gateway listening");
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

fn router(services: Services, max_body: usize) -> Router {
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
        .with_state(services)
}

fn error(e: ApiError) -> Response {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(e)).into_response()
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
    State(services): State<Services>,
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
    let service: ServiceRef = match parse("service name", &service) {
        Ok(s) => s,
        Err(e) => return error(e),
    };
    let endpoint: EndpointName = match parse("endpoint name", &endpoint) {
        Ok(e) => e,
        Err(e) => return error(e),
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
    match services.call(request).await {
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
