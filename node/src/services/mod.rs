//! The service layer: the services this node serves, the registry of what the network serves,
//! and the client that calls services anywhere.
//!
//! [`Services`] is a cheap clonable handle. Its state is small and guarded by short
//! synchronous locks (never held across an await); everything that waits goes through the
//! overlay handle.

mod backend;
mod client;
mod dispatch;
mod registry;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use micro_overlay::{Keypair, Overlay, PeerId};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

pub use client::{CallOutcome, CallRequest};
pub use registry::provider_key;

use crate::config::ServicesConfig;
use crate::registry::{Directory, DirectoryConfig, Endpoint, RecordLimits, ServiceName};

/// The name of the service every node hosts itself.
pub const BUILTIN_SERVICE: &str = "node";

/// What backs a local service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Backend {
    /// Answered by the node itself (the `node` service).
    Builtin,
    /// An HTTP server: endpoint `E` is `POST {url}/E`.
    Http {
        /// Base URL.
        url: String,
    },
    /// A WebAssembly component run by this node's wasm runtime.
    Wasm {
        /// Content hash (SHA-256) of the component.
        digest: String,
    },
}

/// What `serve` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeSpec {
    /// The service's name on the network.
    pub name: ServiceName,
    /// Its version (free text, e.g. `1.0.0` or a commit): the one unpinned calls get.
    #[serde(default = "default_version")]
    pub version: String,
    /// Older versions still answering calls that pin them (`service@version`), newest
    /// first. Only wasm deployments keep older versions running.
    #[serde(default)]
    pub older_versions: Vec<String>,
    /// What answers its calls.
    pub backend: Backend,
    /// Its endpoints; empty = any endpoint is forwarded.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Free-form metadata published with the record.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Tokens a call from another node costs, past the caller's free allowance (0 = free).
    #[serde(default)]
    pub price_per_call: u64,
}

fn default_version() -> String {
    "latest".to_owned()
}

/// A service this node serves, as `micro-node services` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalService {
    /// What was asked for.
    pub spec: ServeSpec,
    /// Calls answered.
    pub calls: u64,
    /// Calls answered with an error.
    pub errors: u64,
    /// Calls of other nodes served from their free allowance (priced services).
    #[serde(default)]
    pub free_calls: u64,
    /// Calls of other nodes paid for.
    #[serde(default)]
    pub paid_calls: u64,
    /// Tokens billed for them.
    #[serde(default)]
    pub earned: u64,
    /// Calls refused: over a rate limit, or past the free allowance without payment.
    #[serde(default)]
    pub refused: u64,
}

struct Served {
    spec: ServeSpec,
    calls: AtomicU64,
    errors: AtomicU64,
    free_calls: AtomicU64,
    paid_calls: AtomicU64,
    earned: AtomicU64,
    refused: AtomicU64,
}

