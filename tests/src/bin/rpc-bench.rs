//! Request/response latency and throughput of transports on loopback (`127.0.0.1` only):
//! a 1 KiB request answered by a 1 KiB reply, with 1 and with 64 concurrent callers.
//!
//! ```sh
//! cargo run --release -p micro-testkit --bin rpc-bench -- --secs 3
//! ```
//!
//! Transports: `tcp` (raw tokio TCP echo of length-prefixed frames, one connection per
//! caller), `tonic` (gRPC unary over one shared HTTP/2 channel), `overlay-rpc` (Micro's
//! `/micro/rpc/1.0.0` between two in-process nodes over libp2p TCP + Noise + Yamux, answered
//! by the built-in `node` service's `Node.Ping` echo) and `micro-call` (the same call through
//! the node's service client: provider choice, deadline, retries). Each run warms up, then
//! counts the calls that complete in a fixed window. Prints p50/p99 latency (µs) and calls/s,
//! then every row's ratios to `tonic` with the same number of callers (`--only tonic,overlay-rpc`
//! runs a subset). Numbers go to `docs/BENCHMARKS.md`.
//!
//! The harness is in `tests/src/bench/`: a new transport implements `bench::Transport`
//! (handing out `bench::Caller`s) and gets one `measure_all` line in `main` below.

#[path = "../bench/mod.rs"]
mod bench;

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use bytes::Bytes;
use clap::Parser;

use bench::grpc::TonicEcho;
use bench::overlay::{MicroCall, OverlayRpc};
use bench::tcp::{MAX_FRAME, TcpEcho};
use bench::{Plan, measure_all, print_report};

/// Ratios in the second table are relative to this transport.
const BASELINE: &str = "tonic";
/// Upper bound on `--callers` entries.
const MAX_CALLERS: usize = 1024;
/// Every transport, in the order they run; `--only` picks among them.
const TRANSPORTS: [&str; 4] = ["tcp", "tonic", "overlay-rpc", "micro-call"];

#[derive(Parser, Debug)]
#[command(about = "Loopback request/response benchmark: raw TCP, tonic gRPC, Micro overlay RPC")]
struct Args {
    /// Measuring window of each run, in seconds.
    #[arg(long, default_value_t = 3)]
    secs: u64,
    /// Request payload size in bytes; the reply has the same size.
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    /// Warm-up before each window, in milliseconds (calls made but not counted).
    #[arg(long, default_value_t = 500)]
    warmup_ms: u64,
    /// Concurrent callers, one run per value (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 64])]
    callers: Vec<usize>,
    /// Run only these transports (comma-separated, e.g. `tonic,overlay-rpc`); all if absent.
    /// Without `tonic` the ratios are `-`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.secs >= 1, "--secs must be at least 1");
    ensure!(
        args.payload <= MAX_FRAME,
        "--payload must be at most {MAX_FRAME} bytes"
    );
    ensure!(
        !args.callers.is_empty() && args.callers.iter().all(|&c| (1..=MAX_CALLERS).contains(&c)),
        "--callers values must be in 1..={MAX_CALLERS}"
    );
    if let Some(unknown) = args.only.iter().find(|t| !TRANSPORTS.contains(&t.as_str())) {
        bail!(
            "--only: unknown transport `{unknown}` (known: {})",
            TRANSPORTS.join(", ")
        );
    }
    let only = args.only;
    let wanted = |name: &str| only.is_empty() || only.iter().any(|t| t == name);
    let plan = Plan {
        payload: Bytes::from_iter((0..args.payload).map(|i| (i as u8).wrapping_mul(31) ^ 0x5a)),
        callers: args.callers,
        warmup: Duration::from_millis(args.warmup_ms),
        window: Duration::from_secs(args.secs),
    };

    let mut rows = Vec::new();
    if wanted("tcp") {
        let tcp = TcpEcho::start().await?;
        rows.extend(measure_all(&tcp, &plan).await?);
    }
    if wanted("tonic") {
        let tonic = TonicEcho::start().await?;
        rows.extend(measure_all(&tonic, &plan).await?);
    }
    if wanted("overlay-rpc") {
        let overlay_rpc = OverlayRpc::start().await?;
        rows.extend(measure_all(&overlay_rpc, &plan).await?);
        overlay_rpc.shutdown().await;
    }
    if wanted("micro-call") {
        let micro_call = MicroCall::start().await?;
        rows.extend(measure_all(&micro_call, &plan).await?);
        micro_call.shutdown().await;
    }
    // More transports: start one, then `rows.extend(measure_all(&it, &plan).await?);`.

    println!(
        "rpc-bench: {} B request, {} B reply, {:?} warm-up + {:?} window per run, loopback 127.0.0.1, {} threads, {} build",
        plan.payload.len(),
        plan.payload.len(),
        plan.warmup,
        plan.window,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "DEBUG (use --release)"
        } else {
            "release"
        },
    );
    print_report(&rows, BASELINE);
    Ok(())
}
