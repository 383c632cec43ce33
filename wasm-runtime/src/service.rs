//! One deployed service: its pre-linked component, limits, counters and crash policy, and
//! the path of one call through a fresh instance.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tracing::{debug, warn};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use crate::bindings::{ServicePre, WitMessage, WitRequest, WitSource};
use crate::config::{CallLimits, RuntimeConfig};
use crate::error::ServiceError;
use crate::host::{CallState, Limiter, ServiceCtx};
use crate::manifest::{Manifest, Source};

/// One call to a service.
#[derive(Debug, Clone, Default)]
pub struct Call {
    /// The endpoint.
    pub endpoint: String,
    /// Metadata headers.
    pub headers: Vec<(String, String)>,
    /// MIME type of the body.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// The caller's deadline; the service's own limit applies too.
    pub timeout: Option<Duration>,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// MIME type of the body.
    pub content_type: String,
    /// Metadata headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Fuel the call used.
    pub fuel_used: u64,
}

/// A message for a service's `on-message`.
#[derive(Debug, Clone)]
pub struct Message {
    /// Broker or events.
    pub source: Source,
    /// The topic.
    pub topic: String,
    /// Its unique id.
    pub id: String,
    /// The publishing peer.
    pub publisher: String,
    /// MIME type of the body.
    pub content_type: String,
    /// The payload.
    pub body: Vec<u8>,
}

/// Whether a service takes calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Taking calls.
    Running,
    /// Paused after repeated crashes; calls get 503 until the pause ends.
    Paused,
}

/// What `micro-node status` shows of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Content hash of its component.
    pub digest: String,
    /// Running or paused.
    pub state: ServiceState,
    /// Instances alive now (calls in progress).
    pub instances: u32,
    /// Calls answered (messages included).
    pub calls: u64,
    /// Calls that ended in an error.
    pub errors: u64,
    /// Calls ended by a trap (crash, out of memory, stack overflow).
    pub crashes: u64,
    /// Calls ended by the deadline or fuel limit.
    pub timeouts: u64,
    /// Fuel used by all calls.
    pub fuel_used: u64,
    /// The largest linear memory an instance reached, in bytes.
    pub memory_peak_bytes: u64,
    /// Linear memory cap per instance, in bytes.
    pub memory_limit_bytes: u64,
    /// Bytes in its key-value store.
    pub store_bytes: u64,
    /// When it was deployed, Unix ms.
    pub deployed_at_ms: u64,
    /// The manifest it runs with.
    pub manifest: Manifest,
    /// False for an older version that answers only calls pinning it.
    #[serde(default = "yes")]
    pub current: bool,
}

fn yes() -> bool {
    true
}

/// Calls that may wait for a free instance, per allowed concurrent call.
const QUEUE_FACTOR: u64 = 4;

#[derive(Debug, Default)]
struct Stats {
    in_flight: AtomicU32,
    waiting: AtomicU64,
    calls: AtomicU64,
    errors: AtomicU64,
    crashes: AtomicU64,
    timeouts: AtomicU64,
    fuel: AtomicU64,
    memory_peak: AtomicU64,
}

/// The crash policy's memory: consecutive crashes and the pause they earned.
#[derive(Debug, Default)]
struct Crashes {
    consecutive: u32,
    paused_until: Option<Instant>,
}

/// The error a deadline raises inside the guest, told apart from other traps.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// A deployed service.
pub(crate) struct Deployment {
    pub(crate) manifest: Manifest,
    pub(crate) digest: String,
    pub(crate) deployed_at_ms: u64,
    limits: CallLimits,
    engine: Engine,
    pre: ServicePre<CallState>,
    pub(crate) ctx: Arc<ServiceCtx>,
    permits: Arc<Semaphore>,
    stats: Stats,
    crashes: Mutex<Crashes>,
    crash_threshold: u32,
    crash_backoff: Duration,
    max_crash_backoff: Duration,
}

/// How a call ended inside the sandbox.
enum Outcome<T> {
    Done(T),
    Failed(ServiceError),
    Crashed(ServiceError),
    TimedOut(ServiceError),
}

