//! The work of a process-mode run, all through each node's control API: nodes taking up
//! their duties (serving, subscribing), the warm-up, and the loads of the timeline.

use std::sync::Arc;
use std::time::Duration;

use micro_node::api::{CallBody, PublishBody, StreamLine};
use micro_node::registry::ServiceName;
use rand::Rng;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::control::Subscription;
use super::fleet::{Handle, Shared};
use crate::cluster::Duty;
use crate::load::{ENDPOINT, count_attempt, pace, spec};
use crate::run::task_rng;
use crate::scenario::{Load, LoadKind};

/// Longest a single operation may take before it counts as failed (as in-process).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Most operations of one load in flight; beyond it, ticks count as failed attempts.
const MAX_IN_FLIGHT: usize = 64;
/// Most lines one subscriber reads; past it, it stops reading (and says so). Far above what a
/// scenario of at most 64 nodes publishes at its rates.
pub const MAX_LINES_PER_SUBSCRIPTION: u64 = 200_000;
/// How often the warm-up looks again.
const WARM_TICK: Duration = Duration::from_millis(250);
/// Body prefix of warm-up probes: not load, not spam.
const PROBE: &str = "probe/";

/// Makes a freshly started node take up its slot's duties: serve its services (from the
/// honest or the wrong backend) and subscribe to its topics, recording deliveries.
pub async fn activate(shared: &Arc<Shared>, h: &Handle, consumers: &mut JoinSet<()>) {
    let (duty, serves, topics) = {
        let fleet = shared.fleet();
        let slot = &fleet.slots[h.slot];
        (slot.duty.clone(), slot.serves.clone(), slot.topics.clone())
    };
    let url = match duty {
        Duty::Adversary(_) => shared.backends.wrong_url(),
        _ => shared.backends.echo_url(),
    };
    for name in serves {
        let Ok(name) = name.parse::<ServiceName>() else {
            continue;
        };
        if let Err(e) = h.control.serve(&spec(name, url.clone())).await {
            warn!(slot = h.slot, error = %e, "cannot serve a simulated service");
        }
    }
    for topic in topics {
        match h.control.subscribe(&topic).await {
            Ok(subscription) => {
                let (shared, h) = (shared.clone(), h.clone());
                consumers.spawn(async move { consume(shared, h, topic, subscription).await });
            }
            Err(e) => warn!(slot = h.slot, error = %e, "cannot subscribe"),
        }
    }
}

/// Reads one subscription until the node stops, the line bound is reached, or the settle
/// phase after the timeline is over.
async fn consume(shared: Arc<Shared>, h: Handle, topic: String, mut sub: Subscription) {
    let settle = Duration::from_secs_f64(shared.scenario.settle_s + 5.0);
    let mut until: Option<Instant> = None;
    let mut stop = std::pin::pin!(shared.clock.ended());
    for _ in 0..MAX_LINES_PER_SUBSCRIPTION {
        let next = match until {
            None => tokio::select! {
                line = sub.next() => line,
                _ = &mut stop => {
                    // Keep receiving through the settle phase.
                    until = Some(Instant::now() + settle);
                    continue;
                }
            },
            Some(at) => match tokio::time::timeout_at(at, sub.next()).await {
                Ok(line) => line,
                Err(_) => return,
            },
        };
        match next {
            Ok(Some(StreamLine::Message { body, .. })) => received(&shared, &h, &topic, &body),
            Ok(Some(StreamLine::Missed(n))) => warn!(slot = h.slot, n, "subscriber lagged"),
            Ok(None) => return,
            Err(e) => {
                warn!(slot = h.slot, error = %e, "subscription dropped");
                return;
            }
        }
    }
    warn!(
        slot = h.slot,
        bound = MAX_LINES_PER_SUBSCRIPTION,
        "subscriber read its most lines; stops reading"
    );
}

fn received(shared: &Shared, h: &Handle, topic: &str, body: &str) {
    if let Some(publisher) = body
        .strip_prefix(PROBE)
        .and_then(|rest| rest.rsplit('/').nth(1))
        .and_then(|p| p.parse::<usize>().ok())
    {
        shared
            .probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((topic.to_owned(), publisher, h.slot));
        return;
    }
    let now = shared.clock.now_ms();
    shared.rec.with(|o| {
        let Some(sent) = o.sent.get(topic).and_then(|s| s.get(body)) else {
            o.spam_delivered += 1;
            return;
        };
        let latency = now - sent.at_ms;
        o.received
            .entry(topic.to_owned())
            .or_default()
            .entry(body.to_owned())
            .or_default()
            .entry((h.slot, h.generation))
            .or_insert(latency);
    });
}

/// Waits (up to `bound`) until every node but the first joined, every honest node's
/// directory lists every service, and every subscriber got a probe from every honest node:
/// the timeline then measures the network, not its first seconds. Returns whether it got
/// there.
pub async fn warm_up(shared: &Arc<Shared>, bound: Duration) -> bool {
    let started = Instant::now();
    let warm = tokio::time::timeout(bound, wait_until_warm(shared))
        .await
        .is_ok();
    if warm {
        info!(after = ?started.elapsed(), "network warm");
    } else {
        warn!(?bound, "warm-up unfinished: the timeline starts anyway");
    }
    warm
}

