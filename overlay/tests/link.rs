//! Overlays in memory (`/memory/0`, no sockets) and over shaped links: they join, find each
//! other through the DHT and talk; a shaper's latency shows in round trips, its counters
//! count, and its drop rate refuses connections until it is lowered.

mod common;

use std::time::Duration;

use common::{
    Node, PATIENCE, TestResult, connected_to, echo_request, eventually, gossip_flows, serve_echo,
    start_with,
};
use libp2p::multiaddr::Protocol;
use micro_overlay::{
    BootstrapAddr, KadMode, LinkProfile, LinkShaper, Multiaddr, OverlayConfig, RpcFailure,
};
use tokio::time::Instant;

const MEMORY: &str = "/memory/0";
const LOOPBACK_TCP: &str = "/ip4/127.0.0.1/tcp/0";
const TOPIC: &str = "link-test";

/// A test overlay listening on `listen`, Kademlia server, short bootstrap backoffs.
fn config(
    listen: &str,
    bootstrap: Vec<BootstrapAddr>,
    link: Option<LinkShaper>,
) -> TestResult<OverlayConfig> {
    Ok(OverlayConfig {
        listen: vec![listen.parse()?],
        bootstrap,
        kad_mode: KadMode::Server,
        bootstrap_backoff_min: Duration::from_millis(100),
        bootstrap_backoff_max: Duration::from_millis(800),
        link,
        ..OverlayConfig::default()
    })
}

fn bootstrap_from(node: &Node) -> Vec<BootstrapAddr> {
    vec![BootstrapAddr {
        peer_id: node.id(),
        addr: node.addr.clone(),
    }]
}

