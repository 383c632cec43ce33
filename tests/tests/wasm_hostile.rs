//! Hostile guests: each misbehaviour ends its own call with a clear error while well-behaved
//! calls keep being answered, and bad components are refused at deploy with a reason.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use micro_node::RunningNode;
use micro_node::overlay::Role;
use micro_node::wasm::WasmError;
use micro_testkit::wasm::{build_guest, deploy, guest_manifest_path};
use micro_testkit::{
    eventually, init_tracing, json_call, node_config, overlay_config, start_network, start_node,
};
use micro_wasm_runtime::{DeployError, Manifest, ServiceState};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(30);

/// A call's outcome as (status, body or error detail).
async fn call(node: &RunningNode, service: &str, endpoint: &str, body: Value) -> (u16, String) {
    match node
        .services()
        .call(json_call(service, endpoint, &body))
        .await
    {
        Ok(outcome) => (
            outcome.status,
            String::from_utf8_lossy(&outcome.body).into(),
        ),
        Err(e) => (e.code, e.detail),
    }
}

async fn hostile_on(node: &RunningNode, name: &str) -> Result<()> {
    let wasm = tokio::task::spawn_blocking(|| build_guest("hostile")).await?;
    deploy(node, &wasm, &guest_manifest_path("hostile"), Some(name)).await?;
    Ok(())
}

