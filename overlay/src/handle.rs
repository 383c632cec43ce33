//! [`Overlay`]: the cheap, clonable handle every other part of the node holds.

use std::time::Duration;

use libp2p::gossipsub::MessageAcceptance;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::OverlayError;
use crate::actor::Command;
use crate::event::{LocalInfo, OverlayEvent, PeerConnection, ProviderLookup};
use crate::peer_book::{NodeInfo, Route};
use crate::peer_exchange::PeerList;
use crate::rpc::{GossipMessage, RpcFailure};
use crate::rpc_proto::{RpcRequest, RpcResponse};

/// A handle to the overlay actor. Each method sends one command and awaits its reply; when
/// the actor has stopped every method returns [`OverlayError::Stopped`].
#[derive(Debug, Clone)]
pub struct Overlay {
    pub(crate) local_peer_id: PeerId,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) events: broadcast::Sender<OverlayEvent>,
}

impl Overlay {
    /// This node's identity.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// A new receiver of overlay events, starting from now.
    pub fn subscribe(&self) -> broadcast::Receiver<OverlayEvent> {
        self.events.subscribe()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, OverlayError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| OverlayError::Stopped)?;
        rx.await.map_err(|_| OverlayError::Stopped)
    }

    /// This node's identity, role, addresses and counters.
    pub async fn info(&self) -> Result<LocalInfo, OverlayError> {
        self.ask(|reply| Command::Info { reply }).await
    }

    /// The peers with an open connection to this node.
    pub async fn connected_peers(&self) -> Result<Vec<PeerConnection>, OverlayError> {
        self.ask(|reply| Command::ConnectedPeers { reply }).await
    }

    /// Every node this node knows: the peer book merged with the Kademlia routing table.
    pub async fn known_nodes(&self) -> Result<Vec<NodeInfo>, OverlayError> {
        self.ask(|reply| Command::KnownNodes { reply }).await
    }

    /// How each known node is reached.
    pub async fn routes(&self) -> Result<Vec<Route>, OverlayError> {
        self.ask(|reply| Command::Routes { reply }).await
    }

    /// Asks `peer` who it is connected to, dialling it (at `addrs` or the addresses the book
    /// knows) if needed. Bounded by the peer-exchange request timeout.
    pub async fn ask_peers(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    ) -> Result<PeerList, OverlayError> {
        self.ask(|reply| Command::AskPeers { peer, addrs, reply })
            .await?
    }

    /// Dials an address (with or without `/p2p/`). Returns once the dial started.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), OverlayError> {
        self.ask(|reply| Command::Dial { addr, reply }).await?
    }

    /// Waits until every listen address is bound and returns them, each ending in
    /// `/p2p/<PeerId>`.
    pub async fn listening(&self) -> Result<Vec<Multiaddr>, OverlayError> {
        self.ask(|reply| Command::WaitListening { reply }).await
    }

    /// Calls `peer` (dialling it at `addrs` or the addresses the peer book knows, if needed)
    /// and waits at most `timeout` (capped by the RPC config's `max_timeout`) for its answer.
    pub async fn rpc(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: RpcRequest,
        timeout: Duration,
    ) -> Result<RpcResponse, RpcFailure> {
        self.request_within(peer, timeout, |reply| Command::Rpc {
            peer,
            addrs,
            request,
            reply,
        })
        .await
    }

    /// Sends `request` to `peer` on the sync protocol `protocol` (one of [`crate::sync::PROTOCOLS`])
    /// and waits at most `timeout` for the answer.
    pub async fn request(
        &self,
        protocol: libp2p::StreamProtocol,
        peer: PeerId,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, RpcFailure> {
        self.request_within(peer, timeout, |reply| Command::Sync {
            protocol,
            peer,
            request,
            reply,
        })
        .await
    }

    /// Sends a request command for `peer` and waits at most `timeout` for its outcome.
    async fn request_within<T>(
        &self,
        peer: PeerId,
        timeout: Duration,
        make: impl FnOnce(oneshot::Sender<Result<T, RpcFailure>>) -> Command,
    ) -> Result<T, RpcFailure> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| RpcFailure::Stopped)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RpcFailure::Stopped),
            Err(_) => Err(RpcFailure::Timeout { peer }),
        }
    }

    /// Subscribes to a gossipsub topic; its messages arrive as [`Inbound::Gossip`]. Returns
    /// false if already subscribed.
    pub async fn subscribe_topic(&self, topic: &str) -> Result<bool, OverlayError> {
        let topic = topic.to_owned();
        self.ask(|reply| Command::Subscribe { topic, reply })
            .await?
    }

    /// Leaves a gossipsub topic. Returns false if not subscribed.
    pub async fn unsubscribe_topic(&self, topic: &str) -> Result<bool, OverlayError> {
        let topic = topic.to_owned();
        self.ask(|reply| Command::Unsubscribe { topic, reply })
            .await
    }

    /// Publishes on a gossipsub topic; returns how many subscribed peers it went to (0 is not
    /// an error).
    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<usize, OverlayError> {
        let topic = topic.to_owned();
        self.ask(|reply| Command::Publish { topic, data, reply })
            .await?
    }

    /// How many connected peers are known to be subscribed to `topic`.
    pub async fn topic_peers(&self, topic: &str) -> Result<usize, OverlayError> {
        let topic = topic.to_owned();
        self.ask(|reply| Command::TopicPeers { topic, reply }).await
    }

    /// Sets gossipsub's application-specific score of connected peers (the node's reputation
    /// view of them): below the gossip threshold (-10) no gossip is exchanged with a peer,
    /// below -80 everything it sends is ignored. Unknown peers are skipped.
    pub async fn set_app_scores(&self, scores: Vec<(PeerId, f64)>) {
        let _ = self.commands.send(Command::SetAppScores { scores }).await;
    }

    /// Gossipsub's current score of a connected peer (`None` if not connected).
    pub async fn gossip_score(&self, peer: PeerId) -> Result<Option<f64>, OverlayError> {
        self.ask(|reply| Command::PeerScore { peer, reply }).await
    }

    /// Tells gossipsub whether a received message was valid: accepted ones are forwarded,
    /// rejected ones count against the sender's score, ignored ones are dropped quietly.
    pub async fn report_message(&self, message: &GossipMessage, acceptance: MessageAcceptance) {
        let _ = self
            .commands
            .send(Command::ReportMessage {
                id: message.id.clone(),
                propagation_source: message.propagation_source,
                acceptance,
            })
            .await;
    }

    /// Announces in the DHT that this node provides `key` (re-announced by Kademlia).
    pub async fn start_providing(&self, key: Vec<u8>) -> Result<(), OverlayError> {
        self.ask(|reply| Command::StartProviding { key, reply })
            .await?
    }

    /// Stops announcing `key`.
    pub async fn stop_providing(&self, key: Vec<u8>) {
        let _ = self.commands.send(Command::StopProviding { key }).await;
    }

    /// Looks up the providers of `key` in the DHT (bounded by `kad_query_timeout`).
    pub async fn get_providers(&self, key: Vec<u8>) -> Result<Vec<PeerId>, OverlayError> {
        Ok(self.lookup_providers(key).await?.providers)
    }

    /// [`get_providers`](Self::get_providers), with what the lookup cost.
    pub async fn lookup_providers(&self, key: Vec<u8>) -> Result<ProviderLookup, OverlayError> {
        self.ask(|reply| Command::GetProviders { key, reply })
            .await?
    }

    /// Blocks `peer`: every open connection to it is closed (each close is reported as usual,
    /// ending in [`crate::OverlayEvent::PeerDisconnected`]), and until
    /// [`unblock_peer`](Self::unblock_peer) no connection to or from it is allowed:
    /// [`dial`](Self::dial) (with its `/p2p/`) and [`ask_peers`](Self::ask_peers) fail with
    /// [`OverlayError::PeerBlocked`], RPC and sync requests fail at once with
    /// [`RpcFailure::Dial`], its inbound connections are dropped right after the handshake,
    /// and the overlay's own upkeep (bootstrap retries, backbone, Kademlia, gossipsub explicit
    /// peers) stops trying it. The peer itself may briefly see its dial succeed before the
    /// connection closes. Gossip it published still arrives if another connected peer relays
    /// it: the block list cuts connections, it does not filter content.
    ///
    /// Blocking a blocked peer succeeds and changes nothing. Fails with
    /// [`OverlayError::BlockListFull`] when the list already holds
    /// `OverlayConfig::limits.max_blocked_peers` peers.
    pub async fn block_peer(&self, peer: PeerId) -> Result<(), OverlayError> {
        self.ask(|reply| Command::BlockPeer { peer, reply }).await?
    }

    /// Removes `peer` from the block list (a no-op if it was not blocked). Does not dial it:
    /// the connection comes back through an explicit [`dial`](Self::dial), the peer dialling
    /// this node, or the overlay's normal upkeep (bootstrap retries while alone, backbone
    /// upkeep on super nodes, Kademlia queries).
    pub async fn unblock_peer(&self, peer: PeerId) -> Result<(), OverlayError> {
        self.ask(|reply| Command::UnblockPeer { peer, reply }).await
    }

    /// The peers in the block list, sorted. At most `OverlayConfig::limits.max_blocked_peers`.
    pub async fn blocked_peers(&self) -> Result<Vec<PeerId>, OverlayError> {
        self.ask(|reply| Command::BlockedPeers { reply }).await
    }

    /// Stops listening, closes every connection and ends the actor. Returns when done (or at
    /// once if it had already stopped).
    pub async fn shutdown(&self) {
        let _ = self.ask(|reply| Command::Shutdown { reply }).await;
    }
}
