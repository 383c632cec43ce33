//! Idle cost of a node: resident memory of a `micro-node` process alone and with 10 peers
//! connected, and the time from process start to "joined the network", on loopback.
//!
//! ```sh
//! cargo build --release -p micro-cli && cargo run --release -p micro-testkit --bin idle-bench -- [IDLE_SECS]
//! ```
//! Prints a table; numbers go to `docs/BENCHMARKS.md`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use micro_testkit::process::{Daemon, Stream, cli_json};

const START: Duration = Duration::from_secs(30);
const LEAVES: usize = 10;
const LOOPBACK: [&str; 6] = [
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--control",
    "127.0.0.1:0",
    "--gateway",
    "127.0.0.1:0",
];

/// The `micro-node` binary built beside this one.
fn micro_node() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("micro-node");
    if !bin.exists() {
        bail!(
            "{} not found; build it first: cargo build --release -p micro-cli",
            bin.display()
        );
    }
    Ok(bin)
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn start(bin: &Path, dir: &Path, extra: &[&str]) -> Result<(Daemon, Duration)> {
    let mut args = LOOPBACK.to_vec();
    args.extend_from_slice(extra);
    let t0 = Instant::now();
    let daemon = Daemon::start(bin, dir, &args, START)?;
    Ok((daemon, t0.elapsed()))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() -> Result<()> {
    let idle = Duration::from_secs(std::env::args().nth(1).map_or(Ok(10), |s| s.parse())?);
    let bin = micro_node()?;
    let root = tempfile::tempdir()?;

    // Baseline: one node, nobody to talk to.
    let (alone, _) = start(&bin, &root.path().join("alone"), &[])?;
    std::thread::sleep(idle);
    let (alone_rss, alone_hwm) = memory_kib(alone.pid())?;
    drop(alone);

    // A peer node that ten others join through.
    let (mut hub, hub_ready) = start(&bin, &root.path().join("hub"), &[])?;
    let boot = hub.bootstrap_addr()?;
    let mut leaves = Vec::new();
    let mut to_joined = Vec::new();
    for i in 0..LEAVES {
        let t0 = Instant::now();
        let (mut leaf, _) = start(
            &bin,
            &root.path().join(format!("leaf{i}")),
            &["--bootstrap", &boot],
        )?;
        leaf.wait_line(Stream::Stderr, "joined the network", START)?;
        to_joined.push(t0.elapsed());
        leaves.push(leaf);
    }
    let connected = cli_json(&bin, &hub.data_dir, &["peers", "--json"])?;
    let connected = connected.as_array().map_or(0, Vec::len);
    if connected != LEAVES {
        bail!("the hub has {connected} peers, expected {LEAVES}");
    }
    // The idle period is what is measured.
    std::thread::sleep(idle);
    let (hub_rss, hub_hwm) = memory_kib(hub.pid())?;
    let mut leaf_rss: Vec<u64> = leaves
        .iter()
        .map(|l| memory_kib(l.pid()).map(|m| m.0))
        .collect::<Result<_>>()?;
    leaf_rss.sort_unstable();
    to_joined.sort_unstable();

    println!("idle-bench: {LEAVES} leaves, {idle:?} idle, loopback TCP, release build");
    println!("{:<44} {:>12} {:>12}", "measure", "RSS", "peak (HWM)");
    println!(
        "{:<44} {:>12} {:>12}",
        "node alone (baseline)",
        mib(alone_rss),
        mib(alone_hwm)
    );
    println!(
        "{:<44} {:>12} {:>12}",
        format!("peer node with {LEAVES} peers connected"),
        mib(hub_rss),
        mib(hub_hwm)
    );
    println!(
        "{:<44} {:>12}",
        "leaf node with 1 peer (median)",
        mib(leaf_rss[leaf_rss.len() / 2])
    );
    println!(
        "{:<44} {:>12}",
        "cost per connection (hub − baseline) / 10",
        format!(
            "{:.0} KiB",
            (hub_rss.saturating_sub(alone_rss)) as f64 / LEAVES as f64
        )
    );
    println!(
        "{:<44} {:>12.1?}",
        "process start → control API ready", hub_ready
    );
    println!(
        "{:<44} {:>12.1?} {:>12.1?}",
        "process start → joined (p50, max)",
        percentile(&to_joined, 0.5),
        percentile(&to_joined, 1.0)
    );
    Ok(())
}
