//! One run of a scenario: start the network, play the timeline (load, faults, adversaries),
//! let it settle, measure, stop.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use micro_node::overlay::{BootstrapAddr, LocalInfo, PeerId};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::backend::Backends;
use crate::budget;
use crate::cluster::{Cluster, Duty, Handles, NodeTemplate};
use crate::record::Recorder;
use crate::report::{LedgerReport, Report};
use crate::scenario::{Adversary, Bootstrap, Fault, Load, Scenario};
use crate::{adversary, load, wallets::Wallets};

/// Nodes started at once.
const START_CONCURRENCY: usize = 16;
/// How long the warm-up may take (services findable, meshes formed).
const WARM_UP: Duration = Duration::from_secs(30);
/// How often monitors (dead providers, finality, convergence) look.
const MONITOR_EVERY: Duration = Duration::from_millis(250);

/// What every task of a run shares.
pub struct Shared {
    /// The scenario.
    pub scenario: Scenario,
    /// The nodes.
    pub cluster: Mutex<Cluster>,
    /// Observations.
    pub rec: Recorder,
    /// The HTTP backends services answer from.
    pub backends: Backends,
    /// Ledger accounts, if any.
    pub wallets: Option<Mutex<Wallets>>,
    equivocators: Mutex<HashSet<micro_node::ledger::micro_ledger::Account>>,
    /// The timeline's clock and end.
    pub clock: Timeline,
}

/// A run's clock and its end, shared by both modes: when the timeline started, the signal
/// that ends it, and how long to settle after.
pub struct Timeline {
    t0: Mutex<Instant>,
    stop: watch::Receiver<bool>,
    settle: Duration,
}

impl Timeline {
    /// A clock (started now, restarted by [`Timeline::begin`]) that `stop` ends.
    pub fn new(stop: watch::Receiver<bool>, settle_s: f64) -> Timeline {
        Timeline {
            t0: Mutex::new(Instant::now()),
            stop,
            settle: Duration::from_secs_f64(settle_s),
        }
    }