impl Deployment {
    pub(crate) fn new(
        manifest: Manifest,
        digest: String,
        engine: Engine,
        pre: ServicePre<CallState>,
        ctx: Arc<ServiceCtx>,
        config: &RuntimeConfig,
    ) -> Self {
        let limits = manifest.call_limits(config);
        Self {
            permits: Arc::new(Semaphore::new(limits.max_concurrent as usize)),
            deployed_at_ms: crate::logs::now_ms(),
            manifest,
            digest,
            limits,
            engine,
            pre,
            ctx,
            stats: Stats::default(),
            crashes: Mutex::new(Crashes::default()),
            crash_threshold: config.crash_threshold.max(1),
            crash_backoff: config.crash_backoff,
            max_crash_backoff: config.max_crash_backoff,
        }
    }

    pub(crate) fn status(&self) -> ServiceStatus {
        let paused = self
            .crashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .paused_until
            .is_some_and(|until| until > Instant::now());
        let s = &self.stats;
        ServiceStatus {
            name: self.manifest.name.clone(),
            version: self.manifest.version.clone(),
            digest: self.digest.clone(),
            state: if paused {
                ServiceState::Paused
            } else {
                ServiceState::Running
            },
            instances: s.in_flight.load(Ordering::Relaxed),
            calls: s.calls.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            crashes: s.crashes.load(Ordering::Relaxed),
            timeouts: s.timeouts.load(Ordering::Relaxed),
            fuel_used: s.fuel.load(Ordering::Relaxed),
            memory_peak_bytes: s.memory_peak.load(Ordering::Relaxed),
            memory_limit_bytes: self.limits.memory_bytes as u64,
            store_bytes: self.ctx.kv.used(),
            current: true,
            deployed_at_ms: self.deployed_at_ms,
            manifest: self.manifest.clone(),
        }
    }

    fn log(&self, message: &str) {
        self.ctx.logs.push("node", &self.manifest.version, message);
    }

    /// Answers one call in a fresh instance.
    pub(crate) async fn call(&self, call: Call) -> Result<Reply, ServiceError> {
        let timeout = call
            .timeout
            .map_or(self.limits.timeout, |t| t.min(self.limits.timeout));
        let request = WitRequest {
            endpoint: call.endpoint,
            headers: call.headers,
            content_type: call.content_type,
            body: call.body,
        };
        let max_response = self.limits.max_response_bytes;
        let (outcome, fuel) = self
            .run(timeout, move |instance, store| {
                Box::pin(async move {
                    instance
                        .micro_service_handler()
                        .call_handle(store, &request)
                        .await
                })
            })
            .await?;
        let outcome = match outcome {
            Outcome::Done(Ok(response)) if response.body.len() > max_response => {
                Outcome::Failed(ServiceError::runtime(
                    413,
                    format!(
                        "the response of {} bytes exceeds the service's {max_response}-byte limit",
                        response.body.len()
                    ),
                ))
            }
            Outcome::Done(Ok(response)) => Outcome::Done(Reply {
                content_type: if response.content_type.is_empty() {
                    "application/json".to_owned()
                } else {
                    response.content_type
                },
                headers: response.headers,
                body: response.body,
                fuel_used: fuel,
            }),
            Outcome::Done(Err(e)) => Outcome::Failed(self.guest_error(e)),
            Outcome::Failed(e) => Outcome::Failed(e),
            Outcome::Crashed(e) => Outcome::Crashed(e),
            Outcome::TimedOut(e) => Outcome::TimedOut(e),
        };
        self.settle(outcome)
    }

    /// Hands one message to the service's `on-message`.
    pub(crate) async fn deliver(&self, message: Message) -> Result<(), ServiceError> {
        let message = WitMessage {
            source: match message.source {
                Source::Broker => WitSource::Broker,
                Source::Events => WitSource::Events,
            },
            topic: message.topic,
            id: message.id,
            publisher: message.publisher,
            content_type: message.content_type,
            body: message.body,
        };
        let (outcome, _fuel) = self
            .run(self.limits.timeout, move |instance, store| {
                Box::pin(async move {
                    instance
                        .micro_service_handler()
                        .call_on_message(store, &message)
                        .await
                })
            })
            .await?;
        let outcome = match outcome {
            Outcome::Done(Ok(())) => Outcome::Done(()),
            Outcome::Done(Err(e)) => Outcome::Failed(self.guest_error(e)),
            Outcome::Failed(e) => Outcome::Failed(e),
            Outcome::Crashed(e) => Outcome::Crashed(e),
            Outcome::TimedOut(e) => Outcome::TimedOut(e),
        };
        self.settle(outcome)
    }

