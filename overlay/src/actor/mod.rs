//! The overlay actor: the one task that owns the libp2p [`Swarm`].
//!
//! It serves [`Command`]s from [`Overlay`] handles, turns swarm events into peer-book updates
//! and [`OverlayEvent`]s, keeps a peer node joined (bootstrap with backoff) and keeps a super
//! node in the backbone mesh.

mod block;
mod events;
mod gossip;
mod peers;
mod refresh;
mod rpc;
mod sync;
mod trim;
mod upkeep;
mod views;

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::core::transport::ListenerId;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::OutboundRequestId;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, kad};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior, interval};
use tracing::{Instrument, info};

use crate::behaviour::Behaviour;
use crate::config::OverlayConfig;
use crate::event::{Direction, LocalInfo, OverlayEvent, PeerConnection};
use crate::handle::Overlay;
use crate::peer_book::{NodeInfo, PeerBook, Route};
use crate::peer_exchange::PeerList;
use crate::rpc::{Inbound, RpcFailure};
use crate::rpc_proto::{RpcRequest, RpcResponse};
use crate::transport::build_swarm;
use crate::{OverlayError, proto};

use self::rpc::PendingAnswer;

/// How often the actor checks its timers (bootstrap retry, backbone upkeep).
const MAINTENANCE_TICK: Duration = Duration::from_secs(1);
/// Most remembered dial errors ([`EventLoop::dial_errors`]); more are dropped, oldest
/// unknown, and the failure they would have explained says only that the dial failed.
const MAX_DIAL_ERRORS: usize = 256;

/// Where the answer to an outbound sync request goes.
type SyncReply = oneshot::Sender<Result<Vec<u8>, RpcFailure>>;

