//! Scenario files: the network to start, the load to put on it, the faults and adversaries
//! to inject, and the outcomes to expect. TOML, every field checked; an error names the file,
//! the line and the field.
//!
//! ```toml
//! name = "churn"
//! seed = 7
//! duration_s = 20
//!
//! [network]
//! nodes = 24
//! supers = 3
//!
//! [[services]]
//! name = "echo"
//! providers = 4
//!
//! [[load]]
//! kind = "lookup"
//! service = "echo"
//! rate_per_s = 10
//!
//! [[faults]]
//! kind = "churn"
//! rate_per_min = 0.1
//!
//! [expect]
//! lookup_success_min = 0.99
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Most nodes one scenario may ask for (the budget check refuses what the machine cannot
/// hold long before this).
pub const MAX_NODES: usize = 100_000;
/// Longest scenario, in seconds.
pub const MAX_DURATION_S: f64 = 24.0 * 3600.0;
/// Highest rate of one load or adversary, per second.
pub const MAX_RATE_PER_S: f64 = 10_000.0;

/// A scenario, as written in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in reports.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice the scenario makes (which nodes churn, call, publish…).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How long the timeline runs, in seconds, after every node has started.
    pub duration_s: f64,
    /// How long to wait after the timeline for deliveries and convergence, in seconds.
    #[serde(default = "default_settle_s")]
    pub settle_s: f64,
    /// The nodes.
    pub network: Network,
    /// Services some nodes serve.
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    /// Broker topics some nodes subscribe to.
    #[serde(default)]
    pub topics: Vec<TopicSpec>,
    /// The ledger's accounts, if the scenario moves tokens.
    #[serde(default)]
    pub ledger: Option<LedgerSpec>,
    /// Work put on the network over the timeline.
    #[serde(default)]
    pub load: Vec<Load>,
    /// Faults injected over the timeline.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Nodes that misbehave.
    #[serde(default)]
    pub adversaries: Vec<Adversary>,
    /// Outcomes the run must reach (checked by `run`; the CI scenarios are these checks).
    #[serde(default)]
    pub expect: Expect,
}

fn default_seed() -> u64 {
    1
}

fn default_settle_s() -> f64 {
    5.0
}

/// How the nodes reach each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP on 127.0.0.1: real sockets.
    #[default]
    Tcp,
    /// libp2p's in-memory transport: the same upgrades (noise, yamux), no sockets.
    Memory,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp (loopback)",
            Transport::Memory => "memory",
        })
    }
}

/// Where the nodes run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every node is a `RunningNode` inside this process (any size the machine holds).
    #[default]
    InProcess,
    /// Every node is a `micro-node` child process, driven through its control API (small
    /// networks only; see [`crate::process`] for what it refuses).
    Processes,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::InProcess => "in-process",
            Mode::Processes => "os processes",
        })
    }
}

/// Whom peers bootstrap from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bootstrap {
    /// Every super node.
    #[default]
    AllSupers,
    /// One super node, chosen at random per peer.
    OneSuper,
}

/// The nodes of the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// How many nodes in all (super nodes included).
    pub nodes: usize,
    /// How many of them are super nodes (the backbone others bootstrap from).
    #[serde(default = "default_supers")]
    pub supers: usize,
    /// Whom peers bootstrap from.
    #[serde(default)]
    pub bootstrap: Bootstrap,
    /// Transport between the nodes.
    #[serde(default)]
    pub transport: Transport,
    /// Where the nodes run: `in-process` (default) or `processes`.
    #[serde(default)]
    pub mode: Mode,
    /// Peers started per second (0: as fast as they start).
    #[serde(default)]
    pub join_rate_per_s: f64,
    /// Every node's link: latency and jitter added to what it receives, connections dropped.
    #[serde(default)]
    pub link: LinkSpec,
    /// Most connections a peer (not a super node) keeps; unset: the node's default (128).
    /// About 130 KiB of memory per connection end (docs/SIMULATIONS.md) decides how many
    /// nodes fit one machine.
    #[serde(default)]
    pub peer_connections: Option<u32>,
}

