//! Process mode: every node is a real `micro-node` child process on 127.0.0.1, and the
//! simulation drives it the way a user would, through its control API. For small networks
//! (at most [`support::MAX_PROCESS_NODES`]); the in-process mode covers large ones.
//!
//! The nodes run the binary's own configuration: its timers are not shortened as the
//! in-process runner's are (record TTL 90 s, heartbeats 30 s), and what the scenario cannot
//! observe in its duration is listed in [`Report::not_measured`], not faked. Features that
//! need the nodes' insides are refused before anything starts ([`support::check`]).
//!
//! - [`binary`]: finding `micro-node`.
//! - [`child`]: one node process (spawn, wait until its control API answers, stop, memory).
//! - [`control`]: the control API client.
//! - [`fleet`]: the slots and what the run's tasks share.
//! - [`work`]: duties, warm-up and loads; [`faults`]: churn, crashes and their monitor.

pub mod binary;
pub mod child;
pub mod control;
pub mod faults;
pub mod fleet;
pub mod support;
pub mod work;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use micro_node::overlay::PeerId;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::info;

use crate::Report;
use crate::backend::Backends;
use crate::metrics::Summary;
use crate::run::task_rng;
use crate::scenario::{Mode, Scenario};
use child::ChildError;
use fleet::{Fleet, Shared};

pub use binary::BinaryError;
pub use support::{MAX_PROCESS_NODES, Unsupported};

/// Peers started at once.
const START_CONCURRENCY: usize = 4;
/// How long the warm-up may take: one registry heartbeat of the binary (30 s), so a service
/// announcement lost while meshes formed is repeated once.
const WARM_UP: Duration = Duration::from_secs(40);

/// How to run process mode.
#[derive(Debug, Clone, Default)]
pub struct ProcessOptions {
    /// The `micro-node` binary; default: next to this executable ([`binary::locate`]).
    pub binary: Option<PathBuf>,
}