/// A request to the actor; each carries its own reply channel.
#[derive(Debug)]
pub(crate) enum Command {
    Info {
        reply: oneshot::Sender<LocalInfo>,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PeerConnection>>,
    },
    KnownNodes {
        reply: oneshot::Sender<Vec<NodeInfo>>,
    },
    Routes {
        reply: oneshot::Sender<Vec<Route>>,
    },
    AskPeers {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        reply: oneshot::Sender<Result<PeerList, OverlayError>>,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), OverlayError>>,
    },
    WaitListening {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Rpc {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: RpcRequest,
        reply: oneshot::Sender<Result<RpcResponse, RpcFailure>>,
    },
    Subscribe {
        topic: String,
        reply: oneshot::Sender<Result<bool, OverlayError>>,
    },
    Unsubscribe {
        topic: String,
        reply: oneshot::Sender<bool>,
    },
    Publish {
        topic: String,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<usize, OverlayError>>,
    },
    TopicPeers {
        topic: String,
        reply: oneshot::Sender<usize>,
    },
    ReportMessage {
        id: gossipsub::MessageId,
        propagation_source: PeerId,
        acceptance: gossipsub::MessageAcceptance,
    },
    StartProviding {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<(), OverlayError>>,
    },
    StopProviding {
        key: Vec<u8>,
    },
    GetProviders {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<crate::ProviderLookup, OverlayError>>,
    },
    Sync {
        protocol: libp2p::StreamProtocol,
        peer: PeerId,
        request: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, RpcFailure>>,
    },
    SetAppScores {
        scores: Vec<(PeerId, f64)>,
    },
    PeerScore {
        peer: PeerId,
        reply: oneshot::Sender<Option<f64>>,
    },
    BlockPeer {
        peer: PeerId,
        reply: oneshot::Sender<Result<(), OverlayError>>,
    },
    UnblockPeer {
        peer: PeerId,
        reply: oneshot::Sender<()>,
    },
    BlockedPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Who is waiting for a peer-exchange reply.
enum PendingAsk {
    /// A caller of [`Overlay::ask_peers`].
    Caller(oneshot::Sender<Result<PeerList, OverlayError>>),
    /// The backbone upkeep of a super node; the reply only feeds the peer book.
    Backbone,
}

/// A provider lookup in progress: the providers found so far, and who waits for them.
type ProviderQuery = (
    HashSet<PeerId>,
    oneshot::Sender<Result<crate::ProviderLookup, OverlayError>>,
);

/// One open connection.
struct Conn {
    id: ConnectionId,
    remote: Multiaddr,
    direction: Direction,
    since_unix_ms: u64,
    /// When it was established (for trimming).
    opened: Instant,
}

/// Bootstrap retry state of a node that has `--bootstrap` addresses.
struct Bootstrap {
    backoff: Duration,
    next_attempt: Instant,
    attempts: u32,
}

/// The actor's state. Created by [`spawn`], run by [`EventLoop::run`].
pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    config: OverlayConfig,
    commands: mpsc::Receiver<Command>,
    events: broadcast::Sender<OverlayEvent>,
    book: PeerBook,
    connections: HashMap<PeerId, Vec<Conn>>,
    pending_asks: HashMap<OutboundRequestId, (PeerId, PendingAsk)>,
    /// Every listener and the addresses it reported; empty until its first report, `None`
    /// once it closed.
    listeners: HashMap<ListenerId, Option<Vec<Multiaddr>>>,
    listen_addrs: Vec<Multiaddr>,
    listening_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    /// Inbound RPCs and gossip for the node. Never awaited: when full, the actor sheds load.
    inbound: mpsc::Sender<Inbound>,
    /// Outbound RPCs awaiting their response.
    pending_rpcs: HashMap<OutboundRequestId, oneshot::Sender<Result<RpcResponse, RpcFailure>>>,
    /// Inbound RPCs the node is working on: each resolves to the response to send.
    answering: FuturesUnordered<PendingAnswer>,
    /// Outbound sync requests awaiting their response.
    pending_sync: HashMap<(libp2p::StreamProtocol, OutboundRequestId), SyncReply>,
    /// Inbound sync requests the node is working on.
    answering_sync: FuturesUnordered<self::sync::PendingSync>,
    /// Provider lookups: the providers found so far and who waits for them.
    provider_queries: HashMap<kad::QueryId, ProviderQuery>,
    bootstrap: Bootstrap,
    next_backbone: Instant,
    joined: bool,
    /// How long after the start the node joined.
    joined_after: Option<Duration>,
    /// Protocol messages received ([`crate::LocalInfo::messages_received`]).
    messages_received: u64,
    /// How each connected peer (and each peer with a request in flight) is used.
    usage: HashMap<PeerId, trim::Usage>,
    /// Peers being disconnected by trimming.
    trimming: HashSet<PeerId>,
    /// Peers disconnected by trimming ([`crate::LocalInfo::connections_trimmed`]).
    connections_trimmed: u64,
    /// Why the last dial of each peer failed, for the RPC that waited on it (bounded by
    /// [`MAX_DIAL_ERRORS`]; taken by the failure it explains).
    dial_errors: HashMap<PeerId, String>,
    /// The paced routing-table refresh ([`refresh`]).
    refresh: refresh::Refresh,
    /// Refresh lookups started ([`crate::LocalInfo::routing_refreshes`]).
    routing_refreshes: u64,
    /// Requests sent by bootstrap and refresh lookups
    /// ([`crate::LocalInfo::routing_requests`]).
    routing_requests: u64,
    bootstrapping: bool,
    started: Instant,
}

/// Builds the swarm, binds every listen address (so a port in use fails here, not later),
/// dials the bootstrap nodes and spawns the actor.
///
/// Returns the handle, the receiver of [`Inbound`] traffic (RPCs and gossip the node must
/// handle; capacity `inbound_capacity`) and the actor's task.
pub fn spawn(
    key: Keypair,
    config: OverlayConfig,
) -> Result<
    (
        Overlay,
        mpsc::Receiver<Inbound>,
        tokio::task::JoinHandle<()>,
    ),
    OverlayError,
