//! [`Overlay`]: the cheap, clonable handle every other part of the node holds.

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::OverlayError;
use crate::actor::Command;
use crate::event::{LocalInfo, OverlayEvent, PeerConnection};
use crate::peer_book::{NodeInfo, Route};
use crate::peer_exchange::PeerList;

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

    /// Stops listening, closes every connection and ends the actor. Returns when done (or at
    /// once if it had already stopped).
    pub async fn shutdown(&self) {
        let _ = self.ask(|reply| Command::Shutdown { reply }).await;
    }
}
