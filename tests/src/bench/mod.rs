//! Request/response benchmark harness used by the `rpc-bench` binary.
//!
//! A transport under test implements [`Transport`] (which hands out one [`Caller`] per
//! concurrent caller); [`measure`] / [`measure_all`] drive it and return [`Stats`];
//! [`print_report`] prints the table and the ratios against a baseline transport.
//!
//! To add a transport: put it in a new file next to this one (e.g. `overlay.rs`), declare it
//! below, and add one `rows.extend(measure_all(&it, &plan).await?)` line in `rpc-bench.rs`.

pub mod grpc;
pub mod overlay;
pub mod tcp;

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;

/// Upper bound on one call; a call that takes longer counts as an error.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// One transport under test, already set up (server listening on loopback, client ready).
///
/// [`measure`] asks it for one [`Caller`] per concurrent caller before the clock starts.
pub trait Transport: Send + Sync {
    /// What makes the calls; see [`Caller`].
    type Caller: Caller;

    /// Row label in the table, e.g. `"tcp"`, `"tonic"`.
    fn name(&self) -> String;

    /// A new independent caller: its own connection (raw TCP), or a clone of a shared
    /// client/handle (one gRPC channel multiplexed over HTTP/2, an overlay node handle).
    fn caller(&self) -> impl Future<Output = Result<Self::Caller>> + Send;
}

/// One concurrent caller. It makes sequential calls: the next one starts when the previous
/// one has returned.
pub trait Caller: Send + 'static {
    /// Sends `payload` as one request and waits for the reply; returns the reply payload's
    /// length (the harness checks it equals `payload.len()`).
    fn call(&mut self, payload: Bytes) -> impl Future<Output = Result<usize>> + Send;
}

/// What to run: the payload, the caller counts, the warm-up and the measuring window.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Request payload; a correct reply has the same length.
    pub payload: Bytes,
    /// One run per entry, with that many concurrent callers.
    pub callers: Vec<usize>,
    /// Calls made but not recorded, before each window.
    pub warmup: Duration,
    /// Measuring window of each run.
    pub window: Duration,
}

/// Result of one run: one transport, one caller count.
#[derive(Debug, Clone)]
pub struct Stats {
    /// [`Transport::name`].
    pub transport: String,
    /// Concurrent callers.
    pub callers: usize,
    /// Correct replies completed inside the window.
    pub calls: u64,
    /// Failed calls, timed-out calls and replies of the wrong length, inside the window.
    pub errors: u64,
    /// `calls` / window.
    pub calls_per_sec: f64,
    /// Median latency of the correct calls, µs.
    pub p50_us: f64,
    /// 99th percentile latency of the correct calls, µs.
    pub p99_us: f64,
}

/// Latency histogram in nanoseconds, 3 significant digits, up to twice [`CALL_TIMEOUT`].
fn histogram() -> Histogram<u64> {
    let max = 2 * CALL_TIMEOUT.as_nanos() as u64;
    Histogram::new_with_bounds(1, max, 3).expect("valid histogram bounds")
}

/// One run: `callers` concurrent callers of `t`, each calling in a loop for
/// `plan.warmup + plan.window`; only calls that complete inside the window are counted.
pub async fn measure<T: Transport>(t: &T, callers: usize, plan: &Plan) -> Result<Stats> {
    if callers == 0 {
        bail!("need at least one caller");
    }
    let mut ready = Vec::with_capacity(callers);
    for i in 0..callers {
        let caller = tokio::time::timeout(CALL_TIMEOUT, t.caller())
            .await
            .with_context(|| format!("{}: caller {i} timed out", t.name()))?
            .with_context(|| format!("{}: caller {i}", t.name()))?;
        ready.push(caller);
    }

    let from = Instant::now() + plan.warmup;
    let until = from + plan.window;
    let mut tasks = JoinSet::new();
    for mut caller in ready {
        let payload = plan.payload.clone();
        tasks.spawn(async move {
            let want = payload.len();
            let mut hist = histogram();
            let mut errors = 0u64;
            loop {
                let start = Instant::now();
                if start >= until {
                    break;
                }
                let reply = tokio::time::timeout(CALL_TIMEOUT, caller.call(payload.clone())).await;
                let done = Instant::now();
                if done < from {
                    continue; // warm-up
                }
                match reply {
                    Ok(Ok(len)) if len == want => {
                        if done <= until {
                            hist.saturating_record((done - start).as_nanos() as u64);
                        }
                    }
                    _ => errors += 1,
                }
            }
            (hist, errors)
        });
    }

    let mut hist = histogram();
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        let (h, e) = joined.context("caller task panicked")?;
        hist.add(&h).context("merging histograms")?;
        errors += e;
    }
    let calls = hist.len();
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1_000.0;
    Ok(Stats {
        transport: t.name(),
        callers,
        calls,
        errors,
        calls_per_sec: calls as f64 / plan.window.as_secs_f64(),
        p50_us: if calls == 0 { f64::NAN } else { us(0.50) },
        p99_us: if calls == 0 { f64::NAN } else { us(0.99) },
    })
}

/// [`measure`] once per entry of `plan.callers`, printing progress on stderr.
pub async fn measure_all<T: Transport>(t: &T, plan: &Plan) -> Result<Vec<Stats>> {
    let mut rows = Vec::with_capacity(plan.callers.len());
    for &callers in &plan.callers {
        eprintln!("rpc-bench: {} with {callers} caller(s)…", t.name());
        rows.push(measure(t, callers, plan).await?);
    }
    Ok(rows)
}

/// Prints the results, then each row's ratios to the `baseline` row with the same number of
/// callers (throughput ratio: higher is better; p50 ratio: lower is better).
pub fn print_report(rows: &[Stats], baseline: &str) {
    let w = rows
        .iter()
        .map(|r| r.transport.len())
        .chain([9])
        .max()
        .unwrap_or(9);
    println!(
        "{:<w$} {:>7} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "transport", "callers", "calls/s", "p50 µs", "p99 µs", "calls", "errors"
    );
    for r in rows {
        println!(
            "{:<w$} {:>7} {:>12.0} {:>10.1} {:>10.1} {:>10} {:>8}",
            r.transport, r.callers, r.calls_per_sec, r.p50_us, r.p99_us, r.calls, r.errors
        );
    }
    println!();
    println!(
        "{:<w$} {:>7} {:>16} {:>16}",
        "transport",
        "callers",
        format!("calls/s ÷ {baseline}"),
        format!("p50 ÷ {baseline}"),
    );
    for r in rows {
        let base = rows
            .iter()
            .find(|b| b.transport == baseline && b.callers == r.callers);
        let ratio = |x: f64, y: f64| {
            if y > 0.0 && x.is_finite() && y.is_finite() {
                format!("{:.2}", x / y)
            } else {
                "-".to_owned()
            }
        };
        let (tput, p50) = match base {
            Some(b) => (
                ratio(r.calls_per_sec, b.calls_per_sec),
                ratio(r.p50_us, b.p50_us),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "{:<w$} {:>7} {:>16} {:>16}",
            r.transport, r.callers, tput, p50
        );
    }
}