/// A link profile (see `micro_overlay::LinkProfile`): applied per node, on what it reads, so
/// a round trip between two nodes costs both their latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Latency added to each chunk received, in ms.
    #[serde(default)]
    pub latency_ms: f64,
    /// Uniform jitter around it, in ms.
    #[serde(default)]
    pub jitter_ms: f64,
    /// Probability that a new connection is refused.
    #[serde(default)]
    pub drop_rate: f64,
}

impl LinkSpec {
    /// As the overlay's profile.
    pub fn profile(&self) -> micro_node::overlay::LinkProfile {
        micro_node::overlay::LinkProfile {
            latency: std::time::Duration::from_secs_f64(self.latency_ms.max(0.0) / 1e3),
            jitter: std::time::Duration::from_secs_f64(self.jitter_ms.max(0.0) / 1e3),
            drop_rate: self.drop_rate,
        }
    }

    fn check(&self) -> Result<(), String> {
        if !(0.0..=60_000.0).contains(&self.latency_ms)
            || !(0.0..=60_000.0).contains(&self.jitter_ms)
        {
            return Err("latency_ms and jitter_ms must be in [0, 60000]".into());
        }
        if !fraction(self.drop_rate) || self.drop_rate == 1.0 {
            return Err("drop_rate must be in [0, 1)".into());
        }
        Ok(())
    }
}

fn default_supers() -> usize {
    1
}

/// A service served by some nodes (an echo over an in-process HTTP backend).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Its name.
    pub name: String,
    /// How many honest peers serve it.
    pub providers: usize,
}

/// Which layer carries a topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicKind {
    /// The broker: gossipsub, fire and forget.
    #[default]
    Broker,
    /// Event streams: stored, ordered, backfilled after partitions.
    Events,
}

/// A topic some nodes subscribe to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Broker or event stream.
    #[serde(default)]
    pub kind: TopicKind,
    /// Fraction of the honest nodes that subscribe to it.
    #[serde(default = "one")]
    pub subscribers: f64,
}

fn one() -> f64 {
    1.0
}

/// Ledger accounts funded at genesis, whose owners send transfers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSpec {
    /// How many accounts.
    pub accounts: usize,
    /// Tokens each starts with.
    #[serde(default = "default_balance")]
    pub balance: u64,
}

fn default_balance() -> u64 {
    1_000_000
}

/// What a load does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadKind {
    /// A DHT provider lookup of a service by a random node.
    Lookup,
    /// An RPC call of a service from a random node (any provider).
    Call,
    /// A publish on a topic (broker or event stream) from a random node.
    Publish,
    /// A ledger transfer between random accounts, submitted to a random node.
    Transfer,
}

/// Work at a steady rate over part of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// What to do.
    pub kind: LoadKind,
    /// Operations started per second, across the network.
    pub rate_per_s: f64,
    /// When to start (seconds into the timeline).
    #[serde(default)]
    pub start_s: f64,
    /// When to stop (default: the end of the timeline).
    #[serde(default)]
    pub end_s: Option<f64>,
    /// The service (lookup, call).
    #[serde(default)]
    pub service: Option<String>,
    /// The topic (publish).
    #[serde(default)]
    pub topic: Option<String>,
}

