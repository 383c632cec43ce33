//! The ledger across N in-process nodes on loopback: time to finality and convergence after a
//! partition heals.
//!
//! ```sh
//! cargo run --release -p micro-testkit --bin ledger-bench -- --nodes 7,50 --transfers 200
//! ```
//! Nodes use the test timings (reputation round 300 ms, anti-entropy every 300 ms). Per size:
//! the submit rate at one node (verify + apply + ack + gossip), p50/p99 time from submitting a
//! transfer until every node calls it final (acks from > 2/3 of the weight), and the time from
//! healing a two-way partition (each half sent `--transfers / 2` transfers while apart) until
//! every node holds the same state.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use clap::Parser;
use ed25519_dalek::SigningKey;
use hdrhistogram::Histogram;
use micro_node::RunningNode;
use micro_node::ledger::micro_ledger::{
    Account, Genesis, SignedTransfer, Tokens, Transfer, TransferStatus,
};
use micro_testkit::{eventually, start_network_with};
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
const POLL: Duration = Duration::from_millis(5);
const PATIENCE: Duration = Duration::from_secs(60);

struct Wallets {
    keys: Vec<SigningKey>,
    next_seq: Vec<u64>,
    genesis: Genesis,
}

impl Wallets {
    fn new() -> Self {
        let keys: Vec<SigningKey> = (0..ACCOUNTS)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let genesis = Genesis::local_dev(keys.iter().map(|k| (Account::from(k), Tokens(1 << 40))));
        Self {
            next_seq: vec![1; ACCOUNTS],
            keys,
            genesis,
        }
    }

    fn pay(&mut self, rng: &mut StdRng, from: usize) -> SignedTransfer {
        let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
        let seq = self.next_seq[from];
        self.next_seq[from] += 1;
        Transfer {
            network: self.genesis.network_id(),
            from: Account::from(&self.keys[from]),
            to: Account::from(&self.keys[to]),
            amount: Tokens(1),
            fee: Tokens::ZERO,
            seq,
            memo: String::new(),
        }
        .sign(&self.keys[from])
    }
}

struct Row {
    nodes: usize,
    submit_per_sec: f64,
    final_p50_ms: f64,
    final_p99_ms: f64,
    heal_ms: f64,
}

fn converged(nodes: &[RunningNode]) -> bool {
    let first = nodes[0].ledger().snapshot();
    nodes[1..].iter().all(|n| n.ledger().snapshot() == first)
}

async fn run(n: usize, args: &Args) -> Result<Row> {
    let mut wallets = Wallets::new();
    let mut rng = StdRng::seed_from_u64(n as u64);
    let genesis_dir = tempfile::tempdir()?;
    let path = genesis_dir.path().join("genesis.json");
    std::fs::write(&path, wallets.genesis.to_json()?)?;
    let (_dirs, nodes) = start_network_with(n, |config| {
        config.ledger.genesis = Some(path.clone());
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
        let transfer = wallets.pay(&mut rng, i % ACCOUNTS);
        nodes[0].ledger().submit(transfer.clone()).await?;
        sent.push((transfer.id(), Instant::now()));
    }
    let submit_per_sec = args.transfers as f64 / started.elapsed().as_secs_f64();

    // Time until every node calls each transfer final.
    let mut finality = Histogram::<u64>::new(3)?;
    let mut poll = tokio::time::interval(POLL);
    let deadline = Instant::now() + PATIENCE;
    while !sent.is_empty() {
        poll.tick().await;
        if Instant::now() >= deadline {
            let (id, _) = sent[0];
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
            anyhow::bail!(
                "{} transfers never final; the first stands: {seen:?}",
                sent.len()
            );
        }
        sent.retain(|(id, at)| {
            let everywhere = nodes
                .iter()
                .all(|n| matches!(n.ledger().status(id), Ok(Some(TransferStatus::Final))));
            if everywhere {
                let _ = finality.record(at.elapsed().as_micros() as u64);
            }
            !everywhere
        });
    }

    // A partition: each half transfers on its own accounts, then the halves heal.
    let (a, b) = nodes.split_at(n / 2);
    for x in a {
        for y in b {
            x.overlay().block_peer(y.peer_id()).await?;
            y.overlay().block_peer(x.peer_id()).await?;
        }
    }
    for i in 0..args.transfers / 2 {
        let transfer = wallets.pay(&mut rng, i % (ACCOUNTS / 2));
        a[i % a.len()].ledger().submit(transfer).await?;
        let transfer = wallets.pay(&mut rng, ACCOUNTS / 2 + i % (ACCOUNTS / 2));
        b[i % b.len()].ledger().submit(transfer).await?;
    }
    let healed = Instant::now();
    for x in a {
        for y in b {
            x.overlay().unblock_peer(y.peer_id()).await?;
            y.overlay().unblock_peer(x.peer_id()).await?;
        }
    }
    for y in b {
        for addr in a[0].listen_addrs() {
            let _ = y.overlay().dial(addr.clone()).await;
        }
    }
    while !converged(&nodes) {
        ensure!(healed.elapsed() < PATIENCE, "no convergence after the heal");
        poll.tick().await;
    }
    let heal_ms = healed.elapsed().as_secs_f64() * 1000.0;
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
    let mut rows = Vec::new();
    for &n in &args.nodes {
        eprintln!("running {n} nodes…");
        rows.push(run(n, &args).await?);
    }
    println!(
        "| nodes | submits/s at one node | final everywhere p50 | p99 | converged after heal |"
    );
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.0} | {:.0} ms | {:.0} ms | {:.0} ms |",
            r.nodes, r.submit_per_sec, r.final_p50_ms, r.final_p99_ms, r.heal_ms
        );
    }
    Ok(())
}
