//! Services from source: fetch a repository (or read a local folder), detect its language,
//! build it to a component in a sandbox, and hand the component to the wasm runtime.
//!
//! `spec` parses what the user typed, `fetch` runs git, `sandbox` confines build steps,
//! `build` knows the languages; [`Builder`] strings them together with a cache and logs.

pub mod build;
pub mod fetch;
pub mod sandbox;
pub mod spec;

use std::path::{Path, PathBuf};
use std::time::Instant;

use micro_wasm_runtime::Manifest;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::info;

pub use fetch::{FetchError, FetchLimits, Fetcher};
pub use sandbox::SandboxLimits;
pub use spec::{SourceSpec, SpecError};

/// The stages of a deploy from source, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Fetching the repository (or copying the folder).
    Fetch,
    /// Reading `micro.toml` and detecting the language.
    Detect,
    /// Downloading dependencies (network, no repository code).
    Dependencies,
    /// Building (repository code, no network).
    Build,
    /// Compiling the component to machine code and checking it.
    Compile,
    /// Registering it on the network.
    Register,
}

/// What a deploy from source reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Progress {
    /// A phase started.
    Phase(Phase, String),
    /// A line of a build step's output.
    Line(String),
}

/// Why a deploy from source failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The source string.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Fetching.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// `micro.toml` is invalid.
    #[error(transparent)]
    Manifest(#[from] micro_wasm_runtime::manifest::ManifestError),
    /// The language could not be told.
    #[error("cannot tell how to build this tree: {0}")]
    Detect(String),
    /// A toolchain is missing.
    #[error("{tool} is not installed: {hint}")]
    MissingToolchain {
        /// What is missing.
        tool: String,
        /// How to install it.
        hint: String,
    },
    /// A build step failed.
    #[error("`{step}` failed: {reason}\n{tail}")]
    Build {
        /// The step.
        step: String,
        /// How it ended.
        reason: String,
        /// The last lines of its output.
        tail: String,
    },
    /// The build did not produce what it should.
    #[error("the build produced no usable component: {0}")]
    Output(String),
    /// Local files.
    #[error("{0}")]
    Io(String),
}

/// Deploys from source: where things are kept and the limits builds run under.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Where `someone/greeter` resolves.
    pub short_base: String,
    /// Fetch limits.
    pub fetch: FetchLimits,
    /// Build limits.
    pub build: SandboxLimits,
    /// Cargo's home for builds; `None` = `<data dir>/build/cargo-home`.
    pub cargo_home: Option<PathBuf>,
    /// Take dependencies only from what the cargo home already holds (an air-gapped node,
    /// or tests, which must not reach the internet).
    pub offline_dependencies: bool,
    /// Peers whose `deploy … --on <this node>` is accepted; empty (the default) = none.
    pub remote_deployers: Vec<micro_overlay::PeerId>,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            short_base: "https://github.com".to_owned(),
            fetch: FetchLimits::default(),
            build: SandboxLimits::default(),
            cargo_home: None,
            offline_dependencies: false,
            remote_deployers: Vec::new(),
        }
    }
}

/// A built component, ready to deploy.
#[derive(Debug, Clone)]
pub struct Built {
    /// The component.
    pub component: Vec<u8>,
    /// The manifest it deploys with; its version is the commit.
    pub manifest: Manifest,
    /// The full commit (or `local-<hash>` for a folder that is not a clean git tree).
    pub commit: String,
    /// Whether the build cache had it.
    pub cached: bool,
    /// The build log's file.
    pub log: PathBuf,
    /// Milliseconds per phase.
    pub timings: Vec<(Phase, u64)>,
}

/// Builds services from source for one node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Builder {
    dir: PathBuf,
    fetcher: Fetcher,
    config: SourceConfig,
}

/// The `micro:service` WIT, given to componentizers.
const WIT: &str = include_str!("../../../wit/service.wit");

