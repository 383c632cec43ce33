//! Super nodes: they find each other through a chain, stay meshed past the idle timeout, and
//! enforce their connection limits.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, ensure};
use micro_node::RunningNode;
use micro_node::overlay::{BootstrapAddr, OverlayEvent, PeerId, Role};
use micro_testkit::{
    bootstrap_addr, eventually, init_tracing, next_event, node_config, overlay_config,
};

const PATIENCE: Duration = Duration::from_secs(20);
/// Connections with no traffic close after this; backbone upkeep must beat it.
const IDLE: Duration = Duration::from_secs(1);

async fn start_super(dir: &std::path::Path, bootstrap: Vec<BootstrapAddr>) -> Result<RunningNode> {
    let mut overlay = overlay_config(Role::Super, bootstrap);
    overlay.idle_connection_timeout = IDLE;
    overlay.backbone_interval = Duration::from_millis(250);
    overlay.discovery_interval = Duration::from_secs(600);
    Ok(RunningNode::start(node_config(dir, overlay)).await?)
}

async fn connected(node: &RunningNode) -> Result<BTreeSet<PeerId>> {
    Ok(node
        .overlay()
        .connected_peers()
        .await?
        .into_iter()
        .map(|p| p.peer_id)
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn super_nodes_mesh_and_keep_the_mesh_past_the_idle_timeout() -> Result<()> {
    init_tracing();
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    // A chain: s1 ← s2 ← s3. Nobody is told about the far end.
    let s1 = start_super(dirs[0].path(), vec![]).await?;
    let s2 = start_super(dirs[1].path(), vec![bootstrap_addr(&s1)]).await?;
    let s3 = start_super(dirs[2].path(), vec![bootstrap_addr(&s2)]).await?;
    let supers = [&s1, &s2, &s3];

    eventually(
        "every super to connect to the other two",
        PATIENCE,
        || async {
            for node in supers {
                let others: BTreeSet<PeerId> = supers
                    .iter()
                    .map(|n| n.peer_id())
                    .filter(|p| *p != node.peer_id())
                    .collect();
                if !others.is_subset(&connected(node).await?) {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await?;

    // Three idle timeouts pass and no backbone link drops.
    let mut events = s1.overlay().subscribe();
    let dropped = next_event(&mut events, IDLE * 3, |e| {
        matches!(e, OverlayEvent::PeerDisconnected { .. })
    })
    .await;
    ensure!(dropped.is_err(), "a backbone link dropped: {dropped:?}");
    ensure!(connected(&s1).await?.contains(&s3.peer_id()));

    for node in [s3, s2, s1] {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_turn_away_the_excess() -> Result<()> {
    init_tracing();
    let dirs: Vec<tempfile::TempDir> = (0..4)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let mut overlay = overlay_config(Role::Super, vec![]);
    overlay.limits.max_established = 2;
    let hub = RunningNode::start(node_config(dirs[0].path(), overlay)).await?;
    let boot = bootstrap_addr(&hub);

    let mut peers = Vec::new();
    for dir in &dirs[1..3] {
        let peer = micro_testkit::start_node(dir.path(), Role::Peer, vec![boot.clone()]).await?;
        eventually("the peer to join", PATIENCE, || async {
            Ok(peer.overlay().info().await?.joined)
        })
        .await?;
        peers.push(peer);
    }
    // Full: the third is refused, stays alone, keeps retrying, and the hub stays at its limit.
    let third = micro_testkit::start_node(dirs[3].path(), Role::Peer, vec![boot]).await?;
    let mut events = third.overlay().subscribe();
    for _ in 0..2 {
        next_event(&mut events, PATIENCE, |e| {
            matches!(e, OverlayEvent::Alone { .. })
        })
        .await?;
    }
    ensure!(
        connected(&hub).await?.len() == 2,
        "the hub holds exactly its limit"
    );
    ensure!(!third.overlay().info().await?.joined);

    third.shutdown().await;
    for peer in peers {
        peer.shutdown().await;
    }
    hub.shutdown().await;
    Ok(())
}