/// A fault injected over the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// Peers leave and others join: each leaving peer is replaced by a fresh one.
    Churn {
        /// Fraction of the peers replaced per minute.
        rate_per_min: f64,
        /// Of those leaving, the fraction that crash (the rest shut down cleanly).
        #[serde(default = "half")]
        crash_fraction: f64,
        /// When to start.
        #[serde(default)]
        start_s: f64,
        /// When to stop (default: the end of the timeline).
        #[serde(default)]
        end_s: Option<f64>,
    },
    /// A fraction of the nodes is cut off from the rest, then the cut heals.
    Partition {
        /// Fraction of the nodes on the smaller side (super nodes stay on the larger one).
        fraction: f64,
        /// When the cut starts.
        start_s: f64,
        /// When it heals.
        end_s: f64,
    },
    /// Providers of a service crash (and stay down): how long until registries drop them.
    ProviderCrash {
        /// The service.
        service: String,
        /// How many of its providers.
        count: usize,
        /// When.
        at_s: f64,
    },
    /// Every node's link degrades for a while (latency, jitter, dropped connections), then
    /// returns to the network's profile.
    Degrade {
        /// Latency added to each chunk received, in ms.
        #[serde(default)]
        latency_ms: f64,
        /// Uniform jitter around it, in ms.
        #[serde(default)]
        jitter_ms: f64,
        /// Probability that a new connection is refused.
        #[serde(default)]
        drop_rate: f64,
        /// When it starts.
        start_s: f64,
        /// When it ends.
        end_s: f64,
    },
    /// Super nodes crash.
    SuperLoss {
        /// How many.
        count: usize,
        /// When.
        at_s: f64,
    },
}

fn half() -> f64 {
    0.5
}

impl Fault {
    /// The link a `degrade` fault sets; `None` for other faults.
    pub fn degraded_link(&self) -> Option<LinkSpec> {
        match *self {
            Fault::Degrade {
                latency_ms,
                jitter_ms,
                drop_rate,
                ..
            } => Some(LinkSpec {
                latency_ms,
                jitter_ms,
                drop_rate,
            }),
            _ => None,
        }
    }
}

/// A misbehaving node and what it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Adversary {
    /// Announces records of a service it does not serve in the name of another node (its
    /// own key, the victim as owner) and tampered copies of honest records.
    ForgeRecords {
        /// How many such nodes.
        count: usize,
        /// Forged announcements per second, per node.
        #[serde(default = "default_adversary_rate")]
        rate_per_s: f64,
    },
    /// Floods a broker topic with malformed messages.
    Spam {
        /// How many such nodes.
        count: usize,
        /// The topic.
        topic: String,
        /// Messages per second, per node.
        #[serde(default = "default_spam_rate")]
        rate_per_s: f64,
    },
    /// Serves a service and answers every call wrongly.
    WrongAnswers {
        /// How many such nodes.
        count: usize,
        /// The service.
        service: String,
    },
    /// Accounts that spend one seq twice, on two different nodes.
    Equivocate {
        /// How many such accounts.
        count: usize,
        /// When (seconds into the timeline).
        #[serde(default)]
        at_s: f64,
    },
}

fn default_adversary_rate() -> f64 {
    2.0
}

fn default_spam_rate() -> f64 {
    20.0
}

/// Outcomes the run must reach; absent ones are not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Least fraction of lookups that find a live provider.
    pub lookup_success_min: Option<f64>,
    /// Least fraction of calls answered correctly.
    pub rpc_success_min: Option<f64>,
    /// Least fraction of (message, subscriber) pairs delivered.
    pub delivery_ratio_min: Option<f64>,
    /// Most forged records any honest registry may list.
    pub forged_accepted_max: Option<u64>,
    /// Most malformed messages any subscriber may receive.
    pub spam_delivered_max: Option<u64>,
    /// Whether every live node must hold the same ledger state at the end.
    pub ledger_converged: Option<bool>,
    /// Whether every live node must have frozen every equivocating account.
    pub equivocators_frozen: Option<bool>,
    /// Longest a crashed provider may stay listed anywhere, in seconds.
    pub dead_provider_dropped_max_s: Option<f64>,
}

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid scenario: bad TOML, an unknown or missing field, a value out
    /// of range.
    #[error("{path}:{line}: {field}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending field (or of its table).
        line: usize,
        /// The field, as a path (`faults[1].fraction`).
        field: String,
        /// What is wrong.
        reason: String,
    },
}

