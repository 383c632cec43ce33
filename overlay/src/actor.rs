//! The overlay actor: the one task that owns the libp2p [`Swarm`].
//!
//! It serves [`Command`]s from [`Overlay`] handles, turns swarm events into peer-book updates
//! and [`OverlayEvent`]s, keeps a peer node joined (bootstrap with backoff) and keeps a super
//! node in the backbone mesh.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, kad, ping};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior, interval};
use tracing::{debug, info, warn};

use crate::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
use crate::config::OverlayConfig;
use crate::event::{Direction, LocalInfo, OverlayEvent, PeerConnection};
use crate::handle::Overlay;
use crate::peer_book::{NodeInfo, PeerBook, Route, unix_ms};
use crate::peer_exchange::{PeerEntry, PeerList};
use crate::transport::build_swarm;
use crate::{OverlayError, Role, proto};

/// How often the actor checks its timers (bootstrap retry, backbone upkeep).
const MAINTENANCE_TICK: Duration = Duration::from_secs(1);

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

/// One open connection.
struct Conn {
    id: ConnectionId,
    remote: Multiaddr,
    direction: Direction,
    since_unix_ms: u64,
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
    bootstrap: Bootstrap,
    next_backbone: Instant,
    joined: bool,
    bootstrapping: bool,
    started: Instant,
}

/// Builds the swarm, binds every listen address (so a port in use fails here, not later),
/// dials the bootstrap nodes and spawns the actor.
pub fn spawn(
    key: Keypair,
    config: OverlayConfig,
) -> Result<(Overlay, tokio::task::JoinHandle<()>), OverlayError> {
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
    let now = Instant::now();
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
        listeners,
        listen_addrs: Vec::new(),
        listening_waiters: Vec::new(),
        joined: false,
        bootstrapping: false,
        started: now,
    };
    event_loop.dial_bootstrap_nodes();
    let handle = Overlay {
        local_peer_id,
        commands: command_tx,
        events: event_tx,
    };
    let task = tokio::spawn(event_loop.run());
    Ok((handle, task))
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

impl EventLoop {
    /// Runs until shutdown is asked for or every handle is dropped.
    pub(crate) async fn run(mut self) {
        let mut tick = interval(MAINTENANCE_TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut walk = interval(self.config.discovery_interval);
        walk.set_missed_tick_behavior(MissedTickBehavior::Delay);
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
                _ = tick.tick() => self.maintain(),
                _ = walk.tick() => self.random_walk(),
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

    fn dial_bootstrap_nodes(&mut self) {
        for boot in self.config.bootstrap.clone() {
            let addr_without_p2p: Multiaddr = boot
                .addr
                .iter()
                .filter(|p| !matches!(p, Protocol::P2p(_)))
                .collect();
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&boot.peer_id, addr_without_p2p.clone());
            let opts = DialOpts::peer_id(boot.peer_id)
                .addresses(vec![addr_without_p2p])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                debug!(peer = %boot.peer_id, error = %e, "bootstrap dial not started");
            }
        }
    }

    fn maintain(&mut self) {
        let now = Instant::now();
        let alone = self.swarm.connected_peers().next().is_none();
        if alone && !self.config.bootstrap.is_empty() && now >= self.bootstrap.next_attempt {
            self.bootstrap.attempts += 1;
            let retry_in = self.bootstrap.backoff;
            warn!(
                attempt = self.bootstrap.attempts,
                retry_in_secs = retry_in.as_secs_f32(),
                "no peer connected; dialling {} bootstrap node(s) again",
                self.config.bootstrap.len()
            );
            self.dial_bootstrap_nodes();
            self.bootstrap.next_attempt = now + retry_in;
            self.bootstrap.backoff = (retry_in * 2).min(self.config.bootstrap_backoff_max);
            self.emit(OverlayEvent::Alone { retry_in });
        }
        if self.config.role == Role::Super && now >= self.next_backbone {
            self.next_backbone = now + self.config.backbone_interval;
            self.tend_backbone();
        }
    }