async fn wait_until_warm(shared: &Arc<Shared>) {
    let mut tick = tokio::time::interval(WARM_TICK);
    // The first super node has nobody to join until others dial it: not waited for.
    for h in shared.all(|s| s.index > 0) {
        while !h.control.id().await.is_ok_and(|i| i.joined) {
            tick.tick().await;
        }
    }
    for h in shared.all(|s| s.honest()) {
        loop {
            let listed = h.control.network_services().await.unwrap_or_default();
            let all = shared.scenario.services.iter().all(|want| {
                listed
                    .iter()
                    .any(|s| s.name.as_str() == want.name && !s.providers.is_empty())
            });
            if all {
                break;
            }
            tick.tick().await;
        }
    }
    let mut round = 0u64;
    for topic in &shared.scenario.topics {
        loop {
            let publishers = shared.all(|s| s.honest());
            let subscribers: Vec<usize> = shared
                .all(|s| s.topics.contains(&topic.name))
                .iter()
                .map(|h| h.slot)
                .collect();
            let missing: Vec<&Handle> = {
                let seen = shared.probes.lock().unwrap_or_else(|e| e.into_inner());
                publishers
                    .iter()
                    .filter(|p| {
                        subscribers.iter().any(|s| {
                            *s != p.slot && !seen.contains(&(topic.name.clone(), p.slot, *s))
                        })
                    })
                    .collect()
            };
            if missing.is_empty() {
                break;
            }
            round += 1;
            for p in missing {
                let body = PublishBody {
                    topic: topic.name.clone(),
                    body: format!("{PROBE}{}/{}/{round}", topic.name, p.slot),
                    content_type: Some("text/plain".into()),
                    headers: Default::default(),
                };
                if let Err(e) = p.control.publish(&body).await {
                    debug!(error = %e, "probe not published");
                }
            }
            tick.tick().await;
        }
    }
}

/// Runs load `index` at its rate over its window.
pub async fn drive(shared: Arc<Shared>, index: usize, load: Load) {
    let mut rng = task_rng(shared.scenario.seed, &format!("load-{index}"));
    if !shared.clock.until(load.start_s).await {
        return;
    }
    let end_ms = load.end_s.unwrap_or(shared.scenario.duration_s) * 1e3;
    let in_window = || !shared.clock.stopped() && shared.clock.now_ms() < end_ms;
    let overloaded = || count_attempt(&shared.rec, load.kind);
    pace(
        &load,
        MAX_IN_FLIGHT,
        in_window,
        overloaded,
        |counter, inflight| {
            let Some(h) = shared.pick(&mut rng, |s| s.honest()) else {
                return;
            };
            let shared = shared.clone();
            match load.kind {
                LoadKind::Lookup => {
                    let service = load.service.clone().unwrap_or_default();
                    inflight.spawn(async move { lookup(&shared, &h, &service).await });
                }
                LoadKind::Call => {
                    let service = load.service.clone().unwrap_or_default();
                    let nonce: u64 = rng.random();
                    inflight.spawn(async move { call(&shared, &h, &service, nonce).await });
                }
                LoadKind::Publish => {
                    let topic = load.topic.clone().unwrap_or_default();
                    let id = format!("{topic}/{index}/{counter}");
                    inflight.spawn(async move { publish(&shared, &h, &topic, id).await });
                }
                // Refused up front (`support::check`).
                LoadKind::Transfer => {}
            }
        },
    )
    .await;
}

/// A lookup through the control API: the node's directory (`GET /v1/network/services`)
/// lists a live provider of the service.
async fn lookup(shared: &Shared, h: &Handle, service: &str) {
    count_attempt(&shared.rec, LoadKind::Lookup);
    let started = Instant::now();
    let found = tokio::time::timeout(OPERATION_TIMEOUT, h.control.network_services()).await;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let Ok(Ok(listed)) = found else { return };
    let live: Vec<_> = shared
        .all(|s| s.serves.iter().any(|n| n == service))
        .into_iter()
        .map(|h| h.peer_id)
        .collect();
    let hit = listed
        .iter()
        .filter(|s| s.name.as_str() == service)
        .flat_map(|s| &s.providers)
        .any(|p| live.contains(&p.peer_id));
    if hit {
        shared.rec.with(|o| o.lookup_ms.push(ms));
    }
}

async fn call(shared: &Shared, h: &Handle, service: &str, nonce: u64) {
    count_attempt(&shared.rec, LoadKind::Call);
    let body = format!("{{\"nonce\":{nonce}}}");
    let request = CallBody {
        service: service.to_owned(),
        endpoint: ENDPOINT.to_owned(),
        body: body.clone(),
        content_type: Some("application/json".into()),
        timeout_ms: Some(OPERATION_TIMEOUT.as_millis() as u64),
        node: None,
    };
    let started = Instant::now();
    let outcome = h.control.call(&request).await;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    shared.rec.with(|o| match outcome {
        Ok(out) if out.status == 200 && out.body == body => o.call_ms.push(ms),
        Ok(out) if out.status == 200 => o.wrong_answers += 1,
        _ => {}
    });
}

async fn publish(shared: &Shared, h: &Handle, topic: &str, id: String) {
    let expected: Vec<_> = {
        let fleet = shared.fleet();
        fleet
            .live(|s| s.topics.iter().any(|t| t == topic) && s.index != h.slot)
            .into_iter()
            .map(|i| (i, fleet.slots[i].generation))
            .collect()
    };
    let at_ms = shared.clock.now_ms();
    shared.rec.with(|o| {
        o.sent
            .entry(topic.to_owned())
            .or_default()
            .insert(id.clone(), crate::record::Sent { at_ms, expected });
    });
    let body = PublishBody {
        topic: topic.to_owned(),
        body: id,
        content_type: Some("text/plain".into()),
        headers: Default::default(),
    };
    if let Err(e) = h.control.publish(&body).await {
        debug!(error = %e, "publish failed");
    }
}