impl Scenario {
    /// Reads and checks the scenario in `path`.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::parse(&text, path)
    }

    /// Parses and checks scenario `text`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let invalid = |line: usize, field: String, reason: String| ScenarioError::Invalid {
            path: path.to_owned(),
            line,
            field,
            reason,
        };
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |span| line_of(text, span.start));
            let (field, reason) = split_toml_message(e.message());
            invalid(line, field, reason)
        })?;
        if let Err((field, reason)) = scenario.validate() {
            return Err(invalid(locate(text, &field), field, reason));
        }
        Ok(scenario)
    }

    /// The same scenario with `nodes` nodes: providers keep their share of the network (at
    /// least one where there was one); the super nodes, the backbone, stay as many (at most
    /// `nodes`); subscribers are a fraction already; adversaries stay as many.
    pub fn scaled_to(&self, nodes: usize) -> Scenario {
        let mut s = self.clone();
        let from = self.network.nodes.max(1) as f64;
        let scale = |n: usize| -> usize {
            if n == 0 {
                0
            } else {
                ((n as f64 * nodes as f64 / from).round() as usize).max(1)
            }
        };
        s.network.nodes = nodes;
        s.network.supers = self.network.supers.min(nodes);
        for service in &mut s.services {
            service.providers = scale(service.providers);
        }
        s
    }

    /// Checks what the types cannot: counts that fit the network, fractions in range, names
    /// that refer to something. The error is `(field path, reason)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |field: &str, reason: String| Err((field.to_owned(), reason));
        let n = &self.network;
        if self.name.trim().is_empty() {
            return err("name", "must not be empty".into());
        }
        if !(self.duration_s > 0.0 && self.duration_s <= MAX_DURATION_S) {
            return err(
                "duration_s",
                format!("must be in (0, {MAX_DURATION_S}] seconds"),
            );
        }
        if !(self.settle_s >= 0.0 && self.settle_s <= MAX_DURATION_S) {
            return err("settle_s", "must be ≥ 0".into());
        }
        if n.nodes < 2 || n.nodes > MAX_NODES {
            return err("network.nodes", format!("must be in [2, {MAX_NODES}]"));
        }
        if n.supers == 0 || n.supers > n.nodes {
            return err(
                "network.supers",
                format!("must be in [1, network.nodes = {}]", n.nodes),
            );
        }
        if n.peer_connections == Some(0) {
            return Err((
                "network.peer_connections".into(),
                "must be at least 1".into(),
            ));
        }
        if !(n.join_rate_per_s >= 0.0 && n.join_rate_per_s <= MAX_RATE_PER_S) {
            return err(
                "network.join_rate_per_s",
                format!("must be in [0, {MAX_RATE_PER_S}]"),
            );
        }
        if let Err(reason) = n.link.check() {
            return err("network.link", reason);
        }
        let peers = n.nodes - n.supers;
        let adversaries: usize = self.adversaries.iter().map(Adversary::nodes).sum();
        if adversaries >= peers {
            return err(
                "adversaries",
                format!("{adversaries} adversary nodes, but only {peers} peers"),
            );
        }
        for (i, service) in self.services.iter().enumerate() {
            if service
                .name
                .parse::<micro_node::registry::ServiceName>()
                .is_err()
            {
                return err(
                    &format!("services[{i}].name"),
                    format!("{:?} is not a valid service name", service.name),
                );
            }
            if service.providers == 0 || service.providers > peers - adversaries {
                return err(
                    &format!("services[{i}].providers"),
                    format!("must be in [1, honest peers = {}]", peers - adversaries),
                );
            }
        }
        for (i, topic) in self.topics.iter().enumerate() {
            if topic.name.parse::<micro_node::broker::TopicName>().is_err() {
                return err(
                    &format!("topics[{i}].name"),
                    format!("{:?} is not a valid topic name", topic.name),
                );
            }
            if !fraction(topic.subscribers) || topic.subscribers == 0.0 {
                return err(
                    &format!("topics[{i}].subscribers"),
                    "must be in (0, 1]".into(),
                );
            }
        }
        if let Some(ledger) = &self.ledger
            && !(2..=255).contains(&ledger.accounts)
        {
            return err("ledger.accounts", "must be in [2, 255]".into());
        }
        for (i, load) in self.load.iter().enumerate() {
            let at = |f: &str| format!("load[{i}].{f}");
            if !(load.rate_per_s > 0.0 && load.rate_per_s <= MAX_RATE_PER_S) {
                return err(
                    &at("rate_per_s"),
                    format!("must be in (0, {MAX_RATE_PER_S}]"),
                );
            }
            self.window(load.start_s, load.end_s)
                .or_else(|reason| err(&at("start_s"), reason))?;
            match load.kind {
                LoadKind::Lookup | LoadKind::Call => {
                    let Some(name) = &load.service else {
                        return err(&at("service"), "required for this kind".into());
                    };
                    if !self.serves(name) {
                        return err(&at("service"), format!("{name:?} is not in [[services]]"));
                    }
                }
                LoadKind::Publish => {
                    let Some(name) = &load.topic else {
                        return err(&at("topic"), "required for this kind".into());
                    };
                    if !self.topics.iter().any(|t| &t.name == name) {
                        return err(&at("topic"), format!("{name:?} is not in [[topics]]"));
                    }
                }
                LoadKind::Transfer => {
                    if self.ledger.is_none() {
                        return err(&at("kind"), "a transfer load needs [ledger]".into());
                    }
                }
            }
        }
        for (i, fault) in self.faults.iter().enumerate() {
            let at = |f: &str| format!("faults[{i}].{f}");
            match fault {
                Fault::Churn {
                    rate_per_min,
                    crash_fraction,
                    start_s,
                    end_s,
                } => {
                    if !(*rate_per_min > 0.0 && *rate_per_min <= 60.0) {
                        return err(&at("rate_per_min"), "must be in (0, 60]".into());
                    }
                    if !fraction(*crash_fraction) {
                        return err(&at("crash_fraction"), "must be in [0, 1]".into());
                    }
                    self.window(*start_s, *end_s)
                        .or_else(|reason| err(&at("start_s"), reason))?;
                }
                Fault::Partition {
                    fraction: f,
                    start_s,
                    end_s,
                } => {
                    if !(*f > 0.0 && *f < 1.0) {
                        return err(&at("fraction"), "must be in (0, 1)".into());
                    }
                    if ((n.nodes as f64) * f).round() as usize > peers {
                        return err(&at("fraction"), "the cut side may hold peers only".into());
                    }
                    self.window(*start_s, Some(*end_s))
                        .or_else(|reason| err(&at("start_s"), reason))?;
                }
                Fault::ProviderCrash {
                    service,
                    count,
                    at_s,
                } => {
                    let Some(spec) = self.services.iter().find(|s| &s.name == service) else {
                        return err(
                            &at("service"),
                            format!("{service:?} is not in [[services]]"),
                        );
                    };
                    if *count == 0 || *count >= spec.providers {
                        return err(
                            &at("count"),
                            format!("must be in [1, providers - 1 = {}]", spec.providers - 1),
                        );
                    }
                    if !(*at_s >= 0.0 && *at_s <= self.duration_s) {
                        return err(&at("at_s"), "must be within the timeline".into());
                    }
                }
                Fault::Degrade { start_s, end_s, .. } => {
                    let link = fault.degraded_link().unwrap_or_default();
                    link.check()
                        .or_else(|reason| err(&at("latency_ms"), reason))?;
                    self.window(*start_s, Some(*end_s))
                        .or_else(|reason| err(&at("start_s"), reason))?;
                }
                Fault::SuperLoss { count, at_s } => {
                    if *count == 0 || *count >= n.supers {
                        return err(
                            &at("count"),
                            format!("must be in [1, network.supers - 1 = {}]", n.supers - 1),
                        );
                    }
                    if !(*at_s >= 0.0 && *at_s <= self.duration_s) {
                        return err(&at("at_s"), "must be within the timeline".into());
                    }
                }
            }
        }
        for (i, adversary) in self.adversaries.iter().enumerate() {
            let at = |f: &str| format!("adversaries[{i}].{f}");
            if adversary.nodes() == 0 && !matches!(adversary, Adversary::Equivocate { .. }) {
                return err(&at("count"), "must be at least 1".into());
            }
            match adversary {
                Adversary::ForgeRecords { rate_per_s, .. } | Adversary::Spam { rate_per_s, .. }
                    if !(*rate_per_s > 0.0 && *rate_per_s <= MAX_RATE_PER_S) =>
                {
                    return err(
                        &at("rate_per_s"),
                        format!("must be in (0, {MAX_RATE_PER_S}]"),
                    );
                }
                Adversary::Spam { topic, .. } if !self.topics.iter().any(|t| &t.name == topic) => {
                    return err(&at("topic"), format!("{topic:?} is not in [[topics]]"));
                }
                Adversary::WrongAnswers { service, .. } if !self.serves(service) => {
                    return err(
                        &at("service"),
                        format!("{service:?} is not in [[services]]"),
                    );
                }
                Adversary::Equivocate { count, at_s } => {
                    let Some(ledger) = &self.ledger else {
                        return err(&at("kind"), "equivocation needs [ledger]".into());
                    };
                    if *count == 0 || *count >= ledger.accounts {
                        return err(&at("count"), "must be in [1, ledger.accounts - 1]".into());
                    }
                    if !(*at_s >= 0.0 && *at_s <= self.duration_s) {
                        return err(&at("at_s"), "must be within the timeline".into());
                    }
                }
                _ => {}
            }
        }
        if n.mode == Mode::Processes
            && let Err(refused) = crate::process::support::check(self)
        {
            return err(&refused.field(), refused.reason());
        }
        let e = &self.expect;
        for (field, value) in [
            ("expect.lookup_success_min", e.lookup_success_min),
            ("expect.rpc_success_min", e.rpc_success_min),
            ("expect.delivery_ratio_min", e.delivery_ratio_min),
        ] {
            if value.is_some_and(|v| !fraction(v)) {
                return err(field, "must be in [0, 1]".into());
            }
        }
        Ok(())
    }

    fn serves(&self, name: &str) -> bool {
        self.services.iter().any(|s| s.name == name)
    }

    /// Checks a `[start, end)` window inside the timeline.
    fn window(&self, start_s: f64, end_s: Option<f64>) -> Result<(), String> {
        let end = end_s.unwrap_or(self.duration_s);
        if start_s >= 0.0 && start_s < end && end <= self.duration_s {
            Ok(())
        } else {
            Err(format!(
                "window [{start_s}, {end}) must be non-empty and within [0, duration_s = {}]",
                self.duration_s
            ))
        }
    }
}

