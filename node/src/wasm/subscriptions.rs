//! Feeding a service the messages of the topics its manifest subscribes to: broker messages
//! as they come, event streams through a consumer group named after the service.

use std::time::Duration;

use micro_wasm_runtime::{Manifest, Message, Runtime, Source};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info_span, warn};

use crate::broker::{Broker, TopicName};
use crate::events::{Events, GroupName, ReadFrom};

/// Events taken per consume.
const EVENTS_BATCH: usize = 32;
/// How long one consume waits for new events.
const EVENTS_WAIT: Duration = Duration::from_secs(10);
/// Pause after a failed consume before the next.
const EVENTS_RETRY: Duration = Duration::from_secs(1);

/// One task per subscription of `manifest`; they end when the node stops or are aborted when
/// the service is killed or redeployed.
pub(super) fn spawn(
    manifest: &Manifest,
    runtime: &Runtime,
    broker: &Broker,
    events: &Events,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for sub in &manifest.subscriptions {
        let topic: TopicName = match sub.topic.parse() {
            Ok(t) => t,
            Err(e) => {
                warn!(service = %manifest.name, topic = %sub.topic, error = %e, "subscription skipped");
                runtime.logs(&manifest.name).push(
                    "node",
                    &manifest.version,
                    &format!("subscription to `{}` skipped: {e}", sub.topic),
                );
                continue;
            }
        };
        let span = info_span!("subscription", service = %manifest.name, %topic);
        let service = manifest.name.clone();
        let runtime = runtime.clone();
        let stop = stop.clone();
        let task = match sub.source {
            Source::Broker => tokio::spawn(
                broker_loop(service, topic, runtime, broker.clone(), stop).instrument(span),
            ),
            Source::Events => tokio::spawn(
                events_loop(service, topic, runtime, events.clone(), stop).instrument(span),
            ),
        };
        tasks.push(task);
    }
    tasks
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

async fn broker_loop(
    service: String,
    topic: TopicName,
    runtime: Runtime,
    broker: Broker,
    mut stop: watch::Receiver<bool>,
) {
    let mut messages = match broker.subscribe(topic.clone()).await {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "cannot subscribe");
            return;
        }
    };
    loop {
        let message = tokio::select! {
            m = messages.recv() => m,
            () = stopped(&mut stop) => return,
        };
        let message = match message {
            Ok(m) => m,
            Err(broadcast::error::RecvError::Lagged(lost)) => {
                warn!(lost, "service fell behind its subscription; messages lost");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let delivered = runtime
            .deliver(
                &service,
                Message {
                    source: Source::Broker,
                    topic: topic.to_string(),
                    id: message.id.clone(),
                    publisher: message.publisher.to_string(),
                    content_type: message.content_type.clone(),
                    body: message.body.clone(),
                },
            )
            .await;
        if let Err(e) = delivered {
            debug!(error = %e, "message handler failed");
        }
    }
}

/// Consumes `topic` in the group `wasm-<service>`: each event is handed to the service at
/// least once (an event whose handler fails is logged and not retried, so one bad event
/// cannot block the stream).
async fn events_loop(
    service: String,
    topic: TopicName,
    runtime: Runtime,
    events: Events,
    mut stop: watch::Receiver<bool>,
) {
    let group: GroupName = match format!("wasm-{service}").parse() {
        Ok(g) => g,
        Err(e) => {
            warn!(error = %e, "no consumer group for this service");
            return;
        }
    };
    if let Err(e) = events.carry(&topic).await {
        warn!(error = %e, "cannot carry the topic");
    }
    loop {
        let consumed = tokio::select! {
            c = events.consume(&topic, &group, ReadFrom::Latest, EVENTS_BATCH, EVENTS_WAIT) => c,
            () = stopped(&mut stop) => return,
        };
        let consumed = match consumed {
            Ok(c) => c,
            Err(e) => {
                debug!(error = %e, "consume failed");
                tokio::select! {
                    () = tokio::time::sleep(EVENTS_RETRY) => continue,
                    () = stopped(&mut stop) => return,
                }
            }
        };
        for stored in consumed.events {
            let message = Message {
                source: Source::Events,
                topic: topic.to_string(),
                id: stored.id.to_string(),
                publisher: stored.event.publisher.to_string(),
                content_type: stored.event.content_type,
                body: stored.event.body,
            };
            if let Err(e) = runtime.deliver(&service, message).await {
                debug!(error = %e, "event handler failed");
            }
        }
        if let Err(e) = events.ack(&topic, &group, consumed.next_offset).await {
            warn!(error = %e, "cannot acknowledge handled events");
        }
    }
}
