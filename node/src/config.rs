//! Node configuration: the overlay's, plus where the node keeps its data and serves its API.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use micro_overlay::crawl::CrawlLimits;
use micro_overlay::{OverlayConfig, PeerId};

use crate::tokens::Rule;

/// Default control API port on 127.0.0.1.
pub const DEFAULT_CONTROL_PORT: u16 = 7700;

/// Environment variable that overrides the default data dir.
pub const DATA_DIR_ENV: &str = "MICRO_DATA_DIR";

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The data dir (identity, credential, databases).
    pub data_dir: PathBuf,
    /// The overlay's configuration.
    pub overlay: OverlayConfig,
    /// The control API's configuration.
    pub control: ControlConfig,
    /// The service layer: registry heartbeats, RPC client, local backends.
    pub services: ServicesConfig,
    /// The HTTP gateway; `None` to run without one.
    pub gateway: Option<GatewayConfig>,
    /// The broker's limits.
    pub broker: crate::broker::BrokerConfig,
    /// Events: the store, event limits, backfill and retention timers.
    pub events: crate::events::EventsConfig,
    /// The wasm runtime. An empty `dir` means `<data_dir>/wasm`.
    pub wasm: micro_wasm_runtime::RuntimeConfig,
    /// Deploys from source: fetch and build limits.
    pub source: crate::source::SourceConfig,
    /// Reputation: the model and how often it is recomputed.
    pub reputation: crate::reputation::ReputationConfig,
    /// The token ledger: genesis and anti-entropy.
    pub ledger: crate::ledger::LedgerConfig,
    /// Metering of priced calls: settlement and rate limits.
    pub metering: crate::metering::MeteringConfig,
    /// API tokens: lifetimes, refresh window, bounds of the token store.
    pub tokens: crate::tokens::TokensConfig,
    /// How often sled writes its buffers to disk in the background, in ms; `None` leaves it
    /// to the explicit flushes that durability needs (an event publish, an ack). sled 0.34
    /// serialises the batches and transactions of *every* database in a process behind one
    /// lock, which a flush holds in read mode: with many nodes in one process (simulations),
    /// their background flushes stall each other's writes.
    pub db_flush_every_ms: Option<u64>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            overlay: OverlayConfig::default(),
            control: ControlConfig::default(),
            services: ServicesConfig::default(),
            gateway: Some(GatewayConfig::default()),
            broker: crate::broker::BrokerConfig::default(),
            events: crate::events::EventsConfig::default(),
            wasm: micro_wasm_runtime::RuntimeConfig::new(""),
            source: crate::source::SourceConfig::default(),
            reputation: crate::reputation::ReputationConfig::default(),
            ledger: crate::ledger::LedgerConfig::default(),
            metering: crate::metering::MeteringConfig::default(),
            tokens: crate::tokens::TokensConfig::default(),
            db_flush_every_ms: Some(500),
        }
    }
}

/// Default HTTP gateway port on 127.0.0.1.
pub const DEFAULT_GATEWAY_PORT: u16 = 7780;

/// The service layer's knobs.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// How often this node re-announces the services it serves.
    pub heartbeat_interval: Duration,
    /// How long an announcement stays valid without a newer one (expiry after a missed
    /// heartbeat or three).
    pub record_ttl: Duration,
    /// How long a service's provider list is reused before asking the directory and DHT again.
    pub provider_cache_ttl: Duration,
    /// Deadline of a call that names none.
    pub default_timeout: Duration,
    /// Most providers tried for one call.
    pub max_attempts: u32,
    /// How a provider is picked among the live ones.
    pub balance: Balance,
    /// Largest request body accepted by the gateway and local backends, in bytes.
    pub max_request_bytes: usize,
    /// Largest response body read from a local HTTP backend, in bytes.
    pub max_response_bytes: usize,
    /// Most services one node serves.
    pub max_local_services: usize,
    /// Most calls this node handles at once; beyond it callers get 503.
    pub max_concurrent_calls: usize,
    /// Whether `serve --http` may point at a non-loopback backend.
    pub allow_remote_backends: bool,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(30),
            record_ttl: Duration::from_secs(90),
            provider_cache_ttl: Duration::from_secs(5),
            default_timeout: Duration::from_secs(10),
            max_attempts: 3,
            balance: Balance::Random,
            max_request_bytes: 4 * 1024 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            max_local_services: 256,
            max_concurrent_calls: 1024,
            allow_remote_backends: false,
        }
    }
}

/// Provider choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// Uniformly at random among live providers.
    #[default]
    Random,
    /// Two at random, then the one with the lower measured latency.
    PowerOfTwo,
}

/// The HTTP gateway: `POST /{service}/{endpoint}` → RPC → HTTP.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where it listens (loopback by default; expose it deliberately).
    pub addr: SocketAddr,
    /// Require an API token (`Authorization: Bearer <token>`) on every call even on
    /// loopback. Off loopback a token is always required, whatever this says.
    pub require_token: bool,
    /// Nodes whose tokens this gateway accepts besides this node's own; their revocations are
    /// kept here too.
    pub trusted_issuers: Vec<PeerId>,
    /// Rules weighed with every token's scopes (which are allow rules at priority 0), e.g.
    /// `deny:*/Node.Deploy:10` to keep an endpoint closed whatever a token says.
    pub rules: Vec<Rule>,
}

impl GatewayConfig {
    /// Whether calls need a token: when asked to, or when listening beyond loopback.
    pub fn requires_token(&self) -> bool {
        self.require_token || !self.addr.ip().is_loopback()
    }
}

impl Default for GatewayConfig {
    /// `127.0.0.1:7780`, no token needed (loopback), no other issuer trusted, no extra rules.
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_GATEWAY_PORT)),
            require_token: false,
            trusted_issuers: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// The control API: where it listens and the most a caller may ask of it.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Loopback address to listen on (port 0 = any free port).
    pub addr: SocketAddr,
    /// Upper bounds on `network graph` crawls; requests asking for more are capped.
    pub max_crawl: CrawlLimits,
    /// How long to wait for the overlay to bind its listen addresses at start.
    pub listen_timeout: Duration,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_CONTROL_PORT)),
            max_crawl: CrawlLimits {
                max_depth: 16,
                max_nodes: 10_000,
                timeout: Duration::from_secs(120),
                concurrency: 64,
            },
            listen_timeout: Duration::from_secs(10),
        }
    }
}

/// `$MICRO_DATA_DIR` if set, else `~/.micro`, else `./.micro` when there is no home.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    std::env::home_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".micro")
}
