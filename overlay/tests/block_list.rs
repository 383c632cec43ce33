//! The peer block list between real overlays on loopback: blocking cuts the connection and
//! keeps the peer out (its dials, its gossip, the overlay's own upkeep), unblocking lets it
//! back in.

mod common;

use std::time::Duration;

use common::{
    Node, PATIENCE, TestResult, connected_to, eventually, gossip_flows, next_event, next_gossip,
    start_with,
};
use micro_overlay::{BootstrapAddr, KadMode, OverlayConfig, OverlayError, OverlayEvent};

/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(500);
const TOPIC: &str = "block-list-test";

/// Starts an overlay on loopback TCP with short bootstrap backoffs.
async fn start(bootstrap: Vec<BootstrapAddr>) -> TestResult<Node> {
    start_with(OverlayConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        bootstrap,
        kad_mode: KadMode::Server,
        bootstrap_backoff_min: Duration::from_millis(100),
        bootstrap_backoff_max: Duration::from_millis(800),
        ..OverlayConfig::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_cuts_a_peer_off_and_unblocking_lets_it_back() -> TestResult {
    let mut a = start(vec![]).await?;
    let b = start(vec![]).await?;
    a.overlay.subscribe_topic(TOPIC).await?;
    b.overlay.subscribe_topic(TOPIC).await?;

    let mut a_events = a.overlay.subscribe();
    let mut b_events = b.overlay.subscribe();
    b.overlay.dial(a.addr.clone()).await?;
    let b_id = b.id();
    next_event(
        &mut a_events,
        PATIENCE,
        |e| matches!(e, OverlayEvent::PeerConnected { peer, .. } if *peer == b_id),
    )
    .await?;
    gossip_flows(TOPIC, &b, &mut a, b"before the block").await?;

    // Blocking closes the connection on both sides.
    a.overlay.block_peer(b_id).await?;
    next_event(
        &mut a_events,
        PATIENCE,
        |e| matches!(e, OverlayEvent::PeerDisconnected { peer } if *peer == b_id),
    )
    .await?;
    let a_id = a.id();
    next_event(
        &mut b_events,
        PATIENCE,
        |e| matches!(e, OverlayEvent::PeerDisconnected { peer } if *peer == a_id),
    )
    .await?;
    assert_eq!(a.overlay.blocked_peers().await?, vec![b_id]);
    assert!(!connected_to(&a, b_id).await?);

    // A will not dial B.
    let refused = a.overlay.dial(b.addr.clone()).await;
    assert!(
        matches!(refused, Err(OverlayError::PeerBlocked { peer }) if peer == b_id),
        "dialling a blocked peer: {refused:?}"
    );

    // B's dial reaches A's listener but A drops it after the handshake: a request over it
    // fails, and A never counts B as connected.
    b.overlay.dial(a.addr.clone()).await?;
    let asked = b.overlay.ask_peers(a_id, vec![a.addr.clone()]).await;
    assert!(asked.is_err(), "B talked to A through the block: {asked:?}");
    assert!(!connected_to(&a, b_id).await?);

    // B's gossip no longer reaches A.
    b.overlay
        .publish(TOPIC, b"during the block".to_vec())
        .await?;
    assert_eq!(next_gossip(&mut a, TOPIC, QUIET).await, None);
    while let Ok(event) = a_events.try_recv() {
        assert!(
            !matches!(event, OverlayEvent::PeerConnected { peer, .. } if peer == b_id),
            "A accepted a connection from blocked B"
        );
    }
    assert!(!connected_to(&a, b_id).await?);

    // Unblocked, B dials A again and gossip flows again.
    a.overlay.unblock_peer(b_id).await?;
    assert!(a.overlay.blocked_peers().await?.is_empty());
    b.overlay.dial(a.addr.clone()).await?;
    next_event(
        &mut a_events,
        PATIENCE,
        |e| matches!(e, OverlayEvent::PeerConnected { peer, .. } if *peer == b_id),
    )
    .await?;
    gossip_flows(TOPIC, &b, &mut a, b"after the block").await?;

    b.stop().await;
    a.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_bootstrap_node_is_retried_with_backoff_not_in_a_loop() -> TestResult {
    let b = start(vec![]).await?;
    let boot = BootstrapAddr {
        peer_id: b.id(),
        addr: b.addr.clone(),
    };
    let a = start(vec![boot]).await?;
    let b_id = b.id();
    eventually("A to join through B", || async {
        connected_to(&a, b_id).await
    })
    .await?;

    let mut a_events = a.overlay.subscribe();
    a.overlay.block_peer(b_id).await?;
    next_event(
        &mut a_events,
        PATIENCE,
        |e| matches!(e, OverlayEvent::PeerDisconnected { peer } if *peer == b_id),
    )
    .await?;

    // Alone, A's upkeep keeps its bootstrap schedule (one attempt per `Alone`, each wait
    // twice the last) and never reconnects to B.
    let mut waits = Vec::new();
    while waits.len() < 2 {
        match next_event(&mut a_events, PATIENCE, |e| {
            matches!(
                e,
                OverlayEvent::Alone { .. } | OverlayEvent::PeerConnected { .. }
            )
        })
        .await?
        {
            OverlayEvent::Alone { retry_in } => waits.push(retry_in),
            other => panic!("A reconnected while B is blocked: {other:?}"),
        }
    }
    assert_eq!(waits[1], waits[0] * 2, "bootstrap backoff did not grow");
    assert!(!connected_to(&a, b_id).await?);

    // Unblocking does not dial, but the bootstrap upkeep of a lonely node does.
    a.overlay.unblock_peer(b_id).await?;
    next_event(
        &mut a_events,
        PATIENCE,
        |e| matches!(e, OverlayEvent::PeerConnected { peer, .. } if *peer == b_id),
    )
    .await?;

    a.stop().await;
    b.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocked_side_backs_off_too() -> TestResult {
    let a = start(vec![]).await?;
    let boot = BootstrapAddr {
        peer_id: a.id(),
        addr: a.addr.clone(),
    };
    let b = start(vec![boot]).await?;
    let a_id = a.id();
    eventually("B to join through A", || async {
        connected_to(&b, a_id).await
    })
    .await?;

    let mut b_events = b.overlay.subscribe();
    a.overlay.block_peer(b.id()).await?;

    // B does not know it is blocked: its bootstrap dials complete the handshake and are
    // dropped by A at once. Those flaps must not reset B's backoff.
    let mut waits = Vec::new();
    while waits.len() < 3 {
        if let OverlayEvent::Alone { retry_in } = next_event(&mut b_events, PATIENCE, |e| {
            matches!(e, OverlayEvent::Alone { .. })
        })
        .await?
        {
            waits.push(retry_in);
        }
    }
    assert_eq!(
        waits[1],
        waits[0] * 2,
        "backoff reset by a refused connection: {waits:?}"
    );
    assert_eq!(
        waits[2],
        waits[1] * 2,
        "backoff reset by a refused connection: {waits:?}"
    );
    assert!(!connected_to(&a, b.id()).await?);

    b.stop().await;
    a.stop().await;
    Ok(())
}
