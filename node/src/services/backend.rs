//! Calling a local HTTP backend: an RPC to endpoint `E` becomes `POST {url}/E`.

use std::time::Duration;

use micro_overlay::rpc::error_response;
use micro_overlay::rpc_proto::{RpcRequest, RpcResponse};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

/// Where backend errors say they came from.
const ERROR_ID: &str = "micro.node.backend";

/// Request headers never forwarded to a backend (hop-by-hop or set by the client).
const SKIPPED_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "content-type",
];

fn forwarded_headers(request: &RpcRequest) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        if SKIPPED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.insert(name, value);
        }
    }
    headers
}

/// Forwards `request` to the backend at `base` and turns the answer into an RPC response:
/// 2xx passes through; a 4xx keeps its code; 5xx becomes 502; an unreachable backend 503; a
/// timeout 408; a body over `max_response` 502.
pub(super) async fn call(
    http: &reqwest::Client,
    base: &str,
    request: &RpcRequest,
    timeout: Duration,
    max_response: usize,
) -> RpcResponse {
    let url = format!("{}/{}", base.trim_end_matches('/'), request.endpoint);
    let content_type = if request.content_type.is_empty() {
        "application/json"
    } else {
        request.content_type.as_str()
    };
    let sent = http
        .post(&url)
        .headers(forwarded_headers(request))
        .header(CONTENT_TYPE, content_type)
        .timeout(timeout)
        .body(request.body.clone())
        .send()
        .await;
    let mut response = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return error_response(
                &request.id,
                ERROR_ID,
                408,
                format!("backend {url} did not answer in time"),
            );
        }
        Err(e) => {
            return error_response(
                &request.id,
                ERROR_ID,
                503,
                format!("backend {url} unreachable: {e}"),
            );
        }
    };
    let status = response.status();
    let response_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(timeout, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                if body.len() + chunk.len() > max_response {
                    return error_response(
                        &request.id,
                        ERROR_ID,
                        502,
                        format!("backend {url} answered more than {max_response} bytes"),
                    );
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                return error_response(
                    &request.id,
                    ERROR_ID,
                    502,
                    format!("backend {url} broke off: {e}"),
                );
            }
            Err(_) => {
                return error_response(
                    &request.id,
                    ERROR_ID,
                    408,
                    format!("backend {url} did not finish in time"),
                );
            }
        }
    }
    if status.is_success() {
        return RpcResponse {
            id: request.id.clone(),
            status: u32::from(status.as_u16()),
            body,
            content_type: response_type,
            ..Default::default()
        };
    }
    let detail = String::from_utf8_lossy(&body[..body.len().min(1024)])
        .trim()
        .to_owned();
    let code = if status.is_client_error() {
        status.as_u16()
    } else {
        502
    };
    let detail = if detail.is_empty() {
        format!("backend answered {status}")
    } else {
        format!("backend answered {status}: {detail}")
    };
    error_response(&request.id, ERROR_ID, code, detail)
}
