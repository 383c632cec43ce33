//! The ledger across N in-process nodes on loopback: time to finality and convergence after a
//! partition heals.
//!
//! ```sh
//! cargo run --release -p micro-testkit --bin ledger-bench -- --nodes 7,50 --transfers 200
//! ```
//! Nodes use the test timings except for work unrelated to the ledger, slowed so that 50 nodes
//! on two cores measure the ledger rather than their timers: reputation rounds every 2 s,
//! events anti-entropy and registry heartbeats every 5 s; ledger anti-entropy every 1 s, acks
//! batched for 100 ms. Per size:
//! the submit rate at one node (verify + apply + ack + gossip), p50/p99 time from submitting a
//! transfer until every node calls it final (acks from > 2/3 of the weight), and the time from
//! healing a two-way partition (each half sent `--transfers / 2` transfers while apart) until
//! every node holds the same state.

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use hdrhistogram::Histogram;
use micro_node::ledger::micro_ledger::{SignedTransfer, TransferStatus};
use micro_testkit::ledger::{Wallets, converged, ledger_network_with};
use micro_testkit::{eventually, heal, partition};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Parser)]
struct Args {
    /// Network sizes to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "7,50")]
    nodes: Vec<usize>,
    /// Transfers per phase.
    #[arg(long, default_value_t = 200)]
    transfers: usize,
}

const ACCOUNTS: usize = 16;
/// How often the bench looks at the nodes' state (measurement granularity).
const POLL: Duration = Duration::from_millis(25);
const PATIENCE: Duration = Duration::from_secs(180);

