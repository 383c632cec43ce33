//! Broker throughput and delivery latency across N in-process nodes on loopback.
//!
//! ```sh
//! cargo run --release -p micro-testkit --bin broker-bench -- --nodes 5,20 --messages 2000 --rate 500
//! ```
//! One node publishes `--messages` messages of `--payload` bytes back to back; every other
//! node subscribes. Reported per network size: publish rate, deliveries per second, the
//! delivery ratio, and p50/p99 latency from publish to receipt (one process, one clock).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use micro_node::broker::TopicName;
use micro_node::overlay::Role;
use micro_testkit::{bootstrap_addr, eventually, start_node};
use tokio::sync::Mutex;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;

#[derive(Debug, Parser)]
struct Args {
    /// Network sizes to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "5,20")]
    nodes: Vec<usize>,
    /// Messages published per run.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Payload bytes per message (at least 16: the send time travels in it).
    #[arg(long, default_value_t = 256)]
    payload: usize,
    /// Messages per second to publish; 0 = as fast as the publisher can.
    #[arg(long, default_value_t = 500)]
    rate: u64,
}

/// How long subscribers wait for stragglers after the last publish.
const DRAIN: Duration = Duration::from_secs(5);

struct Row {
    nodes: usize,
    publish_per_sec: f64,
    delivered_per_sec: f64,
    ratio: f64,
    p50_us: u64,
    p99_us: u64,
}

async fn run(n: usize, args: &Args) -> Result<Row> {
    let dirs: Vec<tempfile::TempDir> = (0..n)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let first = start_node(dirs[0].path(), Role::Super, vec![]).await?;
    let boot = bootstrap_addr(&first);
    let mut nodes = vec![first];
    for dir in &dirs[1..] {
        nodes.push(start_node(dir.path(), Role::Peer, vec![boot.clone()]).await?);
    }
    let topic: TopicName = "bench".parse()?;
    let epoch = Instant::now();
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut receivers = JoinSet::new();
    for node in &nodes[1..] {
        let mut subscription = node.broker().subscribe(topic.clone()).await?;
        let latencies = latencies.clone();
        let delivered = delivered.clone();
        receivers.spawn(async move {
            loop {
                let message = match subscription.recv().await {
                    Ok(message) => message,
                    // Lost to a full buffer: counted as undelivered.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                };
                let Some(stamp) = message.body.get(..8) else {
                    continue;
                };
                let sent = u64::from_le_bytes(stamp.try_into().unwrap_or_default());
                let now = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = latencies
                    .lock()
                    .await
                    .record(now.saturating_sub(sent).max(1));
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let publisher = &nodes[0];
    eventually(
        "every subscriber to be known to the publisher",
        Duration::from_secs(30),
        || async { Ok(publisher.broker().topic_peers(&topic).await? >= n - 1) },
    )
    .await?;

    let started = Instant::now();
    let mut pace = (args.rate > 0).then(|| {
        let mut pace = tokio::time::interval(
            Duration::from_secs(1) / u32::try_from(args.rate).unwrap_or(u32::MAX),
        );
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        pace
    });
    for _ in 0..args.messages {
        if let Some(pace) = &mut pace {
            pace.tick().await;
        }
        let mut body = vec![0u8; args.payload.max(16)];
        let sent = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        body[..8].copy_from_slice(&sent.to_le_bytes());
        publisher
            .broker()
            .publish(
                topic.clone(),
                body,
                "application/octet-stream".into(),
                Default::default(),
            )
            .await?;
    }
    let publish_time = started.elapsed();
    let expected = args.messages * (n - 1);
    // Stragglers get DRAIN to arrive; whatever has not by then counts as lost.
    let _ = eventually("every delivery", DRAIN, || async {
        Ok(delivered.load(Ordering::Relaxed) >= expected)
    })
    .await;
    let total_time = started.elapsed();
    receivers.abort_all();
    let delivered = delivered.load(Ordering::Relaxed);
    let histogram = latencies.lock().await;
    let row = Row {
        nodes: n,
        publish_per_sec: args.messages as f64 / publish_time.as_secs_f64(),
        delivered_per_sec: delivered as f64 / total_time.as_secs_f64(),
        ratio: delivered as f64 / expected as f64,
        p50_us: histogram.value_at_quantile(0.5),
        p99_us: histogram.value_at_quantile(0.99),
    };
    drop(histogram);
    for node in nodes {
        node.shutdown().await;
    }
    Ok(row)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // Warnings (dropped messages, busy nodes) matter in a benchmark; RUST_LOG overrides.
    micro_testkit::init_tracing();
    let mut rows = Vec::new();
    for &n in &args.nodes {
        if n < 2 {
            bail!("a run needs at least 2 nodes");
        }
        rows.push(run(n, &args).await?);
    }
    println!(
        "broker-bench: {} messages of {} B at {}, 1 publisher, every other node subscribed, loopback TCP",
        args.messages,
        args.payload,
        if args.rate == 0 {
            "full speed".to_owned()
        } else {
            format!("{}/s", args.rate)
        }
    );
    println!(
        "{:>6} {:>12} {:>14} {:>9} {:>9} {:>9}",
        "nodes", "publish/s", "delivered/s", "ratio", "p50 µs", "p99 µs"
    );
    for r in rows {
        println!(
            "{:>6} {:>12.0} {:>14.0} {:>9.4} {:>9} {:>9}",
            r.nodes, r.publish_per_sec, r.delivered_per_sec, r.ratio, r.p50_us, r.p99_us
        );
    }
    Ok(())
}
