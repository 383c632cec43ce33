//! The connection manager between real overlays on loopback: a node filled to its connection
//! cap closes its idle connections, never one with a call in flight, and a new caller gets
//! in.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Node, PATIENCE, TestResult, connected_to, echo_request, next_event, start_with};
use micro_overlay::config::ConnectionLimitsConfig;
use micro_overlay::rpc_proto::RpcResponse;
use micro_overlay::{
    Inbound, KadMode, OverlayConfig, OverlayEvent, PeerId, RpcFailure, RpcResponder,
};
use tokio::sync::{broadcast, mpsc};
use tokio::time::timeout;

/// Body of the call the hub holds unanswered until the test releases it.
const HOLD: &[u8] = b"hold";

async fn start(limits: ConnectionLimitsConfig) -> TestResult<Node> {
    start_with(OverlayConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        kad_mode: KadMode::Server,
        limits,
        ..OverlayConfig::default()
    })
    .await
}

/// Answers the hub's calls with their body, except a [`HOLD`] call, whose responder goes to
/// the test.
fn serve(hub: &mut Node) -> mpsc::Receiver<RpcResponder> {
    let (held_tx, held) = mpsc::channel(1);
    let (_, closed) = mpsc::channel(1);
    let mut inbound = std::mem::replace(&mut hub.inbound, closed);
    tokio::spawn(async move {
        while let Some(message) = inbound.recv().await {
            if let Inbound::Rpc {
                request, responder, ..
            } = message
            {
                if request.body == HOLD {
                    let _ = held_tx.send(responder).await;
                } else {
                    responder.respond(RpcResponse {
                        id: request.id,
                        status: 200,
                        body: request.body,
                        ..RpcResponse::default()
                    });
                }
            }
        }
    });
    held
}