/// Why a process-mode run could not be played.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The scenario asks for what process mode cannot do.
    #[error("process mode: {0}")]
    Unsupported(#[from] Unsupported),
    /// No `micro-node` binary.
    #[error(transparent)]
    Binary(#[from] BinaryError),
    /// The HTTP backends did not start.
    #[error("starting the services' HTTP backends: {0}")]
    Backends(String),
    /// A node process did not start.
    #[error(transparent)]
    Start(#[from] ChildError),
}

/// Runs `scenario` with every node a `micro-node` process and returns what it measured
/// (with its `[expect]` checked). Every child is stopped when this returns, and killed if
/// the run is dropped or panics.
pub async fn run(mut scenario: Scenario, options: &ProcessOptions) -> Result<Report, ProcessError> {
    scenario.network.mode = Mode::Processes;
    support::check(&scenario)?;
    let binary = binary::locate(options.binary.as_deref())?;
    info!(binary = %binary.display(), nodes = scenario.network.nodes, "process mode");
    let wall = Instant::now();
    let mut rng = task_rng(scenario.seed, "setup");
    let fleet = Fleet::from_plan(&crate::run::plan_slots(&scenario, &mut rng));
    let backends = Backends::start()
        .await
        .map_err(|e| ProcessError::Backends(e.to_string()))?;
    let (stop_tx, stop) = watch::channel(false);
    let shared = Arc::new(Shared::new(scenario.clone(), binary, fleet, backends, stop));
    let mut consumers = JoinSet::new();
    if let Err(e) = start_all(&shared, &mut rng, &mut consumers).await {
        stop_all(&shared, true).await;
        return Err(e);
    }
    let warm = work::warm_up(&shared, WARM_UP).await;

    shared.clock.begin();
    let messages_before = messages_received(&shared).await;
    let mut tasks = JoinSet::new();
    for (i, load) in scenario.load.iter().enumerate() {
        tasks.spawn(work::drive(shared.clone(), i, load.clone()));
    }
    for (i, fault) in scenario.faults.iter().enumerate() {
        tasks.spawn(faults::play(shared.clone(), i, fault.clone()));
    }
    tasks.spawn(faults::watch_dead_providers(shared.clone()));
    tokio::time::sleep_until(shared.clock.t0() + Duration::from_secs_f64(scenario.duration_s))
        .await;
    let _ = stop_tx.send(true);
    info!("timeline over; settling");
    settle(&shared).await;
    while tasks.join_next().await.is_some() {}
    consumers.abort_all();

    let elapsed = shared.clock.t0().elapsed().as_secs_f64();
    let messages_after = messages_received(&shared).await;
    let rss = shared.fleet().rss();
    let mut report = measure(&shared).await;
    let messages: u64 = messages_after
        .iter()
        .map(|(peer, n)| n.saturating_sub(messages_before.get(peer).copied().unwrap_or(0)))
        .sum();
    report.messages_per_node_per_s = Some(crate::metrics::per_node_per_s(
        messages,
        messages_after.len(),
        elapsed,
    ));
    report.memory_per_node_mib = if rss.is_empty() {
        0.0
    } else {
        rss.iter().sum::<u64>() as f64 / rss.len() as f64 / (1024.0 * 1024.0)
    };
    report.not_measured = not_measured(&shared, warm);
    report.wall_s = wall.elapsed().as_secs_f64();
    report.check(&scenario.expect);
    stop_all(&shared, false).await;
    Ok(report)
}

/// Stops every process at once (SIGKILL if `crash`, else SIGTERM).
async fn stop_all(shared: &Shared, crash: bool) {
    let nodes = shared.fleet().take_all();
    futures::future::join_all(nodes.into_iter().map(|n| n.stop(crash))).await;
}

/// Starts the first super node, the other super nodes from it, then the peers (a few at a
/// time, at the scenario's join rate); then every node takes up its duties.
async fn start_all(
    shared: &Arc<Shared>,
    rng: &mut rand::rngs::StdRng,
    consumers: &mut JoinSet<()>,
) -> Result<(), ProcessError> {
    use futures::StreamExt;
    let n = &shared.scenario.network;
    let first = shared.start(0, Vec::new()).await?;
    shared.fleet().install(0, first);
    let supers: Vec<usize> = (1..n.supers).collect();
    let peers: Vec<usize> = (n.supers..n.nodes).collect();
    for (group, pace) in [(supers, 0.0), (peers, n.join_rate_per_s)] {
        let mut starts = Vec::new();
        for index in group {
            let bootstrap = if index < n.supers {
                shared.fleet().super_addrs()
            } else {
                shared.bootstrap_for(rng)
            };
            starts.push((index, bootstrap));
        }
        let started = Instant::now();
        let mut stream = futures::stream::iter(starts.into_iter().enumerate().map(
            |(k, (index, bootstrap))| async move {
                if pace > 0.0 {
                    tokio::time::sleep_until(started + Duration::from_secs_f64(k as f64 / pace))
                        .await;
                }
                shared
                    .start(index, bootstrap)
                    .await
                    .map(|node| (index, node))
            },
        ))
        .buffer_unordered(START_CONCURRENCY);
        while let Some(started) = stream.next().await {
            let (index, node) = started?;
            shared.fleet().install(index, node);
        }
    }
    for h in shared.all(|_| true) {
        work::activate(shared, &h, consumers).await;
    }
    info!(nodes = n.nodes, "network of processes started");
    Ok(())
}

/// After the timeline: waits (up to `settle_s`) until every expected delivery arrived.
async fn settle(shared: &Shared) {
    let deadline = Instant::now() + Duration::from_secs_f64(shared.scenario.settle_s);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let delivered = shared.rec.with(|o| {
            o.topics()
                .iter()
                .all(|t| t.delivery.delivered >= t.delivery.expected)
        });
        if delivered || Instant::now() >= deadline {
            return;
        }
    }
}

/// Every live node's overlay info (`GET /v1/id`), asked of all at once.
async fn node_infos(shared: &Shared) -> Vec<(PeerId, micro_node::overlay::LocalInfo)> {
    let nodes = shared.all(|_| true);
    let infos = futures::future::join_all(nodes.iter().map(|h| h.control.id())).await;
    nodes
        .iter()
        .zip(infos)
        .filter_map(|(h, info)| Some((h.peer_id, info.ok()?)))
        .collect()
}

async fn messages_received(shared: &Shared) -> HashMap<PeerId, u64> {
    node_infos(shared)
        .await
        .into_iter()
        .map(|(peer, info)| (peer, info.messages_received))
        .collect()
}

/// Turns the observations into a report (the in-process report's fields).
async fn measure(shared: &Shared) -> Report {
    let s = &shared.scenario;
    let (mut joins, mut connections, mut known) = (Vec::new(), Vec::new(), Vec::new());
    for (_, info) in node_infos(shared).await {
        joins.extend(info.joined_after_ms.map(|ms| ms as f64));
        connections.push(info.connected_peers as f64);
        known.push(info.known_nodes as f64);
    }
    let honest = shared.all(|s| s.honest());
    let listings =
        futures::future::join_all(honest.iter().map(|h| h.control.network_services())).await;
    let forged_accepted = listings
        .into_iter()
        .flatten()
        .flatten()
        .filter(|svc| {
            svc.name
                .as_str()
                .starts_with(crate::adversary::FORGED_PREFIX)
        })
        .count() as u64;
    shared.rec.with(|o| {
        let (dead_provider_drop_s, dead_providers_still_listed) = o.dead_providers();
        Report {
            scenario: s.name.clone(),
            nodes: s.network.nodes,
            supers: s.network.supers,
            transport: s.network.transport.to_string(),
            mode: Mode::Processes.to_string(),
            seed: s.seed,
            duration_s: s.duration_s,
            join_ms: Summary::of(&joins),
            connected_peers: Summary::of(&connections),
            known_nodes: Summary::of(&known),
            lookups: o.lookups(),
            calls: o.calls(),
            wrong_answers: o.wrong_answers,
            topics: o.topics(),
            spam_delivered: o.spam_delivered,
            forged_accepted,
            dead_provider_drop_s,
            dead_providers_still_listed,
            churn: o.churn.clone(),
            ..Report::default()
        }
    })
}

/// What this run could not observe, and why.
fn not_measured(shared: &Shared, warm: bool) -> Vec<String> {
    let mut notes = vec![
        "lookup_requests: the control API does not expose a lookup's Kademlia requests (a \
         lookup here is the node's directory listing a live provider)"
            .to_owned(),
        "bytes_per_node_per_s: a micro-node process does not report bytes sent".to_owned(),
    ];
    if !warm {
        notes.push(format!(
            "warm-up: not every node joined, listed every service and got every topic's \
             probes within {WARM_UP:?}; early operations may fail for that"
        ));
    }
    let ttl = micro_node::NodeConfig::default().services.record_ttl;
    let run_end_ms = (shared.scenario.duration_s + shared.scenario.settle_s) * 1e3;
    let unobservable = shared.rec.with(|o| {
        o.crashed_providers
            .iter()
            .filter(|(p, at)| {
                !o.dropped_providers.contains_key(p) && **at + ttl.as_secs_f64() * 1e3 > run_end_ms
            })
            .count()
    });
    if unobservable > 0 {
        notes.push(format!(
            "dead_provider_drop_s: {unobservable} crashed provider(s) still listed, but \
             micro-node keeps a record {ttl:?} (its default TTL, no flag) and the run ended \
             before that"
        ));
    }
    notes
}