> {
    let local_peer_id = key.public().to_peer_id();
    let mut swarm = build_swarm(key, &config)?;
    let mut listeners = HashMap::with_capacity(config.listen.len());
    for addr in &config.listen {
        ensure_tcp_port_free(addr)?;
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| OverlayError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        listeners.insert(id, Some(Vec::new()));
    }
    let (command_tx, command_rx) = mpsc::channel(config.command_capacity.max(1));
    let (event_tx, _) = broadcast::channel(config.event_capacity.max(1));
    let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_capacity.max(1));
    let now = Instant::now();
    let refresh = refresh::Refresh::new(now, config.discovery_interval);
    let mut event_loop = EventLoop {
        book: PeerBook::new(
            local_peer_id,
            config.peer_book_capacity,
            config.max_addrs_per_peer,
        ),
        bootstrap: Bootstrap {
            backoff: config.bootstrap_backoff_min,
            next_attempt: now + config.bootstrap_backoff_min,
            attempts: 0,
        },
        next_backbone: now + config.backbone_interval,
        swarm,
        config,
        commands: command_rx,
        events: event_tx.clone(),
        connections: HashMap::new(),
        pending_asks: HashMap::new(),
        inbound: inbound_tx,
        pending_rpcs: HashMap::new(),
        answering: FuturesUnordered::new(),
        pending_sync: HashMap::new(),
        answering_sync: FuturesUnordered::new(),
        provider_queries: HashMap::new(),
        listeners,
        listen_addrs: Vec::new(),
        listening_waiters: Vec::new(),
        joined: false,
        joined_after: None,
        messages_received: 0,
        usage: HashMap::new(),
        trimming: HashSet::new(),
        connections_trimmed: 0,
        dial_errors: HashMap::new(),
        refresh,
        routing_refreshes: 0,
        routing_requests: 0,
        bootstrapping: false,
        started: now,
    };
    event_loop.dial_bootstrap_nodes();
    let handle = Overlay {
        local_peer_id,
        commands: command_tx,
        events: event_tx,
    };
    // The actor logs in the caller's span, so a process running many nodes (the
    // simulations) can tell them apart.
    let task = tokio::spawn(event_loop.run().instrument(tracing::Span::current()));
    Ok((handle, inbound_rx, task))
}