    /// Super nodes: ask connected supers for their peers (to learn more supers) and dial every
    /// known super that is not connected.
    fn tend_backbone(&mut self) {
        let supers: Vec<NodeInfo> = self
            .book
            .iter()
            .filter(|n| n.role == Some(Role::Super))
            .cloned()
            .collect();
        for node in supers {
            if node.connected {
                let id = self.swarm.behaviour_mut().peers.send_request(
                    &node.peer_id,
                    proto::PeersRequest {
                        max_peers: self.config.peer_exchange.max_peers_per_reply as u32,
                    },
                );
                self.pending_asks
                    .insert(id, (node.peer_id, PendingAsk::Backbone));
            } else if !node.addrs.is_empty() {
                debug!(peer = %node.peer_id, "dialling super node to keep the backbone meshed");
                let opts = DialOpts::peer_id(node.peer_id)
                    .addresses(node.addrs.clone())
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                let _ = self.swarm.dial(opts);
            }
        }
    }

    fn random_walk(&mut self) {
        if self.swarm.connected_peers().next().is_some() {
            self.swarm
                .behaviour_mut()
                .kad
                .get_closest_peers(PeerId::random());
        }
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
                let result = self
                    .swarm
                    .dial(addr.clone())
                    .map_err(|e| OverlayError::Dial {
                        addr,
                        reason: e.to_string(),
                    });
                let _ = reply.send(result);
            }
            Command::WaitListening { reply } => {
                self.listening_waiters.push(reply);
                self.wake_listening_waiters();
            }
            Command::Shutdown { .. } => unreachable!("handled by run()"),
        }
    }

    fn local_info(&mut self) -> LocalInfo {
        let kad_mode = self.swarm.behaviour().kad.mode().to_string();
        LocalInfo {
            peer_id: *self.swarm.local_peer_id(),
            role: self.config.role,
            agent: self.config.role.agent_version(),
            listen_addrs: self
                .listen_addrs
                .iter()
                .map(|a| self.share_addr(a))
                .collect(),
            external_addrs: self
                .swarm
                .external_addresses()
                .map(|a| self.share_addr(a))
                .collect(),
            kad_mode,
            connected_peers: self.connections.len(),
            known_nodes: self.book.len(),
            joined: self.joined,
            uptime_secs: self.started.elapsed().as_secs(),
        }
    }

    fn connected_peers(&self) -> Vec<PeerConnection> {
        let mut peers: Vec<PeerConnection> = self
            .connections
            .iter()
            .filter_map(|(peer, conns)| {
                let oldest = conns.iter().min_by_key(|c| c.since_unix_ms)?;
                let node = self.book.get(peer);
                Some(PeerConnection {
                    peer_id: *peer,
                    role: node.and_then(|n| n.role),
                    agent: node.and_then(|n| n.agent.clone()),
                    remote_addrs: conns.iter().map(|c| c.remote.clone()).collect(),
                    direction: oldest.direction,
                    connected_since_unix_ms: oldest.since_unix_ms,
                    rtt_ms: node.and_then(|n| n.rtt_ms),
                })
            })
            .collect();
        peers.sort_by_key(|p| p.peer_id);
        peers
    }

    fn known_nodes(&mut self) -> Vec<NodeInfo> {
        let mut in_table: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                in_table.insert(
                    *entry.node.key.preimage(),
                    entry.node.value.iter().cloned().collect(),
                );
            }
        }
        for (peer, addrs) in &in_table {
            self.book.routable(*peer, addrs.iter().cloned());
        }
        let mut nodes: Vec<NodeInfo> = self
            .book
            .iter()
            .cloned()
            .map(|mut n| {
                n.in_routing_table = in_table.contains_key(&n.peer_id);
                n
            })
            .collect();
        nodes.sort_by_key(|n| n.peer_id);
        nodes
    }

    /// What this node answers to a peer-exchange request: its connections, best address first.
    fn local_peer_list(&self, max: usize) -> PeerList {
        let limit = max.min(self.config.peer_exchange.max_peers_per_reply);
        let peers: Vec<PeerEntry> = self
            .connected_peers()
            .into_iter()
            .map(|p| {
                let mut addrs = self
                    .book
                    .get(&p.peer_id)
                    .map(|n| n.addrs.clone())
                    .unwrap_or_default();
                if addrs.is_empty() {
                    addrs = self.connections[&p.peer_id]
                        .iter()
                        .filter(|c| c.direction == Direction::Outbound)
                        .map(|c| c.remote.clone())
                        .collect();
                }
                PeerEntry {
                    peer_id: p.peer_id,
                    role: p.role,
                    addrs,
                    rtt: p.rtt_ms.map(|ms| Duration::from_secs_f64(ms / 1000.0)),
                }
            })
            .collect();
        let truncated = peers.len() > limit;
        PeerList {
            role: Some(self.config.role),
            agent: self.config.role.agent_version(),
            listen_addrs: self.listen_addrs.clone(),
            peers: peers.into_iter().take(limit).collect(),
            truncated,
            dropped: 0,
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                info!(addr = %self.share_addr(&address), "listening");
                if let Some(Some(addrs)) = self.listeners.get_mut(&listener_id) {
                    addrs.push(address.clone());
                }
                self.listen_addrs.push(address.clone());
                self.emit(OverlayEvent::Listening { addr: address });
                self.wake_listening_waiters();
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                addresses,
            } => {
                warn!(?addresses, ?reason, "listener closed");
                self.listen_addrs.retain(|a| !addresses.contains(a));
                if let Some(state) = self.listeners.get_mut(&listener_id) {
                    *state = None;
                }
                self.wake_listening_waiters();
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => self.on_connected(peer_id, connection_id, &endpoint),
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                cause,
                ..
            } => {
                debug!(peer = %peer_id, ?cause, "connection closed");
                if let Some(conns) = self.connections.get_mut(&peer_id) {
                    conns.retain(|c| c.id != connection_id);
                    if conns.is_empty() {
                        self.connections.remove(&peer_id);
                        self.book.disconnected(peer_id);
                        self.emit(OverlayEvent::PeerDisconnected { peer: peer_id });
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                let is_bootstrap =
                    peer_id.is_some_and(|p| self.config.bootstrap.iter().any(|b| b.peer_id == p));
                if is_bootstrap {
                    warn!(peer = ?peer_id, %error, "bootstrap node did not answer");
                } else {
                    debug!(peer = ?peer_id, %error, "outgoing connection failed");
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!(%error, "incoming connection failed");
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn on_connected(&mut self, peer: PeerId, id: ConnectionId, endpoint: &ConnectedPoint) {
        let (remote, direction) = match endpoint {
            ConnectedPoint::Dialer { address, .. } => (address.clone(), Direction::Outbound),
            ConnectedPoint::Listener { send_back_addr, .. } => {
                (send_back_addr.clone(), Direction::Inbound)
            }
        };
        let first = !self.connections.contains_key(&peer);
        let was_alone = self.connections.is_empty();
        self.connections.entry(peer).or_default().push(Conn {
            id,
            remote: remote.clone(),
            direction,
            since_unix_ms: unix_ms(SystemTime::now()),
        });
        let dialed = (direction == Direction::Outbound).then(|| remote.clone());
        self.book.connected(peer, dialed);
        if first {
            debug!(%peer, %remote, ?direction, "peer connected");
            self.emit(OverlayEvent::PeerConnected {
                peer,
                endpoint: remote,
            });
        }
        if was_alone {
            self.bootstrap.backoff = self.config.bootstrap_backoff_min;
            self.bootstrap.attempts = 0;
            self.start_kad_bootstrap();
        }
    }

    fn start_kad_bootstrap(&mut self) {
        match self.swarm.behaviour_mut().kad.bootstrap() {
            Ok(_) => self.bootstrapping = true,
            // Nobody in the routing table yet: identify will add the peer, then we retry.
            Err(kad::NoKnownPeers()) => debug!("kademlia bootstrap deferred: routing table empty"),
        }
    }

    fn mark_joined(&mut self) {
        if self.joined || self.connections.is_empty() {
            return;
        }
        self.joined = true;
        let elapsed = self.started.elapsed();
        let peers = self.connections.len();
        info!(
            peers,
            elapsed_ms = elapsed.as_millis() as u64,
            "joined the network"
        );
        self.emit(OverlayEvent::Joined { elapsed, peers });
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.on_identified(peer_id, info)
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => self.book.rtt(peer, rtt),
            BehaviourEvent::Kad(event) => self.on_kad_event(event),
            BehaviourEvent::Peers(event) => self.on_peers_event(event),
            _ => {}
        }
    }

    fn on_identified(&mut self, peer: PeerId, info: identify::Info) {
        let role = Role::from_agent_version(&info.agent_version);
        debug!(%peer, agent = %info.agent_version, ?role, "identified");
        let listen: Vec<Multiaddr> = info
            .listen_addrs
            .iter()
            .take(self.config.max_addrs_per_peer)
            .cloned()
            .collect();
        self.book
            .identified(peer, &info.agent_version, listen.clone());
        if info.protocols.contains(&KAD_PROTOCOL) {
            for addr in listen {
                self.swarm.behaviour_mut().kad.add_address(&peer, addr);
            }
            if !self.bootstrapping && !self.joined {
                self.start_kad_bootstrap();
            }
        } else if !self.bootstrapping {
            // The peer serves no DHT (a client-mode peer): being connected is all there is.
            self.mark_joined();
        }
        if self.config.role == Role::Super && role == Some(Role::Super) {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .add_explicit_peer(&peer);
        }
        self.emit(OverlayEvent::PeerIdentified { peer, role });
    }

    fn on_kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::RoutingUpdated {
                peer, addresses, ..
            } => {
                self.book.routable(peer, addresses.iter().cloned());
                self.emit(OverlayEvent::RoutingUpdated { peer });
            }
            kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::Bootstrap(result),
                step,
                ..
            } => {
                if let Err(e) = &result {
                    debug!(error = ?e, "kademlia bootstrap step failed");
                }
                if step.last {
                    self.bootstrapping = false;
                    self.mark_joined();
                }
            }
            kad::Event::ModeChanged { new_mode } => {
                info!(mode = %new_mode, "kademlia mode changed")
            }
            other => debug!(event = ?other, "kademlia event"),
        }
    }

    fn on_peers_event(
        &mut self,
        event: request_response::Event<proto::PeersRequest, proto::PeersResponse>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let max = usize::try_from(request.max_peers).unwrap_or(usize::MAX);
                let reply = self
                    .local_peer_list(max)
                    .to_wire(&self.config.peer_exchange);
                if self
                    .swarm
                    .behaviour_mut()
                    .peers
                    .send_response(channel, reply)
                    .is_err()
                {
                    debug!(%peer, "peer-exchange asker went away before the reply");
                }
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let result = PeerList::from_wire(response, &self.config.peer_exchange)
                    .map_err(|source| OverlayError::InvalidPeerList { peer, source });
                match &result {
                    Ok(list) => {
                        if list.dropped > 0 {
                            warn!(%peer, dropped = list.dropped, "peer-exchange reply had invalid entries");
                        }
                        self.learn_from(peer, list);
                    }
                    Err(e) => warn!(%peer, error = %e, "dropping peer-exchange reply"),
                }
                if let Some((_, PendingAsk::Caller(reply))) = self.pending_asks.remove(&request_id)
                {
                    let _ = reply.send(result);
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if matches!(error, request_response::OutboundFailure::Io(_)) {
                    warn!(%peer, %error, "malformed or oversized peer-exchange reply dropped");
                } else {
                    debug!(%peer, %error, "peer-exchange request failed");
                }
                if let Some((_, PendingAsk::Caller(reply))) = self.pending_asks.remove(&request_id)
                {
                    let _ = reply.send(Err(OverlayError::PeerExchange {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound peer-exchange request failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    /// Feeds a peer-exchange reply from `reporter` into the peer book.
    fn learn_from(&mut self, reporter: PeerId, list: &PeerList) {
        self.book.reported(
            *self.swarm.local_peer_id(),
            &PeerEntry {
                peer_id: reporter,
                role: list.role,
                addrs: list.listen_addrs.clone(),
                rtt: None,
            },
        );
        for entry in &list.peers {
            self.book.reported(reporter, entry);
        }
    }
}
