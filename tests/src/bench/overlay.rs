//! The overlay transports: two real in-process Micro nodes on loopback TCP (libp2p
//! TCP + Noise + Yamux), a provider and a caller that bootstrapped from it. Both transports
//! call the provider's built-in `node` service, whose `Node.Ping` echoes the request body.
//!
//! - [`OverlayRpc`] (`overlay-rpc`): the raw `/micro/rpc/1.0.0` protocol through
//!   [`Overlay::rpc`], one request-response stream per call.
//! - [`MicroCall`] (`micro-call`): the same call through the service client
//!   ([`Services::call`]: provider choice, deadline, retries), as users make it.
//!
//! Each transport starts its own pair of nodes; call `shutdown` when done with it. Every
//! caller holds a clone of the caller node's handle, so all calls share its one connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use micro_node::RunningNode;
use micro_node::overlay::rpc_proto::RpcRequest;
use micro_node::overlay::{Overlay, PeerId, Role};
use micro_node::registry::{EndpointName, ServiceName};
use micro_node::services::{CallRequest, Services};
use micro_testkit::{bootstrap_addr, eventually, start_node};
use tempfile::TempDir;

use super::{CALL_TIMEOUT, Caller, Transport};

/// The service every node hosts itself, and its echo endpoint.
const SERVICE: &str = "node";
const ENDPOINT: &str = "Node.Ping";
const CONTENT_TYPE: &str = "application/octet-stream";
/// How long the caller node may take to connect to and join through the provider.
const JOIN_PATIENCE: Duration = Duration::from_secs(20);

/// A provider node and a caller node connected to it, each on its own temporary data dir.
struct NodePair {
    provider: RunningNode,
    caller: RunningNode,
    _dirs: [TempDir; 2],
}

impl NodePair {
    /// Starts the provider (a super node), then the caller bootstrapping from it, and waits
    /// until the caller has joined with a connection to the provider.
    async fn start() -> Result<Self> {
        let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
        let provider = start_node(dirs[0].path(), Role::Super, vec![])
            .await
            .context("starting the provider node")?;
        let caller = start_node(dirs[1].path(), Role::Peer, vec![bootstrap_addr(&provider)])
            .await
            .context("starting the caller node")?;
        let provider_id = provider.peer_id();
        let overlay = caller.overlay().clone();
        eventually(
            "the caller node to join through the provider",
            JOIN_PATIENCE,
            || {
                let overlay = overlay.clone();
                async move {
                    let connected = overlay
                        .connected_peers()
                        .await?
                        .iter()
                        .any(|p| p.peer_id == provider_id);
                    Ok(connected && overlay.info().await?.joined)
                }
            },
        )
        .await?;
        Ok(Self {
            provider,
            caller,
            _dirs: dirs,
        })
    }

    async fn shutdown(self) {
        self.caller.shutdown().await;
        self.provider.shutdown().await;
    }
}

/// `overlay-rpc`: [`Overlay::rpc`] from the caller node to the provider.
pub struct OverlayRpc {
    nodes: NodePair,
    /// Numbers the callers, so request ids are unique across them.
    next_caller: AtomicU64,
}

impl OverlayRpc {
    pub async fn start() -> Result<Self> {
        Ok(Self {
            nodes: NodePair::start().await?,
            next_caller: AtomicU64::new(0),
        })
    }

    pub async fn shutdown(self) {
        self.nodes.shutdown().await;
    }
}

impl Transport for OverlayRpc {
    type Caller = OverlayRpcCaller;

    fn name(&self) -> String {
        "overlay-rpc".to_owned()
    }

    async fn caller(&self) -> Result<OverlayRpcCaller> {
        Ok(OverlayRpcCaller {
            overlay: self.nodes.caller.overlay().clone(),
            provider: self.nodes.provider.peer_id(),
            caller: self.next_caller.fetch_add(1, Ordering::Relaxed),
            seq: 0,
        })
    }
}

/// A clone of the caller node's overlay handle.
pub struct OverlayRpcCaller {
    overlay: Overlay,
    provider: PeerId,
    caller: u64,
    seq: u64,
}

impl Caller for OverlayRpcCaller {
    async fn call(&mut self, payload: Bytes) -> Result<usize> {
        self.seq += 1;
        let request = RpcRequest {
            id: format!("{}-{}", self.caller, self.seq),
            service: SERVICE.into(),
            endpoint: ENDPOINT.into(),
            content_type: CONTENT_TYPE.into(),
            body: payload.to_vec(),
            timeout_ms: CALL_TIMEOUT.as_millis() as u64,
            ..Default::default()
        };
        let response = self
            .overlay
            .rpc(self.provider, Vec::new(), request, CALL_TIMEOUT)
            .await?;
        ensure!(
            response.status == 200,
            "status {}: {:?}",
            response.status,
            response.error
        );
        Ok(response.body.len())
    }
}

/// `micro-call`: [`Services::call`] on the caller node, pinned to the provider node.
pub struct MicroCall {
    nodes: NodePair,
    service: ServiceName,
    endpoint: EndpointName,
}

impl MicroCall {
    pub async fn start() -> Result<Self> {
        Ok(Self {
            nodes: NodePair::start().await?,
            service: SERVICE.parse()?,
            endpoint: ENDPOINT.parse()?,
        })
    }

    pub async fn shutdown(self) {
        self.nodes.shutdown().await;
    }
}

impl Transport for MicroCall {
    type Caller = MicroCallCaller;

    fn name(&self) -> String {
        "micro-call".to_owned()
    }

    async fn caller(&self) -> Result<MicroCallCaller> {
        Ok(MicroCallCaller {
            services: self.nodes.caller.services().clone(),
            provider: self.nodes.provider.peer_id(),
            service: self.service.clone(),
            endpoint: self.endpoint.clone(),
        })
    }
}

/// A clone of the caller node's service layer.
pub struct MicroCallCaller {
    services: Services,
    provider: PeerId,
    service: ServiceName,
    endpoint: EndpointName,
}

impl Caller for MicroCallCaller {
    async fn call(&mut self, payload: Bytes) -> Result<usize> {
        let outcome = self
            .services
            .call(CallRequest {
                service: self.service.clone(),
                endpoint: self.endpoint.clone(),
                body: payload.to_vec(),
                content_type: CONTENT_TYPE.into(),
                headers: Default::default(),
                timeout_ms: Some(CALL_TIMEOUT.as_millis() as u64),
                node: Some(self.provider),
                version: None,
            })
            .await?;
        Ok(outcome.body.len())
    }
}
