//! The control API client: finds the running node through its data dir and speaks `/v1`.

use std::fs;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use micro_node::api::{ApiError, ControlFile};
use micro_node::data_dir::files;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Longest line accepted from a stream.
const MAX_LINE_BYTES: usize = 1 << 20;

/// Extra time the client waits beyond what the node was asked to spend.
const RESPONSE_GRACE: Duration = Duration::from_secs(10);

/// A client bound to one node's control API.
pub struct Client {
    http: reqwest::Client,
    addr: SocketAddr,
    credential: String,
    data_dir: PathBuf,
}

fn start_hint(data_dir: &Path) -> String {
    if data_dir == micro_node::default_data_dir() {
        "start one with `micro-node`".to_owned()
    } else {
        format!(
            "start one with `micro-node --data-dir {}`",
            data_dir.display()
        )
    }
}

impl Client {
    /// Finds the node of `data_dir` (or at `control`), with the data dir's credential (or
    /// `credential`).
    pub fn new(
        data_dir: &Path,
        control: Option<SocketAddr>,
        credential: Option<String>,
    ) -> Result<Self> {
        let not_running = || {
            anyhow!(
                "no node is running on {}; {}",
                data_dir.display(),
                start_hint(data_dir)
            )
        };
        let addr = match control {
            Some(addr) => addr,
            None => {
                let path = data_dir.join(files::CONTROL);
                let text = match fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(e) if e.kind() == ErrorKind::NotFound => return Err(not_running()),
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot read {}", path.display()));
                    }
                };
                let file: ControlFile = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a control file", path.display()))?;
                file.addr
            }
        };
        let credential = match credential {
            Some(secret) => secret,
            None => {
                let path = data_dir.join(files::CREDENTIAL);
                match fs::read_to_string(&path) {
                    Ok(secret) => secret.trim().to_owned(),
                    Err(e) if e.kind() == ErrorKind::NotFound => return Err(not_running()),
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("cannot read the control credential {}", path.display())
                        });
                    }
                }
            }
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            addr,
            credential,
            data_dir: data_dir.to_owned(),
        })
    }

    /// `GET /v1/<path>` and decode the JSON answer. `budget` is how long the node may work on
    /// it; the client waits that plus a grace period.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        budget: Duration,
    ) -> Result<T> {
        let request = self.http.get(self.url(path)).query(query);
        self.send(request, Some(budget))
            .await?
            .json()
            .await
            .with_context(|| self.unexpected(path))
    }

    /// `POST /v1/<path>` with a JSON body; decodes the JSON answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        budget: Duration,
    ) -> Result<T> {
        let request = self.http.post(self.url(path)).json(body);
        self.send(request, Some(budget))
            .await?
            .json()
            .await
            .with_context(|| self.unexpected(path))
    }

    /// `GET /v1/<path>` as a stream of lines: `on_start` once the node accepted the request,
    /// then `on_line` for each line as it arrives, until the node ends the stream (it stops)
    /// or `on_line` fails.
    pub async fn stream_lines(
        &self,
        path: &str,
        query: &[(&str, String)],
        on_start: impl FnOnce(),
        on_line: impl FnMut(&str) -> Result<()>,
    ) -> Result<()> {
        let request = self.http.get(self.url(path)).query(query);
        // No overall timeout: a subscription lasts as long as the user wants.
        let response = self.send(request, None).await?;
        on_start();
        read_lines(response, on_line).await
    }

    /// `POST /v1/<path>` with a JSON body, reading the answer as NDJSON lines until the node
    /// ends it (no overall timeout: builds take as long as their limits allow).
    pub async fn post_stream_lines<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        on_line: impl FnMut(&str) -> Result<()>,
    ) -> Result<()> {
        let request = self.http.post(self.url(path)).json(body);
        let response = self.send(request, None).await?;
        read_lines(response, on_line).await
    }

    /// `GET /v1/<path>` as text.
    pub async fn get_text(&self, path: &str, budget: Duration) -> Result<String> {
        let response = self
            .send(self.http.get(self.url(path)), Some(budget))
            .await?;
        Ok(response.text().await?)
    }

    /// `DELETE /v1/<path>`.
    pub async fn delete(&self, path: &str, budget: Duration) -> Result<()> {
        self.send(self.http.delete(self.url(path)), Some(budget))
            .await
            .map(drop)
    }

    /// `DELETE /v1/<path>`; decodes the JSON answer.
    pub async fn delete_json<T: DeserializeOwned>(
        &self,
        path: &str,
        budget: Duration,
    ) -> Result<T> {
        self.send(self.http.delete(self.url(path)), Some(budget))
            .await?
            .json()
            .await
            .with_context(|| self.unexpected(path))
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}{path}", self.addr, micro_node::api::API_PREFIX)
    }

    fn unexpected(&self, path: &str) -> String {
        format!("the node's answer to {path} is not what this CLI expects")
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        budget: Option<Duration>,
    ) -> Result<reqwest::Response> {
        let mut request = request.bearer_auth(&self.credential);
        if let Some(budget) = budget {
            request = request.timeout(budget + RESPONSE_GRACE);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "no node is running on {} (nothing answers at {}); {}",
                    self.data_dir.display(),
                    self.addr,
                    start_hint(&self.data_dir)
                )
            } else {
                anyhow!("control API request failed: {e}")
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let error = response.json::<ApiError>().await.ok();
        let detail = error.as_ref().map_or("no detail", |e| e.detail.as_str());
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("the node refused the credential (401 Unauthorized): {detail}");
        }
        bail!(
            "{} {}: {detail}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("error")
        )
    }
}

/// Hands each line of an NDJSON `response` to `on_line` as it arrives; a line may not exceed
/// `MAX_LINE_BYTES`.
async fn read_lines(
    mut response: reqwest::Response,
    mut on_line: impl FnMut(&str) -> Result<()>,
) -> Result<()> {
    let mut pending = Vec::new();
    while let Some(chunk) = response.chunk().await.context("the stream broke off")? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            on_line(String::from_utf8_lossy(&line).trim_end())?;
        }
        if pending.len() > MAX_LINE_BYTES {
            bail!("the node sent a line longer than {MAX_LINE_BYTES} bytes");
        }
    }
    Ok(())
}
