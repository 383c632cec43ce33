//! One super node, six peers that know only the super: the network finds itself.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, ensure};
use micro_node::RunningNode;
use micro_node::overlay::crawl::{self, CrawlLimits, CrawlState, GraphEdge};
use micro_node::overlay::{OverlayEvent, PeerId, Role};
use micro_testkit::{bootstrap_addr, eventually, init_tracing, next_event, start_node};

const PATIENCE: Duration = Duration::from_secs(30);

/// Every node's PeerId.
fn ids(nodes: &[RunningNode]) -> BTreeSet<PeerId> {
    nodes.iter().map(|n| n.peer_id()).collect()
}

/// Every connection as the nodes themselves report it.
async fn real_edges(nodes: &[RunningNode]) -> Result<BTreeSet<GraphEdge>> {
    let mut edges = BTreeSet::new();
    for node in nodes {
        for peer in node.overlay().connected_peers().await? {
            edges.insert(GraphEdge::new(node.peer_id(), peer.peer_id));
        }
    }
    Ok(edges)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_nodes_find_each_other_and_the_crawl_sees_them_all() -> Result<()> {
    init_tracing();
    let dirs: Vec<tempfile::TempDir> = (0..7)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let super_node = start_node(dirs[0].path(), Role::Super, vec![]).await?;
    let boot = bootstrap_addr(&super_node);
    let mut nodes = vec![super_node];
    for dir in &dirs[1..] {
        nodes.push(start_node(dir.path(), Role::Peer, vec![boot.clone()]).await?);
    }
    let all = ids(&nodes);

    // Every node's routing table and `network nodes` hold the other six.
    eventually(
        "every routing table to hold all 7 nodes",
        PATIENCE,
        || async {
            for node in &nodes {
                let known = node.overlay().known_nodes().await?;
                let in_table: BTreeSet<PeerId> = known
                    .iter()
                    .filter(|n| n.in_routing_table)
                    .map(|n| n.peer_id)
                    .collect();
                let mut expected = all.clone();
                expected.remove(&node.peer_id());
                if in_table != expected {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await?;

    // The roles travelled with identify (a node can enter the routing table through another
    // node's answer a moment before its own identify arrives, so wait for them).
    eventually("the leaf to know every node's role", PATIENCE, || async {
        let known = nodes[6].overlay().known_nodes().await?;
        Ok(known.len() == 6 && known.iter().all(|n| n.role.is_some()))
    })
    .await?;
    let from_leaf = nodes[6].overlay().known_nodes().await?;
    let super_seen = from_leaf
        .iter()
        .find(|n| n.peer_id == nodes[0].peer_id())
        .expect("super known");
    assert_eq!(super_seen.role, Some(Role::Super));
    assert!(
        from_leaf
            .iter()
            .filter(|n| n.peer_id != nodes[0].peer_id())
            .all(|n| n.role == Some(Role::Peer))
    );

    // A crawl from a leaf finds all seven and exactly the connections that exist.
    let before = real_edges(&nodes).await?;
    let graph = crawl::crawl(nodes[6].overlay(), CrawlLimits::default()).await?;
    let after = real_edges(&nodes).await?;
    let crawled: BTreeSet<PeerId> = graph.nodes.iter().map(|n| n.peer_id).collect();
    assert_eq!(crawled, all, "the crawl lists every node");
    assert!(
        !graph.partial,
        "nothing limited the crawl: {:?}",
        graph.incomplete_because
    );
    assert!(graph.nodes.iter().all(|n| n.state == CrawlState::Answered));
    let edges: BTreeSet<GraphEdge> = graph.edges.iter().copied().collect();
    // Connections the crawl itself opened from the leaf are left out; every edge it reports
    // existed, and every connection that existed before (and still does) is reported.
    assert!(
        edges.is_subset(&after),
        "crawl invented edges: {:?}",
        edges.difference(&after).collect::<Vec<_>>()
    );
    let stable: BTreeSet<GraphEdge> = before.intersection(&after).copied().collect();
    assert!(
        stable.is_subset(&edges),
        "crawl missed edges: {:?}",
        stable.difference(&edges).collect::<Vec<_>>()
    );
    assert_eq!(graph.root, nodes[6].peer_id());

    // Routes: direct neighbours at one hop, the rest reached through one.
    let routes = nodes[6].overlay().routes().await?;
    assert_eq!(routes.len(), 6);
    assert!(
        routes.iter().all(|r| r.hops.is_some()),
        "every node has a hop count: {routes:?}"
    );

    // A restarted peer keeps its PeerId and rejoins through the super.
    let restarted_id = nodes[3].peer_id();
    let old = nodes.remove(3);
    let mut super_events = nodes[0].overlay().subscribe();
    old.shutdown().await;
    next_event(
        &mut super_events,
        PATIENCE,
        |e| matches!(e, OverlayEvent::PeerDisconnected { peer } if *peer == restarted_id),
    )
    .await?;
    let again = start_node(dirs[3].path(), Role::Peer, vec![boot]).await?;
    ensure!(
        again.peer_id() == restarted_id,
        "PeerId changed across restart"
    );
    next_event(&mut super_events, PATIENCE, |e| {
        matches!(e, OverlayEvent::PeerIdentified { peer, role: Some(Role::Peer) } if *peer == restarted_id)
    })
    .await?;
    eventually("the restarted peer to rejoin", PATIENCE, || async {
        Ok(again.overlay().info().await?.joined)
    })
    .await?;

    again.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}
