//! Times `Reputation::recompute` over 10 000 issuers × 64 entries.
//!
//! `cargo run --release -p micro-reputation --example eigentrust_bench [peers] [entries]`

use libp2p::PeerId;
use libp2p::identity::Keypair;
use micro_reputation::eigentrust::{self, TrustGraph};
use micro_reputation::{
    Config, ReportConfig, Reputation, TrustEntry, TrustReport, TrustWeight, UnixMillis,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let peers: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let entries: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64);
    let supers = 16.min(peers);
    let now = UnixMillis(1_700_000_000_000);
    let mut rng = StdRng::seed_from_u64(7);

    let setup = Instant::now();
    let keys: Vec<Keypair> = (0..peers).map(|_| Keypair::generate_ed25519()).collect();
    let ids: Vec<PeerId> = keys.iter().map(|k| k.public().to_peer_id()).collect();
    let report_config = ReportConfig {
        max_entries: entries,
        max_reports: peers + 1,
        ..ReportConfig::default()
    };
    let mut reports = Vec::with_capacity(peers);
    for (i, key) in keys.iter().enumerate() {
        let mut targets = HashSet::new();
        while targets.len() < entries.min(peers - 1) {
            let j = rng.random_range(0..peers);
            if j != i {
                targets.insert(j);
            }
        }
        let raw: Vec<(usize, f64)> = targets
            .into_iter()
            .map(|j| (j, rng.random_range(0.01..1.0)))
            .collect();
        let sum: f64 = raw.iter().map(|(_, w)| w).sum();
        let row = raw
            .iter()
            .map(|(j, w)| TrustEntry {
                peer: ids[*j],
                trust: TrustWeight::from_fraction(w / sum),
            })
            .filter(|e| e.trust.get() > 0)
            .collect();
        reports.push(TrustReport::sign(key, now, row, &report_config)?);
    }

    let db = sled::Config::new().temporary(true).open()?;
    let config = Config {
        reports: report_config,
        ..Config::default()
    };
    let me = Keypair::generate_ed25519().public().to_peer_id();
    let mut reputation = Reputation::open(&db, config.clone(), me)?;
    for report in reports {
        reputation.accept_report(report, now)?;
    }
    println!(
        "setup: {} reports, {} entries each, in {:.2?}",
        reputation.reports().len(),
        entries,
        setup.elapsed()
    );

    let super_ids = &ids[..supers];
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let scores = reputation.recompute(super_ids, now);
        times.push(start.elapsed());
        assert!(scores.len() > peers / 2);
    }
    times.sort();
    let scores = reputation.scores();
    println!(
        "recompute: min {:.1?}, median {:.1?}, max {:.1?} ({} scored, {} iterations, residual {:.1e})",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        scores.len(),
        scores.iterations(),
        scores.residual()
    );

    // The power iteration alone, on a prebuilt graph.
    let mut graph = TrustGraph::new();
    for report in reputation.reports().iter() {
        graph.set_row(
            report.issuer(),
            report
                .entries()
                .iter()
                .map(|e| (e.peer, e.trust.as_fraction())),
        );
    }
    let start = Instant::now();
    let scores = eigentrust::compute(&graph, super_ids, &HashSet::new(), &config.eigentrust);
    println!(
        "eigentrust::compute alone: {:.1?} ({} edges, {} iterations)",
        start.elapsed(),
        graph.edges(),
        scores.iterations()
    );

    // Worst case: a graph that mixes slowly runs until max_iterations.
    let worst = micro_reputation::EigenTrustConfig {
        epsilon: 0.0,
        ..config.eigentrust.clone()
    };
    let start = Instant::now();
    let scores = eigentrust::compute(&graph, super_ids, &HashSet::new(), &worst);
    println!(
        "eigentrust::compute, forced to max_iterations: {:.1?} ({} iterations)",
        start.elapsed(),
        scores.iterations()
    );
    Ok(())
}
