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

/// `POST /v1/broker/publish` and `POST /v1/events/publish`: a body to publish on a topic.
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

/// `POST /v1/events/consume`: read a topic as a consumer group, without acknowledging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumeBody {
    /// The topic.
    pub topic: String,
    /// The consumer group.
    pub group: String,
    /// Where a group new to the topic starts: `earliest` (default), `latest`, an offset
    /// (`42`) or a unix time in ms (`@1700000000000`). Ignored for a group that has a
    /// position.
    #[serde(default)]
    pub from: Option<String>,
    /// Most events to return (the node caps it too).
    #[serde(default)]
    pub max: Option<usize>,
    /// How long to wait for an event when there is none yet, in ms (capped at 30 s).
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

/// Parses a `from` position: `earliest`, `latest`, an offset, or `@` and a unix time in ms.
pub fn parse_read_from(text: &str) -> Result<crate::events::ReadFrom, String> {
    use crate::events::ReadFrom;
    let text = text.trim();
    match text {
        "earliest" => Ok(ReadFrom::Earliest),
        "latest" => Ok(ReadFrom::Latest),
        _ => {
            let bad = || {
                format!(
                    "`{text}` is not a position: use earliest, latest, an offset (e.g. 42) or \
                     @<unix-ms> (e.g. @1700000000000)"
                )
            };
            match text.strip_prefix('@') {
                Some(ms) => ms.parse().map(ReadFrom::Timestamp).map_err(|_| bad()),
                None => text.parse().map(ReadFrom::Offset).map_err(|_| bad()),
            }
        }
    }
}

/// One event as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumedEvent {
    /// Its offset in this node's log of the topic.
    pub offset: u64,
    /// Its id (hex).
    pub id: crate::events::EventId,
    /// Who published it.
    pub publisher: PeerId,
    /// Its seq among the publisher's events on the topic.
    pub seq: u64,
    /// When it was published, unix ms, by the publisher's clock.
    pub timestamp_ms: u64,
    /// Metadata headers.
    pub headers: std::collections::BTreeMap<String, String>,
    /// MIME type of the body.
    pub content_type: String,
    /// The payload as text (invalid UTF-8 replaced).
    pub body: String,
}

/// The answer to `POST /v1/events/consume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumeReply {
    /// The events, in offset order.
    pub events: Vec<ConsumedEvent>,
    /// What to acknowledge once they are handled (`POST /v1/events/ack`).
    pub next_offset: u64,
}

/// `POST /v1/events/ack`: the group handled everything below `next_offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckBody {
    /// The topic.
    pub topic: String,
    /// The consumer group.
    pub group: String,
    /// The offset after the last event handled.
    pub next_offset: u64,
}

/// `GET /v1/events/topics/{topic}`: what this node holds, and who else carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTopicView {
    /// Offsets, counts and consumer groups on this node.
    #[serde(flatten)]
    pub info: crate::events::TopicInfo,
    /// Connected peers subscribed to the topic's gossip.
    pub gossip_peers: usize,
    /// Peers announcing the topic in the DHT (this node left out).
    pub providers: Vec<PeerId>,
}

#[cfg(test)]
mod tests {
    use super::parse_read_from;
    use crate::events::ReadFrom;

    #[test]
    fn read_positions_parse() {
        assert_eq!(parse_read_from("earliest"), Ok(ReadFrom::Earliest));
        assert_eq!(parse_read_from("latest"), Ok(ReadFrom::Latest));
        assert_eq!(parse_read_from("42"), Ok(ReadFrom::Offset(42)));
        assert_eq!(parse_read_from("@17"), Ok(ReadFrom::Timestamp(17)));
        for bad in ["", "soon", "-1", "@", "@x"] {
            assert!(parse_read_from(bad).is_err(), "{bad}");
        }
    }
}

/// `POST /v1/deployments`: a component to deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployBody {
    /// The text of `micro.toml`, if the service has one.
    #[serde(default)]
    pub manifest: Option<String>,
    /// The service's name; overrides the manifest's (needed without a manifest).
    #[serde(default)]
    pub name: Option<String>,
    /// The version; overrides the manifest's.
    #[serde(default)]
    pub version: Option<String>,
    /// The component (binary, or WAT text), base64.
    pub component: String,
}

