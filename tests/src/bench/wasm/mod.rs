//! The `wasm-bench` harness: what a call into a wasm service costs compared with the same
//! handler in native Rust, how long a deploy takes from scratch and from the compiled cache,
//! how much memory one live instance holds, and calls/s with many callers.
//!
//! Each measure is one module; this file holds what they share: the components under test
//! ([`Components`]), a [`Runtime`] on a temporary directory ([`Bench`]), the native baseline
//! handler ([`native_hello`]), latency summaries ([`Latency`]) and the process's RSS
//! ([`rss_kib`]). The binary `src/bin/wasm-bench.rs` runs them and prints the tables.

pub mod cold;
pub mod density;
pub mod latency;
pub mod throughput;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use micro_testkit::wasm::{build_example, build_guest, guest_manifest_path, manifest_path};
use micro_wasm_runtime::{Call, Host, Manifest, Reply, Runtime, RuntimeConfig, ServiceError};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The service and endpoint every call measure uses, and its request and expected answer.
pub const GREETER: &str = "greeter";
/// The greeter's endpoint.
pub const HELLO: &str = "Say.Hello";
/// The request body.
pub const HELLO_BODY: &[u8] = br#"{"name":"Ada"}"#;
/// The answer the greeter (and the native handler) must give.
pub const HELLO_REPLY: &[u8] = br#"{"message":"Hello, Ada!"}"#;
/// The test guest with the `Echo` and `Sleep` endpoints.
pub const HOSTILE: &str = "hostile";
/// Upper bound on one call of any measure; longer counts as a failure.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The components under test, built and read once.
#[derive(Clone)]
pub struct Components {
    /// `examples/greeter`'s manifest.
    pub greeter_manifest: Manifest,
    /// `greeter.wasm`.
    pub greeter: Vec<u8>,
    /// `tests/guests/hostile`'s manifest.
    pub hostile_manifest: Manifest,
    /// `hostile.wasm`.
    pub hostile: Vec<u8>,
}

