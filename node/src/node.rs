//! Starting and stopping a node: data dir, identity, overlay, services, control API and
//! gateway, in that order, and the reverse on the way down.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use micro_overlay::sync::{EVENTS_SYNC, LEDGER_SYNC};
use micro_overlay::{Inbound, Multiaddr, Overlay, PeerId};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval};
use tracing::{info, warn};

use crate::api::ControlFile;
use crate::broker::Broker;
use crate::config::{NodeConfig, ServicesConfig};
use crate::credential::Credential;
use crate::data_dir::DataDir;
use crate::events::{EventStore, Events, EventsError};
use crate::ledger::{LEDGER_TOPIC, NodeLedger};
use crate::metering::Metering;
use crate::registry::GOSSIP_TOPIC;
use crate::reputation::{NodeReputation, REPUTATION_TOPIC};
use crate::services::Services;
use crate::tokens::{ApiTokens, TOKENS_TOPIC};
use crate::wasm::{NodeHost, Wasm};
use crate::{NodeError, control, gateway};

/// A started node. Call [`RunningNode::shutdown`] to stop it cleanly; dropping it stops the
/// tasks without the orderly close.
pub struct RunningNode {
    overlay: Overlay,
    services: Services,
    broker: Broker,
    events: Events,
    wasm: Wasm,
    reputation: NodeReputation,
    ledger: NodeLedger,
    metering: Metering,
    tokens: ApiTokens,
    data_dir: DataDir,
    control_addr: SocketAddr,
    gateway_addr: Option<SocketAddr>,
    credential: Credential,
    listen_addrs: Vec<Multiaddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    overlay_task: JoinHandle<()>,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("peer_id", &self.peer_id())
            .field("control_addr", &self.control_addr)
            .field("gateway_addr", &self.gateway_addr)
            .finish_non_exhaustive()
    }
}

/// Hands inbound RPCs to the service layer, sync requests and gossip to whoever owns their
/// protocol or topic, until the overlay stops.
async fn pump_inbound(
    services: Services,
    broker: Broker,
    events: Events,
    reputation: NodeReputation,
    ledger: NodeLedger,
    tokens: ApiTokens,
    mut inbound: mpsc::Receiver<Inbound>,
) {
    while let Some(item) = inbound.recv().await {
        match item {
            Inbound::Rpc {
                peer,
                request,
                responder,
            } => services.spawn_inbound(peer, request, responder),
            Inbound::Gossip(message) if Broker::owns(&message.topic) => {
                broker.on_gossip(message).await
            }
            Inbound::Gossip(message) if Events::owns(&message.topic) => {
                events.on_gossip(message).await
            }
            Inbound::Gossip(message) if NodeReputation::owns(&message.topic) => {
                reputation.on_gossip(message).await
            }
            Inbound::Gossip(message) if NodeLedger::owns(&message.topic) => ledger.enqueue(message),
            Inbound::Gossip(message) if ApiTokens::owns(&message.topic) => {
                tokens.on_gossip(message).await
            }
            Inbound::Gossip(message) => services.on_gossip(message).await,
            Inbound::Sync {
                protocol,
                peer,
                request,
                responder,
            } if protocol == EVENTS_SYNC => events.spawn_serve_sync(peer, request, responder),
            Inbound::Sync {
                protocol,
                peer,
                request,
                responder,
            } if protocol == LEDGER_SYNC => ledger.spawn_serve_sync(peer, request, responder),
            // Other sync protocols are not served yet: dropping the responder resets the stream.
            Inbound::Sync { protocol, peer, .. } => {
                tracing::debug!(%peer, %protocol, "sync request refused: not served yet");
            }
        }
    }
}

/// Re-announces this node's services every heartbeat until told to stop.
async fn heartbeat(services: Services, config: ServicesConfig, mut stop: watch::Receiver<bool>) {
    let mut tick = interval(config.heartbeat_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => services.announce().await,
            _ = stop.changed() => return,
        }
    }
}

