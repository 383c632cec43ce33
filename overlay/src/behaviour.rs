//! The composed libp2p behaviour: one field per protocol the node speaks.

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    StreamProtocol, allow_block_list, connection_limits, gossipsub, identify, kad, ping,
    request_response,
};

use crate::config::{KadMode, OverlayConfig, non_zero};
use crate::{peer_exchange, rpc, sync};

/// Kademlia protocol name of the Micro network (not the public IPFS DHT).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/micro/kad/1.0.0");

/// Identify protocol version: nodes with another version are different networks.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/micro/1.0.0";

/// Every protocol of a Micro node, driven by the overlay actor.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Refuses connections to and from blocked peers and closes theirs when they are blocked.
    /// First, so a blocked peer's connection is refused before any other protocol (or the
    /// connection limits) sets up state for it.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Refuses connections beyond the configured limits before they cost anything.
    pub limits: connection_limits::Behaviour,
    /// Exchanges listen addresses, supported protocols and the role (agent version).
    pub identify: identify::Behaviour,
    /// Measures round-trip times and notices dead connections.
    pub ping: ping::Behaviour,
    /// The registry's routing table and lookups, under `/micro/kad/1.0.0`.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Topic-based publish/subscribe, used by the broker, events and registry directory.
    pub gossipsub: gossipsub::Behaviour,
    /// `/micro/peers/1.0.0`: asks a node who it is connected to.
    pub peers: request_response::Behaviour<peer_exchange::Codec>,
    /// `/micro/rpc/1.0.0`: calls to services.
    pub rpc: request_response::Behaviour<rpc::Codec>,
    /// Events backfill (`/micro/events-sync/1.0.0`): opaque bounded frames for the node.
    pub sync: request_response::Behaviour<sync::BytesCodec>,
    /// Ledger anti-entropy (`/micro/ledger-sync/1.0.0`). One behaviour per sync protocol:
    /// request-response negotiates the first protocol of its list both sides support, so a
    /// shared behaviour would send every request on the first protocol.
    pub ledger_sync: request_response::Behaviour<sync::BytesCodec>,
}

/// Gossipsub message id: SHA-256 of topic and payload, so the same content published twice
/// (or by two nodes) is delivered once.
fn content_message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(message.topic.as_str().as_bytes());
    hash.update([0]);
    hash.update(&message.data);
    gossipsub::MessageId::from(hash.finalize().to_vec())
}

/// Why the behaviour could not be built.
#[derive(Debug, thiserror::Error)]
#[error("invalid gossipsub configuration: {0}")]
pub struct BehaviourError(String);

impl Behaviour {
    pub(crate) fn new(key: &Keypair, config: &OverlayConfig) -> Result<Self, BehaviourError> {
        let peer_id = key.public().to_peer_id();

        let limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established(Some(config.limits.max_established))
                .with_max_established_incoming(Some(config.limits.max_established_incoming))
                .with_max_established_per_peer(Some(config.limits.max_established_per_peer))
                .with_max_pending_incoming(Some(config.limits.max_pending_incoming))
                .with_max_pending_outgoing(Some(config.limits.max_pending_outgoing)),
        );

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_owned(), key.public())
                .with_agent_version(config.role.agent_version())
                .with_push_listen_addr_updates(true),
        );

        let ping = ping::Behaviour::new(ping::Config::new());

        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        // The routing table is refreshed at a steady pace by the actor (`actor::refresh`),
        // not in kad's bursts of a lookup per bucket.
        kad_config.set_periodic_bootstrap_interval(None);
        kad_config.set_query_timeout(config.kad_query_timeout);
        // Only provider records are used; inbound ones are checked before storing and
        // arbitrary values are refused (see the actor's Kademlia handler).
        kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
        kad_config.set_provider_record_ttl(Some(config.provider_record_ttl));
        kad_config.set_provider_publication_interval(Some(config.provider_record_ttl / 2));
        let mut kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        kad.set_mode(match config.effective_kad_mode() {
            KadMode::Auto => None,
            KadMode::Server => Some(kad::Mode::Server),
            KadMode::Client => Some(kad::Mode::Client),
        });

        // Messages carry no gossipsub author or signature: every payload the node gossips is
        // signed by its author inside (records, events, trust reports, transfers, broker
        // messages) and checked once, after deduplication. Gossipsub's own signature would be
        // checked on every copy a node receives, before deduplication: one ed25519
        // verification per mesh peer per message, which the 100-node simulation showed to be
        // the largest CPU cost of the whole network (docs/SIMULATIONS.md).
        let gossipsub_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            // The node validates every message and reports back, so invalid ones are not
            // forwarded and count against the sender's score.
            .validate_messages()
            .message_id_fn(content_message_id)
            .max_transmit_size(config.gossip_max_message_bytes)
            .build()
            .map_err(|e| BehaviourError(e.to_string()))?;
        let mut gossipsub =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossipsub_config)
                .map_err(|e| BehaviourError(e.to_owned()))?;
        // Peer scoring driven by the node's reputation (`Overlay::set_app_scores`): the
        // application score counts one for one, gossipsub's own behaviour penalties stay, and
        // IP colocation is not penalised (peers behind one NAT, or a local test network, share
        // an address). The default thresholds fit the application score's scale.
        gossipsub
            .with_peer_score(
                gossipsub::PeerScoreParams {
                    app_specific_weight: 1.0,
                    ip_colocation_factor_weight: 0.0,
                    ..Default::default()
                },
                gossipsub::PeerScoreThresholds::default(),
            )
            .map_err(BehaviourError)?;

        let pex = &config.peer_exchange;
        let peers = request_response::Behaviour::with_codec(
            peer_exchange::Codec::symmetric(pex.max_message_bytes),
            [(
                peer_exchange::PROTOCOL,
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(pex.request_timeout)
                .with_max_concurrent_streams(non_zero(pex.max_concurrent_streams).get()),
        );

        let rpc = request_response::Behaviour::with_codec(
            rpc::Codec::new(config.rpc.max_request_bytes, config.rpc.max_response_bytes),
            [(rpc::PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(config.rpc.max_timeout)
                .with_max_concurrent_streams(non_zero(config.rpc.max_concurrent_streams).get()),
        );

        let sync_behaviour = |protocol| {
            request_response::Behaviour::with_codec(
                sync::BytesCodec::new(
                    config.sync.max_request_bytes,
                    config.sync.max_response_bytes,
                ),
                [(protocol, request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(config.sync.timeout)
                    .with_max_concurrent_streams(
                        non_zero(config.sync.max_concurrent_streams).get(),
                    ),
            )
        };
        let sync = sync_behaviour(sync::EVENTS_SYNC);
        let ledger_sync = sync_behaviour(sync::LEDGER_SYNC);

        Ok(Self {
            blocked: allow_block_list::Behaviour::default(),
            sync,
            ledger_sync,
            rpc,
            limits,
            identify,
            ping,
            kad,
            gossipsub,
            peers,
        })
    }
}
