//! The runtime handle: deploy, restore, remove, call and observe services.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use tracing::{info, warn};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::{Service, ServicePre};
use crate::config::RuntimeConfig;
use crate::engine;
use crate::error::{DeployError, RuntimeError, ServiceError};
use crate::host::{CallState, Host, ServiceCtx};
use crate::kv::Namespace;
use crate::logs::LogBook;
use crate::manifest::Manifest;
use crate::service::{Call, Deployment, Message, Reply, ServiceStatus};
use crate::versions::Versions;

/// The tree holding deployments: service name → [`Record`] (JSON).
const DEPLOYMENTS_TREE: &str = "wasm-deployments";

/// What is kept of a service's versions so they come back after a restart.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// The current version's manifest.
    manifest: Manifest,
    /// The current version's component.
    digest: String,
    /// Older versions still answering pinned calls, newest first.
    #[serde(default)]
    older: Vec<Stored>,
}

/// One older version in a [`Record`].
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    manifest: Manifest,
    digest: String,
}

impl Record {
    fn of(versions: &Versions) -> Self {
        Self {
            manifest: versions.current.manifest.clone(),
            digest: versions.current.digest.clone(),
            older: versions
                .older
                .iter()
                .map(|d| Stored {
                    manifest: d.manifest.clone(),
                    digest: d.digest.clone(),
                })
                .collect(),
        }
    }
}

/// What a deploy did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    /// The service's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Content hash (SHA-256) of the component.
    pub digest: String,
    /// The version that was current before, if one ran under the same name. Unless it
    /// was the same version, it keeps answering calls that pin it.
    pub replaced: Option<String>,
    /// Milliseconds spent compiling (or loading compiled code) and checking.
    pub load_ms: u64,
}

struct EngineParts {
    engine: Engine,
    linker: Linker<CallState>,
}

struct Inner {
    config: RuntimeConfig,
    host: Arc<dyn Host>,
    db: sled::Db,
    deployments: sled::Tree,
    engine: OnceCell<EngineParts>,
    services: RwLock<BTreeMap<String, Versions>>,
    logs: Mutex<HashMap<String, Arc<LogBook>>>,
    stores: Mutex<HashMap<String, Arc<Namespace>>>,
    /// Deploys and removals happen one at a time.
    changes: tokio::sync::Mutex<()>,
}

/// The node's wasm runtime. Clone freely.
#[derive(Clone)]
pub struct Runtime(Arc<Inner>);

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DeployError {
    let what = what.into();
    move |source| DeployError::Io { what, source }
}

impl Runtime {
    /// A runtime keeping its files under `config.dir` and its deployments and service
    /// stores in `db`. The engine is created at the first deploy.
    pub fn open(
        config: RuntimeConfig,
        db: &sled::Db,
        host: Arc<dyn Host>,
    ) -> Result<Self, RuntimeError> {
        for dir in [config.dir.join("components"), config.dir.join("compiled")] {
            std::fs::create_dir_all(&dir).map_err(|source| RuntimeError::Io {
                what: format!("creating {}", dir.display()),
                source,
            })?;
        }
        Ok(Self(Arc::new(Inner {
            deployments: db.open_tree(DEPLOYMENTS_TREE)?,
            db: db.clone(),
            config,
            host,
            engine: OnceCell::new(),
            services: RwLock::new(BTreeMap::new()),
            logs: Mutex::new(HashMap::new()),
            stores: Mutex::new(HashMap::new()),
            changes: tokio::sync::Mutex::new(()),
        })))
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.0.config
    }

    async fn engine(&self) -> Result<&EngineParts, DeployError> {
        self.0
            .engine
            .get_or_try_init(|| async {
                let engine = engine::build(&self.0.config)
                    .map_err(|e| DeployError::Instantiate(e.to_string()))?;
                engine::spawn_ticker(&engine, self.0.config.epoch_tick)
                    .map_err(|e| DeployError::Instantiate(e.to_string()))?;
                let mut linker = Linker::new(&engine);
                wasmtime_wasi::p2::add_to_linker_async(&mut linker)
                    .map_err(|e| DeployError::Instantiate(format!("{e:#}")))?;
                Service::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
                    .map_err(|e| DeployError::Instantiate(format!("{e:#}")))?;
                info!("wasm engine ready");
                Ok(EngineParts { engine, linker })
            })
            .await
    }

    fn component_path(&self, digest: &str) -> PathBuf {
        self.0
            .config
            .dir
            .join("components")
            .join(format!("{digest}.wasm"))
    }