    /// Starts the timeline's clock.
    pub fn begin(&self) {
        *self.t0.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// When the timeline started.
    pub fn t0(&self) -> Instant {
        *self.t0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Milliseconds since the timeline started.
    pub fn now_ms(&self) -> f64 {
        self.t0().elapsed().as_secs_f64() * 1e3
    }

    /// Whether the timeline is over.
    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves when the timeline is over.
    pub async fn ended(&self) {
        // The watch guard is not held across awaits.
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|s| *s).await.map(drop);
    }

    /// Resolves once the timeline ended and the settle time passed: when monitors stop.
    pub async fn settled(&self) {
        self.ended().await;
        tokio::time::sleep(self.settle).await;
    }

    /// Sleeps until `at_s` seconds into the timeline; false if the timeline ended first.
    pub async fn until(&self, at_s: f64) -> bool {
        let at = self.t0() + Duration::from_secs_f64(at_s.max(0.0));
        tokio::select! {
            _ = tokio::time::sleep_until(at) => !self.stopped(),
            _ = self.ended() => false,
        }
    }
}

impl Shared {
    /// The cluster, locked (never across an await).
    pub fn cluster(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles of a random live node matching `pred`.
    pub fn pick(
        &self,
        rng: &mut StdRng,
        pred: impl Fn(&crate::cluster::Slot) -> bool,
    ) -> Option<Handles> {
        let cluster = self.cluster();
        let live = cluster.live(pred);
        live.choose(rng).and_then(|i| cluster.handles(*i))
    }

    /// Handles of every live node matching `pred`.
    pub fn all(&self, pred: impl Fn(&crate::cluster::Slot) -> bool) -> Vec<Handles> {
        let cluster = self.cluster();
        cluster
            .live(pred)
            .into_iter()
            .filter_map(|i| cluster.handles(i))
            .collect()
    }

    /// Bootstrap addresses for a new peer, by the scenario's policy.
    pub fn bootstrap_for(&self, rng: &mut StdRng) -> Vec<BootstrapAddr> {
        let supers = self.cluster().super_addrs();
        match self.scenario.network.bootstrap {
            Bootstrap::AllSupers => supers,
            Bootstrap::OneSuper => supers.choose(rng).cloned().into_iter().collect(),
        }
    }

    /// Accounts that equivocated so far.
    pub fn equivocators(&self) -> HashSet<micro_node::ledger::micro_ledger::Account> {
        self.equivocators
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records that `account` equivocated.
    pub fn add_equivocator(&self, account: micro_node::ledger::micro_ledger::Account) {
        self.equivocators
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account);
    }
}

/// A seeded rng for one task of the run, independent of the others.
pub fn task_rng(seed: u64, task: &str) -> StdRng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in task.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    StdRng::seed_from_u64(seed ^ h)
}

/// Runs `scenario` and returns what it measured (with its `[expect]` checked).
/// With `network.mode = "processes"`, plays it with `micro-node` child processes instead
/// ([`crate::process::run`], the binary found next to this executable).
pub async fn run(scenario: Scenario) -> Result<Report> {
    if scenario.network.mode == crate::scenario::Mode::Processes {
        let options = crate::process::ProcessOptions::default();
        return Ok(crate::process::run(scenario, &options).await?);
    }
    budget::check(&scenario)?;
    let wall = Instant::now();
    let root = tempfile::Builder::new()
        .prefix("micro-sim-")
        .tempdir()
        .context("creating the run's directory")?;
    let wallets = scenario
        .ledger
        .as_ref()
        .map(|l| Wallets::new(l.accounts, l.balance));
    let genesis = match &wallets {
        Some(w) => {
            let path = root.path().join("genesis.json");
            std::fs::write(&path, w.genesis.to_json()?)?;
            Some(path)
        }
        None => None,
    };
    let template = NodeTemplate {
        transport: scenario.network.transport,
        root: root.path().to_owned(),
        genesis,
        nodes: scenario.network.nodes,
        link: scenario.network.link.profile(),
        peer_connections: scenario.network.peer_connections,
    };
    let mut rng = task_rng(scenario.seed, "setup");
    let cluster = plan(&scenario, template, &mut rng);
    let backends = Backends::start().await?;
    let (stop_tx, stop) = watch::channel(false);
    let rss_before = budget::rss_bytes();
    let shared = Arc::new(Shared {
        scenario: scenario.clone(),
        cluster: Mutex::new(cluster),
        rec: Recorder::default(),
        backends,
        wallets: wallets.map(Mutex::new),
        equivocators: Mutex::new(HashSet::new()),
        clock: Timeline::new(stop, scenario.settle_s),
    });
    let mut consumers = JoinSet::new();
    if let Err(e) = start_all(&shared, &mut rng, &mut consumers).await {
        let retired = shared.cluster().take_all();
        futures::future::join_all(retired.into_iter().map(|r| r.stop(true))).await;
        return Err(e);
    }
    warm_up(&shared).await;

    // The timeline starts now.
    shared.clock.begin();
    let (_, sent_before) = shared.cluster().traffic();
    let messages_before = messages_received(&shared).await;
    let mut tasks = JoinSet::new();
    spawn_timeline(&shared, &mut tasks);
    let end = shared.clock.t0() + Duration::from_secs_f64(scenario.duration_s);
    tokio::time::sleep_until(end).await;
    let _ = stop_tx.send(true);
    info!("timeline over; settling");
    settle(&shared).await;
    while tasks.join_next().await.is_some() {}
    consumers.abort_all();

    // Rates end here: reading every node's outcomes can take minutes at 1,000 nodes.
    let elapsed = shared.clock.t0().elapsed().as_secs_f64();
    let (_, sent_after) = shared.cluster().traffic();
    let messages_after = messages_received(&shared).await;
    let rss_after = budget::rss_bytes();
    let mut report = measure(&shared).await;
    report.bytes_per_node_per_s = Some(crate::metrics::per_node_per_s(
        sent_after.saturating_sub(sent_before),
        scenario.network.nodes,
        elapsed,
    ));
    // A node started since the timeline began counts from zero; one gone since is not counted.
    let messages: u64 = messages_after
        .iter()
        .map(|(peer, n)| n.saturating_sub(messages_before.get(peer).copied().unwrap_or(0)))
        .sum();
    report.messages_per_node_per_s = Some(crate::metrics::per_node_per_s(
        messages,
        messages_after.len(),
        elapsed,
    ));
    report.wall_s = wall.elapsed().as_secs_f64();
    report.memory_per_node_mib = rss_after.saturating_sub(rss_before) as f64
        / scenario.network.nodes as f64
        / (1024.0 * 1024.0);
    report.check(&scenario.expect);
    let retired = shared.cluster().take_all();
    futures::future::join_all(retired.into_iter().map(|r| r.stop(false))).await;
    Ok(report)
}

/// The slots [`run`] plans for `scenario` (the same seeded choices), with no node started:
/// process mode fills the same slots with child processes.
pub(crate) fn plan_slots(scenario: &Scenario, rng: &mut StdRng) -> Cluster {
    let template = NodeTemplate {
        transport: scenario.network.transport,
        root: std::path::PathBuf::new(),
        genesis: None,
        nodes: scenario.network.nodes,
        link: scenario.network.link.profile(),
        peer_connections: scenario.network.peer_connections,
    };
    plan(scenario, template, rng)
}

/// The slots: super nodes, adversaries, honest peers; who serves and subscribes what.
fn plan(scenario: &Scenario, template: NodeTemplate, rng: &mut StdRng) -> Cluster {
    let n = &scenario.network;
    let mut peers: Vec<Duty> = Vec::new();
    for (i, adversary) in scenario.adversaries.iter().enumerate() {
        peers.extend(std::iter::repeat_n(Duty::Adversary(i), adversary.nodes()));
    }
    let honest_peers = n.nodes - n.supers - peers.len();
    peers.extend(std::iter::repeat_n(Duty::Peer, honest_peers));
    let mut cluster = Cluster::new(template, n.supers, peers);
    let honest_peer_slots: Vec<usize> = cluster
        .slots
        .iter()
        .filter(|s| s.duty == Duty::Peer)
        .map(|s| s.index)
        .collect();
    for service in &scenario.services {
        let providers: Vec<usize> = honest_peer_slots
            .choose_multiple(rng, service.providers)
            .copied()
            .collect();
        for i in providers {
            cluster.slots[i].serves.push(service.name.clone());
        }
    }
    for (i, adversary) in scenario.adversaries.iter().enumerate() {
        if let Adversary::WrongAnswers { service, .. } = adversary {
            for slot in cluster.slots.iter_mut() {
                if slot.duty == Duty::Adversary(i) {
                    slot.serves.push(service.clone());
                }
            }
        }
    }
    let honest: Vec<usize> = cluster
        .slots
        .iter()
        .filter(|s| s.honest())
        .map(|s| s.index)
        .collect();
    for topic in &scenario.topics {
        let count = ((honest.len() as f64) * topic.subscribers).round().max(1.0) as usize;
        let mut chosen: Vec<usize> = honest.clone();
        chosen.shuffle(rng);
        for i in chosen.into_iter().take(count) {
            cluster.slots[i].topics.push(topic.name.clone());
        }
    }
    cluster
}

/// Starts every slot's node: the first super node, the other super nodes from it, then the
/// peers (a few at a time, at the scenario's join rate).
async fn start_all(
    shared: &Arc<Shared>,
    rng: &mut StdRng,
    consumers: &mut JoinSet<()>,
) -> Result<()> {
    let n = &shared.scenario.network;
    let launch = shared.cluster().launch(0, Vec::new())?;
    let first = launch.start().await?;
    shared.cluster().install(first);
    let supers: Vec<usize> = (1..n.supers).collect();
    let peers: Vec<usize> = (n.supers..n.nodes).collect();
    for (group, pace) in [(supers, 0.0), (peers, n.join_rate_per_s)] {
        let mut launches = Vec::new();
        for index in group {
            let bootstrap = if index < n.supers {
                shared.cluster().super_addrs()
            } else {
                shared.bootstrap_for(rng)
            };
            launches.push(shared.cluster().launch(index, bootstrap)?);
        }
        let started = Instant::now();
        let mut stream = futures::stream::iter(launches.into_iter().enumerate().map(
            |(k, launch)| async move {
                if pace > 0.0 {
                    tokio::time::sleep_until(started + Duration::from_secs_f64(k as f64 / pace))
                        .await;
                }
                launch.start().await
            },
        ))
        .buffer_unordered(START_CONCURRENCY);
        while let Some(launched) = stream.next().await {
            shared.cluster().install(launched?);
        }
    }
    for h in shared.all(|_| true) {
        load::activate(shared, &h, consumers).await;
    }
    info!(nodes = n.nodes, "network started");
    Ok(())
}

/// Waits (bounded) until every node joined, every service is findable in the DHT and every
/// topic has a mesh, so the timeline measures the network, not its first seconds. The bound
/// holds even when a node's actor is too busy to answer: the whole wait is cancelled.
async fn warm_up(shared: &Arc<Shared>) {
    let started = Instant::now();
    match tokio::time::timeout(WARM_UP, wait_until_warm(shared, started + WARM_UP)).await {
        Ok(()) => info!(after = ?started.elapsed(), "network warm"),
        Err(_) => warn!(bound = ?WARM_UP, "warm-up unfinished: the timeline starts anyway"),
    }
}

async fn wait_until_warm(shared: &Arc<Shared>, deadline: Instant) {
    let mut rng = task_rng(shared.scenario.seed, "warm-up");
    let mut tick = tokio::time::interval(MONITOR_EVERY);
    // The first super node has nobody to join until others dial it: not waited for.
    for h in shared.all(|s| s.index > 0) {
        while !h.overlay.info().await.is_ok_and(|i| i.joined) && Instant::now() < deadline {
            tick.tick().await;
        }
    }
    for service in &shared.scenario.services {
        let Ok(name) = service.name.parse::<micro_node::registry::ServiceName>() else {
            continue;
        };
        loop {
            tick.tick().await;
            let Some(h) = shared.pick(&mut rng, |s| s.honest() && s.serves.is_empty()) else {
                break;
            };
            let found = h
                .overlay
                .lookup_providers(micro_node::services::provider_key(&name))
                .await
                .map(|l| !l.providers.is_empty())
                .unwrap_or(false);
            if found || Instant::now() >= deadline {
                break;
            }
        }
    }
    for topic in &shared.scenario.topics {
        let subscribers = shared.all(|s| s.topics.contains(&topic.name));
        for h in subscribers {
            loop {
                if load::topic_peers(&h, topic).await > 0 || Instant::now() >= deadline {
                    break;
                }
                tick.tick().await;
            }
        }
    }
}

/// Spawns the load, fault, adversary and monitor tasks of the timeline.
fn spawn_timeline(shared: &Arc<Shared>, tasks: &mut JoinSet<()>) {
    let s = &shared.scenario;
    for (i, l) in s.load.iter().enumerate() {
        let shared = shared.clone();
        let l: Load = l.clone();
        tasks.spawn(async move { load::drive(shared, i, l).await });
    }
    for (i, fault) in s.faults.iter().enumerate() {
        let shared = shared.clone();
        let fault = fault.clone();
        tasks.spawn(async move {
            match fault {
                Fault::Churn {
                    rate_per_min,
                    crash_fraction,
                    start_s,
                    end_s,
                } => churn(shared, i, rate_per_min, crash_fraction, start_s, end_s).await,
                Fault::Partition {
                    fraction,
                    start_s,
                    end_s,
                } => partition(shared, i, fraction, start_s, end_s).await,
                Fault::SuperLoss { count, at_s } => super_loss(shared, count, at_s).await,
                Fault::Degrade { start_s, end_s, .. } => {
                    let link = fault.degraded_link().unwrap_or_default();
                    degrade(shared, link, start_s, end_s).await
                }
                Fault::ProviderCrash {
                    service,
                    count,
                    at_s,
                } => provider_crash(shared, i, service, count, at_s).await,
            }
        });
    }
    for (i, a) in s.adversaries.iter().enumerate() {
        let shared = shared.clone();
        let a = a.clone();
        tasks.spawn(async move { adversary::act(shared, i, a).await });
    }
    let monitor = shared.clone();
    tasks.spawn(async move { watch_dead_providers(monitor).await });
    if s.ledger.is_some() {
        let monitor = shared.clone();
        tasks.spawn(async move { load::watch_finality(monitor).await });
    }
}

/// Peers leave (crash or clean) at `rate_per_min` of the peers per minute; a fresh node
/// takes each one's slot and duties.
async fn churn(
    shared: Arc<Shared>,
    index: usize,
    rate_per_min: f64,
    crash_fraction: f64,
    start_s: f64,
    end_s: Option<f64>,
) {
    let mut rng = task_rng(shared.scenario.seed, &format!("churn-{index}"));
    let n = &shared.scenario.network;
    let peers = (n.nodes - n.supers) as f64;
    let gap = 60.0 / (rate_per_min * peers);
    let end = end_s.unwrap_or(shared.scenario.duration_s);
    let mut at = start_s + gap * rng.random_range(0.5..1.5);
    let mut joins = JoinSet::new();
    while at < end && shared.clock.until(at).await {
        at += gap * rng.random_range(0.5..1.5);
        let victim = {
            let cluster = shared.cluster();
            cluster
                .live(|s| s.duty == Duty::Peer)
                .choose(&mut rng)
                .copied()
        };
        let Some(slot) = victim else { continue };
        let crash = rng.random_bool(crash_fraction);
        let (retired, generation, serves) = {
            let mut cluster = shared.cluster();
            let s = &cluster.slots[slot];
            let (generation, serves) = (s.generation, !s.serves.is_empty());
            (cluster.take(slot), generation, serves)
        };
        let Some(retired) = retired else { continue };
        let peer = retired.stop(crash).await;
        shared.rec.with(|o| {
            o.dead.insert((slot, generation));
            if crash {
                o.churn.crashed += 1;
                if serves {
                    o.crashed_providers.insert(peer, shared.clock.now_ms());
                }
            } else {
                o.churn.left += 1;
            }
        });
        let bootstrap = shared.bootstrap_for(&mut rng);
        let launch = match shared.cluster().launch(slot, bootstrap) {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "cannot prepare a replacement node");
                continue;
            }
        };
        let shared = shared.clone();
        joins.spawn(async move {
            match launch.start().await {
                Ok(launched) => {
                    shared.cluster().install(launched);
                    shared.rec.with(|o| o.churn.joined += 1);
                    let handles = shared.cluster().handles(slot);
                    if let Some(h) = handles {
                        let mut consumers = JoinSet::new();
                        load::activate(&shared, &h, &mut consumers).await;
                        // The consumers end with the node or the run.
                        consumers.detach_all();
                    }
                }
                Err(e) => warn!(error = %e, "replacement node did not start"),
            }
        });
    }
    while joins.join_next().await.is_some() {}
}

