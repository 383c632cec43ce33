//! The work a run puts on the network: nodes taking up their duties (serving, subscribing),
//! and the loads of the timeline (lookups, calls, publishes, transfers) with what each
//! observed.

use std::sync::Arc;
use std::time::Duration;

use micro_node::broker::TopicName;
use micro_node::events::{GroupName, ReadFrom};
use micro_node::ledger::micro_ledger::{Applied, TransferStatus};
use micro_node::registry::{Endpoint, ServiceName};
use micro_node::services::{Backend, CallRequest, ServeSpec, provider_key};
use rand::Rng;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, warn};

use crate::cluster::{Duty, Handles};
use crate::run::{Shared, task_rng};
use crate::scenario::{Load, LoadKind, TopicKind, TopicSpec};

/// The endpoint every simulated service has.
pub const ENDPOINT: &str = "Echo";
/// Longest a single operation may take before it counts as failed.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Most operations of one load in flight; beyond it, ticks are skipped (and counted as
/// failed attempts: the network did not keep up).
const MAX_IN_FLIGHT: usize = 256;

/// Makes a freshly started node take up its slot's duties: serve its services (from the
/// honest or the wrong backend) and subscribe to its topics, recording deliveries.
pub async fn activate(shared: &Arc<Shared>, h: &Handles, consumers: &mut JoinSet<()>) {
    let (duty, serves, topics) = {
        let cluster = shared.cluster();
        let slot = &cluster.slots[h.slot];
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
        if let Err(e) = h.services.serve(spec(name, url.clone())).await {
            warn!(error = %e, "cannot serve a simulated service");
        }
    }
    for topic in topics {
        let Some(spec) = shared.scenario.topics.iter().find(|t| t.name == topic) else {
            continue;
        };
        let Ok(name) = topic.parse::<TopicName>() else {
            continue;
        };
        let (shared, h, kind) = (shared.clone(), h.clone(), spec.kind);
        match kind {
            TopicKind::Broker => match h.broker.subscribe(name).await {
                Ok(mut messages) => {
                    consumers.spawn(async move {
                        let settle = Duration::from_secs_f64(shared.scenario.settle_s + 5.0);
                        loop {
                            let message = tokio::select! {
                                m = messages.recv() => m,
                                _ = shared.clock.ended() => {
                                    // Keep receiving through the settle phase.
                                    let until = Instant::now() + settle;
                                    drain(&shared, &h, &topic, &mut messages, until).await;
                                    return;
                                }
                            };
                            match message {
                                Ok(m) => received(&shared, &h, &topic, &m.body),
                                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                                    warn!(n, "subscriber lagged")
                                }
                                Err(_) => return,
                            }
                        }
                    });
                }
                Err(e) => warn!(error = %e, "cannot subscribe"),
            },
            TopicKind::Events => {
                if let Err(e) = h.events.carry(&name).await {
                    warn!(error = %e, "cannot carry an event topic");
                    continue;
                }
                consumers.spawn(async move { consume_events(shared, h, topic, name).await });
            }
        }
    }
}

async fn drain(
    shared: &Shared,
    h: &Handles,
    topic: &str,
    messages: &mut tokio::sync::broadcast::Receiver<Arc<micro_node::broker::BrokerMessage>>,
    until: Instant,
) {
    while let Ok(Ok(m)) = tokio::time::timeout_at(until, messages.recv()).await {
        received(shared, h, topic, &m.body);
    }
}

async fn consume_events(shared: Arc<Shared>, h: Handles, topic: String, name: TopicName) {
    let group: GroupName = "sim".parse().expect("static group name");
    let settle = Duration::from_secs_f64(shared.scenario.settle_s + 5.0);
    let mut until: Option<Instant> = None;
    loop {
        if until.is_none() && shared.clock.stopped() {
            until = Some(Instant::now() + settle);
        }
        if until.is_some_and(|u| Instant::now() >= u) || !alive(&shared, &h) {
            return;
        }
        match h
            .events
            .consume(
                &name,
                &group,
                ReadFrom::Earliest,
                256,
                Duration::from_millis(500),
            )
            .await
        {
            Ok(consumed) => {
                for stored in &consumed.events {
                    received(&shared, &h, &topic, &stored.event.body);
                }
                if !consumed.events.is_empty() {
                    let _ = h.events.ack(&name, &group, consumed.next_offset).await;
                }
            }
            Err(e) => {
                debug!(error = %e, "event consume failed");
                return;
            }
        }
    }
}