/// Folders never copied from a local source tree.
const SKIPPED: [&str; 3] = [".git", "target", "node_modules"];

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if SKIPPED.iter().any(|s| name == *s) {
            continue;
        }
        let kind = entry.file_type()?;
        let target = to.join(&name);
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A content hash of a tree (paths and bytes), for folders that are not clean git trees.
fn tree_hash(root: &Path) -> String {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => files.push(path),
                Err(_) => {}
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for file in files {
        h.update(
            file.strip_prefix(root)
                .unwrap_or(&file)
                .to_string_lossy()
                .as_bytes(),
        );
        h.update([0]);
        h.update(std::fs::read(&file).unwrap_or_default());
        h.update([0]);
    }
    h.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The name a tree's service gets without a manifest: the repository's or folder's name.
fn default_name(source: &SourceSpec) -> String {
    let raw = match source {
        SourceSpec::Git { url, .. } => url
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("service")
            .trim_end_matches(".git")
            .to_owned(),
        SourceSpec::Local(path) => path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "service".to_owned()),
    };
    let name: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    name.trim_matches('-').to_owned()
}

impl Builder {
    /// Keeps its caches, work trees and logs under `dir` (`<data dir>/build`).
    pub fn new(dir: PathBuf, config: SourceConfig) -> Self {
        Self {
            fetcher: Fetcher::new(dir.join("repos"), config.fetch),
            dir,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SourceConfig {
        &self.config
    }

    /// The fetcher (for `--follow`'s cheap checks).
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The build log of `name` at `commit`.
    pub fn log_path(&self, name: &str, commit: &str) -> PathBuf {
        self.dir
            .join("logs")
            .join(name)
            .join(format!("{commit}.log"))
    }

    /// The latest build log of `name`, if any.
    pub fn latest_log(&self, name: &str) -> Option<PathBuf> {
        std::fs::read_dir(self.dir.join("logs").join(name))
            .ok()?
            .flatten()
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .max()
            .map(|(_, p)| p)
    }

    /// Fetches, detects and builds `source` (using the build cache when it can).
    pub async fn build(
        &self,
        source: &SourceSpec,
        progress: &mpsc::Sender<Progress>,
    ) -> Result<Built, BuildError> {
        let mut timings = Vec::new();
        let mut clock = Instant::now();
        let mut lap = |phase: Phase, timings: &mut Vec<(Phase, u64)>| {
            timings.push((phase, clock.elapsed().as_millis() as u64));
            clock = Instant::now();
        };
        let work = self
            .dir
            .join("work")
            .join(format!("{:016x}", rand::random::<u64>()));
        let tree = work.join("src");
        let result = async {
            let _ = progress
                .send(Progress::Phase(Phase::Fetch, source.to_string()))
                .await;
            let commit = match source {
                SourceSpec::Git { url, rev } => {
                    let fetched = self.fetcher.fetch(url, rev.as_deref()).await?;
                    self.fetcher.export(&fetched, &tree).await?;
                    fetched.commit
                }
                SourceSpec::Local(path) => self.copy_local(path, &tree).await?,
            };
            lap(Phase::Fetch, &mut timings);
            let _ = progress
                .send(Progress::Phase(Phase::Detect, commit.clone()))
                .await;
            let manifest_text = match tokio::fs::read_to_string(tree.join("micro.toml")).await {
                Ok(text) => Some(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(BuildError::Io(format!("micro.toml: {e}"))),
            };
            let mut manifest = match &manifest_text {
                Some(text) => Manifest::parse(text)?,
                None => Manifest::minimal(default_name(source), "0.0.0"),
            };
            let language = build::detect(&tree, manifest_text.as_ref().map(|_| &manifest))?;
            let toolchain = build::toolchain_id(&language).await?;
            let key = build::cache_key(
                &commit,
                &language,
                &toolchain,
                manifest_text.as_deref().unwrap_or(""),
            );
            manifest.version = commit.chars().take(12).collect();
            lap(Phase::Detect, &mut timings);
            let cached_file = self.dir.join("cache").join(format!("{key}.wasm"));
            let log_path = self.log_path(&manifest.name, &manifest.version);
            if let Ok(component) = tokio::fs::read(&cached_file).await {
                let _ = progress
                    .send(Progress::Phase(Phase::Build, format!("cached build {key}")))
                    .await;
                lap(Phase::Build, &mut timings);
                return Ok(Built {
                    component,
                    manifest,
                    commit,
                    cached: true,
                    log: log_path,
                    timings: timings.clone(),
                });
            }
            let wit_dir = work.join("wit");
            tokio::fs::create_dir_all(&wit_dir)
                .await
                .map_err(|e| BuildError::Io(e.to_string()))?;
            tokio::fs::write(wit_dir.join("service.wit"), WIT)
                .await
                .map_err(|e| BuildError::Io(e.to_string()))?;
            let repo_key: String = Sha256::digest(
                source
                    .to_string()
                    .split('@')
                    .next()
                    .unwrap_or_default()
                    .as_bytes(),
            )[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let ws = build::Workspace {
                tree: &tree,
                scratch: &work,
                cargo_home: &self
                    .config
                    .cargo_home
                    .clone()
                    .unwrap_or_else(|| self.dir.join("cargo-home")),
                offline: self.config.offline_dependencies,
                target_dir: &self.dir.join("target").join(repo_key),
                wit_dir: &wit_dir,
            };
            let mut log = format!(
                "build of {source} at {commit} ({}, {toolchain})\n",
                language.name()
            );
            let built = build::build(
                &language,
                &manifest.name,
                &ws,
                &self.config.build,
                progress,
                &mut log,
            )
            .await;
            if let Some(parent) = log_path.parent() {
                let _ = tokio::fs::create_dir_all(parent).await;
            }
            if let Err(e) = &built {
                log.push_str(&format!("\nfailed: {e}\n"));
            }
            let _ = tokio::fs::write(&log_path, &log).await;
            let component = built?;
            lap(Phase::Build, &mut timings);
            let _ = tokio::fs::create_dir_all(cached_file.parent().unwrap_or(&self.dir)).await;
            let _ = tokio::fs::write(&cached_file, &component).await;
            Ok(Built {
                component,
                manifest,
                commit,
                cached: false,
                log: log_path,
                timings: timings.clone(),
            })
        }
        .await;
        let _ = tokio::fs::remove_dir_all(&work).await;
        if let Ok(built) = &result {
            info!(source = %source, commit = %built.commit, cached = built.cached, "built from source");
        }
        result
    }

    /// Copies a local folder into the work tree; its version is the git commit when it is a
    /// clean git work tree, else a content hash.
    async fn copy_local(&self, path: &Path, tree: &Path) -> Result<String, BuildError> {
        let path = path.to_path_buf();
        let dest = tree.to_path_buf();
        let limit = self.config.fetch.max_tree_bytes;
        let copied = tokio::task::spawn_blocking(move || -> Result<PathBuf, BuildError> {
            if !path.is_dir() {
                return Err(BuildError::Io(format!(
                    "{} is not a folder",
                    path.display()
                )));
            }
            copy_tree(&path, &dest)
                .map_err(|e| BuildError::Io(format!("copying {}: {e}", path.display())))?;
            fetch::check_tree(&dest, limit)?;
            Ok(path)
        })
        .await
        .map_err(|e| BuildError::Io(e.to_string()))??;
        let git = |args: &'static [&'static str]| {
            let copied = copied.clone();
            async move {
                tokio::process::Command::new("git")
                    .arg("-C")
                    .arg(&copied)
                    .args(args)
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .output()
                    .await
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            }
        };
        let head = git(&["rev-parse", "HEAD"]).await;
        let clean = git(&["status", "--porcelain"])
            .await
            .is_some_and(|s| s.is_empty());
        Ok(match head {
            Some(commit) if clean && !commit.is_empty() => commit,
            _ => {
                let tree = tree.to_path_buf();
                let hash = tokio::task::spawn_blocking(move || tree_hash(&tree))
                    .await
                    .map_err(|e| BuildError::Io(e.to_string()))?;
                format!("local-{hash}")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_repository() {
        let git = |url: &str| SourceSpec::Git {
            url: url.to_owned(),
            rev: None,
        };
        assert_eq!(
            default_name(&git("https://github.com/someone/Greeter.git")),
            "greeter"
        );
        assert_eq!(default_name(&git("file:///srv/my_service/")), "my-service");
    }
}
