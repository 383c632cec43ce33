//! Warm call overhead: one caller, sequential calls, the greeter on the runtime against the
//! same handler in native Rust; and the hostile guest's `Echo` with an empty body, a call
//! that does (almost) nothing but start a fresh instance, to tell the cost of instantiating
//! from the cost of the handler's work.

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use micro_wasm_runtime::{Call, Runtime};

use super::{
    CALL_TIMEOUT, HELLO_BODY, HELLO_REPLY, HOSTILE, Latency, call_greeter, histogram, native_hello,
    record,
};

/// Calls made before the clock starts, so caches, the pool's slots and the allocator are warm.
pub const WARMUP_CALLS: u32 = 500;

/// One row of the warm-call table.
#[derive(Debug, Clone)]
pub struct WarmRow {
    /// What was called.
    pub what: &'static str,
    /// Its latency.
    pub latency: Latency,
    /// Fuel (wasm instructions) per call; `None` for native code.
    pub fuel: Option<u64>,
}

/// Calls `f` sequentially: [`WARMUP_CALLS`] not counted, then as many as fit in `window`.
/// Fails at the first failed call: in this measure every call must succeed.
async fn sequential<F, Fut>(window: Duration, mut f: F) -> Result<Latency>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    for _ in 0..WARMUP_CALLS {
        f().await?;
    }
    let mut hist = histogram();
    let until = Instant::now() + window;
    loop {
        let start = Instant::now();
        if start >= until {
            break;
        }
        tokio::time::timeout(CALL_TIMEOUT, f())
            .await
            .context("call timed out")??;
        record(&mut hist, start.elapsed());
    }
    Ok(Latency::of(&hist))
}

/// Measures the native handler, the greeter and the hostile guest's empty `Echo`, each for
/// `window`. `runtime` must have the greeter and the hostile guest deployed.
pub async fn warm(runtime: &Runtime, window: Duration) -> Result<Vec<WarmRow>> {
    ensure!(
        native_hello(HELLO_BODY)? == HELLO_REPLY,
        "the native handler's answer differs from the greeter's"
    );
    let native = sequential(window, || async {
        black_box(native_hello(black_box(HELLO_BODY))?);
        Ok(())
    })
    .await?;

    // The last call's fuel; every call of a deterministic handler uses the same.
    let greeter_fuel = &Cell::new(0);
    let greeter = sequential(window, || async move {
        greeter_fuel.set(call_greeter(runtime).await?);
        Ok(())
    })
    .await?;

    let echo_fuel = &Cell::new(0);
    let echo = sequential(window, || async move {
        let reply = runtime
            .call(
                HOSTILE,
                None,
                Call {
                    endpoint: "Echo".to_owned(),
                    timeout: Some(CALL_TIMEOUT),
                    ..Call::default()
                },
            )
            .await?;
        ensure!(reply.body.is_empty(), "Echo of nothing answered something");
        echo_fuel.set(reply.fuel_used);
        Ok(())
    })
    .await?;

    Ok(vec![
        WarmRow {
            what: "native handler (serde_json)",
            latency: native,
            fuel: None,
        },
        WarmRow {
            what: "wasm greeter Say.Hello",
            latency: greeter,
            fuel: Some(greeter_fuel.get()),
        },
        WarmRow {
            what: "wasm hostile Echo (empty)",
            latency: echo,
            fuel: Some(echo_fuel.get()),
        },
    ])
}
