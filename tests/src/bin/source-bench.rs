//! Deploy from source, timed from the `deploy` call to the first successful call of the
//! greeter, phase by phase, on this machine:
//!
//! ```sh
//! cargo run --release -p micro-testkit --bin source-bench
//! ```
//!
//! The greeter example is published as a git repository served by `git daemon` on loopback
//! and deployed as `git://127.0.0.1:<port>/greeter.git@main` by an in-process node. Cases:
//!
//! 1. **cold**: a node on a fresh data dir (empty build cache, cargo target dir and
//!    compiled-code cache);
//! 2. **warm, build cached**: the same source again on the same node (replaces the running
//!    version);
//! 3. **warm across a restart**: a new node on the same data dir, from `RunningNode::start`
//!    until the restored greeter answers;
//! 4. **new commit, incremental**: a commit changing only `micro.toml`, pushed to `main`; the
//!    build cache misses but cargo's target dir is reused.
//!
//! Builds take their dependencies offline from this machine's cargo home (a benchmark must not
//! reach the internet), so no download is in any number. The harness is in
//! `tests/src/bench/source/`. Numbers go to `docs/BENCHMARKS.md`.

#[path = "../bench/source/mod.rs"]
mod source;

use anyhow::{Result, ensure};
use clap::Parser;

use source::cases::{self, Cold};
use source::{Published, Sample, median};

#[derive(Parser, Debug)]
#[command(about = "Deploy from source: time from deploy to the first call, by phase")]
struct Args {
    /// Cold deploys, each by a new node on a new data dir (about 40 s each on 2 cores).
    #[arg(long, default_value_t = 1)]
    cold_runs: usize,
    /// Runs of each warm case and of the incremental case.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// Log filter without `RUST_LOG`: the benchmark's nodes run alone, on purpose.
const QUIET_LOGS: &str = "warn,libp2p_kad=error";

/// One row of the table: a case and its runs.
struct Row {
    /// Its name in the table.
    case: &'static str,
    /// One per run, in run order.
    samples: Vec<Sample>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        (1..=20).contains(&args.cold_runs),
        "--cold-runs must be in 1..=20"
    );
    ensure!((1..=100).contains(&args.runs), "--runs must be in 1..=100");
    init_tracing();

    eprintln!("source-bench: building the examples and publishing the greeter…");
    let published = Published::greeter().await?;
    eprintln!("source-bench: cold deploy ({} run(s))…", args.cold_runs);
    let Cold {
        samples: cold,
        empty_start_ms,
        site,
    } = cases::cold(&published, args.cold_runs).await?;
    eprintln!("source-bench: warm deploys…");
    let warm = cases::warm(&site, &published, args.runs).await?;
    eprintln!("source-bench: restarts…");
    let (restart, site) = cases::restart(site, args.runs).await?;
    eprintln!("source-bench: new commits…");
    let incremental = cases::incremental(&site, &published, args.runs).await?;
    site.node.shutdown().await;

    let rows = [
        Row {
            case: "1. cold",
            samples: cold,
        },
        Row {
            case: "2. warm, build cached",
            samples: warm,
        },
        Row {
            case: "3. warm, restart",
            samples: restart,
        },
        Row {
            case: "4. new commit, incremental",
            samples: incremental,
        },
    ];
    println!(
        "source-bench: greeter over git daemon (loopback), deploy @main → first Say.Hello answer, \
         {} threads, {} build, dependencies offline",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "DEBUG (use --release)"
        } else {
            "release"
        },
    );
    print_table(&rows);
    print_notes(&rows, &empty_start_ms);
    Ok(())
}

/// Logs to stderr, keeping stdout for the table: warnings by default (`RUST_LOG` overrides),
/// without Kademlia's complaint, every second, that a node alone has no peer to bootstrap from.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(QUIET_LOGS));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The run whose total is the median (the upper one of an even count).
fn median_run(samples: &[Sample]) -> Option<&Sample> {
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_by(|a, b| a.total_ms.total_cmp(&b.total_ms));
    sorted.get(sorted.len() / 2).copied()
}

/// A table cell: whole milliseconds, or `-` for a phase that did not happen.
fn cell(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |v| format!("{v:.0}"))
}

/// The table: one line per case, the phases of its median run in milliseconds.
fn print_table(rows: &[Row]) {
    println!();
    println!("ms; each row is the run with the median total, min–max of the totals on the right");
    println!(
        "{:<28} {:>4} {:>6} {:>7} {:>7} {:>11} {:>7} {:>8} {:>7} {:>14} {:>8} {:>15}",
        "case",
        "runs",
        "cache",
        "fetch",
        "detect",
        "deps+build",
        "(deps)",
        "compile",
        "start",
        "register+call",
        "total",
        "min–max"
    );
    for row in rows {
        let Some(s) = median_run(&row.samples) else {
            continue;
        };
        let totals: Vec<f64> = row.samples.iter().map(|s| s.total_ms).collect();
        let min = totals.iter().copied().fold(f64::INFINITY, f64::min);
        let max = totals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "{:<28} {:>4} {:>6} {:>7} {:>7} {:>11} {:>7} {:>8} {:>7} {:>14.0} {:>8.0} {:>15}",
            row.case,
            row.samples.len(),
            match s.cached {
                Some(true) => "hit",
                Some(false) => "miss",
                None => "-",
            },
            cell(s.fetch_ms.map(|v| v as f64)),
            cell(s.detect_ms.map(|v| v as f64)),
            cell(s.build_ms.map(|v| v as f64)),
            cell(s.deps_ms),
            cell(s.compile_ms.map(|v| v as f64)),
            cell(s.start_ms),
            s.rest_ms,
            s.total_ms,
            format!("{min:.0}–{max:.0}"),
        );
    }
}

/// What the table cannot show: the start of an empty node, whether the runtime got the same
/// component as the cold build (so its compiled code came from the cache), what was replaced,
/// calls that failed before the first answer.
fn print_notes(rows: &[Row], empty_start_ms: &[f64]) {
    println!();
    println!(
        "node start on an empty data dir (cold runs, not in their totals): median {:.0} ms",
        median(empty_start_ms)
    );
    let cold_digest = rows[0].samples.first().and_then(|s| s.digest.as_deref());
    for row in rows {
        let mut notes = Vec::new();
        let deployed: Vec<&str> = row
            .samples
            .iter()
            .filter_map(|s| s.digest.as_deref())
            .collect();
        if !deployed.is_empty() {
            let same = deployed.iter().filter(|&&d| Some(d) == cold_digest).count();
            notes.push(format!(
                "component identical to the (first) cold build's in {same}/{} runs",
                deployed.len()
            ));
        }
        let replaced = row.samples.iter().filter(|s| s.replaced.is_some()).count();
        if replaced > 0 {
            notes.push(format!("replaced the running version in {replaced} runs"));
        }
        let deps: Vec<f64> = row.samples.iter().filter_map(|s| s.deps_ms).collect();
        if !deps.is_empty() {
            notes.push(format!("dependencies step median {:.0} ms", median(&deps)));
        }
        let failed: u32 = row.samples.iter().map(|s| s.failed_calls).sum();
        notes.push(format!("{failed} calls failed before the first answer"));
        println!("{}: {}", row.case, notes.join("; "));
    }
}
