//! Wasm services on this node: deploy a component, register it in the registry, feed it its
//! subscriptions, show its status and logs, and stop it. The sandbox itself is
//! `micro-wasm-runtime`; this module wires it to the network.

mod host;
mod remote;
mod source;
mod subscriptions;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use micro_wasm_runtime::{
    DeployError, Deployed, LogBook, Manifest, Runtime, RuntimeError, ServiceStatus,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub(crate) use host::NodeHost;
pub use remote::JobState;
pub(crate) use remote::job_body;
pub use source::{Followed, MIN_FOLLOW, SourceDeployed};

use crate::broker::Broker;
use crate::events::Events;
use crate::registry::{Endpoint, NameError, ServiceName};
use crate::services::{Backend, ServeError, ServeSpec, Services};

/// Why a wasm operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The manifest's name is not a service name.
    #[error("service name: {0}")]
    Name(#[from] NameError),
    /// The name belongs to a service of another kind on this node.
    #[error("`{0}` is already served on this node by a non-wasm backend; deregister it first")]
    Conflict(String),
    /// The runtime refused the component.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The registry refused the service.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The runtime failed, or no such service.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Fetching or building the source failed.
    #[error(transparent)]
    Build(#[from] crate::source::BuildError),
    /// `update` or `--follow` cannot apply.
    #[error("{0}")]
    Follow(String),
    /// Another node refused or failed a remote deploy.
    #[error("{detail}")]
    Remote {
        /// Its status.
        code: u16,
        /// Why.
        detail: String,
    },
}

struct Inner {
    runtime: Runtime,
    builder: crate::source::Builder,
    followed: sled::Tree,
    followers: Mutex<HashMap<String, JoinHandle<()>>>,
    jobs: Mutex<remote::Jobs>,
    services: Services,
    broker: Broker,
    events: Events,
    stop: watch::Receiver<bool>,
    subscriptions: Mutex<HashMap<String, Vec<JoinHandle<()>>>>,
}

/// The node's wasm services. Clone freely.
#[derive(Clone)]
pub struct Wasm(Arc<Inner>);

/// A handle that does not keep the wasm services alive (held by the service layer, which
/// they own).
#[derive(Clone)]
pub struct WeakWasm(std::sync::Weak<Inner>);

impl WeakWasm {
    /// The wasm services, unless they are gone.
    pub fn upgrade(&self) -> Option<Wasm> {
        self.0.upgrade().map(Wasm)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Wasm {
    pub(crate) fn new(
        runtime: Runtime,
        builder: crate::source::Builder,
        db: &sled::Db,
        services: Services,
        broker: Broker,
        events: Events,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, sled::Error> {
        Ok(Self(Arc::new(Inner {
            runtime,
            builder,
            followed: db.open_tree(source::FOLLOWED_TREE)?,
            followers: Mutex::new(HashMap::new()),
            jobs: Mutex::new(remote::Jobs::default()),
            services,
            broker,
            events,
            stop,
            subscriptions: Mutex::new(HashMap::new()),
        })))
    }

    /// The source builder.
    pub fn builder(&self) -> &crate::source::Builder {
        &self.0.builder
    }

    /// A handle that does not keep these services alive.
    pub fn downgrade(&self) -> WeakWasm {
        WeakWasm(Arc::downgrade(&self.0))
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.0.runtime
    }

    /// Deploys a component (binary or WAT) under `manifest` and serves it on the network. A
    /// running version of the same name is replaced once the new one has started; if that
    /// name was deployed from source, its source is no longer followed.
    pub async fn deploy(&self, manifest: Manifest, bytes: Vec<u8>) -> Result<Deployed, WasmError> {
        let deployed = self.deploy_component(manifest, bytes).await?;
        self.forget_source(&deployed.name);
        Ok(deployed)
    }

    /// [`Wasm::deploy`] without touching what was followed (deploys from source use it).
    pub(crate) async fn deploy_component(
        &self,
        manifest: Manifest,
        bytes: Vec<u8>,
    ) -> Result<Deployed, WasmError> {
        let name: ServiceName = manifest.name.parse()?;
        self.check_name(&name)?;
        let deployed = self.0.runtime.deploy(manifest, bytes).await?;
        self.register(&name).await?;
        Ok(deployed)
    }

    fn check_name(&self, name: &ServiceName) -> Result<(), WasmError> {
        let taken = self
            .0
            .services
            .local()
            .into_iter()
            .any(|s| &s.spec.name == name && !matches!(s.spec.backend, Backend::Wasm { .. }));
        if taken {
            return Err(WasmError::Conflict(name.to_string()));
        }
        Ok(())
    }

    /// Serves the deployed `name` on the network and (re)starts its subscriptions.
    async fn register(&self, name: &ServiceName) -> Result<(), WasmError> {
        let versions = self.0.runtime.versions(name.as_str());
        let status = versions
            .first()
            .ok_or_else(|| RuntimeError::NotDeployed(name.to_string()))?;
        let mut spec = spec_for(name.clone(), status);
        spec.older_versions = versions[1..].iter().map(|s| s.version.clone()).collect();
        if let Err(e) = self.0.services.serve_replacing(spec).await {
            // Not reachable on the network: do not leave it running unseen.
            let _ = self.0.runtime.remove(name.as_str()).await;
            return Err(e.into());
        }
        self.subscribe(&status.manifest);
        Ok(())
    }

    fn subscribe(&self, manifest: &Manifest) {
        let tasks = subscriptions::spawn(
            manifest,
            &self.0.runtime,
            &self.0.broker,
            &self.0.events,
            &self.0.stop,
        );
        if let Some(old) = lock(&self.0.subscriptions).insert(manifest.name.clone(), tasks) {
            old.iter().for_each(JoinHandle::abort);
        }
    }

    /// Brings back the services deployed before a restart. One that no longer loads is
    /// logged and skipped.
    pub async fn restore(&self) {
        for result in self.0.runtime.restore().await {
            match result {
                Ok(deployed) => {
                    let registered = match deployed.name.parse::<ServiceName>() {
                        Ok(name) => self.register(&name).await,
                        Err(e) => Err(e.into()),
                    };
                    match registered {
                        Ok(()) => {
                            info!(service = %deployed.name, version = %deployed.version, "wasm service restored")
                        }
                        Err(e) => {
                            warn!(service = %deployed.name, error = %e, "restored wasm service not served")
                        }
                    }
                }
                Err((name, e)) => warn!(service = %name, error = %e, "wasm service not restored"),
            }
        }
        self.resume_following();
    }

    /// Stops `name` (every version): withdrawn from the network, its subscriptions ended,
    /// its deployment forgotten (its store and log are kept for a later deploy of the same
    /// name). `name@version` stops that version only: if others run, the service stays on
    /// the network with the newest remaining version current. Stopping the current version
    /// also stops following its source. Returns the statuses of the stopped versions.
    pub async fn kill(&self, name: &str) -> Result<Vec<ServiceStatus>, WasmError> {
        let (name, pin) = match name.split_once('@') {
            Some((name, pin)) => (name, Some(pin)),
            None => (name, None),
        };
        let service: ServiceName = name.parse()?;
        let versions = self.0.runtime.versions(name);
        if versions.is_empty() {
            return Err(RuntimeError::NotDeployed(name.to_owned()).into());
        }
        if let Some(pin) = pin
            && versions.len() > 1
        {
            let stopped = self.0.runtime.remove_version(name, pin).await?;
            if stopped.current {
                self.forget_source(name);
            }
            self.register(&service).await?;
            return Ok(vec![stopped]);
        }
        if let Some(pin) = pin
            && !micro_wasm_runtime::version_matches(&versions[0].version, pin)
        {
            return Err(RuntimeError::NoSuchVersion {
                name: name.to_owned(),
                version: pin.to_owned(),
                running: vec![versions[0].version.clone()],
            }
            .into());
        }
        self.forget_source(name);
        match self.0.services.deregister(&service).await {
            Ok(()) | Err(ServeError::NotServed(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(tasks) = lock(&self.0.subscriptions).remove(name) {
            tasks.iter().for_each(JoinHandle::abort);
        }
        Ok(self.0.runtime.remove(name).await?)
    }

    /// Every wasm service's status.
    pub fn status(&self) -> Vec<ServiceStatus> {
        self.0.runtime.status()
    }

    /// The log of `name`, if it runs here or ran here since the node started.
    pub fn logs(&self, name: &str) -> Option<Arc<LogBook>> {
        self.0.runtime.find_logs(name)
    }

    /// Stops every subscription and flushes the services' stores.
    pub async fn shutdown(&self) {
        for (_, tasks) in lock(&self.0.subscriptions).drain() {
            tasks.iter().for_each(JoinHandle::abort);
        }
        for (_, task) in lock(&self.0.followers).drain() {
            task.abort();
        }
        if let Err(e) = self.0.runtime.flush().await {
            warn!(error = %e, "could not flush the wasm services' stores");
        }
    }
}

/// The registry entry of a deployed service.
fn spec_for(name: ServiceName, status: &ServiceStatus) -> ServeSpec {
    let manifest = &status.manifest;
    let endpoints = manifest
        .endpoints
        .iter()
        .filter_map(|e| {
            Some(Endpoint {
                name: e.name.parse().ok()?,
                description: e.description.clone(),
                request_schema: None,
                response_schema: None,
            })
        })
        .collect();
    let mut metadata = BTreeMap::new();
    metadata.insert("runtime".to_owned(), "wasm".to_owned());
    metadata.insert("digest".to_owned(), status.digest.clone());
    if manifest.price > 0 {
        metadata.insert("price".to_owned(), manifest.price.to_string());
    }
    if !manifest.description.is_empty() {
        metadata.insert(
            "description".to_owned(),
            manifest.description.chars().take(256).collect(),
        );
    }
    ServeSpec {
        price_per_call: manifest.price,
        name,
        version: manifest.version.clone(),
        older_versions: Vec::new(),
        backend: Backend::Wasm {
            digest: status.digest.clone(),
        },
        endpoints,
        metadata,
    }
}
