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
}

/// An error in Micro's model: `{id, code, detail, status}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
