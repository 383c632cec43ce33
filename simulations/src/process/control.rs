//! A node's control API, as process mode uses it: the address and credential from its data
//! dir, and the few `/v1` routes the driver needs. Every request has a timeout; the
//! subscribe stream is read line by line with a bound on a line's size.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use micro_node::api::{CallBody, CallReply, ControlFile, PublishBody, StreamLine};
use micro_node::data_dir::files;
use micro_node::overlay::LocalInfo;
use micro_node::registry::ServiceSummary;
use micro_node::services::ServeSpec;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Longest a request may take besides a call's own deadline.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest line accepted from the subscribe stream (the simulation's messages are ids of a
/// few dozen bytes; the node's own cap on a body is far larger, so this bounds the buffer).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A control API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A file of the data dir could not be read or parsed (the node is not up yet).
    #[error("{path}: {reason}")]
    DataDir {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The request did not complete (connection refused, timeout, bad body).
    #[error("{route} at {addr}: {source}")]
    Request {
        /// The route.
        route: String,
        /// The control address.
        addr: SocketAddr,
        /// Why.
        source: reqwest::Error,
    },
    /// The node answered with an error status.
    #[error("{route} at {addr}: {status}: {detail}")]
    Status {
        /// The route.
        route: String,
        /// The control address.
        addr: SocketAddr,
        /// The HTTP status.
        status: u16,
        /// The node's explanation.
        detail: String,
    },
    /// The subscribe stream broke its bounds or its format.
    #[error("subscribe stream at {addr}: {reason}")]
    Stream {
        /// The control address.
        addr: SocketAddr,
        /// What was wrong.
        reason: String,
    },
}

/// One node's control API.
#[derive(Clone)]
pub struct Control {
    http: reqwest::Client,
    addr: SocketAddr,
    credential: String,
}

impl Control {
    /// Reads the control address (`control.json`) and credential (`control.token`) the node
    /// wrote into `data_dir`. Fails while the node has not written them yet.
    pub fn open(data_dir: &Path) -> Result<(Control, ControlFile), ControlError> {
        let read = |name: &str| {
            let path = data_dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| ControlError::DataDir {
                path,
                reason: e.to_string(),
            })
        };
        let file_text = read(files::CONTROL)?;
        let file: ControlFile =
            serde_json::from_str(&file_text).map_err(|e| ControlError::DataDir {
                path: data_dir.join(files::CONTROL),
                reason: e.to_string(),
            })?;
        let credential = read(files::CREDENTIAL)?.trim().to_owned();
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|source| ControlError::Request {
                route: "(client)".into(),
                addr: file.addr,
                source,
            })?;
        let control = Control {
            http,
            addr: file.addr,
            credential,
        };
        Ok((control, file))
    }

    /// Where the API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET /v1/id`: the node's overlay info (joined, listen addresses, counters).
    pub async fn id(&self) -> Result<LocalInfo, ControlError> {
        self.get("/id").await
    }

    /// `POST /v1/services`: serves an HTTP backend.
    pub async fn serve(&self, spec: &ServeSpec) -> Result<(), ControlError> {
        let _: serde_json::Value = self.post("/services", spec, REQUEST_TIMEOUT).await?;
        Ok(())
    }

    /// `GET /v1/network/services`: the services this node's directory lists.
    pub async fn network_services(&self) -> Result<Vec<ServiceSummary>, ControlError> {
        self.get("/network/services").await
    }

    /// `POST /v1/call`, waiting the call's own deadline plus [`REQUEST_TIMEOUT`].
    pub async fn call(&self, body: &CallBody) -> Result<CallReply, ControlError> {
        let deadline = Duration::from_millis(body.timeout_ms.unwrap_or(0));
        self.post("/call", body, deadline + REQUEST_TIMEOUT).await
    }

    /// `POST /v1/broker/publish`.
    pub async fn publish(&self, body: &PublishBody) -> Result<(), ControlError> {
        let _: serde_json::Value = self.post("/broker/publish", body, REQUEST_TIMEOUT).await?;
        Ok(())
    }

    /// `GET /v1/broker/subscribe`: resolves once the node subscribed (it answers after
    /// subscribing); read messages with [`Subscription::next`].
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription, ControlError> {
        let route = "/broker/subscribe";
        // No overall timeout: the stream lasts the run. Connecting is bounded.
        let request = self
            .http
            .get(self.url(route))
            .query(&[("topic", topic)])
            .bearer_auth(&self.credential);
        let response = tokio::time::timeout(REQUEST_TIMEOUT, request.send())
            .await
            .map_err(|_| ControlError::Stream {
                addr: self.addr,
                reason: format!("no answer within {REQUEST_TIMEOUT:?}"),
            })?
            .map_err(|source| self.request_error(route, source))?;
        let response = self.check(route, response).await?;
        Ok(Subscription {
            response,
            addr: self.addr,
            pending: Vec::new(),
            lines: VecDeque::new(),
        })
    }

    fn url(&self, route: &str) -> String {
        format!("http://{}{}{route}", self.addr, micro_node::api::API_PREFIX)
    }

    fn request_error(&self, route: &str, source: reqwest::Error) -> ControlError {
        ControlError::Request {
            route: route.to_owned(),
            addr: self.addr,
            source,
        }
    }

    async fn get<T: DeserializeOwned>(&self, route: &str) -> Result<T, ControlError> {
        let request = self.http.get(self.url(route)).timeout(REQUEST_TIMEOUT);
        self.send(route, request).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        route: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, ControlError> {
        let request = self.http.post(self.url(route)).json(body).timeout(timeout);
        self.send(route, request).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        route: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ControlError> {
        let response = request
            .bearer_auth(&self.credential)
            .send()
            .await
            .map_err(|source| self.request_error(route, source))?;
        self.check(route, response)
            .await?
            .json()
            .await
            .map_err(|source| self.request_error(route, source))
    }

    async fn check(
        &self,
        route: &str,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, ControlError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let detail = response
            .json::<micro_node::api::ApiError>()
            .await
            .map_or_else(|_| "no detail".to_owned(), |e| e.detail);
        Err(ControlError::Status {
            route: route.to_owned(),
            addr: self.addr,
            status: status.as_u16(),
            detail,
        })
    }
}

/// A broker subscription's NDJSON stream.
pub struct Subscription {
    response: reqwest::Response,
    addr: SocketAddr,
    pending: Vec<u8>,
    lines: VecDeque<StreamLine>,
}

impl Subscription {
    /// The next line; `None` when the node ended the stream (it stopped or was killed).
    /// Fails on a line longer than [`MAX_LINE_BYTES`] or one that is not a stream line.
    pub async fn next(&mut self) -> Result<Option<StreamLine>, ControlError> {
        loop {
            if let Some(line) = self.lines.pop_front() {
                return Ok(Some(line));
            }
            let chunk = match self.response.chunk().await {
                Ok(Some(chunk)) => chunk,
                // A killed node breaks the connection off: the same end as a clean one.
                Ok(None) | Err(_) => return Ok(None),
            };
            self.pending.extend_from_slice(&chunk);
            while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let parsed = serde_json::from_slice::<StreamLine>(&line).map_err(|e| {
                    ControlError::Stream {
                        addr: self.addr,
                        reason: format!("not a stream line: {e}"),
                    }
                })?;
                self.lines.push_back(parsed);
            }
            if self.pending.len() > MAX_LINE_BYTES {
                return Err(ControlError::Stream {
                    addr: self.addr,
                    reason: format!("a line longer than {MAX_LINE_BYTES} bytes"),
                });
            }
        }
    }
}
