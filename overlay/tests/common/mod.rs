//! Helpers shared by the multi-node overlay tests: start a real overlay, wait for an event or
//! a condition with a deadline (never a fixed sleep), answer RPCs.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::error::Error;
use std::time::Duration;

use micro_overlay::rpc_proto::{RpcRequest, RpcResponse};
use micro_overlay::{Inbound, Keypair, Multiaddr, Overlay, OverlayConfig, OverlayEvent, PeerId};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval, timeout};

pub type TestResult<T = ()> = Result<T, Box<dyn Error>>;

/// Longest wait for something that should happen (connections on loopback or in memory
/// take milliseconds).
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How often [`eventually`] re-checks its condition.
const RECHECK: Duration = Duration::from_millis(25);

/// A running overlay, its inbound traffic and its first listen address (with `/p2p/`).
pub struct Node {
    pub overlay: Overlay,
    pub inbound: mpsc::Receiver<Inbound>,
    pub task: JoinHandle<()>,
    pub addr: Multiaddr,
}

impl Node {
    pub fn id(&self) -> PeerId {
        self.overlay.local_peer_id()
    }

    pub async fn stop(self) {
        self.overlay.shutdown().await;
        let _ = self.task.await;
    }
}

/// Starts an overlay with `config` and waits until it listens.
pub async fn start_with(config: OverlayConfig) -> TestResult<Node> {
    let (overlay, inbound, task) = micro_overlay::spawn(Keypair::generate_ed25519(), config)?;
    let addr = timeout(PATIENCE, overlay.listening())
        .await??
        .into_iter()
        .next()
        .ok_or("the overlay listens nowhere")?;
    Ok(Node {
        overlay,
        inbound,
        task,
        addr,
    })
}

/// Waits for the first event matching `pred`, for at most `within`.
pub async fn next_event(
    events: &mut broadcast::Receiver<OverlayEvent>,
    within: Duration,
    mut pred: impl FnMut(&OverlayEvent) -> bool,
) -> TestResult<OverlayEvent> {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if pred(&event) => return Ok(event),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Err("overlay stopped".into()),
            }
        }
    };
    timeout(within, wait)
        .await
        .map_err(|_| format!("no matching overlay event within {within:?}"))?
}

/// Waits until `check` holds, re-checking every 25 ms, for at most [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: Future<Output = TestResult<bool>>,
{
    let deadline = Instant::now() + PATIENCE;
    let mut tick = interval(RECHECK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if check().await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {PATIENCE:?} waiting for {what}").into());
        }
    }
}

pub async fn connected_to(node: &Node, peer: PeerId) -> TestResult<bool> {
    let peers = node.overlay.connected_peers().await?;
    Ok(peers.iter().any(|p| p.peer_id == peer))
}

/// An RPC request carrying `body`.
pub fn echo_request(body: &[u8]) -> RpcRequest {
    RpcRequest {
        id: "echo-1".into(),
        service: "echo".into(),
        endpoint: "Echo.Echo".into(),
        body: body.to_vec(),
        ..RpcRequest::default()
    }
}

/// Takes over `node`'s inbound traffic: every RPC is answered with status 200 and the
/// request's body, until the overlay stops; everything else is dropped.
pub fn serve_echo(node: &mut Node) -> JoinHandle<()> {
    let (_, closed) = mpsc::channel(1);
    let mut inbound = std::mem::replace(&mut node.inbound, closed);
    tokio::spawn(async move {
        while let Some(message) = inbound.recv().await {
            if let Inbound::Rpc {
                request, responder, ..
            } = message
            {
                responder.respond(RpcResponse {
                    id: request.id,
                    status: 200,
                    body: request.body,
                    ..RpcResponse::default()
                });
            }
        }
    })
}

/// The next gossip payload on `topic` that reaches `node` within `within`, if any. Other
/// inbound traffic is dropped.
pub async fn next_gossip(node: &mut Node, topic: &str, within: Duration) -> Option<Vec<u8>> {
    let wait = async {
        loop {
            match node.inbound.recv().await? {
                Inbound::Gossip(message) if message.topic == topic => return Some(message.data),
                _ => {}
            }
        }
    };
    timeout(within, wait).await.ok().flatten()
}

/// `from` publishes `payload` on `topic` once it sees a subscriber; `to` must receive it.
pub async fn gossip_flows(topic: &str, from: &Node, to: &mut Node, payload: &[u8]) -> TestResult {
    eventually("the publisher to see the subscriber", || async {
        Ok(from.overlay.topic_peers(topic).await? > 0)
    })
    .await?;
    let reached = from.overlay.publish(topic, payload.to_vec()).await?;
    assert!(reached > 0, "published to nobody");
    let got = next_gossip(to, topic, PATIENCE).await;
    assert_eq!(got.as_deref(), Some(payload), "gossip did not arrive");
    Ok(())
}
