//! Shared helpers for the multi-node tests (`tests/tests/`) and the end-to-end tests that run
//! the `micro-node` binary (`cli/tests/`).
//!
//! Nodes run on `127.0.0.1` only. Waiting is always on a condition or an event with a
//! deadline, never a fixed sleep.

pub mod backend;
pub mod ledger;
pub mod process;
pub mod wasm;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use libp2p::multiaddr::Protocol;
use micro_node::config::GatewayConfig;
use micro_node::events::EventLimits;
use micro_node::overlay::{BootstrapAddr, KadMode, Multiaddr, OverlayConfig, OverlayEvent, Role};
use micro_node::services::CallRequest;
use micro_node::{NodeConfig, RunningNode};
use tokio::sync::broadcast;
use tokio::time::{Instant, MissedTickBehavior, interval};

/// How often [`eventually`] re-checks its condition.
const RECHECK: Duration = Duration::from_millis(50);

/// Installs a `tracing` subscriber for tests (honours `RUST_LOG`; quiet by default).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// An overlay config for a test node: loopback TCP only, Kademlia server mode, and short
/// intervals so discovery happens within a test's patience.
pub fn overlay_config(role: Role, bootstrap: Vec<BootstrapAddr>) -> OverlayConfig {
    let base = match role {
        Role::Super => OverlayConfig::super_node(),
        Role::Peer => OverlayConfig::default(),
    };
    OverlayConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("static multiaddr")],
        bootstrap,
        kad_mode: KadMode::Server,
        discovery_interval: Duration::from_secs(1),
        backbone_interval: Duration::from_millis(500),
        bootstrap_backoff_min: Duration::from_millis(100),
        bootstrap_backoff_max: Duration::from_millis(800),
        idle_connection_timeout: Duration::from_secs(120),
        ..base
    }
}

/// A node config on `data_dir` with the control API on any free loopback port.
pub fn node_config(data_dir: &Path, overlay: OverlayConfig) -> NodeConfig {
    let mut config = NodeConfig {
        data_dir: data_dir.to_owned(),
        overlay,
        ..NodeConfig::default()
    };
    config.control.addr = "127.0.0.1:0".parse().expect("static socket address");
    config.gateway = Some(GatewayConfig {
        addr: "127.0.0.1:0".parse().expect("static socket address"),
        ..GatewayConfig::default()
    });
    config.services.heartbeat_interval = Duration::from_millis(300);
    config.services.record_ttl = Duration::from_millis(1500);
    config.services.provider_cache_ttl = Duration::from_millis(200);
    config.events.anti_entropy_interval = Duration::from_millis(300);
    config.events.retention_interval = Duration::from_secs(1);
    config.events.limits = test_event_limits();
    // A small instance pool: tests run many nodes in one process.
    config.wasm.max_instances = 32;
    // Reputation rounds often, and peers mature in a second instead of a week.
    config.reputation.interval = Duration::from_millis(300);
    config.reputation.model.trust.maturity_ms = 1_000;
    config.ledger.sync_interval = Duration::from_millis(300);
    config
}

/// The event limits of test nodes: below gossipsub's message bound (256 KiB), unlike the
/// defaults, so an oversized event still travels by gossip and reaches validation.
pub fn test_event_limits() -> EventLimits {
    EventLimits {
        max_signed_bytes: 64 * 1024,
        max_body_bytes: 60 * 1024,
        ..EventLimits::default()
    }
}

/// A call of `endpoint` of `service` (`name` or `name@version`) with a JSON body, any
/// provider, and a 15 s deadline.
pub fn json_call(service: &str, endpoint: &str, body: &serde_json::Value) -> CallRequest {
    let service: micro_node::registry::ServiceRef = service.parse().expect("a valid service name");
    CallRequest {
        service: service.name,
        version: service.version,
        endpoint: endpoint.parse().expect("a valid endpoint name"),
        body: body.to_string().into_bytes(),
        content_type: "application/json".into(),
        headers: Default::default(),
        timeout_ms: Some(15_000),
        node: None,
    }
}

/// Starts a test node on `data_dir`.
pub async fn start_node(
    data_dir: &Path,
    role: Role,
    bootstrap: Vec<BootstrapAddr>,
) -> Result<RunningNode> {
    Ok(RunningNode::start(node_config(data_dir, overlay_config(role, bootstrap))).await?)
}

/// Starts `n` nodes on fresh data dirs: a super node, and `n - 1` peers that bootstrap from
/// it. The data dirs live as long as the returned guards.
pub async fn start_network(n: usize) -> Result<(Vec<tempfile::TempDir>, Vec<RunningNode>)> {
    start_network_with(n, |_| {}).await
}

/// [`start_network`] with `adjust` applied to every node's configuration first.
pub async fn start_network_with(
    n: usize,
    adjust: impl Fn(&mut NodeConfig),
) -> Result<(Vec<tempfile::TempDir>, Vec<RunningNode>)> {
    let dirs: Vec<tempfile::TempDir> = (0..n.max(1))
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let start = |dir: &Path, role, bootstrap| {
        let mut config = node_config(dir, overlay_config(role, bootstrap));
        adjust(&mut config);
        RunningNode::start(config)
    };
    let super_node = start(dirs[0].path(), Role::Super, vec![]).await?;
    let boot = bootstrap_addr(&super_node);
    let mut nodes = vec![super_node];
    for dir in &dirs[1..] {
        nodes.push(start(dir.path(), Role::Peer, vec![boot.clone()]).await?);
    }
    Ok((dirs, nodes))
}

/// The node's first TCP listen address, as a bootstrap address for others.
pub fn bootstrap_addr(node: &RunningNode) -> BootstrapAddr {
    let addr: &Multiaddr = node
        .listen_addrs()
        .iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
        .expect("test nodes listen on TCP");
    BootstrapAddr {
        peer_id: node.peer_id(),
        addr: addr.clone(),
    }
}

/// Waits until `check` returns true, re-checking every 50 ms, for at most `timeout`.
/// Fails with `what` and the last state `check` reported.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut tick = interval(RECHECK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if check().await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
    }
}

/// Waits for the first event matching `pred`, for at most `timeout`.
pub async fn next_event(
    events: &mut broadcast::Receiver<OverlayEvent>,
    timeout: Duration,
    mut pred: impl FnMut(&OverlayEvent) -> bool,
) -> Result<OverlayEvent> {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if pred(&event) => return Ok(event),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => bail!("overlay stopped"),
            }
        }
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(result) => result,
        Err(_) => bail!("no matching overlay event within {timeout:?}"),
    }
}

/// Cuts every connection between `a` and `b`, both ways.
pub async fn partition(a: &[RunningNode], b: &[RunningNode]) -> Result<()> {
    for x in a {
        for y in b {
            x.overlay().block_peer(y.peer_id()).await?;
            y.overlay().block_peer(x.peer_id()).await?;
        }
    }
    Ok(())
}

/// Lifts the cut of [`partition`] and dials each node of `b` to the first node of `a`.
pub async fn heal(a: &[RunningNode], b: &[RunningNode]) -> Result<()> {
    for x in a {
        for y in b {
            x.overlay().unblock_peer(y.peer_id()).await?;
            y.overlay().unblock_peer(x.peer_id()).await?;
        }
    }
    for y in b {
        for addr in a[0].listen_addrs() {
            let _ = y.overlay().dial(addr.clone()).await;
        }
    }
    Ok(())
}