impl Components {
    /// Builds the examples and the test guests (cargo, `wasm32-wasip2`, release) on a blocking
    /// thread, then reads the greeter's and the hostile guest's components and manifests.
    pub async fn build() -> Result<Self> {
        let (greeter, hostile) =
            tokio::task::spawn_blocking(|| (build_example(GREETER), build_guest(HOSTILE)))
                .await
                .context("building the wasm components")?;
        Ok(Self {
            greeter_manifest: read_manifest(&manifest_path(GREETER))?,
            greeter: read(&greeter)?,
            hostile_manifest: read_manifest(&guest_manifest_path(HOSTILE))?,
            hostile: read(&hostile)?,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_manifest(path: &Path) -> Result<Manifest> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Manifest::parse(&text).with_context(|| format!("parsing {}", path.display()))
}

/// A [`Host`] for services that never leave the sandbox: every call, publish and append is
/// refused with 501. The greeter and the hostile guest's `Echo` and `Sleep` use none of them.
pub struct NoHost;

fn refused(what: &str) -> ServiceError {
    ServiceError::runtime(501, format!("wasm-bench has no network: {what} refused"))
}

impl Host for NoHost {
    fn call(
        &self,
        _from: &str,
        _service: String,
        _endpoint: String,
        _body: Vec<u8>,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, ServiceError>> {
        Box::pin(async { Err(refused("call")) })
    }

    fn publish(
        &self,
        _from: &str,
        _topic: String,
        _body: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), ServiceError>> {
        Box::pin(async { Err(refused("publish")) })
    }

    fn append_event(
        &self,
        _from: &str,
        _topic: String,
        _body: Vec<u8>,
    ) -> BoxFuture<'static, Result<u64, ServiceError>> {
        Box::pin(async { Err(refused("append-event")) })
    }
}

/// A [`Runtime`] with its sled db, both under a directory of their own. The runtime's files
/// are in `<root>/wasm`, the db in `<root>/db`, so a second [`Bench::open`] on the same root
/// (after the first is dropped) finds the compiled-code cache and the deployment records, as
/// a restarted node does.
pub struct Bench {
    /// The runtime.
    pub runtime: Runtime,
    /// Dropped after the runtime (field order), which releases the db's lock.
    _db: sled::Db,
}

impl Bench {
    /// Opens a runtime on `root` with `max_instances` pool slots and default limits.
    pub fn open(root: &Path, max_instances: u32) -> Result<Self> {
        let db_path = root.join("db");
        let db = sled::open(&db_path).with_context(|| format!("opening {}", db_path.display()))?;
        let mut config = RuntimeConfig::new(root.join("wasm"));
        config.max_instances = max_instances;
        let runtime = Runtime::open(config, &db, Arc::new(NoHost))
            .with_context(|| format!("opening the runtime on {}", root.display()))?;
        Ok(Self { runtime, _db: db })
    }

    /// Opens a runtime on a fresh temporary directory, returned with it (keep it alive).
    pub fn temporary(max_instances: u32) -> Result<(Self, TempDir)> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        Ok((Self::open(dir.path(), max_instances)?, dir))
    }
}

/// The greeter's `Say.Hello` call for Ada.
pub fn hello_call() -> Call {
    Call {
        endpoint: HELLO.to_owned(),
        content_type: "application/json".to_owned(),
        body: HELLO_BODY.to_vec(),
        timeout: Some(CALL_TIMEOUT),
        ..Call::default()
    }
}

/// Calls the greeter on `runtime` and checks the answer; returns the fuel the call used.
pub async fn call_greeter(runtime: &Runtime) -> Result<u64> {
    let reply = runtime.call(GREETER, None, hello_call()).await?;
    check_hello(&reply)?;
    Ok(reply.fuel_used)
}

/// Fails unless `reply` is the greeter's answer to Ada.
pub fn check_hello(reply: &Reply) -> Result<()> {
    ensure!(
        reply.body == HELLO_REPLY,
        "unexpected greeting: {}",
        String::from_utf8_lossy(&reply.body)
    );
    Ok(())
}

/// The greeter's handler in native Rust, the baseline: parse `{"name":…}` with serde_json,
/// format the greeting, serialize `{"message":…}`. (It parses into a `Value` rather than a
/// derived struct, which costs a few hundred nanoseconds more, so the overhead it shows for
/// wasm is, if anything, a little low.)
pub fn native_hello(body: &[u8]) -> Result<Vec<u8>> {
    let request: Value = serde_json::from_slice(body).context("request is not JSON")?;
    let name = request
        .get("name")
        .and_then(Value::as_str)
        .context("request has no `name` string")?;
    ensure!(!name.is_empty(), "name is empty");
    let message = format!("Hello, {name}!");
    Ok(serde_json::to_vec(&json!({ "message": message }))?)
}

/// A latency histogram in nanoseconds, 3 significant digits, up to twice [`CALL_TIMEOUT`].
pub fn histogram() -> Histogram<u64> {
    let max = u64::try_from(2 * CALL_TIMEOUT.as_nanos()).unwrap_or(u64::MAX);
    Histogram::new_with_bounds(1, max, 3).expect("1 ns to 20 s at 3 digits is a valid range")
}

/// Records `d` in `h` (clamped to its range).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
}

/// A latency distribution, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Calls measured.
    pub calls: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl Latency {
    /// Summarises a histogram of nanoseconds (NaN when it is empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        let empty = h.is_empty();
        let us = |ns: f64| if empty { f64::NAN } else { ns / 1_000.0 };
        Self {
            calls: h.len(),
            p50_us: us(h.value_at_quantile(0.50) as f64),
            p99_us: us(h.value_at_quantile(0.99) as f64),
            mean_us: us(h.mean()),
        }
    }
}

/// This process's resident set size, in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("/proc/self/status has no VmRSS line")?;
    line.trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("parsing `{line}`"))
}

/// The median of `values` (the upper one of an even count); `None` when empty.
pub fn median<T: Copy + Ord>(values: &[T]) -> Option<T> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied()
}
