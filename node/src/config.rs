//! Node configuration: the overlay's, plus where the node keeps its data and serves its API.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use micro_overlay::OverlayConfig;
use micro_overlay::crawl::CrawlLimits;

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
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            overlay: OverlayConfig::default(),
            control: ControlConfig::default(),
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
