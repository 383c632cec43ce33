//! Keeping the routing table between real overlays on loopback: a join costs one lookup (the
//! node's own key), and the bucket refreshes Kademlia's bootstrap would run back to back
//! come one at a time, spread over the discovery interval.

mod common;

use std::time::Duration;

use common::{Node, PATIENCE, TestResult, eventually, next_event};
use micro_overlay::{BootstrapAddr, KadMode, OverlayConfig, OverlayEvent};

/// Nodes already in the network: more than a bucket's 20, so a full bootstrap would have
/// several buckets beyond the closest neighbour to walk.
const NETWORK: usize = 32;

async fn start(bootstrap: Option<&Node>, discovery_interval: Duration) -> TestResult<Node> {
    let bootstrap = bootstrap
        .map(|hub| -> TestResult<BootstrapAddr> {
            Ok(BootstrapAddr {
                peer_id: hub.id(),
                addr: hub.addr.clone(),
            })
        })
        .transpose()?;
    common::start_with(OverlayConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        kad_mode: KadMode::Server,
        bootstrap: bootstrap.into_iter().collect(),
        discovery_interval,
        ..OverlayConfig::default()
    })
    .await
}

async fn joined(node: &Node) -> TestResult {
    let mut events = node.overlay.subscribe();
    if node.overlay.info().await?.joined {
        return Ok(());
    }
    next_event(&mut events, PATIENCE, |e| {
        matches!(e, OverlayEvent::Joined { .. })
    })
    .await?;
    Ok(())
}

/// A hub and `NETWORK - 1` nodes joined through it, none refreshing within the test.
async fn network() -> TestResult<Vec<Node>> {
    let quiet = Duration::from_secs(3600);
    let hub = start(None, quiet).await?;
    let mut nodes = vec![hub];
    for _ in 1..NETWORK {
        let node = start(Some(&nodes[0]), quiet).await?;
        joined(&node).await?;
        nodes.push(node);
    }
    Ok(nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_looks_up_its_own_key_and_leaves_the_buckets_for_later() -> TestResult {
    let nodes = network().await?;
    let newcomer = start(Some(&nodes[0]), Duration::from_secs(3600)).await?;
    joined(&newcomer).await?;
    // Kademlia also starts a bootstrap of its own while the routing table holds fewer than
    // 20 nodes; wait until the newcomer's table is past that and its lookups are over.
    eventually("the newcomer to know 20 routable nodes", || async {
        let routable = newcomer
            .overlay
            .known_nodes()
            .await?
            .iter()
            .filter(|n| n.in_routing_table)
            .count();
        Ok(routable >= 20)
    })
    .await?;
    let info = newcomer.overlay.info().await?;
    assert_eq!(info.routing_refreshes, 0, "no refresh is due for an hour");
    // One lookup of 32 nodes asks at most all of them (measured: 24 to 27); a full bootstrap
    // adds a lookup per bucket beyond the closest neighbour, each asking ~20 again (measured
    // with the bootstrap left whole: 133 to 138).
    assert!(
        (1..=2 * NETWORK as u64).contains(&info.routing_requests),
        "the join sent {} routing requests",
        info.routing_requests
    );
    newcomer.stop().await;
    for node in nodes {
        node.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_come_one_at_a_time_over_the_interval() -> TestResult {
    let hub = start(None, Duration::from_secs(3600)).await?;
    let mut nodes = Vec::new();
    for _ in 0..8 {
        let node = start(Some(&hub), Duration::from_secs(3600)).await?;
        joined(&node).await?;
        nodes.push(node);
    }
    // A round is the own key and one lookup per bucket from the farthest down to the
    // closest neighbour's: at least two lookups, spread over the 4 s interval.
    let refresher = start(Some(&hub), Duration::from_secs(4)).await?;
    joined(&refresher).await?;
    let before = refresher.overlay.info().await?;
    eventually("two refresh lookups", || async {
        Ok(refresher.overlay.info().await?.routing_refreshes >= 2)
    })
    .await?;
    let after = refresher.overlay.info().await?;
    assert!(
        after.routing_requests > before.routing_requests,
        "refresh lookups ask other nodes: {} then {}",
        before.routing_requests,
        after.routing_requests
    );
    refresher.stop().await;
    for node in nodes {
        node.stop().await;
    }
    hub.stop().await;
    Ok(())
}
