//! Events: appends made durable per second on one node (against raw `write` + `fsync` of
//! the same size in the same run), and the time a new node takes to backfill a topic.
//!
//! ```sh
//! cargo run --release -p micro-testkit --bin events-bench -- --publish 2000 --backfill 100000
//! ```

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use clap::Parser;
use libp2p::identity::Keypair;
use micro_node::broker::TopicName;
use micro_node::events::{Appended, Event, EventLimits};
use micro_node::overlay::Role;
use micro_testkit::{bootstrap_addr, eventually, start_node};

#[derive(Debug, Parser)]
struct Args {
    /// Events published (each acknowledged only once on disk).
    #[arg(long, default_value_t = 2000)]
    publish: usize,
    /// Events a new node backfills.
    #[arg(long, default_value_t = 100_000)]
    backfill: u64,
    /// Body bytes per event.
    #[arg(long, default_value_t = 256)]
    payload: usize,
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    micro_testkit::init_tracing();
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;

    // Baseline: append one record of the event's size to a file and fsync it, N times.
    let record = vec![7u8; args.payload + 200];
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dirs[2].path().join("log"))?;
    let started = Instant::now();
    for _ in 0..args.publish {
        file.write_all(&record)?;
        file.sync_data()?;
    }
    let fsync_rate = rate(args.publish as u64, started.elapsed());

    // Publish through the node: sign, append, flush (sled fsync), gossip to nobody.
    let source = start_node(dirs[0].path(), Role::Super, vec![]).await?;
    let topic: TopicName = "bench".parse()?;
    let started = Instant::now();
    for _ in 0..args.publish {
        source
            .events()
            .publish(
                topic.clone(),
                vec![1; args.payload],
                "application/octet-stream".into(),
                Default::default(),
            )
            .await?;
    }
    let publish_rate = rate(args.publish as u64, started.elapsed());

    // Fill a second topic with events of another publisher, straight into the store.
    let backlog: TopicName = "backlog".parse()?;
    let author = Keypair::generate_ed25519();
    let store = source.events().store();
    let limits = EventLimits::default();
    for seq in 1..=args.backfill {
        let event = Event {
            topic: backlog.clone(),
            publisher: author.public().to_peer_id(),
            seq,
            timestamp_ms: micro_node::registry::now_ms(),
            headers: Default::default(),
            content_type: "application/octet-stream".into(),
            body: vec![2; args.payload],
        };
        let signed = event.sign(&author, &limits)?;
        ensure!(matches!(store.append(&signed)?, Appended::Stored { .. }));
    }
    store.flush().await?;

    // A new node joins and backfills the whole topic from the source.
    let fresh = start_node(dirs[1].path(), Role::Peer, vec![bootstrap_addr(&source)]).await?;
    eventually("the new node to join", Duration::from_secs(30), || async {
        Ok(fresh.overlay().info().await?.joined)
    })
    .await?;
    let started = Instant::now();
    let mut stored = 0;
    while stored < args.backfill {
        let got = fresh.events().backfill(&backlog, source.peer_id()).await?;
        ensure!(got > 0, "backfill stalled at {stored} events");
        stored += got as u64;
    }
    let backfill_time = started.elapsed();
    let info = fresh.events().store().info(&backlog)?;
    ensure!(
        info.events == args.backfill,
        "backfilled {} of {}",
        info.events,
        args.backfill
    );

    println!(
        "events-bench: {} B bodies, loopback TCP, sled on the local disk",
        args.payload
    );
    println!("{:<52} {:>14}", "measure", "result");
    println!(
        "{:<52} {:>12.0}/s",
        "baseline: file append + fdatasync, per record", fsync_rate
    );
    println!(
        "{:<52} {:>12.0}/s",
        "events publish (sign, append, flush), per event", publish_rate
    );
    println!(
        "{:<52} {:>12.2} s",
        format!("backfill of {} events by a new node", args.backfill),
        backfill_time.as_secs_f64()
    );
    println!(
        "{:<52} {:>12.0}/s",
        "backfill rate",
        rate(args.backfill, backfill_time)
    );
    fresh.shutdown().await;
    source.shutdown().await;
    Ok(())
}