/// Cuts `fraction` of the nodes (peers only) off from the rest at `start_s`; heals at
/// `end_s`, then measures how long the ledger takes to converge.
async fn partition(shared: Arc<Shared>, index: usize, fraction: f64, start_s: f64, end_s: f64) {
    let mut rng = task_rng(shared.scenario.seed, &format!("partition-{index}"));
    if !shared.clock.until(start_s).await {
        return;
    }
    let everyone = shared.all(|_| true);
    let cut = ((shared.scenario.network.nodes as f64) * fraction).round() as usize;
    let mut peers: Vec<&Handles> = everyone
        .iter()
        .filter(|h| h.slot >= shared.scenario.network.supers)
        .collect();
    peers.shuffle(&mut rng);
    let b: Vec<Handles> = peers.into_iter().take(cut).cloned().collect();
    let in_b: HashSet<PeerId> = b.iter().map(|h| h.peer_id).collect();
    let a: Vec<Handles> = everyone
        .iter()
        .filter(|h| !in_b.contains(&h.peer_id))
        .cloned()
        .collect();
    info!(a = a.len(), b = b.len(), "partition");
    cut_between(&a, &b, true).await;
    // Heal even if the timeline ends first: the settle phase measures the aftermath.
    let heal_at = shared.clock.t0() + Duration::from_secs_f64(end_s);
    tokio::time::sleep_until(heal_at).await;
    cut_between(&a, &b, false).await;
    let supers = shared.cluster().super_addrs();
    for h in &b {
        for addr in &supers {
            let _ = h.overlay.dial(addr.addr.clone()).await;
        }
    }
    let healed = Instant::now();
    info!("partition healed");
    if shared.scenario.ledger.is_some() {
        let mut tick = tokio::time::interval(MONITOR_EVERY);
        let deadline = healed + Duration::from_secs_f64(shared.scenario.settle_s + 60.0);
        while Instant::now() < deadline {
            tick.tick().await;
            if ledger_converged(&shared) {
                let ms = healed.elapsed().as_secs_f64() * 1e3;
                shared.rec.with(|o| o.convergence_ms.push(ms));
                return;
            }
        }
    }
}