/// Whether `h`'s node still holds its slot.
fn alive(shared: &Shared, h: &Handles) -> bool {
    let cluster = shared.cluster();
    let slot = &cluster.slots[h.slot];
    slot.alive() && slot.generation == h.generation
}

fn received(shared: &Shared, h: &Handles, topic: &str, body: &[u8]) {
    let Ok(id) = std::str::from_utf8(body) else {
        shared.rec.with(|o| o.spam_delivered += 1);
        return;
    };
    let now = shared.clock.now_ms();
    shared.rec.with(|o| {
        let Some(sent) = o.sent.get(topic).and_then(|s| s.get(id)) else {
            o.spam_delivered += 1;
            return;
        };
        let latency = now - sent.at_ms;
        o.received
            .entry(topic.to_owned())
            .or_default()
            .entry(id.to_owned())
            .or_default()
            .entry((h.slot, h.generation))
            .or_insert(latency);
    });
}

/// A simulated service: one `Echo` endpoint over an HTTP backend.
pub fn spec(name: ServiceName, url: String) -> ServeSpec {
    ServeSpec {
        name,
        version: "1.0.0".into(),
        older_versions: Vec::new(),
        backend: Backend::Http { url },
        endpoints: vec![Endpoint {
            name: ENDPOINT.parse().expect("static endpoint name"),
            description: "echoes its body".into(),
            request_schema: None,
            response_schema: None,
        }],
        metadata: Default::default(),
        price_per_call: 0,
    }
}

/// Peers a subscriber sees on the topic's gossip mesh (for the warm-up).
pub async fn topic_peers(h: &Handles, topic: &TopicSpec) -> usize {
    let Ok(name) = topic.name.parse::<TopicName>() else {
        return 0;
    };
    match topic.kind {
        TopicKind::Broker => h.broker.topic_peers(&name).await.unwrap_or(0),
        TopicKind::Events => h.events.gossip_peers(&name).await,
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
                LoadKind::Transfer => {
                    let Some(transfer) = shared.wallets.as_ref().and_then(|w| {
                        let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
                        w.random_transfer(&mut rng)
                    }) else {
                        return;
                    };
                    inflight.spawn(async move { transfer_one(&shared, &h, transfer).await });
                }
            }
        },
    )
    .await;
}

/// Paces one load, in either mode: `start` runs `load.rate_per_s` times a second (with
/// the tick's number) while `in_window` holds and fewer than `max_in_flight` operations
/// are in flight; a tick beyond that bound calls `overloaded` instead (an attempt that never
/// ran). Returns when the window closed and every started operation ended.
pub(crate) async fn pace(
    load: &Load,
    max_in_flight: usize,
    in_window: impl Fn() -> bool,
    mut overloaded: impl FnMut(),
    mut start: impl FnMut(u64, &mut JoinSet<()>),
) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / load.rate_per_s));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut inflight = JoinSet::new();
    let mut counter: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(_) = inflight.join_next(), if !inflight.is_empty() => continue,
        }
        if !in_window() {
            break;
        }
        counter += 1;
        if inflight.len() >= max_in_flight {
            overloaded();
            continue;
        }
        start(counter, &mut inflight);
    }
    while inflight.join_next().await.is_some() {}
}

/// Counts a lookup or call attempt (other kinds count their own way).
pub(crate) fn count_attempt(rec: &crate::record::Recorder, kind: LoadKind) {
    rec.with(|o| match kind {
        LoadKind::Lookup => o.lookup_attempts += 1,
        LoadKind::Call => o.call_attempts += 1,
        _ => {}
    });
}