/// libp2p binds TCP listeners with `SO_REUSEPORT`, so a second process on the same port
/// would silently share it. Binding once without it first turns that into a clear error.
fn ensure_tcp_port_free(addr: &Multiaddr) -> Result<(), OverlayError> {
    let mut ip = None;
    let mut port = None;
    for proto in addr.iter() {
        match proto {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    match (ip, port) {
        (Some(ip), Some(port)) if port != 0 => {
            TcpListener::bind((ip, port))
                .map(drop)
                .map_err(|e| OverlayError::Listen {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })
        }
        _ => Ok(()),
    }
}

/// The peer a multiaddr names in its trailing `/p2p/` component, if any.
fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

impl EventLoop {
    /// Runs until shutdown is asked for or every handle is dropped.
    pub(crate) async fn run(mut self) {
        let mut tick = interval(MAINTENANCE_TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => {
                        self.close();
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => {
                        self.close();
                        return;
                    }
                },
                Some(answer) = self.answering.next(), if !self.answering.is_empty() => {
                    self.send_rpc_response(answer);
                }
                Some((peer, protocol, answer, channel)) = self.answering_sync.next(), if !self.answering_sync.is_empty() => {
                    self.end_use(peer);
                    self.send_sync_answer(protocol, answer, channel);
                }
                _ = tick.tick() => self.maintain(),
            }
        }
    }

    fn emit(&self, event: OverlayEvent) {
        // No subscriber is fine: events are informational.
        let _ = self.events.send(event);
    }

    fn close(&mut self) {
        info!("overlay shutting down: closing listeners and connections");
        let ids: Vec<ListenerId> = self.listeners.drain().map(|(id, _)| id).collect();
        for id in ids {
            self.swarm.remove_listener(id);
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Answers [`Command::WaitListening`] once every listener reported an address or closed.
    fn wake_listening_waiters(&mut self) {
        let all_reported = self
            .listeners
            .values()
            .all(|state| state.as_ref().is_none_or(|addrs| !addrs.is_empty()));
        if all_reported {
            let addrs: Vec<Multiaddr> = self
                .listen_addrs
                .iter()
                .map(|a| self.share_addr(a))
                .collect();
            for waiter in self.listening_waiters.drain(..) {
                let _ = waiter.send(addrs.clone());
            }
        }
    }

    fn share_addr(&self, addr: &Multiaddr) -> Multiaddr {
        addr.clone()
            .with_p2p(*self.swarm.local_peer_id())
            .unwrap_or_else(|a| a)
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Info { reply } => {
                let _ = reply.send(self.local_info());
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.connected_peers());
            }
            Command::KnownNodes { reply } => {
                let _ = reply.send(self.known_nodes());
            }
            Command::Routes { reply } => {
                let _ = reply.send(self.book.routes());
            }
            Command::AskPeers {
                peer,
                mut addrs,
                reply,
            } => {
                if peer == *self.swarm.local_peer_id() {
                    let _ = reply.send(Ok(self.local_peer_list(usize::MAX)));
                    return;
                }
                if self.is_blocked(&peer) {
                    let _ = reply.send(Err(OverlayError::PeerBlocked { peer }));
                    return;
                }
                if let Some(node) = self.book.get(&peer) {
                    addrs.extend(node.addrs.iter().cloned());
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .peers
                    .send_request_with_addresses(
                        &peer,
                        proto::PeersRequest {
                            max_peers: self.config.peer_exchange.max_peers_per_reply as u32,
                        },
                        addrs,
                    );
                self.pending_asks
                    .insert(id, (peer, PendingAsk::Caller(reply)));
            }
            Command::Dial { addr, reply } => {
                let result = self.swarm.dial(addr.clone()).map_err(|e| {
                    match (block::dial_denied_by_block_list(&e), peer_of(&addr)) {
                        (true, Some(peer)) => OverlayError::PeerBlocked { peer },
                        _ => OverlayError::Dial {
                            addr,
                            reason: block::describe_dial_error(&e),
                        },
                    }
                });
                let _ = reply.send(result);
            }
            Command::BlockPeer { peer, reply } => {
                let _ = reply.send(self.block_peer(peer));
            }
            Command::SetAppScores { scores } => {
                let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
                for (peer, score) in scores {
                    gossipsub.set_application_score(&peer, score);
                }
            }
            Command::PeerScore { peer, reply } => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::UnblockPeer { peer, reply } => {
                self.unblock_peer(peer);
                let _ = reply.send(());
            }
            Command::BlockedPeers { reply } => {
                let _ = reply.send(self.blocked_peers());
            }
            Command::Rpc {
                peer,
                addrs,
                request,
                reply,
            } => self.send_rpc(peer, addrs, request, reply),
            Command::Subscribe { topic, reply } => {
                let _ = reply.send(self.subscribe(&topic));
            }
            Command::Unsubscribe { topic, reply } => {
                let topic = gossipsub::IdentTopic::new(topic);
                let _ = reply.send(self.swarm.behaviour_mut().gossipsub.unsubscribe(&topic));
            }
            Command::Publish { topic, data, reply } => {
                let _ = reply.send(self.publish(topic, data));
            }
            Command::TopicPeers { topic, reply } => {
                let _ = reply.send(self.topic_peers(&topic));
            }
            Command::ReportMessage {
                id,
                propagation_source,
                acceptance,
            } => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &propagation_source, acceptance);
            }
            Command::StartProviding { key, reply } => {
                let _ = reply.send(self.start_providing(key));
            }
            Command::StopProviding { key } => {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .stop_providing(&kad::RecordKey::new(&key));
            }
            Command::GetProviders { key, reply } => self.get_providers(key, reply),
            Command::Sync {
                protocol,
                peer,
                request,
                reply,
            } => self.send_sync(protocol, peer, request, reply),
            Command::WaitListening { reply } => {
                self.listening_waiters.push(reply);
                self.wake_listening_waiters();
            }
            Command::Shutdown { .. } => unreachable!("handled by run()"),
        }
    }
}