async fn cut_between(a: &[Handles], b: &[Handles], block: bool) {
    let mut calls = futures::stream::FuturesUnordered::new();
    for x in a {
        for y in b {
            for (from, to) in [(x, y.peer_id), (y, x.peer_id)] {
                let overlay = from.overlay.clone();
                calls.push(async move {
                    if block {
                        overlay.block_peer(to).await.map(drop)
                    } else {
                        overlay.unblock_peer(to).await.map(drop)
                    }
                });
            }
        }
    }
    while let Some(result) = calls.next().await {
        if let Err(e) = result {
            warn!(error = %e, block, "partition step failed");
        }
    }
}

/// Degrades every link from `start_s` to `end_s`.
async fn degrade(shared: Arc<Shared>, link: crate::scenario::LinkSpec, start_s: f64, end_s: f64) {
    if !shared.clock.until(start_s).await {
        return;
    }
    info!(?link, "links degraded");
    shared.cluster().set_links(link.profile());
    shared.clock.until(end_s).await;
    shared
        .cluster()
        .set_links(shared.scenario.network.link.profile());
    info!("links restored");
}

/// Crashes `count` super nodes (the last ones) at `at_s`.
async fn super_loss(shared: Arc<Shared>, count: usize, at_s: f64) {
    if !shared.clock.until(at_s).await {
        return;
    }
    let victims: Vec<usize> = {
        let cluster = shared.cluster();
        let supers = cluster.live(|s| s.duty == Duty::Super);
        supers.into_iter().rev().take(count).collect()
    };
    for slot in victims {
        let retired = {
            let mut cluster = shared.cluster();
            let generation = cluster.slots[slot].generation;
            shared.rec.with(|o| {
                o.dead.insert((slot, generation));
                o.churn.crashed += 1;
            });
            cluster.take(slot)
        };
        if let Some(r) = retired {
            r.stop(true).await;
        }
    }
}

