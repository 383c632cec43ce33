//! Wasm services on real nodes: the examples deployed on one node and called from others,
//! state that survives a restart, subscriptions, and the lifecycle.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use micro_node::RunningNode;
use micro_node::broker::TopicName;
use micro_node::events::ReadFrom;
use micro_node::overlay::Role;
use micro_node::services::{Backend, CallOutcome};
use micro_testkit::wasm::{build_example, deploy, manifest_path};
use micro_testkit::{
    eventually, init_tracing, json_call, node_config, overlay_config, start_network, start_node,
};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(30);

async fn call(node: &RunningNode, service: &str, endpoint: &str, body: Value) -> Result<Value> {
    let outcome = call_raw(node, service, endpoint, body).await?;
    Ok(serde_json::from_slice(&outcome.body)?)
}

async fn call_raw(
    node: &RunningNode,
    service: &str,
    endpoint: &str,
    body: Value,
) -> Result<CallOutcome> {
    node.services()
        .call(json_call(service, endpoint, &body))
        .await
        .map_err(|e| anyhow::anyhow!("{} {}: {}", e.code, e.id, e.detail))
}

async fn deploy_example(node: &RunningNode, name: &str) -> Result<()> {
    let wasm = tokio::task::spawn_blocking({
        let name = name.to_owned();
        move || build_example(&name)
    })
    .await?;
    deploy(node, &wasm, &manifest_path(name), None).await?;
    Ok(())
}