async fn lookup(shared: &Shared, h: &Handles, service: &str) {
    count_attempt(&shared.rec, LoadKind::Lookup);
    let Ok(name) = service.parse::<ServiceName>() else {
        return;
    };
    let started = Instant::now();
    let found = tokio::time::timeout(
        OPERATION_TIMEOUT,
        h.overlay.lookup_providers(provider_key(&name)),
    )
    .await;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let Ok(Ok(lookup)) = found else { return };
    // Success: at least one provider found is live now.
    let live: Vec<_> = shared
        .all(|s| s.serves.iter().any(|n| n == service))
        .into_iter()
        .map(|h| h.peer_id)
        .collect();
    if lookup.providers.iter().any(|p| live.contains(p)) {
        shared.rec.with(|o| {
            o.lookup_ms.push(ms);
            o.lookup_requests.push(f64::from(lookup.requests));
        });
    }
}

async fn call(shared: &Shared, h: &Handles, service: &str, nonce: u64) {
    count_attempt(&shared.rec, LoadKind::Call);
    let Ok(name) = service.parse::<ServiceName>() else {
        return;
    };
    let body = format!("{{\"nonce\":{nonce}}}").into_bytes();
    let request = CallRequest {
        service: name,
        version: None,
        endpoint: ENDPOINT.parse().expect("static endpoint name"),
        body: body.clone(),
        content_type: "application/json".into(),
        headers: Default::default(),
        timeout_ms: Some(OPERATION_TIMEOUT.as_millis() as u64),
        node: None,
    };
    let started = Instant::now();
    let outcome = h.services.call(request).await;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    shared.rec.with(|o| match outcome {
        Ok(out) if out.status == 200 && out.body == body => o.call_ms.push(ms),
        Ok(out) if out.status == 200 => o.wrong_answers += 1,
        _ => {}
    });
}

async fn publish(shared: &Shared, h: &Handles, topic: &str, id: String) {
    let Some(spec) = shared.scenario.topics.iter().find(|t| t.name == topic) else {
        return;
    };
    let Ok(name) = topic.parse::<TopicName>() else {
        return;
    };
    let expected: Vec<_> = {
        let cluster = shared.cluster();
        cluster
            .live(|s| s.topics.iter().any(|t| t == topic) && s.index != h.slot)
            .into_iter()
            .map(|i| (i, cluster.slots[i].generation))
            .collect()
    };
    let at_ms = shared.clock.now_ms();
    shared.rec.with(|o| {
        o.sent
            .entry(topic.to_owned())
            .or_default()
            .insert(id.clone(), crate::record::Sent { at_ms, expected });
    });
    let body = id.into_bytes();
    let content = "text/plain".to_owned();
    let published = match spec.kind {
        TopicKind::Broker => h
            .broker
            .publish(name, body, content, Default::default())
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        TopicKind::Events => h
            .events
            .publish(name, body, content, Default::default())
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = published {
        debug!(error = %e, "publish failed");
    }
}

async fn transfer_one(
    shared: &Shared,
    h: &Handles,
    transfer: micro_node::ledger::micro_ledger::SignedTransfer,
) {
    let id = transfer.id();
    let at = shared.clock.now_ms();
    let accepted = matches!(
        h.ledger.submit(transfer).await,
        Ok(Applied::Applied { .. } | Applied::Held { .. })
    );
    shared.rec.with(|o| {
        o.transfers.insert(id, ((h.slot, h.generation), at));
        if accepted {
            o.transfers_accepted += 1;
        }
    });
}

/// Watches submitted transfers until they are final on the node they were submitted to.
pub async fn watch_finality(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let settle_end = shared.clock.settled();
    tokio::pin!(settle_end);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut settle_end => return,
        }
        let pending: Vec<_> = shared.rec.with(|o| {
            o.transfers
                .iter()
                .filter(|(id, _)| !o.finalized.contains(*id))
                .take(512)
                .map(|(id, (who, at))| (*id, *who, *at))
                .collect()
        });
        for (id, (slot, generation), at) in pending {
            let h = shared.cluster().handles(slot);
            let Some(h) = h.filter(|h| h.generation == generation) else {
                // Its node left: nobody to ask; stop watching it.
                shared.rec.with(|o| o.finalized.insert(id));
                continue;
            };
            if let Ok(Some(TransferStatus::Final)) = h.ledger.status(&id) {
                let now = shared.clock.now_ms();
                shared.rec.with(|o| {
                    o.finalized.insert(id);
                    o.final_ms.push(now - at);
                });
            }
        }
    }
}
