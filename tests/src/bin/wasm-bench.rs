//! The wasm runtime's costs on this machine, in one process:
//!
//! ```sh
//! cargo run --release -p micro-testkit --bin wasm-bench -- --secs 3
//! ```
//!
//! 1. **Warm call**: one caller, sequential calls of the greeter's `Say.Hello {"name":"Ada"}`
//!    on `Runtime::call` against the same handler in native Rust (serde_json in, `format!`,
//!    serde_json out) called in this process; the difference is what the sandbox adds (goal
//!    ≤ 50 µs). The hostile guest's `Echo` with an empty body shows what a call costs when the
//!    handler does nothing: mostly starting a fresh instance.
//! 2. **Cold start**: a fresh runtime deploying the greeter on an empty directory (compile,
//!    check, probe), then on the same directory with the compiled-code cache present, as after
//!    a restart (goal ≤ 10 ms), and the first call after each.
//! 3. **Instances per GiB**: K calls of the hostile guest's `Sleep` in flight at once, and the
//!    growth of this process's RSS while they are.
//! 4. **Throughput**: calls/s of the greeter with 64 concurrent callers, on the runtime and
//!    through two real nodes on loopback, with the native handler as the baseline.
//!
//! The components are built first (`wasm32-wasip2`, release) by `micro_testkit::wasm`. The
//! harness is in `tests/src/bench/wasm/`, one module per measure. Numbers go to
//! `docs/BENCHMARKS.md`.

#[path = "../bench/wasm/mod.rs"]
mod wasm;

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;

use wasm::cold::ColdRow;
use wasm::density::Density;
use wasm::latency::WarmRow;
use wasm::throughput::{Load, ThroughputRow};
use wasm::{Bench, Components, GREETER, median};

/// Goal: microseconds a warm call may add to the native handler.
const GOAL_ADDED_US: f64 = 50.0;
/// Goal: milliseconds a deploy from the compiled cache may take.
const GOAL_CACHED_MS: f64 = 10.0;
/// Pool slots of the runtime measured, at least (the runtime's default).
const MIN_INSTANCES: u32 = 256;

#[derive(Parser, Debug)]
#[command(about = "Wasm runtime: warm call overhead, cold start, instances per GiB, throughput")]
struct Args {
    /// Measuring window of each latency and throughput run, in seconds.
    #[arg(long, default_value_t = 3)]
    secs: u64,
    /// Warm-up before each throughput window, in milliseconds.
    #[arg(long, default_value_t = 500)]
    warmup_ms: u64,
    /// Concurrent callers of the throughput runs.
    #[arg(long, default_value_t = 64)]
    callers: usize,
    /// Rounds of the cold-start cases (the table shows medians).
    #[arg(long, default_value_t = 5)]
    cold_runs: usize,
    /// Instances held at once for the memory measure.
    #[arg(long, default_value_t = 200)]
    instances: u32,
    /// How long each of those instances sleeps, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    sleep_ms: u64,
    /// Run only these measures (comma-separated: warm, memory, cold, throughput); all if
    /// absent. Handy under a profiler.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// Every measure, in the order they run; `--only` picks among them.
const MEASURES: [&str; 4] = ["warm", "memory", "cold", "throughput"];

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.secs >= 1, "--secs must be at least 1");
    ensure!(
        (1..=1024).contains(&args.callers),
        "--callers must be in 1..=1024"
    );
    ensure!(args.cold_runs >= 1, "--cold-runs must be at least 1");
    ensure!(
        (1..=4096).contains(&args.instances),
        "--instances must be in 1..=4096"
    );
    if let Some(unknown) = args.only.iter().find(|m| !MEASURES.contains(&m.as_str())) {
        bail!(
            "--only: unknown measure `{unknown}` (known: {})",
            MEASURES.join(", ")
        );
    }
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|m| m == name);
    micro_testkit::init_tracing();
    let window = Duration::from_secs(args.secs);
    let load = Load {
        callers: args.callers,
        warmup: Duration::from_millis(args.warmup_ms),
        window,
    };

    eprintln!("wasm-bench: building the components…");
    let components = Components::build().await?;
    let slots = args.instances.max(MIN_INSTANCES);
    let (bench, _dir) = Bench::temporary(slots)?;
    let runtime = &bench.runtime;
    let mut greeter = components.greeter_manifest.clone();
    greeter.limits.max_concurrent = Some(u32::try_from(args.callers)?.max(64));
    runtime
        .deploy(greeter, components.greeter.clone())
        .await
        .context("deploying the greeter")?;
    wasm::density::deploy_hostile(runtime, &components, args.instances).await?;

    let mut warm = None;
    if wanted("warm") {
        eprintln!("wasm-bench: warm calls…");
        warm = Some(wasm::latency::warm(runtime, window).await?);
    }
    let mut density = None;
    if wanted("memory") {
        eprintln!("wasm-bench: {} instances in flight…", args.instances);
        let sleep = Duration::from_millis(args.sleep_ms);
        let found = wasm::density::density(runtime, args.instances, sleep).await?;
        let greeter_peak = runtime
            .service(GREETER)
            .context("the greeter disappeared")?
            .memory_peak_bytes;
        density = Some((found, greeter_peak));
    }
    let mut cold = None;
    if wanted("cold") {
        eprintln!("wasm-bench: cold starts…");
        cold = Some(wasm::cold::cold(&components, args.cold_runs).await?);
    }
    let mut throughput = None;
    if wanted("throughput") {
        eprintln!("wasm-bench: throughput…");
        throughput = Some(vec![
            wasm::throughput::native(load).await?,
            wasm::throughput::direct(runtime, load).await?,
            wasm::throughput::network(&components, load).await?,
        ]);
    }

    println!(
        "wasm-bench: greeter Say.Hello {{\"name\":\"Ada\"}}, {window:?} windows, {} threads, {} build",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "DEBUG (use --release)"
        } else {
            "release"
        },
    );
    if let Some(warm) = &warm {
        print_warm(warm);
    }
    if let Some(cold) = &cold {
        print_cold(cold, args.cold_runs);
    }
    if let Some((density, greeter_peak)) = &density {
        print_density(density, *greeter_peak);
    }
    if let Some(throughput) = &throughput {
        print_throughput(throughput);
    }
    println!();
    if let Some(warm) = &warm {
        print_warm_goal(warm);
    }
    if let Some(cold) = &cold {
        print_cold_goal(cold);
    }
    Ok(())
}