impl Served {
    fn new(spec: ServeSpec) -> Self {
        Self {
            spec,
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            free_calls: AtomicU64::new(0),
            paid_calls: AtomicU64::new(0),
            earned: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The same counters for a new spec (a redeploy).
    fn replaced_by(&self, spec: ServeSpec) -> Self {
        let copy = |c: &AtomicU64| AtomicU64::new(c.load(Ordering::Relaxed));
        Self {
            spec,
            calls: copy(&self.calls),
            errors: copy(&self.errors),
            free_calls: copy(&self.free_calls),
            paid_calls: copy(&self.paid_calls),
            earned: copy(&self.earned),
            refused: copy(&self.refused),
        }
    }
}

/// Why a service could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The name is taken on this node.
    #[error("this node already serves `{0}`; deregister it first")]
    AlreadyServed(ServiceName),
    /// The name is reserved.
    #[error("`{0}` is the node's own service and cannot be replaced")]
    Reserved(ServiceName),
    /// Too many services on this node.
    #[error("this node serves the most services it may ({0})")]
    TooMany(usize),
    /// The backend URL is not acceptable.
    #[error("backend URL `{url}`: {reason}")]
    BadBackend {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The record could not be signed (a field over its limit).
    #[error("cannot sign the service record: {0}")]
    Record(#[from] crate::registry::RecordError),
    /// Not served here.
    #[error("this node does not serve `{0}`")]
    NotServed(ServiceName),
}

/// What calls taught about providers: measured RPC latency (EWMA, milliseconds) for
/// power-of-two choices and routes, and which providers were unreachable lately.
#[derive(Debug, Default)]
struct Latency {
    ewma: HashMap<PeerId, f64>,
    unreachable: HashMap<PeerId, Instant>,
}

impl Latency {
    /// Weight of the newest sample.
    const ALPHA: f64 = 0.3;
    /// Most peers remembered, in each table.
    const CAPACITY: usize = 10_000;
    /// How long a provider that could not be reached is tried only when no other is left.
    const SUSPECT_FOR: Duration = Duration::from_secs(10);

    fn record(&mut self, peer: PeerId, ms: f64) {
        self.unreachable.remove(&peer);
        if self.ewma.len() >= Self::CAPACITY && !self.ewma.contains_key(&peer) {
            return;
        }
        let entry = self.ewma.entry(peer).or_insert(ms);
        *entry = Self::ALPHA * ms + (1.0 - Self::ALPHA) * *entry;
    }

    fn get(&self, peer: &PeerId) -> Option<f64> {
        self.ewma.get(peer).copied()
    }

    fn mark_unreachable(&mut self, peer: PeerId) {
        if self.unreachable.len() >= Self::CAPACITY {
            self.unreachable
                .retain(|_, at| at.elapsed() < Self::SUSPECT_FOR);
        }
        if self.unreachable.len() < Self::CAPACITY {
            self.unreachable.insert(peer, Instant::now());
        }
    }

    fn is_suspect(&self, peer: &PeerId) -> bool {
        self.unreachable
            .get(peer)
            .is_some_and(|at| at.elapsed() < Self::SUSPECT_FOR)
    }
}

struct Inner {
    overlay: Overlay,
    key: Keypair,
    config: ServicesConfig,
    limits: RecordLimits,
    local: Mutex<BTreeMap<ServiceName, Arc<Served>>>,
    directory: Mutex<Directory>,
    cache: Mutex<HashMap<ServiceName, (Instant, Vec<PeerId>)>>,
    latency: Mutex<Latency>,
    http: reqwest::Client,
    /// Sequence number of this node's records: never goes back, even across restarts.
    seq: AtomicU64,
    calls_in_flight: Arc<Semaphore>,
    /// The wasm runtime answering `Backend::Wasm` services, once the node attached it.
    wasm: OnceLock<micro_wasm_runtime::Runtime>,
    /// The wasm services, for the built-in `Node.Deploy` (held weakly: they own us).
    deployer: OnceLock<crate::wasm::WeakWasm>,
    /// Receipts and billing for priced services, once the node attached them.
    metering: OnceLock<crate::metering::Metering>,
}

/// The service layer of one node. Clone freely.
#[derive(Clone)]
pub struct Services(Arc<Inner>);

/// A handle to the service layer that does not keep it alive (for what the service layer
/// itself owns, like the wasm runtime's host).
#[derive(Clone)]
pub struct WeakServices(Weak<Inner>);

impl WeakServices {
    /// The service layer, unless it is gone.
    pub fn upgrade(&self) -> Option<Services> {
        self.0.upgrade().map(Services)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves consistent data (every update is
    // a single insert/remove), so a poisoned lock is used as is.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Services {
    /// The service layer over `overlay`, signing with the node's `key`. Serves the built-in
    /// `node` service from the start.
    pub fn new(overlay: Overlay, key: Keypair, config: ServicesConfig) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let services = Self(Arc::new(Inner {
            calls_in_flight: Arc::new(Semaphore::new(config.max_concurrent_calls.max(1))),
            overlay,
            key,
            limits: RecordLimits::default(),
            local: Mutex::new(BTreeMap::new()),
            directory: Mutex::new(Directory::new(DirectoryConfig::default())),
            cache: Mutex::new(HashMap::new()),
            latency: Mutex::new(Latency::default()),
            http,
            seq: AtomicU64::new(crate::registry::now_ms()),
            wasm: OnceLock::new(),
            deployer: OnceLock::new(),
            metering: OnceLock::new(),
            config,
        }));
        let builtin = ServeSpec {
            name: BUILTIN_SERVICE.parse().expect("the built-in name is valid"),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            older_versions: Vec::new(),
            backend: Backend::Builtin,
            endpoints: dispatch::builtin_endpoints(),
            metadata: BTreeMap::new(),
            price_per_call: 0,
        };
        lock(&services.0.local).insert(builtin.name.clone(), Arc::new(Served::new(builtin)));
        services
    }

    /// A handle that does not keep the service layer alive.
    pub fn downgrade(&self) -> WeakServices {
        WeakServices(Arc::downgrade(&self.0))
    }

    /// Lets `runtime` answer the `Backend::Wasm` services. Only the first call counts.
    pub fn attach_wasm(&self, runtime: micro_wasm_runtime::Runtime) {
        let _ = self.0.wasm.set(runtime);
    }

    /// Meters priced calls with `metering`, both ways. Only the first call counts.
    pub fn attach_metering(&self, metering: crate::metering::Metering) {
        let _ = self.0.metering.set(metering);
    }

    /// Lets `wasm` answer `Node.Deploy`. Only the first call counts.
    pub fn attach_deployer(&self, wasm: crate::wasm::WeakWasm) {
        let _ = self.0.deployer.set(wasm);
    }

    fn next_seq(&self) -> u64 {
        let now = crate::registry::now_ms();
        let mut current = self.0.seq.load(Ordering::Relaxed);
        loop {
            let next = (current + 1).max(now);
            match self
                .0
                .seq
                .compare_exchange(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => current = seen,
            }
        }
    }

    /// The services this node serves (the built-in one included).
    pub fn local(&self) -> Vec<LocalService> {
        lock(&self.0.local)
            .values()
            .map(|s| LocalService {
                spec: s.spec.clone(),
                calls: s.calls.load(Ordering::Relaxed),
                errors: s.errors.load(Ordering::Relaxed),
                free_calls: s.free_calls.load(Ordering::Relaxed),
                paid_calls: s.paid_calls.load(Ordering::Relaxed),
                earned: s.earned.load(Ordering::Relaxed),
                refused: s.refused.load(Ordering::Relaxed),
            })
            .collect()
    }

    fn served(&self, name: &ServiceName) -> Option<Arc<Served>> {
        lock(&self.0.local).get(name).cloned()
    }

    /// The measured latency to `peer`, in milliseconds.
    pub fn latency_ms(&self, peer: &PeerId) -> Option<f64> {
        lock(&self.0.latency).get(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_providers_are_suspect_until_they_answer() {
        let mut latency = Latency::default();
        let peer = PeerId::random();
        assert!(!latency.is_suspect(&peer));
        latency.mark_unreachable(peer);
        assert!(latency.is_suspect(&peer));
        latency.record(peer, 2.0);
        assert!(!latency.is_suspect(&peer));
        latency.record(peer, 4.0);
        let ewma = latency.get(&peer).expect("measured");
        assert!((ewma - (0.3 * 4.0 + 0.7 * 2.0)).abs() < 1e-9);
    }
}
