//! The nodes of a run: real [`RunningNode`]s in this process, each on its own data dir, with
//! slots that survive churn (a slot's node leaves and a fresh one, with a new identity, takes
//! its place and its duties).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use libp2p::multiaddr::Protocol;
use micro_node::overlay::config::ConnectionLimitsConfig;
use micro_node::overlay::{
    BootstrapAddr, KadMode, LinkShaper, Multiaddr, OverlayConfig, PeerId, Role,
};
use micro_node::{NodeConfig, RunningNode};
use tracing::{Instrument, debug, info};

use crate::scenario::Transport;

/// What a slot's node is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Duty {
    /// A super node: the backbone.
    Super,
    /// An honest peer.
    Peer,
    /// A peer running adversary number `.0` of the scenario.
    Adversary(usize),
}

/// One place in the network; its node changes with churn.
pub struct Slot {
    /// Its index.
    pub index: usize,
    /// What its nodes do.
    pub duty: Duty,
    /// Services its nodes serve (honestly, or wrongly for a wrong-answers adversary).
    pub serves: Vec<String>,
    /// Topics its nodes subscribe to.
    pub topics: Vec<String>,
    /// The current node, `None` while the slot is empty.
    pub node: Option<RunningNode>,
    /// Bumped each time a new node takes the slot.
    pub generation: u32,
    dir: Option<tempfile::TempDir>,
}

impl Slot {
    /// Whether it holds a node.
    pub fn alive(&self) -> bool {
        self.node.is_some()
    }

    /// Whether its node is honest.
    pub fn honest(&self) -> bool {
        !matches!(self.duty, Duty::Adversary(_))
    }

    /// Its node's id, if alive.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.node.as_ref().map(RunningNode::peer_id)
    }
}

/// How nodes are configured: the transport, and where data dirs and the genesis live.
#[derive(Debug, Clone)]
pub struct NodeTemplate {
    /// Transport between nodes.
    pub transport: Transport,
    /// Parent of the data dirs.
    pub root: PathBuf,
    /// The ledger genesis file, if the scenario has a ledger.
    pub genesis: Option<PathBuf>,
    /// Network size, to scale timers.
    pub nodes: usize,
    /// Every node's link profile.
    pub link: micro_node::overlay::LinkProfile,
    /// Most connections a peer keeps (`None`: the node's default).
    pub peer_connections: Option<u32>,
}

impl NodeTemplate {
    /// The configuration of one node. Timers a scenario observes (heartbeats, record
    /// expiry, reputation rounds) are set for a run that lasts tens of seconds, then slowed
    /// as the network grows so that the whole network's background work fits the machine
    /// ([`background_slowdown`], [`flood_slowdown`]). The routing refresh (5 minutes for a
    /// real node) is slowed like the rest of a node's own periodic work; a join still looks
    /// up the node's own key.
    pub fn config(
        &self,
        data_dir: &Path,
        role: Role,
        bootstrap: Vec<BootstrapAddr>,
        link: LinkShaper,
    ) -> NodeConfig {
        let base = match role {
            Role::Super => OverlayConfig::super_node(),
            Role::Peer => {
                let mut peer = OverlayConfig::default();
                if let Some(cap) = self.peer_connections {
                    peer.limits = ConnectionLimitsConfig::with_max_established(cap);
                }
                peer
            }
        };
        let listen: Multiaddr = match self.transport {
            Transport::Tcp => "/ip4/127.0.0.1/tcp/0",
            Transport::Memory => "/memory/0",
        }
        .parse()
        .expect("static multiaddr");
        let every = |ms: f64| Duration::from_millis((ms * background_slowdown(self.nodes)) as u64);
        let flood = |ms: f64| Duration::from_millis((ms * flood_slowdown(self.nodes)) as u64);
        let overlay = OverlayConfig {
            listen: vec![listen],
            bootstrap,
            kad_mode: KadMode::Server,
            backbone_interval: Duration::from_millis(1_000),
            bootstrap_backoff_min: Duration::from_millis(200),
            bootstrap_backoff_max: Duration::from_millis(2_000),
            idle_connection_timeout: Duration::from_secs(10),
            // The routing refresh is a node's own periodic work too: at 1,000 nodes on two
            // cores, the real 5-minute rounds tipped the whole run over (docs/SIMULATIONS.md).
            discovery_interval: base
                .discovery_interval
                .mul_f64(background_slowdown(self.nodes)),
            link: Some(link),
            ..base
        };
        let mut config = NodeConfig {
            data_dir: data_dir.to_owned(),
            overlay,
            gateway: None,
            ..NodeConfig::default()
        };
        config.control.addr = "127.0.0.1:0".parse().expect("static socket address");
        // A record lives 3.5 heartbeats, and no longer than any registry accepts.
        let max_ttl =
            Duration::from_millis(micro_node::registry::RecordLimits::default().max_ttl_ms);
        config.services.record_ttl = flood(3_500.0).min(max_ttl);
        config.services.heartbeat_interval = config.services.record_ttl.div_f64(3.5);
        config.services.provider_cache_ttl = Duration::from_millis(500);
        config.events.anti_entropy_interval = every(1_000.0);
        config.wasm.max_instances = 4;
        config.reputation.interval = flood(2_000.0);
        config.reputation.model.trust.maturity_ms = 2_000;
        config.ledger.sync_interval = every(1_000.0);
        config.ledger.genesis = self.genesis.clone();
        // One process, many sled databases: no background flushers (see the field's doc).
        config.db_flush_every_ms = None;
        config
    }
}