/// Crashes `count` live providers of `service` at `at_s`; they stay down.
async fn provider_crash(
    shared: Arc<Shared>,
    index: usize,
    service: String,
    count: usize,
    at_s: f64,
) {
    let mut rng = task_rng(shared.scenario.seed, &format!("provider-crash-{index}"));
    if !shared.clock.until(at_s).await {
        return;
    }
    let victims: Vec<usize> = {
        let cluster = shared.cluster();
        let providers = cluster.live(|s| s.honest() && s.serves.contains(&service));
        providers
            .choose_multiple(&mut rng, count)
            .copied()
            .collect()
    };
    for slot in victims {
        let retired = {
            let mut cluster = shared.cluster();
            let generation = cluster.slots[slot].generation;
            // The slot serves nothing any more (no replacement comes).
            cluster.slots[slot].serves.clear();
            shared.rec.with(|o| o.dead.insert((slot, generation)));
            cluster.take(slot)
        };
        if let Some(r) = retired {
            let peer = r.stop(true).await;
            let now = shared.clock.now_ms();
            shared.rec.with(|o| {
                o.churn.crashed += 1;
                o.crashed_providers.insert(peer, now);
            });
        }
    }
}

/// Watches crashed providers until no live node lists them.
async fn watch_dead_providers(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(MONITOR_EVERY);
    let settle_end = shared.clock.settled();
    tokio::pin!(settle_end);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut settle_end => return,
        }
        let pending: Vec<(PeerId, f64)> = shared.rec.with(|o| {
            o.crashed_providers
                .iter()
                .filter(|(p, _)| !o.dropped_providers.contains_key(p))
                .map(|(p, t)| (*p, *t))
                .collect()
        });
        if pending.is_empty() {
            continue;
        }
        let listed: HashSet<PeerId> = shared
            .all(|s| s.honest())
            .iter()
            .flat_map(|h| h.services.network_services())
            .flat_map(|s| s.providers.into_iter().map(|p| p.peer_id))
            .collect();
        let now = shared.clock.now_ms();
        shared.rec.with(|o| {
            for (peer, crashed_at) in pending {
                if !listed.contains(&peer) {
                    o.dropped_providers.insert(peer, (now - crashed_at) / 1e3);
                }
            }
        });
    }
}