/// Two nodes, `hostile` on node 1, reachable from node 0.
async fn setup() -> Result<(Vec<tempfile::TempDir>, Vec<RunningNode>)> {
    init_tracing();
    let (dirs, nodes) = start_network(2).await?;
    hostile_on(&nodes[1], "hostile").await?;
    eventually("node 0 reaches hostile", PATIENCE, || async {
        Ok(call(&nodes[0], "hostile", "Echo", json!({"ping": 1}))
            .await
            .0
            == 200)
    })
    .await?;
    Ok((dirs, nodes))
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_ends_at_its_deadline_while_other_calls_are_answered() -> Result<()> {
    let (_dirs, nodes) = setup().await?;
    let started = Instant::now();
    let spin = |node: &RunningNode| {
        let services = node.services().clone();
        tokio::spawn(async move {
            services
                .call(json_call("hostile", "Loop", &json!({})))
                .await
        })
    };
    let spinning = spin(&nodes[0]);
    // Two spinning guests would hold both workers of this runtime if wasm never yielded.
    let also_spinning = spin(&nodes[1]);
    eventually("both loops run", PATIENCE, || async {
        Ok(nodes[1].wasm().status()[0].instances >= 2)
    })
    .await?;
    let echo = call(&nodes[0], "hostile", "Echo", json!({"still": "here"})).await;
    ensure!(echo == (200, r#"{"still":"here"}"#.to_owned()), "{echo:?}");
    ensure!(
        !spinning.is_finished(),
        "the echo was answered while the loop ran"
    );
    let looped = spinning.await?.expect_err("the loop cannot answer");
    let elapsed = started.elapsed();
    ensure!(looped.code == 408, "{looped:?}");
    ensure!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(10),
        "ended at the manifest's 2 s deadline, not later: {elapsed:?} ({looped:?})"
    );
    let other = also_spinning.await?.expect_err("the loop cannot answer");
    ensure!(other.code == 408, "{other:?}");
    let status = &nodes[1].wasm().status()[0];
    ensure!(status.timeouts >= 2 && status.instances == 0, "{status:?}");
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bombs_recursion_panics_and_huge_answers_end_their_call_only() -> Result<()> {
    let (_dirs, nodes) = setup().await?;
    let rss_before = rss_bytes();
    let (code, detail) = call(&nodes[0], "hostile", "Bomb", json!({})).await;
    ensure!(
        code == 500 && detail.contains("ran out of memory"),
        "{code} {detail}"
    );
    let (code, detail) = call(&nodes[0], "hostile", "Bomb", json!({})).await;
    ensure!(
        code == 500,
        "a second bomb fails the same way: {code} {detail}"
    );
    let grown = rss_bytes().saturating_sub(rss_before);
    ensure!(
        grown < 256 * 1024 * 1024,
        "two 32 MiB-capped bombs left the process {} MiB larger",
        grown / (1024 * 1024)
    );

    let (code, detail) = call(&nodes[0], "hostile", "Recurse", json!({})).await;
    ensure!(code == 500 && detail.contains("stack"), "{code} {detail}");

    let (code, detail) = call(&nodes[0], "hostile", "Panic", json!({})).await;
    ensure!(
        code == 500 && detail.contains("guest panicked on purpose"),
        "{code} {detail}"
    );
    let logs = nodes[1]
        .wasm()
        .logs("hostile")
        .context("hostile has a log")?
        .tail(100);
    ensure!(
        logs.iter()
            .any(|l| l.level == "stderr" && l.message.contains("guest panicked on purpose")),
        "the panic is in the service's log: {logs:?}"
    );

    let (code, detail) = call(&nodes[0], "hostile", "Big", json!({"bytes": 5 << 20})).await;
    ensure!(code == 413, "{code} {detail}");
    let (code, body) = call(&nodes[0], "hostile", "Big", json!({"bytes": 1000})).await;
    ensure!(
        code == 200 && body.len() == 1000,
        "a modest answer passes: {code}"
    );

    let echo = call(&nodes[0], "hostile", "Echo", json!({"after": "all that"})).await;
    ensure!(echo.0 == 200, "still answering: {echo:?}");
    let status = &nodes[1].wasm().status()[0];
    ensure!(
        status.state == ServiceState::Running && status.crashes >= 4,
        "crashes counted, service running: {status:?}"
    );
    ensure!(
        status.memory_peak_bytes <= status.memory_limit_bytes,
        "{status:?}"
    );
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_see_no_files_no_environment_and_only_their_own_store() -> Result<()> {
    let (_dirs, nodes) = setup().await?;
    let (code, body) = call(&nodes[0], "hostile", "Fs", json!({})).await;
    ensure!(code == 200, "{code} {body}");
    let fs: Value = serde_json::from_str(&body)?;
    ensure!(
        fs["read_file"]
            .as_str()
            .is_some_and(|s| s.starts_with("error")),
        "{fs}"
    );
    ensure!(
        fs["read_dir"]
            .as_str()
            .is_some_and(|s| s.starts_with("error")),
        "{fs}"
    );
    let (_, body) = call(&nodes[0], "hostile", "Env", json!({})).await;
    ensure!(
        serde_json::from_str::<Value>(&body)? == json!({"vars": 0, "args": 0}),
        "{body}"
    );
    let (code, body) = call(&nodes[0], "hostile", "Clock", json!({})).await;
    let clock: Value = serde_json::from_str(&body)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let guest_ms = clock["now_ms"].as_u64().context("now_ms")?;
    ensure!(
        code == 200 && guest_ms.abs_diff(now.as_millis() as u64) < 60_000,
        "clocks are real: {clock}"
    );

    // A second copy under another name: the same key names different data.
    hostile_on(&nodes[1], "hostile-b").await?;
    for (service, value) in [("hostile", "a"), ("hostile-b", "b")] {
        let (code, _) = call(
            &nodes[1],
            service,
            "Store.Set",
            json!({"key": "k", "value": value}),
        )
        .await;
        ensure!(code == 200, "{service} stores");
    }
    for (service, value) in [("hostile", "a"), ("hostile-b", "b")] {
        let (_, body) = call(&nodes[1], service, "Store.Get", json!({"key": "k"})).await;
        ensure!(
            serde_json::from_str::<Value>(&body)? == json!({"key": "k", "value": value}),
            "{service} reads its own value: {body}"
        );
    }
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_crashes_pause_a_service_which_then_recovers() -> Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let node = start_node(dir.path(), Role::Super, Vec::new()).await?;
    hostile_on(&node, "hostile").await?;
    let threshold = micro_wasm_runtime::RuntimeConfig::new("").crash_threshold;
    for _ in 0..threshold {
        let (code, _) = call(&node, "hostile", "Panic", json!({})).await;
        ensure!(code == 500, "panics are 500");
    }
    ensure!(
        node.wasm().status()[0].state == ServiceState::Paused,
        "paused after {threshold} crashes in a row"
    );
    let (code, detail) = call(&node, "hostile", "Echo", json!({})).await;
    ensure!(code == 503 && detail.contains("paused"), "{code} {detail}");
    eventually("the pause ends", PATIENCE, || async {
        Ok(call(&node, "hostile", "Echo", json!({})).await.0 == 200)
    })
    .await?;
    ensure!(node.wasm().status()[0].state == ServiceState::Running);
    node.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_components_are_refused_with_the_reason() -> Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let mut config = node_config(dir.path(), overlay_config(Role::Super, Vec::new()));
    config.wasm.max_component_bytes = 1024 * 1024;
    let node = RunningNode::start(config).await?;
    let manifest = Manifest::minimal("bad", "1");
    let refuse = |bytes: Vec<u8>| {
        let wasm = node.wasm().clone();
        let manifest = manifest.clone();
        async move { wasm.deploy(manifest, bytes).await.expect_err("refused") }
    };

    let sockets = br#"(component (import "wasi:sockets/tcp@0.2.0" (instance)))"#.to_vec();
    match refuse(sockets).await {
        WasmError::Deploy(DeployError::DisallowedImport { import, .. }) => {
            ensure!(import == "wasi:sockets/tcp@0.2.0", "{import}")
        }
        other => anyhow::bail!("expected a disallowed import, got {other}"),
    }
    let err = refuse(b"this is not wasm".to_vec()).await;
    ensure!(
        matches!(err, WasmError::Deploy(DeployError::Invalid(_))),
        "{err}"
    );
    let err = refuse(b"\0asm\x01\0\0\0".to_vec()).await;
    ensure!(
        matches!(err, WasmError::Deploy(DeployError::CoreModule)),
        "{err}"
    );
    let err = refuse(b"(component)".to_vec()).await;
    ensure!(
        matches!(err, WasmError::Deploy(DeployError::MissingExport(_))),
        "{err}"
    );
    let err = refuse(vec![0; 2 * 1024 * 1024]).await;
    ensure!(
        matches!(err, WasmError::Deploy(DeployError::TooLarge { .. })),
        "{err}"
    );
    let err = node
        .wasm()
        .deploy(
            Manifest::minimal("Not A Name", "1"),
            b"(component)".to_vec(),
        )
        .await
        .expect_err("bad name");
    ensure!(err.to_string().contains("name"), "{err}");
    ensure!(node.wasm().status().is_empty(), "nothing half-deployed");
    // The node still deploys good components afterwards.
    hostile_on(&node, "hostile").await?;
    ensure!(call(&node, "hostile", "Echo", json!({})).await.0 == 200);
    node.shutdown().await;
    Ok(())
}