impl Adversary {
    /// How many nodes this adversary takes (equivocation uses accounts, not nodes).
    pub fn nodes(&self) -> usize {
        match self {
            Adversary::ForgeRecords { count, .. }
            | Adversary::Spam { count, .. }
            | Adversary::WrongAnswers { count, .. } => *count,
            Adversary::Equivocate { .. } => 0,
        }
    }
}

fn fraction(v: f64) -> bool {
    (0.0..=1.0).contains(&v)
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// Splits a toml error message into the field it names (if any) and the rest.
fn split_toml_message(message: &str) -> (String, String) {
    let message = message.trim();
    for marker in ["unknown field `", "missing field `", "unknown variant `"] {
        if let Some(rest) = message.find(marker).map(|i| &message[i + marker.len()..])
            && let Some(end) = rest.find('`')
        {
            return (rest[..end].to_owned(), message.to_owned());
        }
    }
    ("(syntax)".to_owned(), message.to_owned())
}

/// The line of `field` (a path such as `faults[1].fraction`) in `text`: of the key itself if
/// present, else of the deepest table on the path that is.
fn locate(text: &str, field: &str) -> usize {
    let Ok(doc) = text.parse::<toml_edit::Document<String>>() else {
        return 1;
    };
    let mut item: &toml_edit::Item = doc.as_item();
    let mut best = 1;
    for part in field.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some(next) = item.get(key) else {
            break;
        };
        item = next;
        if let Some(span) = item.span() {
            best = line_of(text, span.start);
        }
        if let Some(i) = index {
            let Some(next) = item.get(i) else {
                break;
            };
            item = next;
            if let Some(span) = item.span() {
                best = line_of(text, span.start);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
duration_s = 10

[network]
nodes = 10
supers = 2

[[services]]
name = "echo"
providers = 3

[[topics]]
name = "news"

[[load]]
kind = "lookup"
service = "echo"
rate_per_s = 5

[[faults]]
kind = "churn"
rate_per_min = 0.2

[[faults]]
kind = "partition"
fraction = 0.3
start_s = 2
end_s = 6
"#;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("s.toml"))
    }

    fn invalid(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(ScenarioError::Invalid {
                line,
                field,
                reason,
                ..
            }) => (line, field, reason),
            other => panic!("expected an invalid scenario, got {other:?}"),
        }
    }

    #[test]
    fn a_good_scenario_parses_with_defaults() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.seed, 1);
        assert_eq!(s.network.transport, Transport::Tcp);
        assert_eq!(s.network.bootstrap, Bootstrap::AllSupers);
        assert_eq!(s.topics[0].subscribers, 1.0);
        assert_eq!(s.faults.len(), 2);
        assert!(
            matches!(s.faults[0], Fault::Churn { crash_fraction, .. } if crash_fraction == 0.5)
        );
    }

    #[test]
    fn an_unknown_field_names_its_line_and_field() {
        let text = GOOD.replace("supers = 2", "supers = 2\nnodez = 3");
        let (line, field, reason) = invalid(&text);
        assert_eq!(field, "nodez");
        assert_eq!(line, 8, "{reason}");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("s.toml:8: nodez: "), "{err}");
    }

    #[test]
    fn a_missing_field_and_a_wrong_type_are_named() {
        let (_, field, _) = invalid(&GOOD.replace("duration_s = 10\n", ""));
        assert_eq!(field, "duration_s");
        let (line, field, reason) = invalid(&GOOD.replace("providers = 3", "providers = \"x\""));
        assert_eq!(line, 11);
        assert_eq!(field, "(syntax)");
        assert!(reason.contains("invalid type"), "{reason}");
        let (_, field, _) = invalid(&GOOD.replace("kind = \"churn\"", "kind = \"flood\""));
        assert_eq!(field, "flood");
    }

    #[test]
    fn out_of_range_values_point_at_their_key() {
        let (line, field, _) = invalid(&GOOD.replace("fraction = 0.3", "fraction = 1.5"));
        assert_eq!((line, field.as_str()), (27, "faults[1].fraction"));
        let (line, field, _) = invalid(&GOOD.replace("supers = 2", "supers = 11"));
        assert_eq!((line, field.as_str()), (7, "network.supers"));
        let (line, field, _) = invalid(&GOOD.replace("service = \"echo\"", "service = \"nope\""));
        assert_eq!((line, field.as_str()), (18, "load[0].service"));
        let (_, field, _) = invalid(&GOOD.replace("end_s = 6", "end_s = 60"));
        assert_eq!(field, "faults[1].start_s");
    }

    #[test]
    fn a_degrade_fault_carries_its_link_and_checks_it() {
        let text = format!(
            "{GOOD}\n[[faults]]\nkind = \"degrade\"\nlatency_ms = 40\nstart_s = 1\nend_s = 3\n"
        );
        let s = parse(&text).unwrap();
        let link = s.faults[2].degraded_link().unwrap();
        assert_eq!((link.latency_ms, link.drop_rate), (40.0, 0.0));
        assert_eq!(s.faults[0].degraded_link(), None);
        let (_, field, _) = invalid(&text.replace("latency_ms = 40", "drop_rate = 1.0"));
        assert_eq!(field, "faults[2].latency_ms");
    }

    #[test]
    fn scaling_keeps_shares_and_at_least_one() {
        let s = parse(GOOD).unwrap().scaled_to(100);
        assert_eq!(s.network.nodes, 100);
        assert_eq!(s.network.supers, 2);
        assert_eq!(s.services[0].providers, 30);
        let s = parse(GOOD).unwrap().scaled_to(3);
        assert_eq!((s.network.supers, s.services[0].providers), (2, 1));
    }
}
