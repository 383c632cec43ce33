//! A tiny HTTP backend for service tests: answers `POST /Say.Hello {"name": N}` with
//! `{"message": "Hello N", "served_by": TAG}`, `POST /Fail` with a 500, and never answers
//! `POST /Slow`.

use std::net::SocketAddr;

use anyhow::Result;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// A running test backend; stops when dropped.
pub struct Backend {
    /// Its address.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Backend {
    /// Its base URL, for `serve --http`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn hello(State(tag): State<String>, Json(body): Json<Value>) -> Json<Value> {
    let name = body["name"].as_str().unwrap_or("stranger");
    Json(json!({ "message": format!("Hello {name}"), "served_by": tag }))
}

/// Starts a backend on 127.0.0.1 that signs its answers with `tag`.
pub async fn spawn(tag: &str) -> Result<Backend> {
    let app = Router::new()
        .route("/Say.Hello", post(hello))
        .route(
            "/Fail",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "backend exploded") }),
        )
        .route("/Slow", post(std::future::pending::<&'static str>))
        .with_state(tag.to_owned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Backend { addr, task })
}
