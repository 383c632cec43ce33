//! Bearer-credential check in front of every control API route.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::warn;

use super::error;
use crate::credential::Credential;

pub(crate) async fn require_credential(
    State(credential): State<Credential>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(secret) if credential.matches(secret) => next.run(request).await,
        Some(_) => {
            warn!(path = %request.uri().path(), "control API request with a wrong credential");
            error(
                StatusCode::UNAUTHORIZED,
                "wrong credential: use the one in the node's data dir (control.token)",
            )
        }
        None => error(
            StatusCode::UNAUTHORIZED,
            "missing credential: send `Authorization: Bearer <control.token from the data dir>`",
        ),
    }
}