    /// Starts one instance and drops it: proves the component instantiates under its limits
    /// before it takes traffic.
    pub(crate) async fn probe(&self) -> Result<(), ServiceError> {
        let (outcome, _fuel) = self
            .run(self.limits.timeout, |_, _| Box::pin(async { Ok(()) }))
            .await?;
        match outcome {
            Outcome::Done(()) => Ok(()),
            Outcome::Failed(e) | Outcome::Crashed(e) | Outcome::TimedOut(e) => Err(e),
        }
    }

    /// An error the guest returned, with its code kept in the error range.
    fn guest_error(&self, e: crate::bindings::WitError) -> ServiceError {
        ServiceError {
            id: if e.id.is_empty() {
                self.manifest.name.clone()
            } else {
                e.id
            },
            code: if (400..=599).contains(&e.code) {
                e.code
            } else {
                500
            },
            detail: e.detail,
        }
    }

    /// Counts the outcome, applies the crash policy and turns it into the call's result.
    fn settle<T>(&self, outcome: Outcome<T>) -> Result<T, ServiceError> {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let mut crashes = self.crashes.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Outcome::Done(value) => {
                crashes.consecutive = 0;
                Ok(value)
            }
            Outcome::Failed(e) => {
                crashes.consecutive = 0;
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
            Outcome::TimedOut(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
            Outcome::Crashed(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.stats.crashes.fetch_add(1, Ordering::Relaxed);
                crashes.consecutive += 1;
                if crashes.consecutive >= self.crash_threshold {
                    let doublings = (crashes.consecutive - self.crash_threshold).min(16);
                    let pause = self
                        .crash_backoff
                        .saturating_mul(1 << doublings)
                        .min(self.max_crash_backoff);
                    crashes.paused_until = Some(Instant::now() + pause);
                    warn!(service = %self.manifest.name, crashes = crashes.consecutive, ?pause, "service paused after repeated crashes");
                    self.log(&format!(
                        "paused for {} ms after {} crashes in a row",
                        pause.as_millis(),
                        crashes.consecutive
                    ));
                }
                Err(e)
            }
        }
    }

    /// Runs `f` in a fresh instance under the service's limits and `timeout`. Returns how it
    /// ended and the fuel it used; `Err` when the call never started (paused or busy).
    async fn run<T>(
        &self,
        timeout: Duration,
        f: impl for<'a> FnOnce(
            &'a crate::bindings::Service,
            &'a mut Store<CallState>,
        ) -> futures::future::BoxFuture<'a, wasmtime::Result<T>>
        + Send,
    ) -> Result<(Outcome<T>, u64), ServiceError>
    where
        T: Send,
    {
        if let Some(until) = self
            .crashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .paused_until
            && until > Instant::now()
        {
            return Err(ServiceError::runtime(
                503,
                format!(
                    "service `{}` is paused after repeated crashes; it takes calls again in {} ms",
                    self.manifest.name,
                    until.saturating_duration_since(Instant::now()).as_millis()
                ),
            ));
        }
        let deadline = Instant::now() + timeout;
        let busy = || {
            ServiceError::runtime(
                503,
                format!(
                    "service `{}` is busy: {} calls in progress and {} waiting",
                    self.manifest.name,
                    self.limits.max_concurrent,
                    self.stats.waiting.load(Ordering::Relaxed)
                ),
            )
        };
        // A call waits for a free instance until its deadline, behind at most a bounded
        // queue; beyond it the caller is told at once (and may try another provider).
        let queue_bound = u64::from(self.limits.max_concurrent).saturating_mul(QUEUE_FACTOR);
        let _permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) if self.stats.waiting.load(Ordering::Relaxed) >= queue_bound => {
                return Err(busy());
            }
            Err(_) => {
                self.stats.waiting.fetch_add(1, Ordering::Relaxed);
                let waited =
                    tokio::time::timeout(timeout, self.permits.clone().acquire_owned()).await;
                self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
                match waited {
                    Ok(Ok(permit)) => permit,
                    _ => return Err(busy()),
                }
            }
        };
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let limiter = Limiter::new(self.limits.memory_bytes, self.limits.max_table_elements);
        let mut store = Store::new(
            &self.engine,
            CallState::new(self.ctx.clone(), limiter, deadline),
        );
        store.limiter(|state| &mut state.limiter);
        // Out of fuel cannot happen on a fresh store with fuel enabled.
        let _ = store.set_fuel(self.limits.fuel);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                // Let other tasks of this worker run, then come back on the next tick.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let pre = self.pre.clone();
        let work = async {
            let instance = pre.instantiate_async(&mut store).await?;
            f(&instance, &mut store).await
        };
        // The epoch callback ends a running guest at the deadline; the timer also covers a
        // guest waiting in a host call. A small grace lets the guest's own trap win.
        let left = deadline.saturating_duration_since(Instant::now());
        let result = tokio::time::timeout(left + Duration::from_millis(50), work).await;
        let fuel_used = self
            .limits
            .fuel
            .saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.data();
        self.stats.fuel.fetch_add(fuel_used, Ordering::Relaxed);
        self.stats
            .memory_peak
            .fetch_max(state.limiter.peak_memory as u64, Ordering::Relaxed);
        let version = &self.manifest.version;
        self.ctx
            .logs
            .push_output("stdout", version, &state.stdout.contents());
        let stderr = state.stderr.contents();
        self.ctx.logs.push_output("stderr", version, &stderr);
        let refused_memory = state.limiter.refused_memory;
        drop(store);
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        let outcome = match result {
            Ok(Ok(value)) => Outcome::Done(value),
            Err(_elapsed) => Outcome::TimedOut(self.timed_out(timeout)),
            Ok(Err(e)) => self.classify(&e, timeout, refused_memory, &stderr),
        };
        Ok((outcome, fuel_used))
    }

    fn timed_out(&self, timeout: Duration) -> ServiceError {
        self.log(&format!(
            "call ended at its deadline of {} ms",
            timeout.as_millis()
        ));
        ServiceError::runtime(
            408,
            format!(
                "service `{}` did not answer within {} ms",
                self.manifest.name,
                timeout.as_millis()
            ),
        )
    }

    /// Turns a trap into the call's error and a log line.
    fn classify<T>(
        &self,
        e: &wasmtime::Error,
        timeout: Duration,
        refused_memory: Option<usize>,
        stderr: &[u8],
    ) -> Outcome<T> {
        let name = &self.manifest.name;
        if e.downcast_ref::<DeadlineExceeded>().is_some() {
            return Outcome::TimedOut(self.timed_out(timeout));
        }
        let trap = e.downcast_ref::<Trap>().copied();
        if trap == Some(Trap::OutOfFuel) {
            self.log(&format!("call used all of its fuel ({})", self.limits.fuel));
            return Outcome::TimedOut(ServiceError::runtime(
                408,
                format!(
                    "service `{name}` used all of its fuel ({} instructions) before answering",
                    self.limits.fuel
                ),
            ));
        }
        let detail = if let Some(desired) = refused_memory {
            format!(
                "service `{name}` ran out of memory: it asked for {desired} bytes, its limit is {}",
                self.limits.memory_bytes
            )
        } else if trap == Some(Trap::StackOverflow) {
            format!("service `{name}` overflowed its stack")
        } else if let Some(panic) = panic_message(stderr) {
            format!("service `{name}` panicked: {panic}")
        } else if let Some(trap) = trap {
            format!("service `{name}` crashed: {trap}")
        } else {
            format!("service `{name}` failed: {e:#}")
        };
        debug!(service = %name, error = %format!("{e:#}"), "call trapped");
        self.log(&detail);
        Outcome::Crashed(ServiceError::runtime(500, detail))
    }
}

/// The message of a Rust panic printed on stderr (`thread '…' panicked at …:\n<message>`).
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let mut lines = text.lines();
    lines.find(|l| l.contains("panicked at"))?;
    let message = lines.next()?.trim();
    (!message.is_empty()).then(|| message.chars().take(512).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_panic_message_on_stderr() {
        let stderr = b"\nthread '<unnamed>' panicked at src/lib.rs:10:5:\nguest panicked on purpose\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("guest panicked on purpose")
        );
        assert_eq!(panic_message(b"nothing here"), None);
    }
}
