//! `micro-node` with no command: run a node until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use libp2p::multiaddr::Protocol;
use micro_node::{NodeConfig, RunningNode};
use micro_overlay::{Multiaddr, OverlayConfig};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info};

use crate::args::RunArgs;

/// How long an orderly shutdown may take before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Maps flags onto the node's configuration.
pub fn node_config(
    data_dir: PathBuf,
    control: Option<std::net::SocketAddr>,
    run: RunArgs,
) -> NodeConfig {
    let mut overlay = if run.super_node {
        OverlayConfig::super_node()
    } else {
        OverlayConfig::default()
    };
    if !run.listen.is_empty() {
        overlay.listen = run.listen;
    }
    overlay.bootstrap = run.bootstrap;
    if let Some(mode) = run.kad_mode {
        overlay.kad_mode = mode.into();
    }
    if let Some(interval) = run.discovery_interval {
        overlay.discovery_interval = interval;
    }
    let mut config = NodeConfig {
        data_dir,
        overlay,
        ..NodeConfig::default()
    };
    if let Some(addr) = control {
        config.control.addr = addr;
    }
    if run.no_gateway {
        config.gateway = None;
    } else {
        let mut gateway = micro_node::config::GatewayConfig::default();
        if let Some(addr) = run.gateway {
            gateway.addr = addr;
        }
        gateway.require_token = run.require_token;
        gateway.trusted_issuers = run.trusted_issuers;
        gateway.rules = run.gateway_rules;
        config.gateway = Some(gateway);
    }
    config.services.allow_remote_backends = run.allow_remote_backends;
    if let Some(base) = run.source_base {
        config.source.short_base = base;
    }
    config.source.cargo_home = run.build_cargo_home;
    config.source.offline_dependencies = run.build_offline;
    config.source.remote_deployers = run.allow_deploy_from;
    config.ledger.genesis = run.genesis;
    config
}

/// Starts the node, prints how to join it, and runs until a signal.
pub async fn run(config: NodeConfig) -> Result<()> {
    let role = config.overlay.role;
    let token_note = config.gateway.as_ref().map(|g| {
        if g.requires_token() {
            "calls need an API token: micro-node token issue --services NAME"
        } else {
            "open to loopback callers without a token (--require-token to change it)"
        }
    });
    let node = RunningNode::start(config).await?;
    print_banner(&node, role, token_note);

    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received"),
        _ = int.recv() => info!("SIGINT received"),
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, node.shutdown())
        .await
        .is_err()
    {
        error!("shutdown took longer than {SHUTDOWN_GRACE:?}; exiting anyway");
        anyhow::bail!("shutdown did not finish within {SHUTDOWN_GRACE:?}");
    }
    Ok(())
}

fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

fn print_banner(node: &RunningNode, role: micro_overlay::Role, token_note: Option<&str>) {
    println!("micro-node {} ({role} node)", env!("CARGO_PKG_VERSION"));
    println!("peer id:   {}", node.peer_id());
    println!("data dir:  {}", node.data_dir().display());
    println!("control:   http://{}", node.control_addr());
    if let Some(gateway) = node.gateway_addr() {
        println!("gateway:   http://{gateway}/{{service}}/{{endpoint}}");
    }
    if let Some(note) = token_note {
        println!("           {note}");
    }
    println!("listening:");
    for addr in node.listen_addrs() {
        println!("  {addr}");
    }
    let mut shareable: Vec<&Multiaddr> = node
        .listen_addrs()
        .iter()
        .filter(|a| !is_loopback(a))
        .collect();
    if shareable.is_empty() {
        shareable = node.listen_addrs().iter().collect();
    }
    println!("join this node with:");
    for addr in shareable {
        println!("  micro-node --bootstrap {addr}");
    }
    println!("ready: control API at {}", node.control_addr());
}