fn print_warm(rows: &[WarmRow]) {
    println!();
    println!("1. warm call, one caller, sequential");
    println!(
        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>10} {:>12} {:>13}",
        "handler", "calls", "p50 µs", "p99 µs", "mean µs", "fuel/call", "added p50", "added mean"
    );
    let native = &rows[0].latency;
    for r in rows {
        let l = &r.latency;
        println!(
            "{:<30} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>10} {:>12.1} {:>13.1}",
            r.what,
            l.calls,
            l.p50_us,
            l.p99_us,
            l.mean_us,
            r.fuel.map_or("-".to_owned(), |f| f.to_string()),
            l.p50_us - native.p50_us,
            l.mean_us - native.mean_us,
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn print_cold(rows: &[ColdRow], runs: usize) {
    println!();
    println!("2. cold start of the greeter, fresh runtime each time (median of {runs} runs)");
    println!(
        "{:<22} {:>9} {:>14} {:>14} {:>15}",
        "case", "load_ms", "deploy wall ms", "wall max ms", "first call µs"
    );
    for r in rows {
        let wall = median(&r.wall).unwrap_or_default();
        let max = r.wall.iter().max().copied().unwrap_or_default();
        let first = median(&r.first_call).unwrap_or_default();
        println!(
            "{:<22} {:>9} {:>14.2} {:>14.2} {:>15.1}",
            r.case,
            median(&r.load_ms).unwrap_or_default(),
            ms(wall),
            ms(max),
            first.as_secs_f64() * 1e6,
        );
    }
}

fn print_density(d: &Density, greeter_peak: u64) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!();
    println!(
        "3. memory: {} hostile Sleep calls in flight at once",
        d.instances
    );
    println!("{:<40} {:>14}", "measure", "value");
    for (what, value) in [
        ("RSS before", format!("{:.1} MiB", mib(d.rss_before_kib))),
        (
            "RSS with all in flight",
            format!("{:.1} MiB", mib(d.rss_during_kib)),
        ),
        (
            "RSS after they answered",
            format!("{:.1} MiB", mib(d.rss_after_kib)),
        ),
        (
            "per instance (RSS delta / K)",
            format!("{:.0} KiB", d.per_instance_kib()),
        ),
        ("instances per GiB", format!("{:.0}", d.per_gib())),
        (
            "hostile memory_peak_bytes",
            format!("{:.2} MiB", d.memory_peak_bytes as f64 / 1048576.0),
        ),
        (
            "greeter memory_peak_bytes",
            format!("{:.2} MiB", greeter_peak as f64 / 1048576.0),
        ),
    ] {
        println!("{what:<40} {value:>14}");
    }
}

fn print_throughput(rows: &[ThroughputRow]) {
    println!();
    println!("4. throughput");
    println!(
        "{:<32} {:>7} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "target", "callers", "calls/s", "p50 µs", "p99 µs", "calls", "errors"
    );
    for r in rows {
        println!(
            "{:<32} {:>7} {:>10.0} {:>10.1} {:>10.1} {:>10} {:>8}",
            r.what,
            r.callers,
            r.calls_per_sec,
            r.latency.p50_us,
            r.latency.p99_us,
            r.calls,
            r.errors
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn print_warm_goal(warm: &[WarmRow]) {
    let added = warm[1].latency.p50_us - warm[0].latency.p50_us;
    println!(
        "goal: a warm call adds ≤ {GOAL_ADDED_US} µs: added p50 {added:.1} µs, {}",
        verdict(added <= GOAL_ADDED_US)
    );
}

fn print_cold_goal(cold: &[ColdRow]) {
    let cached = cold
        .iter()
        .find(|r| r.case == wasm::cold::CASES[1])
        .and_then(|r| median(&r.wall))
        .map_or(f64::NAN, ms);
    println!(
        "goal: cold start from the cache ≤ {GOAL_CACHED_MS} ms: deploy wall p50 {cached:.2} ms, {}",
        verdict(cached <= GOAL_CACHED_MS)
    );
}