/// `DELETE /v1/deployments/{name}[@version]`: what stopped and what still runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillReply {
    /// The versions stopped.
    pub stopped: Vec<micro_wasm_runtime::ServiceStatus>,
    /// The versions of the service still running, current first.
    pub running: Vec<micro_wasm_runtime::ServiceStatus>,
}

/// `GET /v1/deployments/{name}/logs` query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsQuery {
    /// Lines of history to send first.
    #[serde(default = "default_log_lines")]
    pub lines: usize,
    /// Keep the stream open and send new lines as they are written.
    #[serde(default)]
    pub follow: bool,
}

fn default_log_lines() -> usize {
    100
}

/// `POST /v1/sources`: build a service from source and deploy it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDeployBody {
    /// `repo[@rev]` or a folder on the node's machine.
    pub source: String,
    /// Poll the source for new commits this often, in seconds.
    #[serde(default)]
    pub follow_secs: Option<u64>,
    /// Deploy on this node instead (it must allow deploys from us).
    #[serde(default)]
    pub on: Option<PeerId>,
}

/// One line of the NDJSON stream of a deploy from source or an update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployEvent {
    /// A phase started, or a build line.
    Progress(crate::source::Progress),
    /// Deployed.
    Done(crate::wasm::SourceDeployed),
    /// `update`: the source has no new commit.
    UpToDate {
        /// The commit running.
        commit: String,
    },
    /// It failed; nothing changed on the node.
    Error(ApiError),
}

/// `GET /v1/reputation`: the scores this node computed last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReputationView {
    /// This node.
    pub peer: PeerId,
    /// Sum of all ledger weights (10^12 = all trust).
    pub total_weight: u64,
    /// Peers with a positive score.
    pub ranked_peers: usize,
    /// The best scored peers, best first.
    pub top: Vec<ScoreRow>,
}

/// One peer's score in a [`ReputationView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRow {
    /// The peer.
    pub peer: PeerId,
    /// 1 = best.
    pub rank: usize,
    /// Its share of all trust, in [0, 1].
    pub score: f64,
    /// Its ledger weight (10^12 = all trust).
    pub weight: u64,
    /// Whether it seeds the computation (a super node).
    pub pre_trusted: bool,
}

/// `GET /v1/ledger/balance`: one account's standing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceView {
    /// The account (hex ed25519 key).
    pub account: String,
    /// Its balance.
    pub balance: u64,
    /// Its next transfer's seq.
    pub next_seq: u64,
    /// The seq from which it is frozen for equivocating, if it is.
    pub frozen_from: Option<u64>,
    /// Whether it is this node's account.
    pub own: bool,
    /// The network (genesis hash, hex).
    pub network: String,
}

/// `GET /v1/ledger/balance` and `/v1/ledger/history` query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountQuery {
    /// A hex account or a peer id; this node's account if absent.
    #[serde(default)]
    pub account: Option<String>,
    /// Most history entries.
    #[serde(default = "default_history")]
    pub limit: usize,
}

fn default_history() -> usize {
    20
}

/// `POST /v1/ledger/transfers`: pay from this node's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferBody {
    /// The recipient: a hex account or a peer id.
    pub to: String,
    /// Tokens to move.
    pub amount: u64,
    /// A note for the recipient (at most 256 bytes).
    #[serde(default)]
    pub memo: String,
}

/// What `POST /v1/ledger/transfers` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferReply {
    /// The transfer id (hex).
    pub id: String,
    /// Its seq in this node's account.
    pub seq: u64,
    /// The recipient account.
    pub to: String,
    /// The amount.
    pub amount: u64,
    /// This node's balance after it.
    pub balance: u64,
}

/// `POST /v1/tokens`: issue an API token for every endpoint matching `endpoints` of every
/// service matching `services` (names, or prefixes ending in `*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueTokenBody {
    /// Services (at least one).
    pub services: Vec<String>,
    /// Endpoint patterns; empty = every endpoint.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Lifetime in ms; the node's default (24 h) if absent.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    /// Most its calls may cost in all; absent = no limit.
    #[serde(default)]
    pub spend_limit: Option<u64>,
}

/// `POST /v1/tokens/refresh`: replace a token this node issued by a new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenBody {
    /// The token to refresh (it may have expired).
    pub token: String,
    /// The new token's lifetime in ms; the old one's if absent.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
}
