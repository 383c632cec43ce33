//! The host side of a call: what a running instance can reach (the node's [`Host`], its
//! store namespace, its config and its log) and the limits it runs under.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::micro::service::{host, store, types};
use crate::bindings::{Level, WitError};
use crate::error::ServiceError;
use crate::kv::Namespace;
use crate::logs::LogBook;

/// What the node does for its services. The runtime holds one and calls it when a guest
/// calls `call`, `publish` or `append-event`; `from` is the calling service's name.
pub trait Host: Send + Sync + 'static {
    /// Calls `endpoint` of `service` anywhere in the network; returns the response body.
    fn call(
        &self,
        from: &str,
        service: String,
        endpoint: String,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, ServiceError>>;

    /// Publishes `body` on the broker topic `topic`.
    fn publish(
        &self,
        from: &str,
        topic: String,
        body: Vec<u8>,
    ) -> BoxFuture<'static, Result<(), ServiceError>>;

    /// Appends `body` to the event stream `topic`; returns its offset.
    fn append_event(
        &self,
        from: &str,
        topic: String,
        body: Vec<u8>,
    ) -> BoxFuture<'static, Result<u64, ServiceError>>;
}

/// What every instance of one deployed service shares.
pub(crate) struct ServiceCtx {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) config: std::collections::BTreeMap<String, String>,
    pub(crate) kv: Arc<Namespace>,
    pub(crate) logs: Arc<LogBook>,
    pub(crate) host: Arc<dyn Host>,
}

/// Bytes of stdout or stderr kept per call; the rest is dropped.
pub(crate) const OUTPUT_CAPTURE: usize = 64 * 1024;

/// The data of one instance's store: WASI with nothing granted, the limiter, and the way
/// back to the node.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) svc: Arc<ServiceCtx>,
    /// When the call must be over.
    pub(crate) deadline: Instant,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

impl CallState {
    pub(crate) fn new(svc: Arc<ServiceCtx>, limiter: Limiter, deadline: Instant) -> Self {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAPTURE);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPTURE);
        // No preopened directories, no environment, no arguments, no sockets: a guest sees
        // clocks, random numbers and its own output streams, nothing else.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter,
            svc,
            deadline,
            stdout,
            stderr,
        }
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Memory and table limits of one instance, and what it used.
#[derive(Debug)]
pub(crate) struct Limiter {
    pub(crate) max_memory: usize,
    pub(crate) max_table_elements: usize,
    /// The largest linear memory reached.
    pub(crate) peak_memory: usize,
    /// A growth that was refused (the guest then sees an allocation failure).
    pub(crate) refused_memory: Option<usize>,
}

impl Limiter {
    pub(crate) fn new(max_memory: usize, max_table_elements: usize) -> Self {
        Self {
            max_memory,
            max_table_elements,
            peak_memory: 0,
            refused_memory: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.refused_memory = Some(desired);
            return Ok(false);
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        8
    }
}

fn wit_error(e: ServiceError) -> WitError {
    WitError {
        id: e.id,
        code: e.code,
        detail: e.detail,
    }
}

fn deadline_passed() -> WitError {
    wit_error(ServiceError::runtime(
        408,
        "the calling request's deadline has passed",
    ))
}

impl types::Host for CallState {}

impl host::Host for CallState {
    async fn call(
        &mut self,
        service: String,
        endpoint: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> Result<Vec<u8>, WitError> {
        let remaining = self.remaining();
        let timeout = match timeout_ms {
            0 => remaining,
            ms => Duration::from_millis(u64::from(ms)).min(remaining),
        };
        if timeout.is_zero() {
            return Err(deadline_passed());
        }
        let svc = &self.svc;
        svc.host
            .call(&svc.name, service, endpoint, body, timeout)
            .await
            .map_err(wit_error)
    }

    async fn publish(&mut self, topic: String, body: Vec<u8>) -> Result<(), WitError> {
        if self.remaining().is_zero() {
            return Err(deadline_passed());
        }
        let svc = &self.svc;
        svc.host
            .publish(&svc.name, topic, body)
            .await
            .map_err(wit_error)
    }

    async fn append_event(&mut self, topic: String, body: Vec<u8>) -> Result<u64, WitError> {
        if self.remaining().is_zero() {
            return Err(deadline_passed());
        }
        let svc = &self.svc;
        svc.host
            .append_event(&svc.name, topic, body)
            .await
            .map_err(wit_error)
    }

    async fn config(&mut self, key: String) -> Option<String> {
        match key.as_str() {
            "name" => Some(self.svc.name.clone()),
            "version" => Some(self.svc.version.clone()),
            _ => self.svc.config.get(&key).cloned(),
        }
    }

    async fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        tracing::debug!(service = %self.svc.name, level, "{message}");
        self.svc.logs.push(level, &self.svc.version, &message);
    }
}

impl store::Host for CallState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, WitError> {
        self.svc.kv.get(&key).map_err(wit_error)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), WitError> {
        self.svc.kv.set(&key, &value).map_err(wit_error)
    }

    async fn delete(&mut self, key: String) -> Result<bool, WitError> {
        self.svc.kv.delete(&key).map_err(wit_error)
    }

    async fn keys(&mut self, prefix: String, limit: u32) -> Result<Vec<String>, WitError> {
        self.svc.kv.list(&prefix, limit).map_err(wit_error)
    }
}
