//! Swarm and behaviour events: connections, identify, ping and Kademlia.

use std::time::SystemTime;

use libp2p::core::ConnectedPoint;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, identify, kad, ping};
use tracing::{debug, info, warn};

use crate::Role;
use crate::behaviour::{BehaviourEvent, KAD_PROTOCOL};
use crate::event::{Direction, OverlayEvent};
use crate::peer_book::unix_ms;

use super::{Conn, EventLoop, block};

/// Whether `event` is a protocol message this node received (see
/// [`crate::LocalInfo::messages_received`]).
fn is_received_message(event: &BehaviourEvent) -> bool {
    use libp2p::gossipsub;
    use libp2p::request_response::Event as Rr;
    matches!(
        event,
        BehaviourEvent::Identify(identify::Event::Received { .. })
            | BehaviourEvent::Ping(ping::Event { result: Ok(_), .. })
            | BehaviourEvent::Kad(kad::Event::InboundRequest { .. })
            | BehaviourEvent::Peers(Rr::Message { .. })
            | BehaviourEvent::Rpc(Rr::Message { .. })
            | BehaviourEvent::Sync(Rr::Message { .. })
            | BehaviourEvent::LedgerSync(Rr::Message { .. })
            | BehaviourEvent::Gossipsub(gossipsub::Event::Message { .. })
    )
}

impl EventLoop {
    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
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
                        self.trimming.remove(&peer_id);
                        if self.usage.get(&peer_id).is_some_and(|u| u.in_flight == 0) {
                            self.usage.remove(&peer_id);
                        }
                        self.book.disconnected(peer_id);
                        self.emit(OverlayEvent::PeerDisconnected { peer: peer_id });
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. }
                if block::dial_denied_by_block_list(&error) =>
            {
                // Dialled by address only, and the answer came from a blocked peer.
                debug!(peer = ?peer_id, "outgoing connection refused: the peer is blocked");
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                self.remember_dial_error(peer_id, &error);
                let is_bootstrap =
                    peer_id.is_some_and(|p| self.config.bootstrap.iter().any(|b| b.peer_id == p));
                if is_bootstrap {
                    let error = block::describe_dial_error(&error);
                    warn!(peer = ?peer_id, %error, "bootstrap node did not answer");
                } else if block::dial_denied_by_limits(&error) {
                    let census = self.connection_census();
                    debug!(
                        peer = ?peer_id,
                        error = %block::describe_dial_error(&error),
                        open = census.open,
                        inbound = census.inbound,
                        young = census.young,
                        in_flight = census.in_flight,
                        recently_used = census.recently_used,
                        needed_in_mesh = census.needed_in_mesh,
                        "outgoing connection refused by this node's connection limits"
                    );
                } else {
                    let error = block::describe_dial_error(&error);
                    debug!(peer = ?peer_id, %error, "outgoing connection failed");
                }
            }
            SwarmEvent::IncomingConnectionError { peer_id, error, .. }
                if block::listen_denied_by_block_list(&error) =>
            {
                debug!(peer = ?peer_id, "incoming connection refused: the peer is blocked");
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                let error = block::describe_listen_error(&error);
                debug!(%error, "incoming connection failed");
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    pub(super) fn on_connected(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
        let (remote, direction) = match endpoint {
            ConnectedPoint::Dialer { address, .. } => (address.clone(), Direction::Outbound),
            ConnectedPoint::Listener { send_back_addr, .. } => {
                (send_back_addr.clone(), Direction::Inbound)
            }
        };
        self.dial_errors.remove(&peer);
        let first = !self.connections.contains_key(&peer);
        let was_alone = self.connections.is_empty();
        self.connections.entry(peer).or_default().push(Conn {
            id,
            remote: remote.clone(),
            direction,
            since_unix_ms: unix_ms(SystemTime::now()),
            opened: tokio::time::Instant::now(),
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
            self.start_kad_bootstrap();
        }
        self.trim_connections();
    }

    pub(super) fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        if is_received_message(&event) {
            self.messages_received += 1;
        }
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
            BehaviourEvent::Rpc(event) => self.on_rpc_event(event),
            BehaviourEvent::Sync(event) => self.on_sync_event(crate::sync::EVENTS_SYNC, event),
            BehaviourEvent::LedgerSync(event) => {
                self.on_sync_event(crate::sync::LEDGER_SYNC, event)
            }
            BehaviourEvent::Gossipsub(event) => self.on_gossipsub_event(event),
            _ => {}
        }
    }

    pub(super) fn on_identified(&mut self, peer: PeerId, info: identify::Info) {
        let role = Role::from_agent_version(&info.agent_version);
        debug!(%peer, agent = %info.agent_version, ?role, "identified");
        // The bootstrap backoff starts over once a peer has talked to us, not when a
        // connection opens: a remote that blocks us (or is at its connection limit) completes
        // the handshake and drops the connection at once, and resetting on that would retry
        // it every maintenance tick forever.
        self.bootstrap.backoff = self.config.bootstrap_backoff_min;
        self.bootstrap.attempts = 0;
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

    pub(super) fn on_kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::RoutingUpdated {
                peer, addresses, ..
            } => {
                self.book.routable(peer, addresses.iter().cloned());
                self.emit(OverlayEvent::RoutingUpdated { peer });
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::Bootstrap(result),
                step,
                stats,
            } => {
                self.routing_requests += u64::from(stats.num_requests());
                if let Err(e) = &result {
                    debug!(error = ?e, "kademlia bootstrap step failed");
                }
                self.cut_bootstrap_short(id, &step);
                if step.last {
                    self.bootstrapping = false;
                    self.mark_joined();
                }
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                stats,
            } => self.on_providers_progress(id, result, step.last, &stats),
            kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetClosestPeers(result),
                stats,
                step,
                ..
            } => self.on_refresh_progress(result, &stats, step.last),
            kad::Event::InboundRequest { request } => self.on_kad_inbound(request),
            kad::Event::ModeChanged { new_mode } => {
                info!(mode = %new_mode, "kademlia mode changed")
            }
            other => debug!(event = ?other, "kademlia event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use libp2p::gossipsub;

    use super::*;

    fn gossip(event: gossipsub::Event) -> BehaviourEvent {
        BehaviourEvent::Gossipsub(event)
    }

    #[test]
    fn gossip_messages_count_and_gossip_bookkeeping_does_not() {
        let peer = PeerId::random();
        let topic = gossipsub::IdentTopic::new("t").hash();
        let message = gossip(gossipsub::Event::Message {
            propagation_source: peer,
            message_id: gossipsub::MessageId::new(b"m"),
            message: gossipsub::Message {
                source: None,
                data: b"hello".to_vec(),
                sequence_number: None,
                topic: topic.clone(),
            },
        });
        assert!(is_received_message(&message));
        let subscribed = gossip(gossipsub::Event::Subscribed {
            peer_id: peer,
            topic,
        });
        assert!(!is_received_message(&subscribed));
        let failed_ping = BehaviourEvent::Ping(ping::Event {
            peer,
            connection: ConnectionId::new_unchecked(1),
            result: Err(ping::Failure::Timeout),
        });
        assert!(!is_received_message(&failed_ping));
    }
}