fn is_memory(addr: &Multiaddr) -> bool {
    matches!(addr.iter().next(), Some(Protocol::Memory(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlays_in_memory_join_find_each_other_and_talk() -> TestResult {
    let mut a = start_with(config(MEMORY, vec![], None)?).await?;
    let a_id = a.id();

    // `/memory/0` binds a real, random port, shown like any listen address.
    let mut parts = a.addr.iter();
    assert!(
        matches!(parts.next(), Some(Protocol::Memory(port)) if port != 0),
        "listen address {}",
        a.addr
    );
    assert_eq!(parts.last(), Some(Protocol::P2p(a_id)));
    assert_eq!(a.overlay.info().await?.listen_addrs, vec![a.addr.clone()]);

    // B joins through A, C through B: C only ever hears of A through B.
    let b = start_with(config(MEMORY, bootstrap_from(&a), None)?).await?;
    let mut c = start_with(config(MEMORY, bootstrap_from(&b), None)?).await?;
    for node in [&a, &b, &c] {
        node.overlay.subscribe_topic(TOPIC).await?;
    }
    let _server = serve_echo(&mut a);

    // Identify and Kademlia carry memory addresses: C learns where A is.
    eventually("C to learn A's memory address", || async {
        let known = c.overlay.known_nodes().await?;
        Ok(known
            .iter()
            .any(|n| n.peer_id == a_id && n.addrs.iter().any(is_memory)))
    })
    .await?;

    // C calls A with no address of its own: the overlay dials what it learned.
    let response = c
        .overlay
        .rpc(a_id, vec![], echo_request(b"over memory"), PATIENCE)
        .await?;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"over memory");
    assert!(connected_to(&c, a_id).await?);

    gossip_flows(TOPIC, &a, &mut c, b"gossip over memory").await?;

    for node in [c, b, a] {
        node.stop().await;
    }
    Ok(())
}

/// Two overlays on `listen`, each with a 40 ms shaper: a request crosses B→A and is delayed
/// by A's shaper, the response crosses A→B and is delayed by B's, so a round trip on an open
/// connection takes at least 80 ms. Only the lower bound is asserted.
async fn round_trip_pays_each_receivers_latency(listen: &str) -> TestResult {
    let latency = Duration::from_millis(40);
    let a_link = LinkShaper::new(LinkProfile::with_latency(latency));
    let b_link = LinkShaper::new(LinkProfile::with_latency(latency));
    let mut a = start_with(config(listen, vec![], Some(a_link.clone()))?).await?;
    let b = start_with(config(listen, vec![], Some(b_link.clone()))?).await?;
    let _server = serve_echo(&mut a);

    // The first call opens the connection (handshakes cost several round trips); the timed
    // one runs on it.
    b.overlay
        .rpc(
            a.id(),
            vec![a.addr.clone()],
            echo_request(b"warm up"),
            PATIENCE,
        )
        .await?;
    let started = Instant::now();
    let response = b
        .overlay
        .rpc(a.id(), vec![], echo_request(b"timed"), PATIENCE)
        .await?;
    let round_trip = started.elapsed();
    assert_eq!(response.body, b"timed");
    assert!(
        round_trip >= latency * 2,
        "round trip {round_trip:?} is shorter than both receivers' latency"
    );

    for (name, link) in [("A", &a_link), ("B", &b_link)] {
        let stats = link.stats();
        assert!(stats.bytes_in > 0, "{name} counted nothing in: {stats:?}");
        assert!(stats.bytes_out > 0, "{name} counted nothing out: {stats:?}");
        assert!(
            stats.connections >= 1,
            "{name} counted no connection: {stats:?}"
        );
        assert_eq!(stats.connections_dropped, 0);
    }

    b.stop().await;
    a.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shaped_memory_round_trip_pays_each_receivers_latency() -> TestResult {
    round_trip_pays_each_receivers_latency(MEMORY).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shaped_tcp_round_trip_pays_each_receivers_latency() -> TestResult {
    round_trip_pays_each_receivers_latency(LOOPBACK_TCP).await
}

fn dropping_everything() -> LinkProfile {
    LinkProfile {
        drop_rate: 1.0,
        ..LinkProfile::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialler_dropping_every_connection_reaches_nobody_until_it_stops() -> TestResult {
    let mut a = start_with(config(MEMORY, vec![], None)?).await?;
    let _server = serve_echo(&mut a);
    let b_link = LinkShaper::new(dropping_everything());
    let b = start_with(config(MEMORY, vec![], Some(b_link.clone()))?).await?;

    let refused = b
        .overlay
        .rpc(a.id(), vec![a.addr.clone()], echo_request(b"x"), PATIENCE)
        .await;
    assert!(
        matches!(&refused, Err(RpcFailure::Dial { peer, .. }) if *peer == a.id()),
        "a dial through a dropping link: {refused:?}"
    );
    let stats = b_link.stats();
    assert!(stats.connections_dropped >= 1, "{stats:?}");
    assert_eq!(stats.connections, 0, "{stats:?}");
    assert!(!connected_to(&a, b.id()).await?);

    b_link.set_profile(LinkProfile::default());
    let response = b
        .overlay
        .rpc(a.id(), vec![a.addr.clone()], echo_request(b"y"), PATIENCE)
        .await?;
    assert_eq!(response.body, b"y");
    assert!(b_link.stats().connections >= 1);

    b.stop().await;
    a.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_dropping_every_connection_is_unreachable_until_it_stops() -> TestResult {
    let a_link = LinkShaper::new(dropping_everything());
    let mut a = start_with(config(MEMORY, vec![], Some(a_link.clone()))?).await?;
    let _server = serve_echo(&mut a);
    let b = start_with(config(MEMORY, vec![], None)?).await?;

    let refused = b
        .overlay
        .rpc(a.id(), vec![a.addr.clone()], echo_request(b"x"), PATIENCE)
        .await;
    assert!(
        matches!(&refused, Err(RpcFailure::Dial { peer, .. }) if *peer == a.id()),
        "a dial to a dropping listener: {refused:?}"
    );
    assert!(a_link.stats().connections_dropped >= 1);
    assert!(!connected_to(&a, b.id()).await?);

    a_link.set_profile(LinkProfile::default());
    let response = b
        .overlay
        .rpc(a.id(), vec![a.addr.clone()], echo_request(b"y"), PATIENCE)
        .await?;
    assert_eq!(response.body, b"y");

    b.stop().await;
    a.stop().await;
    Ok(())
}
