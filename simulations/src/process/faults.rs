//! Faults a process-mode run injects: churn (a crash is SIGKILL, a clean leave SIGTERM, and a
//! fresh process with a new identity takes the slot), super-node loss and provider crashes
//! (SIGKILL), and the monitor of how long crashed providers stay listed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use micro_node::overlay::PeerId;
use rand::Rng;
use rand::seq::IndexedRandom;
use tokio::task::JoinSet;
use tracing::warn;

use super::fleet::Shared;
use super::work;
use crate::cluster::Duty;
use crate::run::task_rng;
use crate::scenario::Fault;

/// How often the dead-provider monitor looks.
const MONITOR_EVERY: Duration = Duration::from_millis(250);

/// Plays `fault` (number `index` of the scenario) over the timeline.
pub async fn play(shared: Arc<Shared>, index: usize, fault: Fault) {
    match fault {
        Fault::Churn {
            rate_per_min,
            crash_fraction,
            start_s,
            end_s,
        } => churn(shared, index, rate_per_min, crash_fraction, start_s, end_s).await,
        Fault::SuperLoss { count, at_s } => super_loss(shared, count, at_s).await,
        Fault::ProviderCrash {
            service,
            count,
            at_s,
        } => provider_crash(shared, index, service, count, at_s).await,
        // Refused up front (`support::check`).
        Fault::Partition { .. } | Fault::Degrade { .. } => {}
    }
}

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
        let victim = shared
            .fleet()
            .live(|s| s.duty == Duty::Peer)
            .choose(&mut rng)
            .copied();
        let Some(slot) = victim else { continue };
        let crash = rng.random_bool(crash_fraction);
        let (retired, generation, serves) = {
            let mut fleet = shared.fleet();
            let s = &fleet.slots[slot];
            let (generation, serves) = (s.generation, !s.serves.is_empty());
            (fleet.take(slot), generation, serves)
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
        let shared = shared.clone();
        joins.spawn(async move {
            match shared.start(slot, bootstrap).await {
                Ok(node) => {
                    shared.fleet().install(slot, node);
                    shared.rec.with(|o| o.churn.joined += 1);
                    let handle = shared.fleet().handle(slot);
                    if let Some(h) = handle {
                        let mut consumers = JoinSet::new();
                        work::activate(&shared, &h, &mut consumers).await;
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

/// Crashes `count` super nodes (the last ones) at `at_s`.
async fn super_loss(shared: Arc<Shared>, count: usize, at_s: f64) {
    if !shared.clock.until(at_s).await {
        return;
    }
    let victims: Vec<usize> = {
        let fleet = shared.fleet();
        let supers = fleet.live(|s| s.duty == Duty::Super);
        supers.into_iter().rev().take(count).collect()
    };
    for slot in victims {
        let retired = {
            let mut fleet = shared.fleet();
            let generation = fleet.slots[slot].generation;
            shared.rec.with(|o| {
                o.dead.insert((slot, generation));
                o.churn.crashed += 1;
            });
            fleet.take(slot)
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
        let fleet = shared.fleet();
        let providers = fleet.live(|s| s.honest() && s.serves.contains(&service));
        providers
            .choose_multiple(&mut rng, count)
            .copied()
            .collect()
    };
    for slot in victims {
        let retired = {
            let mut fleet = shared.fleet();
            let generation = fleet.slots[slot].generation;
            // The slot serves nothing any more (no replacement comes).
            fleet.slots[slot].serves.clear();
            shared.rec.with(|o| o.dead.insert((slot, generation)));
            fleet.take(slot)
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

/// Watches crashed providers until no live honest node's directory lists them.
pub async fn watch_dead_providers(shared: Arc<Shared>) {
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
        let nodes = shared.all(|s| s.honest());
        let answers =
            futures::future::join_all(nodes.iter().map(|h| h.control.network_services())).await;
        if answers.iter().any(Result::is_err) {
            // A node that did not answer may still list them: look again next tick.
            continue;
        }
        let listed: HashSet<PeerId> = answers
            .into_iter()
            .flatten()
            .flatten()
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