/// Whether every live honest node holds the same ledger state.
pub fn ledger_converged(shared: &Shared) -> bool {
    ledger_divergence(shared).is_none()
}

/// How the live honest nodes' ledger states differ from the first one's, in a line; `None`
/// if they agree.
pub fn ledger_divergence(shared: &Shared) -> Option<String> {
    let nodes = shared.all(|s| s.honest());
    let first = nodes.first()?.ledger.snapshot();
    let (mut differ, mut accounts, mut held, mut frozen, mut histories) = (0, 0, 0, 0, 0);
    for h in &nodes[1..] {
        let other = h.ledger.snapshot();
        if other == first {
            continue;
        }
        differ += 1;
        accounts += first
            .accounts
            .iter()
            .filter(|(a, v)| other.accounts.get(a) != Some(v))
            .count();
        held += first.held.symmetric_difference(&other.held).count();
        frozen += usize::from(first.frozen != other.frozen);
        histories += first
            .histories
            .iter()
            .filter(|(a, v)| other.histories.get(a) != Some(v))
            .count();
    }
    (differ > 0).then(|| {
        format!(
            "{differ} of {} nodes differ from the first: {accounts} account states, {held} held \
             transfers, {frozen} frozen sets, {histories} histories",
            nodes.len()
        )
    })
}

