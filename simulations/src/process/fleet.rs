//! The slots of a process-mode run and what every task of it shares: the same slots (duty,
//! services, topics, generation) as the in-process cluster, each holding a child process
//! instead of an in-process node.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use micro_node::overlay::{BootstrapAddr, PeerId};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use tokio::sync::watch;

use super::child::{ChildError, ChildNode, ChildSpec};
use super::control::Control;
use crate::backend::Backends;
use crate::cluster::Duty;
use crate::record::Recorder;
use crate::run::Timeline;
use crate::scenario::{Bootstrap, Scenario};

/// One place in the network; its process changes with churn.
pub struct Slot {
    /// Its index.
    pub index: usize,
    /// What its nodes do.
    pub duty: Duty,
    /// Services its nodes serve.
    pub serves: Vec<String>,
    /// Broker topics its nodes subscribe to.
    pub topics: Vec<String>,
    /// The current process, `None` while the slot is empty.
    pub node: Option<ChildNode>,
    /// Bumped each time a new process takes the slot.
    pub generation: u32,
}

impl Slot {
    /// Whether it holds a process.
    pub fn alive(&self) -> bool {
        self.node.is_some()
    }

    /// Whether its node is honest.
    pub fn honest(&self) -> bool {
        !matches!(self.duty, Duty::Adversary(_))
    }
}

/// What a task needs of one live node, usable without holding the fleet.
#[derive(Clone)]
pub struct Handle {
    /// Its slot.
    pub slot: usize,
    /// The slot's generation it belongs to.
    pub generation: u32,
    /// Its id.
    pub peer_id: PeerId,
    /// Its control API.
    pub control: Control,
}

/// Every slot. Never held across an await: processes start and stop outside it.
pub struct Fleet {
    /// Super nodes first, then peers.
    pub slots: Vec<Slot>,
}

impl Fleet {
    /// The slots the in-process planner chose (same seed, same providers and subscribers).
    pub fn from_plan(cluster: &crate::cluster::Cluster) -> Fleet {
        let slots = cluster
            .slots
            .iter()
            .map(|s| Slot {
                index: s.index,
                duty: s.duty.clone(),
                serves: s.serves.clone(),
                topics: s.topics.clone(),
                node: None,
                generation: 0,
            })
            .collect();
        Fleet { slots }
    }

    /// Bootstrap addresses of the live super nodes.
    pub fn super_addrs(&self) -> Vec<BootstrapAddr> {
        self.slots
            .iter()
            .filter(|s| s.duty == Duty::Super)
            .filter_map(|s| s.node.as_ref()?.addr.clone())
            .collect()
    }

    /// Puts a started process into slot `index`.
    pub fn install(&mut self, index: usize, node: ChildNode) {
        let slot = &mut self.slots[index];
        slot.node = Some(node);
        slot.generation += 1;
    }

    /// Takes slot `index`'s process out, to stop.
    pub fn take(&mut self, index: usize) -> Option<ChildNode> {
        self.slots[index].node.take()
    }

    /// Takes every process out.
    pub fn take_all(&mut self) -> Vec<ChildNode> {
        self.slots
            .iter_mut()
            .filter_map(|s| s.node.take())
            .collect()
    }

    /// Slot `index`'s node, if alive.
    pub fn handle(&self, index: usize) -> Option<Handle> {
        let slot = &self.slots[index];
        slot.node.as_ref().map(|node| Handle {
            slot: index,
            generation: slot.generation,
            peer_id: node.peer_id,
            control: node.control.clone(),
        })
    }

    /// Live slots (indexes) matching `pred`.
    pub fn live(&self, pred: impl Fn(&Slot) -> bool) -> Vec<usize> {
        self.slots
            .iter()
            .filter(|s| s.alive() && pred(s))
            .map(|s| s.index)
            .collect()
    }

    /// Resident memory of every live process that could be read, in bytes.
    pub fn rss(&self) -> Vec<u64> {
        self.slots
            .iter()
            .filter_map(|s| s.node.as_ref()?.rss_bytes())
            .collect()
    }
}

/// What every task of a process-mode run shares.
pub struct Shared {
    /// The scenario.
    pub scenario: Scenario,
    /// The `micro-node` binary.
    pub binary: PathBuf,
    /// The processes.
    pub fleet: Mutex<Fleet>,
    /// Observations (the in-process runner's recorder).
    pub rec: Recorder,
    /// The HTTP backends services answer from.
    pub backends: Backends,
    /// Warm-up probes seen: (topic, publisher slot, subscriber slot).
    pub probes: Mutex<HashSet<(String, usize, usize)>>,
    /// The timeline's clock and end.
    pub clock: Timeline,
}

impl Shared {
    /// Shared state before any process starts.
    pub fn new(
        scenario: Scenario,
        binary: PathBuf,
        fleet: Fleet,
        backends: Backends,
        stop: watch::Receiver<bool>,
    ) -> Shared {
        let clock = Timeline::new(stop, scenario.settle_s);
        Shared {
            scenario,
            binary,
            fleet: Mutex::new(fleet),
            rec: Recorder::default(),
            backends,
            probes: Mutex::new(HashSet::new()),
            clock,
        }
    }

    /// The fleet, locked (never across an await).
    pub fn fleet(&self) -> MutexGuard<'_, Fleet> {
        self.fleet.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a fresh process (new identity, new data dir) for slot `index`; does not install
    /// it.
    pub async fn start(
        &self,
        index: usize,
        bootstrap: Vec<BootstrapAddr>,
    ) -> Result<ChildNode, ChildError> {
        let super_node = self.fleet().slots[index].duty == Duty::Super;
        ChildNode::start(ChildSpec {
            binary: &self.binary,
            index,
            super_node,
            bootstrap,
        })
        .await
    }

    /// A random live node matching `pred`.
    pub fn pick(&self, rng: &mut StdRng, pred: impl Fn(&Slot) -> bool) -> Option<Handle> {
        let fleet = self.fleet();
        let live = fleet.live(pred);
        live.choose(rng).and_then(|i| fleet.handle(*i))
    }

    /// Every live node matching `pred`.
    pub fn all(&self, pred: impl Fn(&Slot) -> bool) -> Vec<Handle> {
        let fleet = self.fleet();
        fleet
            .live(pred)
            .into_iter()
            .filter_map(|i| fleet.handle(i))
            .collect()
    }

    /// Whether `h`'s process still holds its slot.
    pub fn alive(&self, h: &Handle) -> bool {
        let fleet = self.fleet();
        let slot = &fleet.slots[h.slot];
        slot.alive() && slot.generation == h.generation
    }

    /// Bootstrap addresses for a new peer, by the scenario's policy.
    pub fn bootstrap_for(&self, rng: &mut StdRng) -> Vec<BootstrapAddr> {
        let supers = self.fleet().super_addrs();
        match self.scenario.network.bootstrap {
            Bootstrap::AllSupers => supers,
            Bootstrap::OneSuper => supers.choose(rng).cloned().into_iter().collect(),
        }
    }
}
