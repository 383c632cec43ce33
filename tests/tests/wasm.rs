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
    bootstrap_addr, eventually, init_tracing, json_call, node_config, overlay_config,
    start_network, start_node,
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

/// Deploys the greeter on `node` as `version`, greeting with `greeting`.
async fn deploy_greeter(
    node: &RunningNode,
    wasm: &std::path::Path,
    version: &str,
    greeting: &str,
) -> Result<micro_wasm_runtime::Deployed> {
    let text = std::fs::read_to_string(manifest_path("greeter"))?;
    let mut manifest = micro_wasm_runtime::Manifest::parse(&text)?;
    manifest.version = version.into();
    manifest.config.insert("greeting".into(), greeting.into());
    Ok(node.wasm().deploy(manifest, std::fs::read(wasm)?).await?)
}

/// The greeting `service` (maybe `name@version`) answers `node` with, or the error.
async fn greeting(node: &RunningNode, service: &str) -> Result<String> {
    let reply = call(node, service, "Say.Hello", json!({"name": "Ada"})).await?;
    Ok(reply["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_run_side_by_side_and_callers_pin_them() -> Result<()> {
    init_tracing();
    let (dir, caller_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let node = start_node(dir.path(), Role::Super, Vec::new()).await?;
    let caller = start_node(caller_dir.path(), Role::Peer, vec![bootstrap_addr(&node)]).await?;
    let wasm = tokio::task::spawn_blocking(|| build_example("greeter")).await?;
    deploy_greeter(&node, &wasm, "0.1.0", "Hello").await?;
    deploy_greeter(&node, &wasm, "0.2.0", "Howdy").await?;
    let deployed = deploy_greeter(&node, &wasm, "0.3.0", "Hi").await?;
    ensure!(
        deployed.replaced.as_deref() == Some("0.2.0"),
        "{deployed:?}"
    );

    // The registry announces the current version and the older ones still running.
    let local = node.services().local();
    let spec = &local
        .iter()
        .find(|s| s.spec.name.as_str() == "greeter")
        .context("served")?
        .spec;
    ensure!(
        spec.version == "0.3.0" && spec.older_versions == ["0.2.0", "0.1.0"],
        "{spec:?}"
    );

    // Another node: unpinned calls get the current version, pinned calls theirs.
    eventually("the caller sees all three versions", PATIENCE, || async {
        Ok(greeting(&caller, "greeter@0.1.0")
            .await
            .is_ok_and(|g| g == "Hello, Ada!"))
    })
    .await?;
    ensure!(greeting(&caller, "greeter").await? == "Hi, Ada!");
    ensure!(greeting(&caller, "greeter@0.2.0").await? == "Howdy, Ada!");
    ensure!(greeting(&caller, "greeter@0.3.0").await? == "Hi, Ada!");
    let err = greeting(&caller, "greeter@9.9.9")
        .await
        .expect_err("no such version");
    ensure!(
        err.to_string().starts_with("404") && err.to_string().contains("9.9.9"),
        "{err}"
    );

    // A fourth version pushes the oldest out: two older versions are kept.
    deploy_greeter(&node, &wasm, "0.4.0", "Hey").await?;
    let versions: Vec<_> = node
        .wasm()
        .status()
        .into_iter()
        .map(|s| (s.version, s.current))
        .collect();
    ensure!(
        versions
            == [
                ("0.4.0".into(), true),
                ("0.3.0".into(), false),
                ("0.2.0".into(), false)
            ],
        "{versions:?}"
    );
    eventually("0.1.0 is gone and 0.4.0 serves", PATIENCE, || async {
        Ok(greeting(&caller, "greeter@0.1.0").await.is_err()
            && greeting(&caller, "greeter")
                .await
                .is_ok_and(|g| g == "Hey, Ada!"))
    })
    .await?;
    caller.shutdown().await;

    // All running versions come back after a restart.
    node.shutdown().await;
    let node = start_node(dir.path(), Role::Super, Vec::new()).await?;
    ensure!(
        node.wasm().status().len() == 3,
        "{:?}",
        node.wasm().status()
    );
    ensure!(greeting(&node, "greeter").await? == "Hey, Ada!");
    ensure!(greeting(&node, "greeter@0.2.0").await? == "Howdy, Ada!");

    // Stopping the current version makes the newest older one current.
    let stopped = node.wasm().kill("greeter@0.4.0").await?;
    ensure!(stopped.len() == 1 && stopped[0].current, "{stopped:?}");
    ensure!(greeting(&node, "greeter").await? == "Hi, Ada!");
    let local = node.services().local();
    let spec = &local
        .iter()
        .find(|s| s.spec.name.as_str() == "greeter")
        .context("served")?
        .spec;
    ensure!(
        spec.version == "0.3.0" && spec.older_versions == ["0.2.0"],
        "{spec:?}"
    );
    let err = node
        .wasm()
        .kill("greeter@0.1.0")
        .await
        .expect_err("not running");
    ensure!(err.to_string().contains("0.1.0"), "{err}");
    node.shutdown().await;
    Ok(())
}