/// Waits until `node` can call `service` (its record has spread), then calls it.
async fn call_when_found(
    node: &RunningNode,
    service: &str,
    endpoint: &str,
    body: Value,
) -> Result<Value> {
    eventually(&format!("{service} answers"), PATIENCE, || async {
        Ok(call(node, service, endpoint, body.clone()).await.is_ok())
    })
    .await?;
    call(node, service, endpoint, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeter_deployed_on_one_node_answers_another() -> Result<()> {
    init_tracing();
    let (_dirs, nodes) = start_network(2).await?;
    deploy_example(&nodes[1], "greeter").await?;
    let status = nodes[1].wasm().status();
    ensure!(
        status.len() == 1 && status[0].name == "greeter",
        "{status:?}"
    );
    let served = nodes[1].services().local();
    ensure!(
        served
            .iter()
            .any(|s| s.spec.name.as_str() == "greeter"
                && matches!(s.spec.backend, Backend::Wasm { .. })),
        "greeter is in the registry as a wasm service: {served:?}"
    );

    let reply = call_when_found(&nodes[0], "greeter", "Say.Hello", json!({"name": "Ada"})).await?;
    ensure!(reply == json!({"message": "Hello, Ada!"}), "{reply}");
    let outcome = call_raw(&nodes[0], "greeter", "Say.Hello", json!({"name": "Bob"})).await?;
    ensure!(
        outcome.provider == nodes[1].peer_id(),
        "answered by the node running it"
    );

    // Unknown endpoint: 404 from the registry's endpoint list, before any instance starts.
    let err = call(&nodes[0], "greeter", "Say.Nothing", json!({}))
        .await
        .expect_err("no such endpoint");
    ensure!(err.to_string().starts_with("404"), "{err}");
    // Bad JSON: the SDK's 400.
    let err = call(&nodes[0], "greeter", "Say.Hello", json!({"nom": 1}))
        .await
        .expect_err("bad body");
    ensure!(err.to_string().starts_with("400"), "{err}");
    let status = nodes[1].wasm().status();
    ensure!(status[0].calls >= 4 && status[0].errors >= 1, "{status:?}");
    ensure!(status[0].fuel_used > 0, "fuel is metered: {status:?}");

    // Kill: withdrawn everywhere, then calls fail.
    nodes[1].wasm().kill("greeter").await?;
    ensure!(nodes[1].wasm().status().is_empty(), "no longer listed");
    eventually("greeter is gone", PATIENCE, || async {
        Ok(
            call(&nodes[0], "greeter", "Say.Hello", json!({"name": "Ada"}))
                .await
                .is_err(),
        )
    })
    .await?;
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregator_chains_calls_across_three_nodes() -> Result<()> {
    init_tracing();
    let (_dirs, nodes) = start_network(3).await?;
    deploy_example(&nodes[0], "greeter").await?;
    deploy_example(&nodes[1], "counter").await?;
    deploy_example(&nodes[2], "aggregator").await?;
    // Called from the greeter's node: aggregator (node 2) → greeter (node 0) + counter (node 1).
    let first = call_when_found(
        &nodes[0],
        "aggregator",
        "Aggregate.Hello",
        json!({"name": "Ada"}),
    )
    .await?;
    ensure!(
        first["greeting"] == "Hello, Ada!",
        "greeting from the greeter: {first}"
    );
    let count = first["count"].as_u64().context("count")?;
    let second = call(
        &nodes[0],
        "aggregator",
        "Aggregate.Hello",
        json!({"name": "Ada"}),
    )
    .await?;
    ensure!(
        second["count"].as_u64() == Some(count + 1),
        "the counter on node 1 counts: {first} then {second}"
    );
    let counted = call(&nodes[2], "counter", "Counter.Get", json!({"key": "Ada"})).await?;
    ensure!(counted["value"].as_u64() == Some(count + 1), "{counted}");
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_state_and_deployments_survive_a_restart() -> Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let config = || node_config(dir.path(), overlay_config(Role::Super, Vec::new()));
    let node = RunningNode::start(config()).await?;
    deploy_example(&node, "counter").await?;
    for _ in 0..3 {
        call(&node, "counter", "Counter.Incr", json!({"key": "visits"})).await?;
    }
    call(
        &node,
        "counter",
        "Counter.Incr",
        json!({"key": "other", "by": 5}),
    )
    .await?;
    node.shutdown().await;

    let compiled = std::fs::read_dir(dir.path().join("wasm/compiled"))?.count();
    ensure!(compiled == 1, "the compiled component is cached on disk");
    let node = RunningNode::start(config()).await?;
    let status = node.wasm().status();
    ensure!(
        status.len() == 1 && status[0].name == "counter",
        "the deployment came back: {status:?}"
    );
    let visits = call(&node, "counter", "Counter.Get", json!({"key": "visits"})).await?;
    ensure!(visits == json!({"key": "visits", "value": 3}), "{visits}");
    let keys = call(&node, "counter", "Counter.List", json!({})).await?;
    ensure!(keys["keys"] == json!(["other", "visits"]), "{keys}");

    // Killed, then deployed again: the same name finds its data.
    node.wasm().kill("counter").await?;
    deploy_example(&node, "counter").await?;
    let visits = call(&node, "counter", "Counter.Get", json!({"key": "visits"})).await?;
    ensure!(visits["value"] == 3, "{visits}");
    node.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_hears_the_broker_and_appends_events() -> Result<()> {
    init_tracing();
    let (_dirs, nodes) = start_network(2).await?;
    deploy_example(&nodes[1], "audit").await?;
    let orders: TopicName = "orders".parse()?;
    let publisher = &nodes[0];
    eventually("the audit node subscribes to orders", PATIENCE, || async {
        Ok(publisher
            .broker()
            .topic_peers(&orders)
            .await
            .is_ok_and(|n| n >= 1))
    })
    .await?;
    for i in 0..3 {
        publisher
            .broker()
            .publish(
                orders.clone(),
                json!({"order": i}).to_string().into_bytes(),
                "application/json".into(),
                Default::default(),
            )
            .await?;
    }
    eventually("audit saw the three orders", PATIENCE, || async {
        Ok(call(&nodes[0], "audit", "Audit.Stats", json!({}))
            .await
            .is_ok_and(|stats| stats["seen"] == 3))
    })
    .await?;
    let audit: TopicName = "audit".parse()?;
    let stored = nodes[1]
        .events()
        .store()
        .read(&audit, ReadFrom::Earliest, 10)?;
    ensure!(stored.len() == 3, "one audit event per order: {stored:?}");
    let first: Value = serde_json::from_slice(&stored[0].event.body)?;
    ensure!(first["topic"] == "orders", "{first}");
    ensure!(
        first["publisher"] == publisher.peer_id().to_string(),
        "{first}"
    );
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeploy_replaces_the_running_version() -> Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let node = start_node(dir.path(), Role::Super, Vec::new()).await?;
    let wasm = tokio::task::spawn_blocking(|| build_example("greeter")).await?;
    let text = std::fs::read_to_string(manifest_path("greeter"))?;
    let mut manifest = micro_wasm_runtime::Manifest::parse(&text)?;
    node.wasm()
        .deploy(manifest.clone(), std::fs::read(&wasm)?)
        .await?;
    manifest.version = "0.2.0".into();
    manifest.config.insert("greeting".into(), "Howdy".into());
    let deployed = node.wasm().deploy(manifest, std::fs::read(&wasm)?).await?;
    ensure!(
        deployed.replaced.as_deref() == Some("0.1.0"),
        "{deployed:?}"
    );
    let reply = call(&node, "greeter", "Say.Hello", json!({"name": "Ada"})).await?;
    ensure!(
        reply["message"] == "Howdy, Ada!",
        "the new version answers: {reply}"
    );
    let local = node.services().local();
    let greeter = local
        .iter()
        .find(|s| s.spec.name.as_str() == "greeter")
        .context("served")?;
    ensure!(
        greeter.spec.version == "0.2.0",
        "the registry has the new version"
    );
    node.shutdown().await;
    Ok(())
}