/// Up to this many nodes (the CI scenarios' size), simulated timers run at their base rate.
const BASE_NODES: f64 = 25.0;

/// How much slower than at [`BASE_NODES`] a node's own periodic work runs (anti-entropy with
/// one peer, ledger sync): each node's cost is constant, so the machine's grows with N, and
/// this keeps it flat.
pub fn background_slowdown(nodes: usize) -> f64 {
    (nodes as f64 / BASE_NODES).max(1.0)
}

/// How much slower network-wide floods run (registry heartbeats, trust reports): every node
/// publishes and every node receives and verifies every publication, so the machine's cost
/// grows with N², and so does this. Registry heartbeats stop slowing where records would
/// outlive what a registry accepts (600 s; at ~330 nodes).
pub fn flood_slowdown(nodes: usize) -> f64 {
    background_slowdown(nodes).powi(2)
}

/// The slots of a run and how to fill them. Never held across an await: nodes start and
/// stop outside it ([`Launch`], [`Retired`]).
pub struct Cluster {
    /// Every slot: super nodes first.
    pub slots: Vec<Slot>,
    template: NodeTemplate,
    /// The link of every node ever started (their counters outlive the nodes).
    links: Vec<LinkShaper>,
}

impl Cluster {
    /// Empty slots for `supers` super nodes and the given peers.
    pub fn new(template: NodeTemplate, supers: usize, peers: Vec<Duty>) -> Cluster {
        let duties = std::iter::repeat_n(Duty::Super, supers).chain(peers);
        let slots = duties
            .enumerate()
            .map(|(index, duty)| Slot {
                index,
                duty,
                serves: Vec::new(),
                topics: Vec::new(),
                node: None,
                generation: 0,
                dir: None,
            })
            .collect();
        Cluster {
            slots,
            template,
            links: Vec::new(),
        }
    }

    /// Bootstrap addresses of the live super nodes.
    pub fn super_addrs(&self) -> Vec<BootstrapAddr> {
        self.slots
            .iter()
            .filter(|s| s.duty == Duty::Super)
            .filter_map(|s| s.node.as_ref())
            .filter_map(bootstrap_addr)
            .collect()
    }

    /// Prepares a fresh node (new identity, new data dir) for slot `index`, bootstrapping
    /// from `bootstrap`. Start it with [`Launch::start`], then [`Cluster::install`] it.
    pub fn launch(&mut self, index: usize, bootstrap: Vec<BootstrapAddr>) -> Result<Launch> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("node-{index}-"))
            .tempdir_in(&self.template.root)
            .context("creating a data dir")?;
        let role = match self.slots[index].duty {
            Duty::Super => Role::Super,
            _ => Role::Peer,
        };
        let link = LinkShaper::new(self.template.link);
        self.links.push(link.clone());
        let config = self.template.config(dir.path(), role, bootstrap, link);
        Ok(Launch { index, config, dir })
    }

    /// Puts a started node into its slot.
    pub fn install(&mut self, launched: Launched) {
        let slot = &mut self.slots[launched.index];
        slot.node = Some(launched.node);
        slot.dir = Some(launched.dir);
        slot.generation += 1;
    }

    /// Takes slot `index`'s node out, to stop with [`Retired::stop`].
    pub fn take(&mut self, index: usize) -> Option<Retired> {
        let slot = &mut self.slots[index];
        let node = slot.node.take()?;
        Some(Retired {
            node,
            _dir: slot.dir.take(),
        })
    }

    /// Takes every node out.
    pub fn take_all(&mut self) -> Vec<Retired> {
        (0..self.slots.len()).filter_map(|i| self.take(i)).collect()
    }

    /// A clone of the handles of slot `index`'s node, if alive.
    pub fn handles(&self, index: usize) -> Option<Handles> {
        let slot = &self.slots[index];
        slot.node.as_ref().map(|node| Handles {
            slot: index,
            generation: slot.generation,
            peer_id: node.peer_id(),
            overlay: node.overlay().clone(),
            services: node.services().clone(),
            broker: node.broker().clone(),
            events: node.events().clone(),
            ledger: node.ledger().clone(),
        })
    }

    /// Bytes received and sent by every node ever started.
    pub fn traffic(&self) -> (u64, u64) {
        self.links.iter().fold((0, 0), |(i, o), l| {
            let s = l.stats();
            (i + s.bytes_in, o + s.bytes_out)
        })
    }

    /// Sets the link profile of every node (and of the ones started later).
    pub fn set_links(&mut self, profile: micro_node::overlay::LinkProfile) {
        self.template.link = profile;
        for link in &self.links {
            link.set_profile(profile);
        }
    }

    /// Live slots (indexes) matching `pred`.
    pub fn live(&self, pred: impl Fn(&Slot) -> bool) -> Vec<usize> {
        self.slots
            .iter()
            .filter(|s| s.alive() && pred(s))
            .map(|s| s.index)
            .collect()
    }
}