    /// The log of `name` (kept across redeploys of the same name).
    pub fn logs(&self, name: &str) -> Arc<LogBook> {
        let mut logs = self.0.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.entry(name.to_owned())
            .or_insert_with(|| Arc::new(LogBook::new(self.0.config.log_lines)))
            .clone()
    }

    /// The log of `name` if it was ever deployed since the runtime opened.
    pub fn find_logs(&self, name: &str) -> Option<Arc<LogBook>> {
        let logs = self.0.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.get(name).cloned()
    }

    fn store(&self, name: &str) -> Result<Arc<Namespace>, DeployError> {
        let mut stores = self.0.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ns) = stores.get(name) {
            return Ok(ns.clone());
        }
        let ns = Arc::new(Namespace::open(&self.0.db, name, self.0.config.store)?);
        stores.insert(name.to_owned(), ns.clone());
        Ok(ns)
    }

    /// Deploys `bytes` (a component, or WAT text) under `manifest`: checks size, compiles
    /// (or loads the cached machine code), refuses imports outside the `micro:service`
    /// world, starts one instance to prove it starts, then makes it the current version of
    /// its name and records the deployment. The version it replaces keeps answering calls
    /// that pin it (up to [`RuntimeConfig::older_versions`] older versions); a redeploy of
    /// the same version replaces it, and its calls in progress finish.
    pub async fn deploy(
        &self,
        manifest: Manifest,
        bytes: Vec<u8>,
    ) -> Result<Deployed, DeployError> {
        manifest.validate()?;
        let limit = self.0.config.max_component_bytes;
        if bytes.len() > limit {
            return Err(DeployError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        let _turn = self.0.changes.lock().await;
        let replacing = self.get(&manifest.name, None).is_some();
        if !replacing && self.count() >= self.0.config.max_services {
            return Err(DeployError::TooMany(self.0.config.max_services));
        }
        let digest = engine::digest(&bytes);
        let path = self.component_path(&digest);
        if !path.exists() {
            let tmp = path.with_extension("tmp");
            tokio::fs::write(&tmp, &bytes)
                .await
                .map_err(io(format!("writing {}", tmp.display())))?;
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(io(format!("writing {}", path.display())))?;
        }
        let deployment = self.load(manifest, digest, bytes).await?;
        let (deployed, dropped) = self.install(deployment);
        self.persist(&deployed.name).await?;
        self.release(dropped).await;
        Ok(deployed)
    }

    /// Writes `name`'s versions to the deployments tree (or removes it when none runs).
    async fn persist(&self, name: &str) -> Result<(), sled::Error> {
        let json = {
            let services = self.0.services.read().unwrap_or_else(|e| e.into_inner());
            services
                .get(name)
                .map(|v| serde_json::to_vec(&Record::of(v)).expect("a record always encodes"))
        };
        match json {
            Some(json) => self.0.deployments.insert(name.as_bytes(), json)?,
            None => self.0.deployments.remove(name.as_bytes())?,
        };
        flush(&self.0.deployments).await?;
        Ok(())
    }

    /// Deletes the component files of deployments that stopped, unless another version uses
    /// the same component.
    async fn release(&self, dropped: Vec<Arc<Deployment>>) {
        for gone in dropped {
            let still_used = self
                .0
                .services
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .flat_map(Versions::all)
                .any(|d| d.digest == gone.digest);
            if !still_used {
                let _ = tokio::fs::remove_file(self.component_path(&gone.digest)).await;
            }
        }
    }

    /// Brings back every recorded deployment (after a restart). A deployment that no longer
    /// loads is reported and left recorded, so a later fix can bring it back.
    pub async fn restore(&self) -> Vec<Result<Deployed, (String, DeployError)>> {
        let _turn = self.0.changes.lock().await;
        let mut results = Vec::new();
        let records: Vec<_> = self.0.deployments.iter().collect();
        for entry in records {
            let (key, value) = match entry {
                Ok(kv) => kv,
                Err(e) => {
                    results.push(Err(("?".to_owned(), DeployError::Db(e))));
                    continue;
                }
            };
            let name = String::from_utf8_lossy(&key).into_owned();
            let mut record: Record = match serde_json::from_slice(&value) {
                Ok(r) => r,
                Err(e) => {
                    results.push(Err((
                        name,
                        DeployError::Invalid(format!("corrupt record: {e}")),
                    )));
                    continue;
                }
            };
            // Oldest first, so the current version ends up current.
            let older = std::mem::take(&mut record.older);
            for stored in older.into_iter().rev() {
                match self.reload(stored.manifest, stored.digest).await {
                    Ok(deployment) => drop(self.install(deployment)),
                    Err(e) => warn!(service = %name, error = %e, "older version does not load"),
                }
            }
            match self.reload(record.manifest, record.digest).await {
                Ok(deployment) => results.push(Ok(self.install(deployment).0)),
                Err(e) => {
                    warn!(service = %name, error = %e, "deployed service does not load");
                    results.push(Err((name, e)));
                }
            }
        }
        results
    }

    /// Loads a recorded deployment from its component file.
    async fn reload(&self, manifest: Manifest, digest: String) -> Result<Loaded, DeployError> {
        let path = self.component_path(&digest);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(io(format!("reading {}", path.display())))?;
        self.load(manifest, digest, bytes).await
    }

    async fn load(
        &self,
        manifest: Manifest,
        digest: String,
        bytes: Vec<u8>,
    ) -> Result<Loaded, DeployError> {
        let started = std::time::Instant::now();
        let parts = self.engine().await?;
        let engine = parts.engine.clone();
        let cache = self.0.config.dir.join("compiled");
        let component = {
            let digest = digest.clone();
            let engine = engine.clone();
            tokio::task::spawn_blocking(move || engine::compile(&engine, &cache, &digest, &bytes))
                .await
                .map_err(|e| DeployError::Invalid(format!("compiler task failed: {e}")))??
        };
        crate::check::check(&engine, &component)?;
        let pre = parts
            .linker
            .instantiate_pre(&component)
            .map_err(|e| DeployError::Instantiate(format!("{e:#}")))?;
        let pre = ServicePre::new(pre).map_err(|e| DeployError::Instantiate(format!("{e:#}")))?;
        let ctx = Arc::new(ServiceCtx {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            config: manifest.config.clone(),
            kv: self.store(&manifest.name)?,
            logs: self.logs(&manifest.name),
            host: self.0.host.clone(),
        });
        let deployment = Deployment::new(manifest, digest, engine, pre, ctx, &self.0.config);
        deployment
            .probe()
            .await
            .map_err(|e| DeployError::Instantiate(e.detail))?;
        Ok(Loaded(
            Arc::new(deployment),
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        ))
    }

    /// Makes `loaded` its name's current version; returns what was deployed and the
    /// deployments that stopped running.
    fn install(&self, loaded: Loaded) -> (Deployed, Vec<Arc<Deployment>>) {
        let Loaded(deployment, load_ms) = loaded;
        let name = deployment.manifest.name.clone();
        let version = deployment.manifest.version.clone();
        let digest = deployment.digest.clone();
        let keep = self.0.config.older_versions;
        let (replaced, dropped) = {
            let mut services = self.0.services.write().unwrap_or_else(|e| e.into_inner());
            match services.get_mut(&name) {
                Some(versions) => {
                    let installed = versions.install(deployment, keep);
                    (installed.replaced, installed.dropped)
                }
                None => {
                    services.insert(name.clone(), Versions::new(deployment));
                    (None, Vec::new())
                }
            }
        };
        let note = match &replaced {
            Some(old) if *old == version => {
                format!("redeployed {version} ({})", &digest[..12])
            }
            Some(old) => format!(
                "deployed {version} ({}); {old} answers only calls pinning it",
                &digest[..12]
            ),
            None => format!("deployed {version} ({})", &digest[..12]),
        };
        self.logs(&name).push("node", &version, &note);
        for gone in &dropped {
            if gone.manifest.version != version {
                self.logs(&name)
                    .push("node", &gone.manifest.version, "stopped (too old)");
            }
        }
        info!(service = %name, %version, digest = &digest[..12], load_ms, "wasm service deployed");
        let deployed = Deployed {
            name,
            version,
            digest,
            replaced,
            load_ms,
        };
        (deployed, dropped)
    }

    /// Stops every version of `name` and forgets its deployment; its store and log are
    /// kept, for a later deploy of the same name. Calls in progress finish. Returns the
    /// statuses of the stopped versions, current first.
    pub async fn remove(&self, name: &str) -> Result<Vec<ServiceStatus>, RuntimeError> {
        let _turn = self.0.changes.lock().await;
        let removed = self
            .0
            .services
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .ok_or_else(|| RuntimeError::NotDeployed(name.to_owned()))?;
        self.persist(name).await?;
        let stopped: Vec<_> = removed.all().cloned().collect();
        let statuses = statuses(&removed);
        for gone in &stopped {
            self.logs(name)
                .push("node", &gone.manifest.version, "stopped");
        }
        self.release(stopped).await;
        info!(service = %name, "wasm service removed");
        Ok(statuses)
    }

    /// Stops the version of `name` that `pin` names (see [`crate::version_matches`]). If it
    /// was current, the newest older version becomes current; if it was the only one, the
    /// service is removed as by [`Runtime::remove`]. The returned status says whether the
    /// stopped version was current.
    pub async fn remove_version(
        &self,
        name: &str,
        pin: &str,
    ) -> Result<ServiceStatus, RuntimeError> {
        let _turn = self.0.changes.lock().await;
        let (stopped, was_current, left) = {
            let mut services = self.0.services.write().unwrap_or_else(|e| e.into_inner());
            let versions = services
                .get_mut(name)
                .ok_or_else(|| RuntimeError::NotDeployed(name.to_owned()))?;
            let was_current = crate::version_matches(&versions.current.manifest.version, pin);
            let (stopped, left) =
                versions
                    .remove(pin)
                    .ok_or_else(|| RuntimeError::NoSuchVersion {
                        name: name.to_owned(),
                        version: pin.to_owned(),
                        running: versions.all().map(|d| d.manifest.version.clone()).collect(),
                    })?;
            if !left {
                services.remove(name);
            }
            (stopped, was_current, left)
        };
        self.persist(name).await?;
        let status = ServiceStatus {
            current: was_current,
            ..stopped.status()
        };
        self.logs(name)
            .push("node", &stopped.manifest.version, "stopped");
        info!(service = %name, version = %stopped.manifest.version, left, "wasm service version removed");
        self.release(vec![stopped]).await;
        Ok(status)
    }

    /// The deployment of `name` answering a call pinned to `pin` (the current one without).
    fn get(&self, name: &str, pin: Option<&str>) -> Option<Arc<Deployment>> {
        self.0
            .services
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)?
            .pick(pin)
            .cloned()
    }

    fn count(&self) -> usize {
        self.0
            .services
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Calls the current version of `name`, or the version `pin` names: 503 if it does not
    /// run here.
    pub async fn call(
        &self,
        name: &str,
        pin: Option<&str>,
        call: Call,
    ) -> Result<Reply, ServiceError> {
        let Some(deployment) = self.get(name, pin) else {
            let detail = match pin {
                Some(pin) => {
                    format!("version `{pin}` of wasm service `{name}` does not run on this node")
                }
                None => format!("no wasm service `{name}` runs on this node"),
            };
            return Err(ServiceError::runtime(503, detail));
        };
        deployment.call(call).await
    }

    /// Hands `message` to the message handler of `name`'s current version.
    pub async fn deliver(&self, name: &str, message: Message) -> Result<(), ServiceError> {
        let Some(deployment) = self.get(name, None) else {
            return Err(ServiceError::runtime(
                503,
                format!("no wasm service `{name}` runs on this node"),
            ));
        };
        deployment.deliver(message).await
    }

    /// The status of every running version of every service: by name, each name's current
    /// version first.
    pub fn status(&self) -> Vec<ServiceStatus> {
        self.0
            .services
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flat_map(statuses)
            .collect()
    }

    /// The status of `name`'s current version.
    pub fn service(&self, name: &str) -> Option<ServiceStatus> {
        self.get(name, None).map(|d| d.status())
    }

    /// The statuses of `name`'s running versions, current first; empty if it does not run.
    pub fn versions(&self, name: &str) -> Vec<ServiceStatus> {
        self.0
            .services
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(statuses)
            .unwrap_or_default()
    }

    /// Flushes the service stores to disk.
    pub async fn flush(&self) -> Result<(), sled::Error> {
        flush(&self.0.db).await
    }
}

/// Flushes `tree` on a blocking thread. Not sled's `flush_async`, which parks one of sled's
/// pool threads until the log is stable while the writes it waits for queue on that same
/// pool: enough concurrent flushes deadlock it.
async fn flush(tree: &sled::Tree) -> Result<(), sled::Error> {
    let tree = tree.clone();
    match tokio::task::spawn_blocking(move || tree.flush()).await {
        Ok(flushed) => flushed.map(drop),
        Err(e) => Err(sled::Error::ReportableBug(format!(
            "flush task failed: {e}"
        ))),
    }
}

/// The statuses of one service's versions, current first.
fn statuses(versions: &Versions) -> Vec<ServiceStatus> {
    versions
        .all()
        .enumerate()
        .map(|(i, d)| ServiceStatus {
            current: i == 0,
            ..d.status()
        })
        .collect()
}

/// A loaded deployment and how long loading took.
struct Loaded(Arc<Deployment>, u64);

impl std::ops::Deref for Loaded {
    type Target = Deployment;

    fn deref(&self) -> &Deployment {
        &self.0
    }
}