impl RunningNode {
    /// Starts a node: locks the data dir, loads (or creates) the identity, binds the control
    /// API and gateway, starts the overlay and waits until its listeners are bound.
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        let data_dir = DataDir::open(&config.data_dir)?;
        let key = data_dir.identity()?;
        let peer_id = key.public().to_peer_id();
        let control_listener = control::bind(config.control.addr).await?;
        let control_addr =
            control_listener
                .local_addr()
                .map_err(|source| NodeError::ControlBind {
                    addr: config.control.addr,
                    source,
                })?;
        let gateway_listener = match &config.gateway {
            Some(gateway) => Some(gateway::bind(gateway.addr).await?),
            None => None,
        };
        let gateway_addr = gateway_listener.as_ref().and_then(|l| l.local_addr().ok());
        let db_path = data_dir.path().join("db");
        let db = sled::Config::new()
            .path(&db_path)
            .flush_every_ms(config.db_flush_every_ms)
            .open()
            .map_err(|source| NodeError::Database {
                path: db_path.clone(),
                source,
            })?;
        let store =
            Arc::new(EventStore::open(&db, config.events.store).map_err(EventsError::from)?);

        let role = config.overlay.role;
        let (overlay, inbound, overlay_task) = micro_overlay::spawn(key.clone(), config.overlay)?;
        let listen_addrs =
            match tokio::time::timeout(config.control.listen_timeout, overlay.listening()).await {
                Ok(addrs) => addrs?,
                Err(_) => {
                    overlay.shutdown().await;
                    return Err(NodeError::ListenTimeout(config.control.listen_timeout));
                }
            };
        overlay.subscribe_topic(GOSSIP_TOPIC).await?;
        overlay.subscribe_topic(REPUTATION_TOPIC).await?;
        overlay.subscribe_topic(LEDGER_TOPIC).await?;
        overlay.subscribe_topic(TOKENS_TOPIC).await?;
        let reputation = match NodeReputation::open(
            &db,
            overlay.clone(),
            key.clone(),
            role,
            config.reputation.clone(),
        ) {
            Ok(reputation) => reputation,
            Err(e) => {
                overlay.shutdown().await;
                return Err(e.into());
            }
        };
        let ledger = match NodeLedger::open(
            &db,
            overlay.clone(),
            key.clone(),
            reputation.clone(),
            config.ledger.clone(),
        ) {
            Ok(ledger) => ledger,
            Err(e) => {
                overlay.shutdown().await;
                return Err(e.into());
            }
        };
        let metering = match Metering::open(
            &db,
            ledger.clone(),
            reputation.clone(),
            key.clone(),
            config.metering.clone(),
        ) {
            Ok(metering) => metering,
            Err(e) => {
                overlay.shutdown().await;
                return Err(e.into());
            }
        };
        let trusted_issuers = config
            .gateway
            .as_ref()
            .map(|g| g.trusted_issuers.clone())
            .unwrap_or_default();
        let tokens = match ApiTokens::open(
            &db,
            overlay.clone(),
            key.clone(),
            reputation.clone(),
            config.tokens.clone(),
            &trusted_issuers,
        ) {
            Ok(tokens) => tokens,
            Err(e) => {
                overlay.shutdown().await;
                return Err(e.into());
            }
        };
        let (stop, stop_rx) = watch::channel(false);
        let events = Events::new(
            overlay.clone(),
            key.clone(),
            store,
            config.events.clone(),
            stop_rx.clone(),
        );
        let services = Services::new(overlay.clone(), key.clone(), config.services.clone());
        services.attach_metering(metering.clone());
        let broker = Broker::new(overlay.clone(), key, config.broker);
        let mut wasm_config = config.wasm.clone();
        if wasm_config.dir.as_os_str().is_empty() {
            wasm_config.dir = data_dir.path().join("wasm");
        }
        let host = NodeHost {
            services: services.downgrade(),
            broker: broker.clone(),
            events: events.clone(),
        };
        let runtime = match micro_wasm_runtime::Runtime::open(wasm_config, &db, Arc::new(host)) {
            Ok(runtime) => runtime,
            Err(e) => {
                overlay.shutdown().await;
                return Err(e.into());
            }
        };
        services.attach_wasm(runtime.clone());
        let builder =
            crate::source::Builder::new(data_dir.path().join("build"), config.source.clone());
        let wasm = match Wasm::new(
            runtime,
            builder,
            &db,
            services.clone(),
            broker.clone(),
            events.clone(),
            stop_rx.clone(),
        ) {
            Ok(wasm) => {
                services.attach_deployer(wasm.downgrade());
                wasm
            }
            Err(source) => {
                overlay.shutdown().await;
                return Err(NodeError::Database {
                    path: db_path,
                    source,
                });
            }
        };
        if let Err(e) = events.carry_stored().await {
            overlay.shutdown().await;
            return Err(e.into());
        }