/// A node ready to start.
pub struct Launch {
    /// Its slot.
    pub index: usize,
    config: NodeConfig,
    dir: tempfile::TempDir,
}

impl Launch {
    /// Starts the node (it joins in the background; its overlay records when).
    pub async fn start(self) -> Result<Launched> {
        let index = self.index;
        // Every log line of the node's overlay names its slot (the overlay's actor runs in
        // the span it was started in); an error-level span, so any log filter keeps it.
        let node = RunningNode::start(self.config)
            .instrument(tracing::error_span!("node", slot = index))
            .await
            .with_context(|| format!("starting node {index}"))?;
        debug!(slot = index, peer = %node.peer_id(), "node started");
        Ok(Launched {
            index,
            node,
            dir: self.dir,
        })
    }
}

/// A started node, to [`Cluster::install`].
pub struct Launched {
    index: usize,
    node: RunningNode,
    dir: tempfile::TempDir,
}

/// A node taken out of its slot.
pub struct Retired {
    node: RunningNode,
    _dir: Option<tempfile::TempDir>,
}

impl Retired {
    /// Stops it: a crash (`kill`) or a clean shutdown. Its data dir goes with it.
    pub async fn stop(self, crash: bool) -> PeerId {
        let peer = self.node.peer_id();
        if crash {
            self.node.kill();
        } else {
            self.node.shutdown().await;
        }
        info!(%peer, crash, "node left");
        peer
    }
}

/// Cloned handles of one node, usable without holding the cluster.
#[derive(Clone)]
pub struct Handles {
    /// Its slot.
    pub slot: usize,
    /// The slot's generation it belongs to.
    pub generation: u32,
    /// Its id.
    pub peer_id: PeerId,
    /// Its overlay.
    pub overlay: micro_node::overlay::Overlay,
    /// Its service layer.
    pub services: micro_node::services::Services,
    /// Its broker.
    pub broker: micro_node::broker::Broker,
    /// Its event streams.
    pub events: micro_node::events::Events,
    /// Its ledger.
    pub ledger: micro_node::ledger::NodeLedger,
}

/// The node's first listen address as a bootstrap address.
pub fn bootstrap_addr(node: &RunningNode) -> Option<BootstrapAddr> {
    let addr = node.listen_addrs().iter().find(|a| {
        a.iter()
            .any(|p| matches!(p, Protocol::Tcp(_) | Protocol::Memory(_)))
    })?;
    Some(BootstrapAddr {
        peer_id: node.peer_id(),
        addr: addr.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use micro_node::overlay::LinkProfile;

    #[test]
    fn timers_keep_their_base_rate_up_to_the_ci_size_and_floods_slow_quadratically() {
        assert_eq!(background_slowdown(24), 1.0);
        assert_eq!(flood_slowdown(25), 1.0);
        assert_eq!(background_slowdown(100), 4.0);
        assert_eq!(flood_slowdown(100), 16.0);
        assert_eq!(flood_slowdown(1_000), 1_600.0);
    }

    #[test]
    fn every_size_gets_records_a_registry_accepts() {
        let max_ttl = micro_node::registry::RecordLimits::default().max_ttl_ms;
        for nodes in [24, 100, 330, 500, 1_000, 100_000] {
            let template = NodeTemplate {
                transport: Transport::Memory,
                root: PathBuf::from("/nonexistent"),
                genesis: None,
                nodes,
                link: LinkProfile::default(),
                peer_connections: Some(48),
            };
            let shaper = LinkShaper::new(LinkProfile::default());
            let config = template.config(Path::new("/nonexistent/n"), Role::Peer, vec![], shaper);
            let s = &config.services;
            assert!(
                s.record_ttl.as_millis() as u64 <= max_ttl,
                "{nodes} nodes: {s:?}"
            );
            assert!(
                s.heartbeat_interval * 3 < s.record_ttl,
                "{nodes} nodes: {s:?}"
            );
            assert_eq!(config.overlay.limits.max_established, 48);
        }
    }
}
