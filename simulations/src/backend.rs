//! The HTTP backends simulated services answer from: one that echoes the request body (what
//! honest providers serve) and one that answers wrongly (what wrong-answers adversaries
//! serve). In-process, on 127.0.0.1, shared by every node of the run.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use tokio::task::JoinHandle;

/// The two backends; stop when the last clone is dropped.
#[derive(Clone)]
pub struct Backends(Arc<Inner>);

struct Inner {
    echo: SocketAddr,
    wrong: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Backends {
    /// Starts both.
    pub async fn start() -> Result<Backends> {
        let echo = Router::new().route(
            &format!("/{}", crate::load::ENDPOINT),
            post(|body: Bytes| async move { body }),
        );
        let wrong = Router::new().route(
            &format!("/{}", crate::load::ENDPOINT),
            post(|| async { "{\"nonce\":\"wrong\"}" }),
        );
        let (echo, echo_task) = serve(echo).await?;
        let (wrong, wrong_task) = serve(wrong).await?;
        Ok(Backends(Arc::new(Inner {
            echo,
            wrong,
            tasks: vec![echo_task, wrong_task],
        })))
    }

    /// Base URL of the echo backend.
    pub fn echo_url(&self) -> String {
        format!("http://{}", self.0.echo)
    }

    /// Base URL of the wrong backend.
    pub fn wrong_url(&self) -> String {
        format!("http://{}", self.0.wrong)
    }
}

async fn serve(app: Router) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, task))
}
