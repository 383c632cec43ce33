//! Throughput: calls/s of the greeter with many concurrent callers (tokio tasks), on the
//! runtime directly and through the network (two real nodes on loopback, the greeter on one,
//! the calls from the other), and of the native handler in-process as the baseline.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use micro_node::RunningNode;
use micro_node::overlay::PeerId;
use micro_node::services::{CallRequest, Services};
use micro_testkit::{eventually, start_network};
use micro_wasm_runtime::Runtime;
use tokio::task::JoinSet;

use super::{
    CALL_TIMEOUT, Components, GREETER, HELLO, HELLO_BODY, HELLO_REPLY, Latency, call_greeter,
    histogram, native_hello, record,
};

/// How long the calling node may take to reach the greeter on the other node.
const FIND_PATIENCE: Duration = Duration::from_secs(30);

/// How hard and how long to load a target.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Concurrent callers, each calling in a loop.
    pub callers: usize,
    /// Calls made but not counted, before the window.
    pub warmup: Duration,
    /// The measuring window.
    pub window: Duration,
}

/// One row of the throughput table.
#[derive(Debug, Clone)]
pub struct ThroughputRow {
    /// What was called.
    pub what: &'static str,
    /// Concurrent callers.
    pub callers: usize,
    /// Calls answered correctly inside the window.
    pub calls: u64,
    /// Calls failed or timed out inside the window.
    pub errors: u64,
    /// `calls` / window.
    pub calls_per_sec: f64,
    /// Latency of the correct calls.
    pub latency: Latency,
}

/// `load.callers` tasks each calling `call` in a loop for `load.warmup + load.window`, yielding
/// to the scheduler between calls; only calls that end inside the window count.
async fn drive<F, Fut>(what: &'static str, load: Load, call: F) -> Result<ThroughputRow>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    ensure!(load.callers > 0, "need at least one caller");
    let from = Instant::now() + load.warmup;
    let until = from + load.window;
    let mut tasks = JoinSet::new();
    for _ in 0..load.callers {
        let call = call.clone();
        tasks.spawn(async move {
            let mut hist = histogram();
            let mut errors = 0u64;
            loop {
                let start = Instant::now();
                if start >= until {
                    break;
                }
                let outcome = tokio::time::timeout(CALL_TIMEOUT, call()).await;
                let done = Instant::now();
                if done >= from && done <= until {
                    match outcome {
                        Ok(Ok(())) => record(&mut hist, done - start),
                        _ => errors += 1,
                    }
                }
                // A call that never waits (native code, a wasm call that gets its instance at
                // once) never gives the worker back; yield outside the timed part so the
                // callers take turns and each latency is one call's, not a queue's.
                tokio::task::yield_now().await;
            }
            (hist, errors)
        });
    }
    let mut hist = histogram();
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        let (h, e) = joined.context("a caller task panicked")?;
        hist.add(&h).context("merging histograms")?;
        errors += e;
    }
    Ok(ThroughputRow {
        what,
        callers: load.callers,
        calls: hist.len(),
        errors,
        calls_per_sec: hist.len() as f64 / load.window.as_secs_f64(),
        latency: Latency::of(&hist),
    })
}

/// The native handler called by `load.callers` tasks.
pub async fn native(load: Load) -> Result<ThroughputRow> {
    drive("native handler, in-process", load, || async {
        black_box(native_hello(black_box(HELLO_BODY))?);
        Ok(())
    })
    .await
}

/// The greeter called on `runtime` directly (it must be deployed there, allowing at least
/// `load.callers` concurrent calls).
pub async fn direct(runtime: &Runtime, load: Load) -> Result<ThroughputRow> {
    let runtime = runtime.clone();
    drive("wasm greeter, Runtime::call", load, move || {
        let runtime = runtime.clone();
        async move { call_greeter(&runtime).await.map(drop) }
    })
    .await
}

/// Calls the greeter on the node `provider` through the service client `services`.
async fn call_over_network(services: &Services, provider: PeerId) -> Result<()> {
    let outcome = services
        .call(CallRequest {
            service: GREETER.parse()?,
            endpoint: HELLO.parse()?,
            body: HELLO_BODY.to_vec(),
            content_type: "application/json".into(),
            headers: Default::default(),
            timeout_ms: Some(u64::try_from(CALL_TIMEOUT.as_millis())?),
            node: Some(provider),
            version: None,
        })
        .await?;
    ensure!(
        outcome.body == HELLO_REPLY,
        "unexpected greeting: {}",
        String::from_utf8_lossy(&outcome.body)
    );
    Ok(())
}

/// Starts two nodes (testkit: a super node and a peer bootstrapping from it), deploys the
/// greeter on the second, waits until the first reaches it, then loads it from the first with
/// [`micro_node::services::Services::call`] pinned to the second. Shuts both nodes down.
pub async fn network(components: &Components, load: Load) -> Result<ThroughputRow> {
    let (_dirs, nodes) = start_network(2).await.context("starting two nodes")?;
    let [caller, provider] = <[RunningNode; 2]>::try_from(nodes)
        .map_err(|nodes| anyhow::anyhow!("asked for 2 nodes, got {}", nodes.len()))?;
    provider
        .wasm()
        .deploy(
            components.greeter_manifest.clone(),
            components.greeter.clone(),
        )
        .await
        .context("deploying the greeter on the provider node")?;
    let services = caller.services().clone();
    let provider_id = provider.peer_id();
    eventually("the caller node reaches the greeter", FIND_PATIENCE, || {
        let services = services.clone();
        async move { Ok(call_over_network(&services, provider_id).await.is_ok()) }
    })
    .await?;
    let row = drive("wasm greeter, over the network", load, move || {
        let services = services.clone();
        async move { call_over_network(&services, provider_id).await }
    })
    .await;
    caller.shutdown().await;
    provider.shutdown().await;
    row
}
