//! The control API's wire types, shared by the daemon and the CLI.

use std::net::SocketAddr;

use micro_overlay::PeerId;
use serde::{Deserialize, Serialize};

/// Current version prefix of every control API path.
pub const API_PREFIX: &str = "/v1";

/// Where a running node's control API is: `control.json` in the data dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlFile {
    /// The loopback address the API listens on.
    pub addr: SocketAddr,
    /// The daemon's process id.
    pub pid: u32,
    /// The node's identity.
    pub peer_id: PeerId,
    /// Where the HTTP gateway listens, if it runs.
    #[serde(default)]
    pub gateway: Option<SocketAddr>,
}

/// `POST /v1/call`: a call made through the node, with a text body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallBody {
    /// The service.
    pub service: String,
    /// The endpoint, e.g. `Say.Hello`.
    pub endpoint: String,
    /// The payload (JSON text for JSON services).
    #[serde(default)]
    pub body: String,
    /// MIME type of the payload; `application/json` if absent.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Deadline in milliseconds; the node's default if absent.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Call this node's instance only.
    #[serde(default)]
    pub node: Option<PeerId>,
}

/// The answer to `POST /v1/call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReply {
    /// HTTP-like status.
    pub status: u16,
    /// Who answered.
    pub provider: PeerId,
    /// Providers tried.
    pub attempts: u32,
    /// Time of the answering attempt, ms.
    pub latency_ms: f64,
    /// MIME type of `body`.
    pub content_type: String,
    /// The payload as text (invalid UTF-8 replaced).
    pub body: String,
}

/// `POST /v1/broker/publish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishBody {
    /// The topic.
    pub topic: String,
    /// The payload, as text.
    #[serde(default)]
    pub body: String,
    /// MIME type; `application/json` if absent.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Metadata headers.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
}

/// One line of the `GET /v1/broker/subscribe` NDJSON stream: a message, or a note that the
/// subscriber fell behind and lost some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamLine {
    /// A message (body as text, invalid UTF-8 replaced).
    Message {
        /// Unique id.
        id: String,
        /// The topic.
        topic: String,
        /// Metadata headers.
        headers: std::collections::BTreeMap<String, String>,
        /// MIME type.
        content_type: String,
        /// The payload as text.
        body: String,
        /// Who published it.
        publisher: PeerId,
        /// When, Unix ms.
        timestamp_ms: u64,
    },
    /// This many messages were lost because the subscriber was too slow.
    Missed(u64),
}

/// One provider of one service, and how this node reaches it (`network routes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRoute {
    /// The service.
    pub service: String,
    /// The provider's version of it.
    pub version: String,
    /// The provider.
    pub peer_id: PeerId,
    /// `local`, `direct`, `dial` or `unknown`.
    pub reach: String,
    /// Overlay hops to the provider (0 = this node).
    pub hops: Option<u32>,
    /// Ping round trip to the provider, ms.
    pub rtt_ms: Option<f64>,
    /// Measured RPC latency to the provider (moving average), ms.
    pub call_latency_ms: Option<f64>,
}

/// `GET /v1/network/routes`: routes to nodes and to services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutesView {
    /// Every known node.
    pub nodes: Vec<micro_overlay::Route>,
    /// Every known provider of every service.
    pub services: Vec<ServiceRoute>,
}

/// An error in Micro's model: `{id, code, detail, status}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code} {status}: {detail}")]
pub struct ApiError {
    /// Where it came from, e.g. `micro.node.control`.
    pub id: String,
    /// HTTP-like status code.
    pub code: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// The status text for `code`.
    pub status: String,
}

impl ApiError {
    /// An error from `id` with `code` (its status text filled in).
    pub fn new(id: &str, code: u16, detail: impl Into<String>) -> Self {
        Self {
            id: id.to_owned(),
            code,
            detail: detail.into(),
            status: micro_overlay::rpc::status_text(code).to_owned(),
        }
    }
}

/// Query parameters of `GET /v1/network/graph`; absent ones take [`micro_overlay::crawl::CrawlLimits`]'s defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphQuery {
    /// Farthest distance listed.
    pub depth: Option<u32>,
    /// Most nodes listed.
    pub max_nodes: Option<usize>,
    /// Time budget in milliseconds.
    pub timeout_ms: Option<u64>,
}