/// The next 1-token transfer of account `from` to a random other account.
fn pay(wallets: &mut Wallets, rng: &mut StdRng, from: usize) -> SignedTransfer {
    let to = wallets.account((from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS);
    wallets.pay(from, to, 1, "")
}

struct Row {
    nodes: usize,
    submit_per_sec: f64,
    final_p50_ms: f64,
    final_p99_ms: f64,
    heal_ms: Option<f64>,
}

async fn run(n: usize, args: &Args) -> Result<Row> {
    let mut wallets = Wallets::new(ACCOUNTS, 1 << 40);
    let mut rng = StdRng::seed_from_u64(n as u64);
    let (_dirs, nodes) = ledger_network_with(n, &wallets, |config| {
        config.reputation.interval = Duration::from_secs(2);
        config.events.anti_entropy_interval = Duration::from_secs(5);
        config.services.heartbeat_interval = Duration::from_secs(5);
        config.services.record_ttl = Duration::from_secs(15);
        config.ledger.sync_interval = Duration::from_secs(1);
    })
    .await?;
    eventually("every node has reputation weights", PATIENCE, || async {
        Ok(nodes.iter().all(|n| n.reputation().scores().total().0 > 0))
    })
    .await?;

    // Submit rate at one node.
    let started = Instant::now();
    let mut sent = Vec::new();
    for i in 0..args.transfers {
        let transfer = pay(&mut wallets, &mut rng, i % ACCOUNTS);
        nodes[0].ledger().submit(transfer.clone()).await?;
        sent.push((
            transfer.id(),
            Instant::now(),
            (0..n).collect::<Vec<usize>>(),
        ));
    }
    let submit_per_sec = args.transfers as f64 / started.elapsed().as_secs_f64();

    // Time until every node calls each transfer final.
    let mut finality = Histogram::<u64>::new(3)?;
    let mut poll = tokio::time::interval(POLL);
    let deadline = Instant::now() + PATIENCE;
    while !sent.is_empty() {
        poll.tick().await;
        if Instant::now() >= deadline {
            let id = sent[0].0;
            let mut seen = std::collections::BTreeMap::new();
            for node in &nodes {
                let status = match node.ledger().status(&id) {
                    Ok(Some(TransferStatus::Pending {
                        acked_weight,
                        total,
                    })) => format!("pending {:.2}", acked_weight / total),
                    other => format!("{other:?}"),
                };
                *seen.entry(status).or_insert(0) += 1;
            }
            for node in &nodes {
                if let Ok(Some(TransferStatus::Pending { .. })) = node.ledger().status(&id) {
                    let scores = node.reputation().scores();
                    let ackers: Vec<_> = node
                        .ledger()
                        .acks(&id)?
                        .iter()
                        .filter_map(|a| micro_node::ledger::peer_of(&a.acker))
                        .collect();
                    let connected = node.overlay().connected_peers().await?.len();
                    let on_topic = node
                        .overlay()
                        .topic_peers(micro_node::ledger::LEDGER_TOPIC)
                        .await?;
                    eprintln!(
                        "stuck node {} ({} acks, {connected} connections, {on_topic} peers on the ledger topic):",
                        node.peer_id(),
                        ackers.len()
                    );
                    for (peer, score) in scores.iter() {
                        let in_network = nodes.iter().any(|n| n.peer_id() == peer);
                        eprintln!(
                            "  {peer} score {score:.4} acked {} in network {in_network}",
                            ackers.contains(&peer)
                        );
                    }
                    // Does one anti-entropy round with a node that calls it final help?
                    if let Some(done) = nodes
                        .iter()
                        .find(|n| matches!(n.ledger().status(&id), Ok(Some(TransferStatus::Final))))
                    {
                        let theirs = done.ledger().acks(&id)?.len();
                        node.ledger().sync_with(done.peer_id()).await;
                        eprintln!(
                            "  after one sync round with a node holding {theirs} acks: {} acks, {:?}",
                            node.ledger().acks(&id)?.len(),
                            node.ledger().status(&id)?
                        );
                    }
                }
            }
            anyhow::bail!(
                "{} transfers never final; the first stands: {seen:?}",
                sent.len()
            );
        }
        // A transfer final on a node stays final there: only ask the nodes left.
        sent.retain_mut(|(id, at, waiting)| {
            waiting.retain(|&i| {
                !matches!(
                    nodes[i].ledger().status(id),
                    Ok(Some(TransferStatus::Final))
                )
            });
            if waiting.is_empty() {
                let _ = finality.record(at.elapsed().as_micros() as u64);
            }
            !waiting.is_empty()
        });
    }

    // A partition: each half transfers on its own accounts, then the halves heal.
    let (a, b) = nodes.split_at(n / 2);
    partition(a, b).await?;
    for i in 0..args.transfers / 2 {
        let transfer = pay(&mut wallets, &mut rng, i % (ACCOUNTS / 2));
        a[i % a.len()].ledger().submit(transfer).await?;
        let transfer = pay(&mut wallets, &mut rng, ACCOUNTS / 2 + i % (ACCOUNTS / 2));
        b[i % b.len()].ledger().submit(transfer).await?;
    }
    let healed = Instant::now();
    heal(a, b).await?;
    let mut heal_ms = None;
    while healed.elapsed() < PATIENCE {
        if converged(&nodes) {
            heal_ms = Some(healed.elapsed().as_secs_f64() * 1000.0);
            break;
        }
        poll.tick().await;
    }
    if heal_ms.is_none() {
        let first = nodes[0].ledger().snapshot();
        let same = nodes
            .iter()
            .filter(|n| n.ledger().snapshot() == first)
            .count();
        eprintln!(
            "no convergence {PATIENCE:?} after the heal: {same} of {n} nodes hold node 0's state"
        );
    }
    for node in nodes {
        node.shutdown().await;
    }
    Ok(Row {
        nodes: n,
        submit_per_sec,
        final_p50_ms: finality.value_at_quantile(0.5) as f64 / 1000.0,
        final_p99_ms: finality.value_at_quantile(0.99) as f64 / 1000.0,
        heal_ms,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    micro_testkit::init_tracing();
    let mut rows = Vec::new();
    for &n in &args.nodes {
        eprintln!("running {n} nodes…");
        let row = run(n, &args).await?;
        eprintln!("{}", line(&row));
        rows.push(row);
    }
    println!(
        "| nodes | submits/s at one node | final everywhere p50 | p99 | converged after heal |"
    );
    println!("|---|---|---|---|---|");
    for r in rows {
        println!("{}", line(&r));
    }
    Ok(())
}

fn line(r: &Row) -> String {
    let heal = r
        .heal_ms
        .map_or_else(|| format!("> {PATIENCE:?}"), |ms| format!("{ms:.0} ms"));
    format!(
        "| {} | {:.0} | {:.0} ms | {:.0} ms | {heal} |",
        r.nodes, r.submit_per_sec, r.final_p50_ms, r.final_p99_ms
    )
}
