//! Deploying from source: repositories made on the fly, served over `git daemon` on loopback,
//! built in the sandbox, deployed by tag, branch and commit, followed; hostile builds.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use micro_node::RunningNode;
use micro_node::overlay::Role;
use micro_node::services::CallRequest;
use micro_testkit::wasm::{build_example, cargo_home, source_repo};
use micro_testkit::{init_tracing, node_config, overlay_config};
use serde_json::{Value, json};
use tokio::sync::mpsc;

async fn node(dir: &std::path::Path) -> Result<RunningNode> {
    let mut config = node_config(dir, overlay_config(Role::Super, Vec::new()));
    config.source.cargo_home = Some(cargo_home());
    config.source.offline_dependencies = true;
    config.source.build.wall = Duration::from_secs(300);
    Ok(RunningNode::start(config).await?)
}

async fn call(node: &RunningNode, service: &str, endpoint: &str, body: Value) -> Result<Value> {
    let outcome = node
        .services()
        .call(CallRequest {
            service: service.parse()?,
            endpoint: endpoint.parse()?,
            body: body.to_string().into_bytes(),
            content_type: "application/json".into(),
            headers: Default::default(),
            timeout_ms: Some(10_000),
            node: None,
        })
        .await
        .map_err(|e| anyhow::anyhow!("{} {}: {}", e.code, e.id, e.detail))?;
    Ok(serde_json::from_slice(&outcome.body)?)
}

fn sink() -> mpsc::Sender<micro_node::source::Progress> {
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_folder_is_built_in_the_sandbox_and_deployed() -> Result<()> {
    init_tracing();
    // Downloads the example's dependencies into the cargo home once (the build is offline).
    tokio::task::spawn_blocking(|| build_example("greeter")).await?;
    let repo = tempfile::tempdir()?;
    let commit = source_repo(repo.path(), "greeter");
    let dir = tempfile::tempdir()?;
    let node = node(dir.path()).await?;
    let done = node
        .wasm()
        .deploy_source(&repo.path().to_string_lossy(), None, &sink())
        .await?;
    ensure!(
        done.commit == commit,
        "a clean git tree is versioned by its commit"
    );
    ensure!(done.deployed.version == commit[..12], "{done:?}");
    ensure!(!done.cached, "first build");
    let reply = call(&node, "greeter", "Say.Hello", json!({"name": "Ada"})).await?;
    ensure!(reply["message"] == "Hello, Ada!", "{reply}");
    let again = node
        .wasm()
        .deploy_source(&repo.path().to_string_lossy(), None, &sink())
        .await?;
    ensure!(again.cached, "the same commit comes from the build cache");
    let log = node
        .wasm()
        .builder()
        .latest_log("greeter")
        .context("a build log")?;
    let log = std::fs::read_to_string(log)?;
    ensure!(log.contains("cargo build"), "{log}");
    node.shutdown().await;
    Ok(())
}
