//! Instances per GiB: K calls of the hostile guest's `Sleep` held in flight at once (each a
//! live instance waiting on the monotonic clock, using no CPU), and the growth of this
//! process's RSS while they are.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use micro_testkit::eventually;
use micro_wasm_runtime::{Call, Runtime};
use tokio::task::JoinSet;

use super::{Components, HOSTILE, rss_kib};

/// How long all K calls may take to be in flight (well under the time each one sleeps).
const IN_FLIGHT_PATIENCE: Duration = Duration::from_secs(2);
/// The hostile guest's own per-call limit is 2 s; the sleeping calls need more.
const SLEEP_TIMEOUT_MS: u64 = 30_000;

/// What the density measure found.
#[derive(Debug, Clone, Copy)]
pub struct Density {
    /// Instances held at once.
    pub instances: u32,
    /// RSS before the first of them started, KiB.
    pub rss_before_kib: u64,
    /// RSS with all of them in flight, KiB.
    pub rss_during_kib: u64,
    /// RSS once they had all answered, KiB.
    pub rss_after_kib: u64,
    /// The largest linear memory one hostile instance reached, bytes (from its status).
    pub memory_peak_bytes: u64,
}

impl Density {
    /// RSS growth per live instance, KiB.
    pub fn per_instance_kib(&self) -> f64 {
        self.rss_during_kib.saturating_sub(self.rss_before_kib) as f64 / f64::from(self.instances)
    }

    /// Instances that fit in 1 GiB at [`Density::per_instance_kib`] each.
    pub fn per_gib(&self) -> f64 {
        (1024.0 * 1024.0) / self.per_instance_kib()
    }
}

/// The hostile guest's `Sleep` call for `ms` milliseconds.
fn sleep_call(ms: u64) -> Call {
    Call {
        endpoint: "Sleep".to_owned(),
        content_type: "application/json".to_owned(),
        body: format!(r#"{{"ms":{ms}}}"#).into_bytes(),
        timeout: Some(Duration::from_millis(SLEEP_TIMEOUT_MS)),
        ..Call::default()
    }
}

/// Deploys the hostile guest on `runtime` allowing `k` concurrent calls (the runtime needs at
/// least `k` pool slots) and calls that sleep up to 30 s.
pub async fn deploy_hostile(runtime: &Runtime, components: &Components, k: u32) -> Result<()> {
    let mut manifest = components.hostile_manifest.clone();
    manifest.limits.max_concurrent = Some(k);
    manifest.limits.timeout_ms = Some(SLEEP_TIMEOUT_MS);
    runtime
        .deploy(manifest, components.hostile.clone())
        .await
        .context("deploying the hostile guest")?;
    Ok(())
}

/// With the hostile guest deployed by [`deploy_hostile`] for `k`: makes one short call to warm
/// it, then starts `k` calls that sleep `sleep` each and samples RSS once
/// `status().instances == k`, and again once they have all answered.
pub async fn density(runtime: &Runtime, k: u32, sleep: Duration) -> Result<Density> {
    ensure!(
        sleep > IN_FLIGHT_PATIENCE,
        "the calls must sleep longer than the {IN_FLIGHT_PATIENCE:?} allowed to start them all"
    );
    let warm = runtime.call(HOSTILE, None, sleep_call(0)).await?;
    ensure!(
        warm.body == br#"{"slept_ms":0}"#,
        "Sleep answered {}",
        String::from_utf8_lossy(&warm.body)
    );

    let ms = u64::try_from(sleep.as_millis()).context("sleep too long")?;
    let rss_before_kib = rss_kib()?;
    let mut calls = JoinSet::new();
    for _ in 0..k {
        let runtime = runtime.clone();
        calls.spawn(async move { runtime.call(HOSTILE, None, sleep_call(ms)).await });
    }
    let in_flight = || {
        runtime
            .service(HOSTILE)
            .map_or(0, |status| status.instances)
    };
    eventually(
        &format!("{k} Sleep calls in flight"),
        IN_FLIGHT_PATIENCE,
        || {
            let n = in_flight();
            async move { Ok(n >= k) }
        },
    )
    .await?;
    let rss_during_kib = rss_kib()?;
    ensure!(
        in_flight() == k,
        "{} instances in flight after sampling, expected {k}: some call ended early",
        in_flight()
    );

    let want = format!(r#"{{"slept_ms":{ms}}}"#);
    while let Some(joined) = calls.join_next().await {
        let reply = joined.context("a Sleep task panicked")??;
        ensure!(
            reply.body == want.as_bytes(),
            "Sleep answered {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let rss_after_kib = rss_kib()?;
    let status = runtime
        .service(HOSTILE)
        .context("the hostile guest disappeared")?;
    Ok(Density {
        instances: k,
        rss_before_kib,
        rss_during_kib,
        rss_after_kib,
        memory_peak_bytes: status.memory_peak_bytes,
    })
}