/// After the timeline: waits (up to `settle_s`) until deliveries are complete and the ledger
/// converged.
async fn settle(shared: &Arc<Shared>) {
    let deadline = Instant::now() + Duration::from_secs_f64(shared.scenario.settle_s);
    let mut tick = tokio::time::interval(MONITOR_EVERY);
    loop {
        tick.tick().await;
        let delivered = shared.rec.with(|o| {
            o.topics()
                .iter()
                .all(|t| t.delivery.delivered >= t.delivery.expected)
        });
        let converged = shared.scenario.ledger.is_none() || ledger_converged(shared);
        if (delivered && converged) || Instant::now() >= deadline {
            return;
        }
    }
}

/// Every live node's overlay info, asked of all of them at once: a busy node delays only its
/// own answer (asked one by one, 1,000 nodes took 13 minutes).
async fn node_infos(shared: &Arc<Shared>) -> Vec<(PeerId, LocalInfo)> {
    let nodes = shared.all(|_| true);
    let infos = futures::future::join_all(nodes.iter().map(|h| h.overlay.info())).await;
    nodes
        .iter()
        .zip(infos)
        .filter_map(|(h, info)| Some((h.peer_id, info.ok()?)))
        .collect()
}

/// How many protocol messages each live node has received so far.
async fn messages_received(shared: &Arc<Shared>) -> HashMap<PeerId, u64> {
    node_infos(shared)
        .await
        .into_iter()
        .map(|(peer, info)| (peer, info.messages_received))
        .collect()
}