        let credential = data_dir.new_credential()?;
        let mut tasks = vec![
            tokio::spawn(pump_inbound(
                services.clone(),
                broker.clone(),
                events.clone(),
                reputation.clone(),
                ledger.clone(),
                tokens.clone(),
                inbound,
            )),
            tokio::spawn(reputation.clone().run(stop_rx.clone())),
            tokio::spawn(ledger.clone().run_sync(stop_rx.clone())),
            tokio::spawn(ledger.clone().run_acks(stop_rx.clone())),
            tokio::spawn(ledger.clone().run_gossip(stop_rx.clone())),
            tokio::spawn(metering.clone().run_settlement(stop_rx.clone())),
            tokio::spawn(tokens.clone().run(stop_rx.clone())),
            tokio::spawn(events.clone().run_upkeep(stop_rx.clone())),
            tokio::spawn(heartbeat(
                services.clone(),
                config.services.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(control::serve(
                control_listener,
                control::AppState {
                    overlay: overlay.clone(),
                    services: services.clone(),
                    broker: broker.clone(),
                    events: events.clone(),
                    config: config.control.clone(),
                    wasm: wasm.clone(),
                    reputation: reputation.clone(),
                    ledger: ledger.clone(),
                    metering: metering.clone(),
                    tokens: tokens.clone(),
                    stop: stop_rx.clone(),
                },
                credential.clone(),
            )),
        ];
        if let (Some(listener), Some(gateway)) = (gateway_listener, &config.gateway) {
            let gate = gateway::Gate {
                tokens: tokens.clone(),
                required: gateway.requires_token(),
                rules: gateway.rules.clone().into(),
            };
            tasks.push(tokio::spawn(gateway::serve(
                listener,
                services.clone(),
                gate,
                config.services.max_request_bytes,
                stop_rx,
            )));
        }
        wasm.restore().await;
        data_dir.write_control_file(&ControlFile {
            addr: control_addr,
            pid: std::process::id(),
            peer_id,
            gateway: gateway_addr,
        })?;
        info!(%peer_id, %control_addr, ?gateway_addr, data_dir = %data_dir.path().display(), "node started");
        Ok(Self {
            overlay,
            services,
            broker,
            events,
            wasm,
            reputation,
            ledger,
            metering,
            tokens,
            data_dir,
            control_addr,
            gateway_addr,
            credential,
            listen_addrs,
            stop,
            tasks,
            overlay_task,
        })
    }

    /// The overlay handle.
    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// The service layer.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The broker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The events layer.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// The wasm services.
    pub fn wasm(&self) -> &Wasm {
        &self.wasm
    }

    /// The node's reputation.
    pub fn reputation(&self) -> &NodeReputation {
        &self.reputation
    }

    /// The node's token ledger.
    pub fn ledger(&self) -> &NodeLedger {
        &self.ledger
    }

    /// The node's metering of priced calls.
    pub fn metering(&self) -> &Metering {
        &self.metering
    }

    /// The node's API tokens (issue, refresh, revoke; the gateway's checks).
    pub fn tokens(&self) -> &ApiTokens {
        &self.tokens
    }

    /// The node's identity.
    pub fn peer_id(&self) -> PeerId {
        self.overlay.local_peer_id()
    }

    /// Where the control API listens.
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// Where the HTTP gateway listens, if it runs.
    pub fn gateway_addr(&self) -> Option<SocketAddr> {
        self.gateway_addr
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

    /// Stops at once, as a crash would: no withdrawal, connections dropped mid-flight. The
    /// data dir is released. For tests and simulations of failures.
    pub fn kill(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.overlay_task.abort();
        info!("node killed");
    }

    /// Stops in order: the control API and gateway (no new requests), the services (withdrawn
    /// from the network), the overlay (listeners, then connections); then flushes the event
    /// store, removes the control file and releases the data dir.
    pub async fn shutdown(self) {
        info!("node shutting down");
        let _ = self.stop.send(true);
        self.services.withdraw_all().await;
        self.wasm.shutdown().await;
        self.overlay.shutdown().await;
        for task in self.tasks {
            if let Err(e) = task.await {
                warn!(error = %e, "node task ended abnormally");
            }
        }
        if let Err(e) = self.overlay_task.await {
            warn!(error = %e, "overlay task ended abnormally");
        }
        if let Err(e) = self.events.flush().await {
            warn!(error = %e, "could not flush the event store");
        }
        self.data_dir.remove_control_file();
        info!("node stopped");
    }
}
