//! Joining: bootstrap retries with backoff while alone, and QUIC as a transport.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use libp2p::multiaddr::Protocol;
use micro_node::RunningNode;
use micro_node::overlay::{BootstrapAddr, OverlayEvent, Role};
use micro_testkit::{
    eventually, init_tracing, next_event, node_config, overlay_config, start_node,
};

const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_keeps_retrying_with_backoff_until_its_bootstrap_node_appears() -> Result<()> {
    init_tracing();
    let super_dir = tempfile::tempdir()?;
    let peer_dir = tempfile::tempdir()?;
    // Know the super's identity and port before it runs.
    let super_id = micro_node::identity::load_or_create(&super_dir.path().join("identity.key"))?
        .public()
        .to_peer_id();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let boot: BootstrapAddr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{super_id}").parse()?;

    let peer = start_node(peer_dir.path(), Role::Peer, vec![boot]).await?;
    let mut events = peer.overlay().subscribe();
    let mut waits = Vec::new();
    for _ in 0..3 {
        match next_event(&mut events, PATIENCE, |e| {
            matches!(e, OverlayEvent::Alone { .. })
        })
        .await?
        {
            OverlayEvent::Alone { retry_in } => waits.push(retry_in),
            _ => unreachable!("filtered"),
        }
    }
    ensure!(
        waits.windows(2).all(|w| w[1] >= w[0]),
        "backoff never shrinks: {waits:?}"
    );
    ensure!(waits[2] > waits[0], "backoff grows: {waits:?}");
    ensure!(!peer.overlay().info().await?.joined, "nobody to join yet");

    let mut overlay = overlay_config(Role::Super, vec![]);
    overlay.listen = vec![format!("/ip4/127.0.0.1/tcp/{port}").parse()?];
    let super_node = RunningNode::start(node_config(super_dir.path(), overlay)).await?;
    ensure!(super_node.peer_id() == super_id);
    next_event(&mut events, PATIENCE, |e| {
        matches!(e, OverlayEvent::Joined { .. })
    })
    .await?;
    let peers = peer.overlay().connected_peers().await?;
    ensure!(
        peers.iter().any(|p| p.peer_id == super_id),
        "connected to the super: {peers:?}"
    );

    peer.shutdown().await;
    super_node.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_over_quic() -> Result<()> {
    init_tracing();
    let (a_dir, b_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut overlay = overlay_config(Role::Super, vec![]);
    overlay.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse()?];
    let super_node = RunningNode::start(node_config(a_dir.path(), overlay)).await?;
    let quic = super_node
        .listen_addrs()
        .iter()
        .find(|a| a.iter().any(|p| p == Protocol::QuicV1))
        .context("a QUIC listen address")?
        .clone();
    let boot = BootstrapAddr {
        peer_id: super_node.peer_id(),
        addr: quic,
    };
    let peer = start_node(b_dir.path(), Role::Peer, vec![boot]).await?;
    eventually("the peer to join over QUIC", PATIENCE, || async {
        Ok(peer.overlay().info().await?.joined)
    })
    .await?;
    let peers = peer.overlay().connected_peers().await?;
    let link = peers
        .iter()
        .find(|p| p.peer_id == super_node.peer_id())
        .context("connected")?;
    ensure!(
        link.remote_addrs
            .iter()
            .all(|a| a.iter().any(|p| p == Protocol::QuicV1)),
        "the connection is QUIC: {link:?}"
    );
    peer.shutdown().await;
    super_node.shutdown().await;
    Ok(())
}
