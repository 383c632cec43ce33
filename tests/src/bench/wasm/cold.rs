//! Cold start: how long a deploy of the greeter takes on a fresh runtime, from scratch (an
//! empty directory: engine, compile, check, probe) and from the compiled-code cache (a new
//! runtime on the same directory, as after a node restart), then the first call after it.
//!
//! Each round uses a directory of its own and goes through four cases in order:
//!
//! 1. `scratch`: a fresh runtime on the empty directory deploys the greeter (compiles it).
//! 2. `cache, deploy`: a fresh runtime on the same directory deploys it again; the machine
//!    code comes from the cache. In that runtime, `cache, engine warm` then deploys it under a
//!    second name: the same work minus creating the engine (then removes that name again).
//! 3. `cache, restore`: a fresh runtime on the same directory brings the greeter back from its
//!    deployment record with `Runtime::restore`, which is what a restarting node does.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use micro_wasm_runtime::{Deployed, Runtime};

use super::{Bench, Components, GREETER, check_hello, hello_call};

/// Pool slots of the runtimes made here: the default.
const MAX_INSTANCES: u32 = 256;
/// The greeter's second name in the `cache, engine warm` case.
const SECOND_NAME: &str = "greeter-2";

/// The cases, in the order of the table.
pub const CASES: [&str; 4] = [
    "scratch (compile)",
    "cache, deploy",
    "cache, engine warm",
    "cache, restore",
];

/// What one case measured over all rounds.
#[derive(Debug, Clone, Default)]
pub struct ColdRow {
    /// One of [`CASES`].
    pub case: &'static str,
    /// `Deployed::load_ms` of each round.
    pub load_ms: Vec<u64>,
    /// Wall time of the deploy (or restore) call, each round.
    pub wall: Vec<Duration>,
    /// The first call after it, each round.
    pub first_call: Vec<Duration>,
}

/// Runs `rounds` rounds of the four cases.
pub async fn cold(components: &Components, rounds: usize) -> Result<Vec<ColdRow>> {
    let mut rows: Vec<ColdRow> = CASES
        .iter()
        .map(|&case| ColdRow {
            case,
            ..ColdRow::default()
        })
        .collect();
    let manifest = &components.greeter_manifest;
    for _ in 0..rounds {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;

        let bench = Bench::open(dir.path(), MAX_INSTANCES)?;
        let bytes = components.greeter.clone();
        let started = Instant::now();
        let deployed = bench.runtime.deploy(manifest.clone(), bytes).await?;
        rows[0].add(
            &deployed,
            started.elapsed(),
            first_call(&bench.runtime, GREETER).await?,
        );
        drop(bench);

        let bench = Bench::open(dir.path(), MAX_INSTANCES)?;
        let bytes = components.greeter.clone();
        let started = Instant::now();
        let deployed = bench.runtime.deploy(manifest.clone(), bytes).await?;
        rows[1].add(
            &deployed,
            started.elapsed(),
            first_call(&bench.runtime, GREETER).await?,
        );

        let mut second = manifest.clone();
        second.name = SECOND_NAME.to_owned();
        let bytes = components.greeter.clone();
        let started = Instant::now();
        let deployed = bench.runtime.deploy(second, bytes).await?;
        let elapsed = started.elapsed();
        rows[2].add(
            &deployed,
            elapsed,
            first_call(&bench.runtime, SECOND_NAME).await?,
        );
        bench.runtime.remove(SECOND_NAME).await?;
        drop(bench);

        let bench = Bench::open(dir.path(), MAX_INSTANCES)?;
        let started = Instant::now();
        let restored = bench.runtime.restore().await;
        let elapsed = started.elapsed();
        let deployed = match restored.as_slice() {
            [Ok(deployed)] if deployed.name == GREETER => deployed.clone(),
            [Err((name, e))] => bail!("restoring {name}: {e}"),
            other => bail!("restore brought back {other:?}, expected the greeter alone"),
        };
        rows[3].add(
            &deployed,
            elapsed,
            first_call(&bench.runtime, GREETER).await?,
        );
    }
    Ok(rows)
}

impl ColdRow {
    fn add(&mut self, deployed: &Deployed, wall: Duration, first_call: Duration) {
        self.load_ms.push(deployed.load_ms);
        self.wall.push(wall);
        self.first_call.push(first_call);
    }
}

/// Times the first call of `name` (a deployed greeter) on `runtime` and checks its answer.
async fn first_call(runtime: &Runtime, name: &str) -> Result<Duration> {
    let started = Instant::now();
    let reply = runtime.call(name, None, hello_call()).await?;
    let elapsed = started.elapsed();
    check_hello(&reply)?;
    Ok(elapsed)
}