/// Starts `count` nodes that each dial `hub`, waiting until the hub sees each one.
async fn connect_spokes(
    hub: &Node,
    hub_events: &mut broadcast::Receiver<OverlayEvent>,
    count: u32,
) -> TestResult<Vec<Node>> {
    let mut spokes = Vec::new();
    for _ in 0..count {
        let spoke = start(ConnectionLimitsConfig::default()).await?;
        spoke.overlay.dial(hub.addr.clone()).await?;
        let id = spoke.id();
        next_event(
            hub_events,
            PATIENCE,
            |e| matches!(e, OverlayEvent::PeerConnected { peer, .. } if *peer == id),
        )
        .await?;
        spokes.push(spoke);
    }
    Ok(spokes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_trims_idle_connections_keeps_busy_ones_and_lets_a_new_caller_in() -> TestResult
{
    // Room for four connections, all of which others may open; above three the hub trims
    // down to two.
    let limits = ConnectionLimitsConfig {
        max_established_incoming: 4,
        trim_above: 3,
        trim_to: 2,
        trim_grace: Duration::from_millis(300),
        trim_urgent_above: 4,
        ..ConnectionLimitsConfig::with_max_established(4)
    };
    let mut hub = start(limits).await?;
    let mut held = serve(&mut hub);
    let mut hub_events = hub.overlay.subscribe();
    let hub_id = hub.id();

    let spokes = connect_spokes(&hub, &mut hub_events, 4).await?;

    // The first spoke's call stays in flight while the hub trims.
    let busy = spokes[0].overlay.clone();
    let mut hold_request = echo_request(HOLD);
    hold_request.id = "held".into();
    let addrs = vec![hub.addr.clone()];
    let held_call =
        tokio::spawn(async move { busy.rpc(hub_id, addrs, hold_request, PATIENCE).await });
    let responder = timeout(PATIENCE, held.recv())
        .await?
        .ok_or("the hub stopped")?;

    // Past the grace period, the hub closes two idle connections, never the busy one.
    let mut trimmed = HashSet::new();
    while trimmed.len() < 2 {
        if let OverlayEvent::PeerDisconnected { peer } =
            next_event(&mut hub_events, PATIENCE, |e| {
                matches!(e, OverlayEvent::PeerDisconnected { .. })
            })
            .await?
        {
            trimmed.insert(peer);
        }
    }
    assert!(
        !trimmed.contains(&spokes[0].id()),
        "the busy peer was trimmed"
    );
    assert!(connected_to(&hub, spokes[0].id()).await?);
    assert_eq!(hub.overlay.info().await?.connections_trimmed, 2);

    // The held call is still answered over its connection.
    responder.respond(RpcResponse {
        id: "held".into(),
        status: 200,
        body: b"released".to_vec(),
        ..RpcResponse::default()
    });
    let answer = timeout(PATIENCE, held_call).await???;
    assert_eq!(answer.body, b"released");

    // A newcomer finds room: at its cap of four, the hub would have refused it.
    let caller = start(ConnectionLimitsConfig::default()).await?;
    let answer = caller
        .overlay
        .rpc(
            hub_id,
            vec![hub.addr.clone()],
            echo_request(b"let me in"),
            PATIENCE,
        )
        .await?;
    assert_eq!(answer.body, b"let me in");
    assert!(hub.overlay.info().await?.connected_peers <= 4);

    for node in spokes {
        node.stop().await;
    }
    caller.stop().await;
    hub.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_its_cap_a_node_trims_new_idle_connections_too() -> TestResult {
    // New connections are protected for an hour, except above five connections of eight,
    // where 200 ms is all they get: a burst must not hold the node at its cap.
    let limits = ConnectionLimitsConfig {
        max_established_incoming: 8,
        trim_above: 3,
        trim_to: 2,
        trim_grace: Duration::from_secs(3600),
        trim_urgent_above: 5,
        trim_urgent_grace: Duration::from_millis(200),
        ..ConnectionLimitsConfig::with_max_established(8)
    };
    let hub = start(limits).await?;
    let mut hub_events = hub.overlay.subscribe();
    let spokes = connect_spokes(&hub, &mut hub_events, 6).await?;
    // Six is above five: idle connections go until three are left.
    for _ in 0..3 {
        next_event(&mut hub_events, PATIENCE, |e| {
            matches!(e, OverlayEvent::PeerDisconnected { .. })
        })
        .await?;
    }
    let info = hub.overlay.info().await?;
    assert_eq!(info.connections_trimmed, 3);
    assert_eq!(info.connected_peers, 3);
    for node in spokes {
        node.stop().await;
    }
    hub.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dial_says_why() -> TestResult {
    // Room for one connection, never trimmed.
    let limits = ConnectionLimitsConfig {
        max_established_incoming: 1,
        trim_above: 1,
        trim_to: 1,
        trim_urgent_above: 1,
        ..ConnectionLimitsConfig::with_max_established(1)
    };
    let caller = start(limits).await?;
    let mut first = start(ConnectionLimitsConfig::default()).await?;
    let _echo = common::serve_echo(&mut first);
    let answer = caller
        .overlay
        .rpc(
            first.id(),
            vec![first.addr.clone()],
            echo_request(b"1"),
            PATIENCE,
        )
        .await?;
    assert_eq!(answer.body, b"1");

    // A second peer would be a second connection: this node's own limit refuses it.
    let second = start(ConnectionLimitsConfig::default()).await?;
    let refused = caller
        .overlay
        .rpc(
            second.id(),
            vec![second.addr.clone()],
            echo_request(b"2"),
            PATIENCE,
        )
        .await;
    assert!(
        matches!(&refused, Err(RpcFailure::Dial { reason, .. })
            if reason.contains("at most 1 established connections")),
        "{refused:?}"
    );
    // A peer nobody knows an address of.
    let unknown = caller
        .overlay
        .rpc(PeerId::random(), Vec::new(), echo_request(b"3"), PATIENCE)
        .await;
    assert!(
        matches!(&unknown, Err(RpcFailure::Dial { reason, .. }) if reason == "no address known"),
        "{unknown:?}"
    );
    for node in [caller, first, second] {
        node.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_watermark_nothing_is_trimmed() -> TestResult {
    let limits = ConnectionLimitsConfig {
        trim_grace: Duration::from_millis(100),
        ..ConnectionLimitsConfig::with_max_established(8)
    };
    let hub = start(limits).await?;
    let mut hub_events = hub.overlay.subscribe();
    // As many connections as the watermark allows.
    let spokes = connect_spokes(&hub, &mut hub_events, limits.trim_above).await?;
    // Several maintenance ticks past the grace period: no disconnection.
    let quiet = next_event(&mut hub_events, Duration::from_millis(2_500), |e| {
        matches!(e, OverlayEvent::PeerDisconnected { .. })
    })
    .await;
    assert!(quiet.is_err(), "a connection closed: {quiet:?}");
    assert_eq!(hub.overlay.info().await?.connections_trimmed, 0);
    for node in spokes {
        node.stop().await;
    }
    hub.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_full_of_incoming_connections_can_still_dial_out() -> TestResult {
    // Room for four connections, two of them opened by others; no trimming.
    let limits = ConnectionLimitsConfig {
        max_established_incoming: 2,
        trim_above: 4,
        trim_to: 4,
        ..ConnectionLimitsConfig::with_max_established(4)
    };
    let mut hub = start(limits).await?;
    let _held = serve(&mut hub);
    let hub_id = hub.id();
    let mut hub_events = hub.overlay.subscribe();
    let spokes = connect_spokes(&hub, &mut hub_events, 2).await?;

    // A third caller is turned away: incoming connections are full.
    let refused = start(ConnectionLimitsConfig::default()).await?;
    let call = refused
        .overlay
        .rpc(
            hub_id,
            vec![hub.addr.clone()],
            echo_request(b"room?"),
            PATIENCE,
        )
        .await;
    assert!(
        call.is_err(),
        "an incoming connection beyond the limit: {call:?}"
    );

    // The hub itself still dials out and calls.
    let mut target = start(ConnectionLimitsConfig::default()).await?;
    let _echo = common::serve_echo(&mut target);
    let answer = hub
        .overlay
        .rpc(
            target.id(),
            vec![target.addr.clone()],
            echo_request(b"outbound"),
            PATIENCE,
        )
        .await?;
    assert_eq!(answer.body, b"outbound");

    for node in spokes.into_iter().chain([refused, target, hub]) {
        node.stop().await;
    }
    Ok(())
}
