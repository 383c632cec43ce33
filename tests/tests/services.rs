//! Services on the network: five nodes, one service served twice, called from everywhere.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use libp2p::identity::Keypair;
use micro_node::RunningNode;
use micro_node::overlay::{KadMode, PeerId, Role};
use micro_node::registry::{GOSSIP_TOPIC, ServiceName, proto};
use micro_node::services::{Backend, CallRequest, ServeSpec};
use micro_testkit::{
    backend, bootstrap_addr, eventually, init_tracing, node_config, overlay_config, start_network,
    start_node,
};
use prost::Message;

const PATIENCE: Duration = Duration::from_secs(20);

fn greeter() -> ServiceName {
    "greeter".parse().expect("valid name")
}

fn spec(url: String) -> ServeSpec {
    ServeSpec {
        name: greeter(),
        version: "1.0.0".into(),
        older_versions: Vec::new(),
        backend: Backend::Http { url },
        endpoints: vec![micro_node::registry::Endpoint {
            name: "Say.Hello".parse().expect("valid endpoint"),
            description: "greets".into(),
            request_schema: None,
            response_schema: None,
        }],
        metadata: Default::default(),
        price_per_call: 0,
    }
}

fn hello(name: &str) -> CallRequest {
    CallRequest {
        service: greeter(),
        endpoint: "Say.Hello".parse().expect("valid endpoint"),
        body: format!(r#"{{"name":"{name}"}}"#).into_bytes(),
        content_type: "application/json".into(),
        headers: Default::default(),
        timeout_ms: Some(5_000),
        node: None,
        version: None,
    }
}

fn providers_seen_by(node: &RunningNode) -> BTreeSet<PeerId> {
    node.services()
        .network_services()
        .into_iter()
        .filter(|s| s.name == greeter())
        .flat_map(|s| s.providers.into_iter().map(|p| p.peer_id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_served_twice_is_found_balanced_and_survives_a_crash() -> Result<()> {
    init_tracing();
    let (_dirs, mut nodes) = start_network(5).await?;
    let (a, b) = (backend::spawn("A").await?, backend::spawn("B").await?);
    nodes[1].services().serve(spec(a.url())).await?;
    nodes[2].services().serve(spec(b.url())).await?;
    let both: BTreeSet<PeerId> = [nodes[1].peer_id(), nodes[2].peer_id()].into();

    eventually("every node to list both providers", PATIENCE, || async {
        Ok(nodes.iter().all(|n| providers_seen_by(n) == both))
    })
    .await?;

    // Called from every node; answers come from both backends.
    let mut served_by = BTreeSet::new();
    for node in &nodes {
        for i in 0..10 {
            let outcome = node.services().call(hello(&format!("n{i}"))).await?;
            let body: serde_json::Value = serde_json::from_slice(&outcome.body)?;
            ensure!(body["message"] == format!("Hello n{i}"), "{body}");
            served_by.insert(body["served_by"].as_str().context("tag")?.to_owned());
        }
    }
    ensure!(
        served_by == ["A".to_owned(), "B".to_owned()].into(),
        "calls spread: {served_by:?}"
    );

    // Provider 1 crashes: every call still succeeds, through retries where needed.
    let crashed = nodes.remove(1);
    let crashed_id = crashed.peer_id();
    crashed.kill();
    let mut retried = 0;
    for node in &nodes {
        for i in 0..5 {
            let outcome = node.services().call(hello(&format!("after{i}"))).await?;
            ensure!(
                outcome.provider == nodes[1].peer_id(),
                "only the survivor can answer"
            );
            retried += usize::from(outcome.attempts > 1);
        }
    }
    tracing::info!(retried, "calls that needed a retry after the crash");

    // After the TTL, the crashed provider is gone from every directory.
    eventually(
        "the crashed provider to expire everywhere",
        PATIENCE,
        || async {
            Ok(nodes
                .iter()
                .all(|n| !providers_seen_by(n).contains(&crashed_id)))
        },
    )
    .await?;
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_saw_no_gossip_finds_the_provider_through_the_dht() -> Result<()> {
    init_tracing();
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let quiet = |dir: &std::path::Path, role, boot| {
        let mut config = node_config(dir, overlay_config(role, boot));
        // One announcement at serve time, then silence for the rest of the test.
        config.services.heartbeat_interval = Duration::from_secs(3600);
        config.services.record_ttl = Duration::from_secs(300);
        RunningNode::start(config)
    };
    let super_node = quiet(dirs[0].path(), Role::Super, vec![]).await?;
    let boot = bootstrap_addr(&super_node);
    let provider = quiet(dirs[1].path(), Role::Peer, vec![boot.clone()]).await?;
    let a = backend::spawn("A").await?;
    eventually("the provider to join", PATIENCE, || async {
        Ok(provider.overlay().info().await?.joined)
    })
    .await?;
    provider.services().serve(spec(a.url())).await?;
    eventually("the super to hear the announcement", PATIENCE, || async {
        Ok(providers_seen_by(&super_node).contains(&provider.peer_id()))
    })
    .await?;

    let late = quiet(dirs[2].path(), Role::Peer, vec![boot]).await?;
    eventually("the late node to join", PATIENCE, || async {
        Ok(late.overlay().info().await?.joined)
    })
    .await?;
    ensure!(
        providers_seen_by(&late).is_empty(),
        "the late node heard no gossip"
    );
    let outcome = late.services().call(hello("late")).await?;
    ensure!(outcome.provider == provider.peer_id());
    for node in [late, provider, super_node] {
        node.shutdown().await;
    }
    Ok(())
}

/// A caller that learned of a provider only from its gossiped record (no DHT lookup, no
/// connection, no address in its peer book) reaches it at the addresses the record carries.
/// The 200-node simulation lost a third of its calls here: they went out with no address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_known_only_from_its_record_is_dialled_at_its_addresses() -> Result<()> {
    init_tracing();
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let super_node = start_node(dirs[0].path(), Role::Super, vec![]).await?;
    let boot = bootstrap_addr(&super_node);
    // Client-mode peers are in nobody's routing table: no DHT answer names either to the
    // other, so neither dials the other and only the super node connects them.
    let client = |dir: &std::path::Path| {
        let mut overlay = overlay_config(Role::Peer, vec![boot.clone()]);
        overlay.kad_mode = KadMode::Client;
        RunningNode::start(node_config(dir, overlay))
    };
    let provider = client(dirs[1].path()).await?;
    let caller = client(dirs[2].path()).await?;
    let a = backend::spawn("A").await?;
    provider.services().serve(spec(a.url())).await?;
    eventually("the caller to hear the announcement", PATIENCE, || async {
        Ok(providers_seen_by(&caller).contains(&provider.peer_id()))
    })
    .await?;
    let known = caller.overlay().known_nodes().await?;
    ensure!(
        !known
            .iter()
            .any(|n| n.peer_id == provider.peer_id() && !n.addrs.is_empty()),
        "the caller must not know the provider's address before the call: {known:?}"
    );

    let outcome = caller.services().call(hello("gossip")).await?;
    ensure!(outcome.provider == provider.peer_id());
    ensure!(outcome.attempts == 1, "answered at the first attempt");
    for node in [caller, provider, super_node] {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_record_is_rejected_everywhere() -> Result<()> {
    init_tracing();
    let (_dirs, nodes) = start_network(4).await?;
    let (victim, forger) = (&nodes[1], &nodes[2]);
    // Wait for the gossip mesh: a real announcement from the victim reaches everyone.
    let a = backend::spawn("A").await?;
    victim.services().serve(spec(a.url())).await?;
    eventually(
        "the real service to be listed everywhere",
        PATIENCE,
        || async {
            Ok(nodes
                .iter()
                .all(|n| providers_seen_by(n).contains(&victim.peer_id())))
        },
    )
    .await?;

    // A record that names the victim as owner, signed by a key that is not the victim's.
    let now = micro_node::registry::now_ms();
    let record = proto::ServiceRecord {
        name: "stolen".into(),
        version: "6.6.6".into(),
        owner: victim.peer_id().to_bytes(),
        issued_at_ms: now,
        expires_at_ms: now + 60_000,
        seq: now,
        ..Default::default()
    }
    .encode_to_vec();
    let key = Keypair::generate_ed25519();
    let mut payload = micro_node::registry::SIGNING_DOMAIN.to_vec();
    payload.extend_from_slice(&record);
    let signed = proto::SignedRecord {
        signature: key.sign(&payload)?,
        public_key: key.public().encode_protobuf(),
        record,
    };
    let announcement = proto::Announcement {
        records: vec![signed],
    }
    .encode_to_vec();
    forger.overlay().publish(GOSSIP_TOPIC, announcement).await?;

    eventually(
        "the forger's neighbours to penalize it",
        PATIENCE,
        || async {
            Ok(nodes
                .iter()
                .filter(|n| n.peer_id() != forger.peer_id())
                .any(|n| n.services().penalties().contains_key(&forger.peer_id())))
        },
    )
    .await?;
    let stolen: ServiceName = "stolen".parse()?;
    for node in &nodes {
        ensure!(
            node.services()
                .network_services()
                .iter()
                .all(|s| s.name != stolen),
            "the forged record reached {}",
            node.peer_id()
        );
    }
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}
