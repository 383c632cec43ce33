//! Events across nodes: a consumer that was offline while two publishers wrote backfills
//! every event exactly once, in each publisher's order; forged and oversized events reach no
//! store.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use micro_node::RunningNode;
use micro_node::events::{
    Event, EventId, EventLimits, GroupName, ReadFrom, SIGNING_DOMAIN, Stored, gossip_topic, proto,
};
use micro_node::overlay::{Keypair, PeerId, Role};
use micro_testkit::{bootstrap_addr, eventually, init_tracing, start_node};
use prost::Message;
use tokio::time::Instant;

const PATIENCE: Duration = Duration::from_secs(60);
const PER_PUBLISHER: u64 = 1_000;

async fn publish_many(node: &RunningNode, topic: &str, n: u64) -> Result<()> {
    for i in 1..=n {
        let published = node
            .events()
            .publish(
                topic.parse()?,
                format!("{{\"n\":{i}}}").into_bytes(),
                "application/json".into(),
                Default::default(),
            )
            .await?;
        ensure!(published.seq == i, "seq {} for publish {i}", published.seq);
    }
    Ok(())
}

/// Consumes `topic` as `group` from the earliest event, committing each batch, until `want`
/// events arrived (the topic may be unknown at first: it is found in the DHT).
async fn consume_until(
    node: &RunningNode,
    topic: &str,
    group: &str,
    want: usize,
) -> Result<Vec<Stored>> {
    let (topic, group): (_, GroupName) = (topic.parse()?, group.parse()?);
    // Until the DHT knows the publishers, the topic is unknown here; reading 0 events finds
    // it (and starts the backfill) without consuming anything.
    eventually(
        "the consumer to find the topic's carriers",
        PATIENCE,
        || async {
            match node
                .events()
                .consume(&topic, &group, ReadFrom::Earliest, 0, Duration::ZERO)
                .await
            {
                Ok(_) => Ok(true),
                Err(micro_node::events::EventsError::UnknownTopic(_)) => Ok(false),
                Err(e) => Err(e.into()),
            }
        },
    )
    .await?;
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    while got.len() < want {
        if Instant::now() >= deadline {
            bail!(
                "consumed {} of {want} events within {PATIENCE:?}",
                got.len()
            );
        }
        let consumed = node
            .events()
            .consume(
                &topic,
                &group,
                ReadFrom::Earliest,
                500,
                Duration::from_millis(500),
            )
            .await?;
        node.events()
            .ack(&topic, &group, consumed.next_offset)
            .await?;
        got.extend(consumed.events);
    }
    Ok(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_offline_consumer_backfills_every_event_once_in_order() -> Result<()> {
    init_tracing();
    let dirs: Vec<tempfile::TempDir> = (0..4)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let super_node = start_node(dirs[0].path(), Role::Super, vec![]).await?;
    let boot = bootstrap_addr(&super_node);
    let a = start_node(dirs[1].path(), Role::Peer, vec![boot.clone()]).await?;
    let b = start_node(dirs[2].path(), Role::Peer, vec![boot.clone()]).await?;

    // The consumer is not running while both publishers write.
    let (ra, rb) = tokio::join!(
        publish_many(&a, "payments", PER_PUBLISHER),
        publish_many(&b, "payments", PER_PUBLISHER)
    );
    ra?;
    rb?;

    let c = start_node(dirs[3].path(), Role::Peer, vec![boot]).await?;
    let want = 2 * PER_PUBLISHER as usize;
    let mut got = consume_until(&c, "payments", "billing", want).await?;
    // Nothing beyond the 2,000: one more read finds nothing new.
    let (payments, billing): (_, GroupName) = ("payments".parse()?, "billing".parse()?);
    let extra = c
        .events()
        .consume(
            &payments,
            &billing,
            ReadFrom::Earliest,
            500,
            Duration::from_millis(500),
        )
        .await?;
    got.extend(extra.events);

    ensure!(
        got.len() == want,
        "consumed {} events, want {want}",
        got.len()
    );
    let ids: HashSet<EventId> = got.iter().map(|s| s.id).collect();
    ensure!(ids.len() == want, "duplicate ids among the consumed events");
    ensure!(
        got.windows(2).all(|w| w[0].offset < w[1].offset),
        "offsets not increasing"
    );
    let mut seqs: HashMap<PeerId, Vec<u64>> = HashMap::new();
    for s in &got {
        seqs.entry(s.event.publisher).or_default().push(s.event.seq);
    }
    let all: Vec<u64> = (1..=PER_PUBLISHER).collect();
    for publisher in [a.peer_id(), b.peer_id()] {
        ensure!(
            seqs.get(&publisher) == Some(&all),
            "{publisher}'s events are not exactly seq 1..={PER_PUBLISHER} in offset order"
        );
    }
    ensure!(seqs.len() == 2, "events from unexpected publishers");

    hostile_events_reach_no_store(&super_node, &a, &b, &c).await?;
    for node in [c, b, a, super_node] {
        node.shutdown().await;
    }
    Ok(())
}

/// An event naming `publisher` but signed by another key.
fn forged(publisher: PeerId, seq: u64) -> Result<(EventId, Vec<u8>)> {
    let impostor = Keypair::generate_ed25519();
    let event = proto::Event {
        topic: "payments".into(),
        publisher: publisher.to_bytes(),
        seq,
        timestamp_ms: 1_700_000_000_000,
        headers: Default::default(),
        content_type: "application/json".into(),
        body: b"{\"steal\":true}".to_vec(),
    }
    .encode_to_vec();
    let signature = impostor.sign(&[SIGNING_DOMAIN, &event].concat())?;
    let id = EventId::of(&event);
    let signed = proto::SignedEvent {
        event,
        public_key: impostor.public().encode_protobuf(),
        signature,
    }
    .encode_to_vec();
    Ok((id, signed))
}

/// A validly signed event over the nodes' size limit (but within gossipsub's).
fn oversized() -> Result<(EventId, Vec<u8>)> {
    let key = Keypair::generate_ed25519();
    let event = Event {
        topic: "payments".parse()?,
        publisher: key.public().to_peer_id(),
        seq: 1,
        timestamp_ms: 1_700_000_000_000,
        headers: Default::default(),
        content_type: "application/octet-stream".into(),
        body: vec![7; 100 * 1024],
    };
    let signed = event.sign(&key, &EventLimits::default())?;
    ensure!(signed.signed().len() > micro_testkit::test_event_limits().max_signed_bytes);
    Ok((signed.id(), signed.signed().to_vec()))
}

async fn hostile_events_reach_no_store(
    super_node: &RunningNode,
    a: &RunningNode,
    b: &RunningNode,
    c: &RunningNode,
) -> Result<()> {
    let payments = "payments".parse()?;
    let topic = gossip_topic(&payments);
    eventually(
        "the publisher to see both other carriers on gossip",
        PATIENCE,
        || async { Ok(a.events().gossip_peers(&payments).await == 2) },
    )
    .await?;
    let nodes = [super_node, a, b, c];
    let counts_before: Vec<Option<u64>> = nodes
        .iter()
        .map(|n| n.events().info(&payments).ok().map(|i| i.events))
        .collect();

    let (forged_id, forged) = forged(b.peer_id(), PER_PUBLISHER + 1)?;
    let (oversized_id, oversized) = oversized()?;
    ensure!(a.overlay().publish(&topic, forged).await? == 2);
    ensure!(a.overlay().publish(&topic, oversized).await? == 2);
    // A valid event sent after them: once it is everywhere, so would they be.
    let marker = a
        .events()
        .publish(
            payments.clone(),
            b"{}".to_vec(),
            "application/json".into(),
            Default::default(),
        )
        .await?;
    for node in [b, c] {
        eventually(
            "the marker event to reach every carrier",
            PATIENCE,
            || async { Ok(node.events().store().get(&marker.id)?.is_some()) },
        )
        .await?;
    }
    for (node, before) in nodes.iter().zip(counts_before) {
        let store = node.events().store();
        ensure!(
            store.get(&forged_id)?.is_none(),
            "a forged event was stored"
        );
        ensure!(
            store.get(&oversized_id)?.is_none(),
            "an oversized event was stored"
        );
        let after = node.events().info(&payments).ok().map(|i| i.events);
        let marker_here = store.get(&marker.id)?.is_some();
        ensure!(
            after == before.map(|n| n + u64::from(marker_here)),
            "event count went from {before:?} to {after:?}"
        );
    }
    Ok(())
}
