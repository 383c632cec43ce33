//! Gossipsub topics and Kademlia provider records, on behalf of the node.

use libp2p::kad::store::RecordStore;
use libp2p::{PeerId, gossipsub, kad};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::EventLoop;
use crate::OverlayError;
use crate::rpc::{GossipMessage, Inbound};

impl EventLoop {
    pub(super) fn subscribe(&mut self, topic: &str) -> Result<bool, OverlayError> {
        let topic = gossipsub::IdentTopic::new(topic);
        self.swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .map_err(|e| OverlayError::Gossip(e.to_string()))
    }

    /// Connected peers known to be subscribed to `topic`.
    pub(super) fn topic_peers(&self, topic: &str) -> usize {
        let hash = gossipsub::IdentTopic::new(topic).hash();
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .count()
    }

    /// Publishes; returns how many peers subscribed to the topic it went to. No peers is not
    /// an error: the message simply reached nobody.
    pub(super) fn publish(&mut self, topic: String, data: Vec<u8>) -> Result<usize, OverlayError> {
        let peers = self.topic_peers(&topic);
        let topic = gossipsub::IdentTopic::new(topic);
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        match gossipsub.publish(topic, data) {
            Ok(_) => Ok(peers),
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic)
            | Err(gossipsub::PublishError::Duplicate) => Ok(0),
            Err(e) => Err(OverlayError::Gossip(e.to_string())),
        }
    }

    pub(super) fn on_gossipsub_event(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        let msg = GossipMessage {
            topic: message.topic.into_string(),
            propagation_source,
            id: message_id.clone(),
            data: message.data,
        };
        if let Err(e) = self.inbound.try_send(Inbound::Gossip(msg)) {
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                warn!(peer = %propagation_source, "node busy: gossip message ignored");
            }
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    gossipsub::MessageAcceptance::Ignore,
                );
        }
    }

    pub(super) fn start_providing(&mut self, key: Vec<u8>) -> Result<(), OverlayError> {
        self.swarm
            .behaviour_mut()
            .kad
            .start_providing(kad::RecordKey::new(&key))
            .map(drop)
            .map_err(|e| OverlayError::Dht(e.to_string()))
    }

    pub(super) fn get_providers(
        &mut self,
        key: Vec<u8>,
        reply: oneshot::Sender<Result<crate::ProviderLookup, OverlayError>>,
    ) {
        let id = self
            .swarm
            .behaviour_mut()
            .kad
            .get_providers(kad::RecordKey::new(&key));
        self.provider_queries
            .insert(id, (Default::default(), reply));
    }

    pub(super) fn on_providers_progress(
        &mut self,
        id: kad::QueryId,
        result: Result<kad::GetProvidersOk, kad::GetProvidersError>,
        last: bool,
        stats: &kad::QueryStats,
    ) {
        if !self.provider_queries.contains_key(&id) {
            return;
        }
        if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = &result {
            self.keep_provider_addrs(providers);
        }
        let Some((found, _)) = self.provider_queries.get_mut(&id) else {
            return;
        };
        match result {
            Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => found.extend(providers),
            Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) => {}
            Err(e) => debug!(error = %e, "provider lookup ended with an error"),
        }
        // Enough found: answer now instead of waiting for every closest peer, where one slow
        // or unreachable peer holds the query until its request times out.
        let enough = found.len() >= self.config.provider_lookup_enough.max(1);
        if enough
            && !last
            && let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id)
        {
            query.finish();
        }
        if (last || enough)
            && let Some((found, reply)) = self.provider_queries.remove(&id)
        {
            let mut providers: Vec<PeerId> = found.into_iter().collect();
            providers.sort();
            let _ = reply.send(Ok(crate::ProviderLookup {
                providers,
                requests: stats.num_requests(),
                successes: stats.num_successes(),
            }));
        }
    }

    /// Copies the addresses a provider lookup learned for `providers` into the peer book,
    /// where calls to them look (see `send_rpc`).
    ///
    /// Kademlia hands providers' addresses to its query only: once the query ends (and it is
    /// ended early, as soon as enough providers are found) they are gone, and a provider
    /// that is neither connected nor in the routing table cannot be dialled. That was most
    /// failed calls of the 200-node simulation once idle connections were trimmed. Kademlia
    /// offers the addresses it knows for a peer through the swarm's dial hook only; asking it
    /// directly is free of side effects.
    fn keep_provider_addrs(&mut self, providers: &std::collections::HashSet<PeerId>) {
        for provider in providers {
            if *provider == *self.swarm.local_peer_id()
                || self.connections.contains_key(provider)
                || self.book.get(provider).is_some_and(|n| !n.addrs.is_empty())
            {
                continue;
            }
            let addrs = self.kad_addrs(provider);
            if !addrs.is_empty() {
                self.book.routable(*provider, addrs);
            }
        }
    }

    /// The addresses Kademlia knows for `peer` (routing table and running queries), asked
    /// through its dial hook, the only place it gives them out; the call has no side effects.
    pub(super) fn kad_addrs(&mut self, peer: &PeerId) -> Vec<libp2p::Multiaddr> {
        use libp2p::core::Endpoint;
        use libp2p::swarm::{ConnectionId, NetworkBehaviour};
        self.swarm
            .behaviour_mut()
            .kad
            .handle_pending_outbound_connection(
                ConnectionId::new_unchecked(0),
                Some(*peer),
                &[],
                Endpoint::Dialer,
            )
            .unwrap_or_default()
    }

    /// With `StoreInserts::FilterBoth`, inbound DHT writes come here: provider records (whose
    /// provider Kademlia already checked is the sender) are stored, values are refused.
    pub(super) fn on_kad_inbound(&mut self, request: kad::InboundRequest) {
        match request {
            kad::InboundRequest::AddProvider {
                record: Some(record),
            } => {
                if let Err(e) = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .store_mut()
                    .add_provider(record)
                {
                    warn!(error = %e, "provider record not stored");
                }
            }
            kad::InboundRequest::PutRecord {
                source,
                record: Some(_),
                ..
            } => {
                debug!(peer = %source, "refused a DHT value: this network stores none");
            }
            _ => {}
        }
    }
}
