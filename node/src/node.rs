//! Starting and stopping a node: data dir, identity, overlay, control API, in that order,
//! and the reverse on the way down.

use std::net::SocketAddr;
use std::path::Path;

use micro_overlay::{Multiaddr, Overlay, PeerId};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::NodeError;
use crate::api::ControlFile;
use crate::config::NodeConfig;
use crate::control;
use crate::credential::Credential;
use crate::data_dir::DataDir;

/// A started node. Call [`RunningNode::shutdown`] to stop it cleanly; dropping it stops the
/// tasks without the orderly close.
#[derive(Debug)]
pub struct RunningNode {
    overlay: Overlay,
    data_dir: DataDir,
    control_addr: SocketAddr,
    credential: Credential,
    listen_addrs: Vec<Multiaddr>,
    stop_control: watch::Sender<bool>,
    control_task: JoinHandle<()>,
    overlay_task: JoinHandle<()>,
}

impl RunningNode {
    /// Starts a node: locks the data dir, loads (or creates) the identity, binds the control
    /// API, starts the overlay and waits until its listeners are bound.
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        let data_dir = DataDir::open(&config.data_dir)?;
        let key = data_dir.identity()?;
        let peer_id = key.public().to_peer_id();
        let listener = control::bind(config.control.addr).await?;
        let control_addr = listener
            .local_addr()
            .map_err(|source| NodeError::ControlBind {
                addr: config.control.addr,
                source,
            })?;
        let (overlay, _inbound, overlay_task) = micro_overlay::spawn(key.clone(), config.overlay)?;
        let listen_addrs =
            match tokio::time::timeout(config.control.listen_timeout, overlay.listening()).await {
                Ok(addrs) => addrs?,
                Err(_) => {
                    overlay.shutdown().await;
                    return Err(NodeError::ListenTimeout(config.control.listen_timeout));
                }
            };
        let credential = data_dir.new_credential()?;
        let (stop_control, stop_rx) = watch::channel(false);
        let control_task = tokio::spawn(control::serve(
            listener,
            overlay.clone(),
            config.control.clone(),
            credential.clone(),
            stop_rx,
        ));
        data_dir.write_control_file(&ControlFile {
            addr: control_addr,
            pid: std::process::id(),
            peer_id,
        })?;
        info!(%peer_id, %control_addr, data_dir = %data_dir.path().display(), "node started");
        Ok(Self {
            overlay,
            data_dir,
            control_addr,
            credential,
            listen_addrs,
            stop_control,
            control_task,
            overlay_task,
        })
    }

    /// The overlay handle.
    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// The node's identity.
    pub fn peer_id(&self) -> PeerId {
        self.overlay.local_peer_id()
    }

    /// Where the control API listens.
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// The control API credential of this run.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The listen addresses bound at start, each ending in `/p2p/<PeerId>`.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen_addrs
    }

    /// Stops in order: the control API (no new requests), the overlay (listeners, then
    /// connections), then removes the control file and releases the data dir.
    pub async fn shutdown(self) {
        info!("node shutting down");
        let _ = self.stop_control.send(true);
        if let Err(e) = self.control_task.await {
            warn!(error = %e, "control API task ended abnormally");
        }
        self.overlay.shutdown().await;
        if let Err(e) = self.overlay_task.await {
            warn!(error = %e, "overlay task ended abnormally");
        }
        self.data_dir.remove_control_file();
        info!("node stopped");
    }
}
