//! Deploying from source and following it: build, deploy, remember what was followed, and
//! poll followed sources for new commits (the network's "evolution").

use std::time::Duration;

use micro_wasm_runtime::Deployed;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{Instrument, info, info_span, warn};

use super::{Wasm, WasmError, lock};
use crate::source::{Phase, Progress, SourceSpec};

/// The sled tree of followed sources: service name → [`Followed`] (JSON).
pub(super) const FOLLOWED_TREE: &str = "wasm-sources";

/// Shortest follow interval accepted.
pub const MIN_FOLLOW: Duration = Duration::from_secs(1);

/// A deployment that came from source, as remembered for `update` and `--follow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Followed {
    /// What the user gave (`repo@rev` or a folder).
    pub source: String,
    /// Poll interval in seconds; `None` = not followed (only `update`).
    pub follow_secs: Option<u64>,
    /// The commit deployed last.
    pub commit: String,
}

/// What a deploy from source produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDeployed {
    /// The runtime's report.
    pub deployed: Deployed,
    /// The full commit.
    pub commit: String,
    /// Whether the build came from the cache.
    pub cached: bool,
    /// Milliseconds per phase.
    pub timings: Vec<(Phase, u64)>,
}

impl Wasm {
    /// Builds `source` and deploys it; with `follow`, keeps polling it for new commits.
    pub async fn deploy_source(
        &self,
        source: &str,
        follow: Option<Duration>,
        progress: &mpsc::Sender<Progress>,
    ) -> Result<SourceDeployed, WasmError> {
        let spec = SourceSpec::parse(source, &self.0.builder.config().short_base)
            .map_err(crate::source::BuildError::from)?;
        if follow.is_some() && matches!(spec, SourceSpec::Local(_)) {
            return Err(WasmError::Follow(
                "--follow needs a git repository, not a local folder".to_owned(),
            ));
        }
        let follow = follow.map(|f| f.max(MIN_FOLLOW));
        let built = self.0.builder.build(&spec, progress).await?;
        let _ = progress
            .send(Progress::Phase(
                Phase::Compile,
                built.manifest.version.clone(),
            ))
            .await;
        let compile_started = std::time::Instant::now();
        let name = built.manifest.name.clone();
        let deployed = self
            .deploy_component(built.manifest.clone(), built.component)
            .await?;
        let mut timings = built.timings;
        timings.push((Phase::Compile, compile_started.elapsed().as_millis() as u64));
        let _ = progress
            .send(Progress::Phase(Phase::Register, name.clone()))
            .await;
        let followed = Followed {
            source: source.to_owned(),
            follow_secs: follow.map(|f| f.as_secs()),
            commit: built.commit.clone(),
        };
        if let Ok(json) = serde_json::to_vec(&followed)
            && let Err(e) = self.0.followed.insert(name.as_bytes(), json)
        {
            warn!(service = %name, error = %e, "cannot record the service's source");
        }
        if follow.is_some() {
            self.start_following(&name);
        } else if let Some(task) = lock(&self.0.followers).remove(&name) {
            task.abort();
        }
        Ok(SourceDeployed {
            deployed,
            commit: built.commit,
            cached: built.cached,
            timings,
        })
    }

    /// What `name` was deployed from, if from source.
    pub fn followed(&self, name: &str) -> Option<Followed> {
        let value = self.0.followed.get(name.as_bytes()).ok()??;
        serde_json::from_slice(&value).ok()
    }

    /// Deploys the newest commit of what `name` was deployed from, if it changed. `Ok(None)`
    /// when it is already current.
    pub async fn update(
        &self,
        name: &str,
        progress: &mpsc::Sender<Progress>,
    ) -> Result<Option<SourceDeployed>, WasmError> {
        let followed = self
            .followed(name)
            .ok_or_else(|| WasmError::Follow(format!("`{name}` was not deployed from source")))?;
        let spec = SourceSpec::parse(&followed.source, &self.0.builder.config().short_base)
            .map_err(crate::source::BuildError::from)?;
        if let SourceSpec::Git { url, rev } = &spec {
            let head = self
                .0
                .builder
                .fetcher()
                .remote_head(url, rev.as_deref())
                .await
                .map_err(crate::source::BuildError::from)?;
            // A source pinned to a commit has no newer commit (ls-remote lists refs only).
            let pinned = head.is_none()
                && rev
                    .as_deref()
                    .is_some_and(|r| followed.commit.starts_with(r));
            if pinned || head.as_deref() == Some(followed.commit.as_str()) {
                return Ok(None);
            }
        }
        let follow = followed.follow_secs.map(Duration::from_secs);
        self.deploy_source(&followed.source, follow, progress)
            .await
            .map(Some)
    }

    /// Starts (or restarts) the polling task of `name`.
    pub(super) fn start_following(&self, name: &str) {
        let wasm = self.clone();
        let service = name.to_owned();
        let span = info_span!("follow", service = %name);
        let task = tokio::spawn(
            async move {
                let mut stop = wasm.0.stop.clone();
                loop {
                    let Some(interval) = wasm
                        .followed(&service)
                        .and_then(|f| f.follow_secs)
                        .map(Duration::from_secs)
                    else {
                        return;
                    };
                    tokio::select! {
                        () = tokio::time::sleep(interval) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    // Progress goes nowhere: the service log says what happened.
                    let (tx, mut rx) = mpsc::channel(64);
                    tokio::spawn(async move { while rx.recv().await.is_some() {} });
                    let logs = wasm.runtime().logs(&service);
                    match wasm.update(&service, &tx).await {
                        Ok(None) => {}
                        Ok(Some(done)) => {
                            info!(commit = %done.commit, "followed source deployed a new commit");
                        }
                        Err(e) => {
                            warn!(error = %e, "following: the new commit was not deployed");
                            let running = wasm
                                .runtime()
                                .service(&service)
                                .map(|s| s.version)
                                .unwrap_or_default();
                            logs.push(
                                "node",
                                &running,
                                &format!("new commit not deployed, still running {running}: {e}"),
                            );
                        }
                    }
                }
            }
            .instrument(span),
        );
        if let Some(old) = lock(&self.0.followers).insert(name.to_owned(), task) {
            old.abort();
        }
    }

    /// Restarts the polling of every followed service (after a restart).
    pub(super) fn resume_following(&self) {
        for entry in self.0.followed.iter().flatten() {
            let name = String::from_utf8_lossy(&entry.0).into_owned();
            let followed: Option<Followed> = serde_json::from_slice(&entry.1).ok();
            if followed.is_some_and(|f| f.follow_secs.is_some())
                && self.0.runtime.service(&name).is_some()
            {
                self.start_following(&name);
            }
        }
    }

    /// Forgets `name`'s source and stops following it.
    pub(super) fn forget_source(&self, name: &str) {
        if let Some(task) = lock(&self.0.followers).remove(name) {
            task.abort();
        }
        let _ = self.0.followed.remove(name.as_bytes());
    }
}