/// Turns the observations into a report.
async fn measure(shared: &Arc<Shared>) -> Report {
    let s = &shared.scenario;
    let (mut joins, mut connections, mut known) = (Vec::new(), Vec::new(), Vec::new());
    let mut trimmed = 0;
    for (_, info) in node_infos(shared).await {
        joins.extend(info.joined_after_ms.map(|ms| ms as f64));
        connections.push(info.connected_peers as f64);
        known.push(info.known_nodes as f64);
        trimmed += info.connections_trimmed;
    }
    let honest = shared.all(|s| s.honest());
    let forged_accepted = honest
        .iter()
        .flat_map(|h| h.services.network_services())
        .filter(|svc| svc.name.as_str().starts_with(adversary::FORGED_PREFIX))
        .count() as u64;
    let ledger = match &s.ledger {
        None => None,
        Some(_) => {
            let equivocators = shared.equivocators();
            let divergence = ledger_divergence(shared);
            let frozen = honest.iter().all(|h| {
                equivocators
                    .iter()
                    .all(|account| h.ledger.frozen(account).is_some())
            });
            Some(shared.rec.with(|o| LedgerReport {
                transfers: o.transfers.len() as u64,
                accepted: o.transfers_accepted,
                finality_ms: crate::metrics::Summary::of(&o.final_ms),
                convergence_after_heal_ms: o.convergence_ms.clone(),
                converged: divergence.is_none(),
                divergence: divergence.clone(),
                equivocators: equivocators.len() as u64,
                equivocators_frozen: frozen,
            }))
        }
    };
    shared.rec.with(|o| {
        let (dead_provider_drop_s, dead_providers_still_listed) = o.dead_providers();
        Report {
            scenario: s.name.clone(),
            nodes: s.network.nodes,
            supers: s.network.supers,
            transport: s.network.transport.to_string(),
            mode: s.network.mode.to_string(),
            seed: s.seed,
            duration_s: s.duration_s,
            join_ms: crate::metrics::Summary::of(&joins),
            connected_peers: crate::metrics::Summary::of(&connections),
            known_nodes: crate::metrics::Summary::of(&known),
            connections_trimmed: trimmed,
            lookups: o.lookups(),
            lookup_requests: crate::metrics::Summary::of(&o.lookup_requests),
            calls: o.calls(),
            wrong_answers: o.wrong_answers,
            topics: o.topics(),
            spam_delivered: o.spam_delivered,
            forged_accepted,
            dead_provider_drop_s,
            dead_providers_still_listed,
            churn: o.churn.clone(),
            ledger,
            ..Report::default()
        }
    })
}
