//! The `source-bench` harness: how long a deploy from source takes, from the `deploy` call to
//! the greeter's first successful answer, phase by phase.
//!
//! This file holds what the cases share: the greeter published over `git daemon`
//! ([`Published`]), a node set up for offline builds ([`start_node`]), one measured deploy
//! ([`deploy_and_call`]) with its breakdown ([`Sample`]), and the first successful call
//! ([`first_answer`]). The cases themselves are in [`cases`]; the binary
//! `src/bin/source-bench.rs` runs them and prints the table.

pub mod cases;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use micro_node::RunningNode;
use micro_node::overlay::Role;
use micro_node::services::CallRequest;
use micro_node::source::{Phase, Progress};
use micro_testkit::wasm::{GitDaemon, build_example, cargo_home, git, source_repo};
use micro_testkit::{node_config, overlay_config};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The example service deployed, and its endpoint.
pub const GREETER: &str = "greeter";
/// The greeter's endpoint.
pub const HELLO: &str = "Say.Hello";
/// The request body.
pub const HELLO_BODY: &[u8] = br#"{"name":"Ada"}"#;
/// The greeting in the example's `micro.toml`.
pub const FIRST_GREETING: &str = "Hello";
/// Deadline of one call of the greeter.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a deployed (or restored) greeter may take to answer its first call.
const FIRST_ANSWER_PATIENCE: Duration = Duration::from_secs(30);
/// Pause between two tries of the first call when one fails (polling, not synchronisation:
/// every try checks the answer).
const RETRY: Duration = Duration::from_millis(2);
/// Progress messages buffered; when full, build output lines are dropped (the node sends them
/// with `try_send`) and phase changes wait, so the recorder sees every phase.
const PROGRESS_BOUND: usize = 256;
/// How long the progress recorder may take to see its last message once the deploy is over.
const RECORDER_PATIENCE: Duration = Duration::from_secs(10);

/// The greeter published as a git repository: a work repository (one commit on `main`), a
/// bare clone of it served by `git daemon` on loopback, and the URL of that clone. Dropping it
/// stops the daemon and deletes both.
pub struct Published {
    /// The work repository, where new commits are made.
    repo: PathBuf,
    /// The served bare repository, which new commits are pushed to.
    bare: PathBuf,
    /// `git://127.0.0.1:<port>/greeter.git`.
    url: String,
    /// Stopped when dropped (before the folder goes: field order).
    _daemon: GitDaemon,
    /// Holds both repositories.
    _work: TempDir,
}

impl Published {
    /// Builds the examples once on this machine (which puts the greeter's dependencies in the
    /// machine's cargo home, where the node's offline builds take them from), makes the
    /// greeter's repository and serves a bare clone of it. Blocking work, on a blocking thread.
    pub async fn greeter() -> Result<Self> {
        tokio::task::spawn_blocking(|| {
            build_example(GREETER);
            let work = tempfile::tempdir().context("creating a temporary directory")?;
            let repo = work.path().join(GREETER);
            let served = work.path().join("served");
            for dir in [&repo, &served] {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            source_repo(&repo, GREETER);
            let bare = served.join(format!("{GREETER}.git"));
            git(
                work.path(),
                &[
                    "clone",
                    "-q",
                    "--bare",
                    &repo.to_string_lossy(),
                    &bare.to_string_lossy(),
                ],
            );
            let daemon = GitDaemon::start(&served)?;
            Ok(Self {
                url: daemon.url(&format!("{GREETER}.git")),
                repo,
                bare,
                _daemon: daemon,
                _work: work,
            })
        })
        .await
        .context("publishing the greeter")?
    }

    /// What is deployed: the served repository's branch `main`.
    pub fn source(&self) -> String {
        format!("{}@main", self.url)
    }

    /// Sets the greeting in the work repository's `micro.toml` (the `[config]` section's
    /// `greeting`), commits it and pushes `main` to the served repository. Returns the commit.
    /// No Rust file changes, so cargo has nothing new to compile.
    pub async fn commit_greeting(&self, greeting: &str) -> Result<String> {
        let (repo, bare) = (self.repo.clone(), self.bare.clone());
        let greeting = greeting.to_owned();
        tokio::task::spawn_blocking(move || {
            let path = repo.join("micro.toml");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            ensure!(
                text.lines().any(|l| l.starts_with("greeting = ")),
                "{} has no `greeting = ` line to change",
                path.display()
            );
            let changed: String = text
                .lines()
                .map(|l| {
                    if l.starts_with("greeting = ") {
                        format!("greeting = {greeting:?}\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            std::fs::write(&path, changed)
                .with_context(|| format!("writing {}", path.display()))?;
            git(&repo, &["commit", "-q", "-a", "-m", &greeting]);
            git(&repo, &["push", "-q", &bare.to_string_lossy(), "main"]);
            Ok(git(&repo, &["rev-parse", "HEAD"]))
        })
        .await
        .context("committing a new greeting")?
    }
}

/// Starts an in-process super node on `dir`, alone (no bootstrap), whose builds take their
/// dependencies offline from this machine's cargo home: a benchmark must not reach the
/// internet.
pub async fn start_node(dir: &Path) -> Result<RunningNode> {
    let mut config = node_config(dir, overlay_config(Role::Super, Vec::new()));
    config.source.cargo_home = Some(cargo_home());
    config.source.offline_dependencies = true;
    RunningNode::start(config)
        .await
        .with_context(|| format!("starting a node on {}", dir.display()))
}

/// One measured run, from the `deploy` call (or, after a restart, from `RunningNode::start`)
/// to the greeter's first correct answer. Times are milliseconds; the phases the node reports
/// are whole milliseconds. A phase that did not happen in the case is `None`.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Fetching the repository and exporting the commit's tree (`Phase::Fetch`).
    pub fetch_ms: Option<u64>,
    /// Reading `micro.toml`, detecting the language and the toolchain (`Phase::Detect`).
    pub detect_ms: Option<u64>,
    /// Dependencies and build (`Phase::Build`, which the node times from the end of detection
    /// to the component; reading the build cache when it has the component).
    pub build_ms: Option<u64>,
    /// The dependency part of `build_ms` (cargo `generate-lockfile` and `fetch`, offline), from
    /// the time the progress messages arrived.
    pub deps_ms: Option<f64>,
    /// The runtime compiling the component to machine code (or loading it from the
    /// compiled-code cache), checking its imports and starting one instance
    /// (`Deployed::load_ms`).
    pub compile_ms: Option<u64>,
    /// `RunningNode::start`, which restores the deployed services (restart case only).
    pub start_ms: Option<f64>,
    /// Everything else: storing the component and the deployment record, registering the
    /// service on the network, and the first call. `total_ms` less the parts above.
    pub rest_ms: f64,
    /// From the `deploy` call (or the node's start) to the first correct answer.
    pub total_ms: f64,
    /// Whether the build came from the build cache.
    pub cached: Option<bool>,
    /// The deployed component's digest.
    pub digest: Option<String>,
    /// The version the deploy replaced, if one ran.
    pub replaced: Option<String>,
    /// Calls that failed before the first correct answer.
    pub failed_calls: u32,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// Deploys `source` on `node` and times it until the greeter answers with `greeting`.
pub async fn deploy_and_call(node: &RunningNode, source: &str, greeting: &str) -> Result<Sample> {
    let recorder = Recorder::start();
    let started = Instant::now();
    let done = node
        .wasm()
        .deploy_source(source, None, &recorder.tx)
        .await
        .with_context(|| format!("deploying {source}"))?;
    let failed_calls = first_answer(node, greeting).await?;
    let total = started.elapsed();
    let phases = recorder.finish().await?;
    let phase = |wanted: Phase| {
        done.timings
            .iter()
            .find(|(p, _)| *p == wanted)
            .map(|&(_, ms)| ms)
    };
    let mut sample = Sample {
        fetch_ms: phase(Phase::Fetch),
        detect_ms: phase(Phase::Detect),
        build_ms: phase(Phase::Build),
        deps_ms: deps_time(&phases).map(ms),
        compile_ms: Some(done.deployed.load_ms),
        total_ms: ms(total),
        cached: Some(done.cached),
        digest: Some(done.deployed.digest.clone()),
        replaced: done.deployed.replaced.clone(),
        failed_calls,
        ..Sample::default()
    };
    sample.rest_ms = sample.total_ms - sample.accounted_ms();
    Ok(sample)
}

impl Sample {
    /// The sum of the measured parts before the rest.
    fn accounted_ms(&self) -> f64 {
        [
            self.fetch_ms,
            self.detect_ms,
            self.build_ms,
            self.compile_ms,
        ]
        .into_iter()
        .flatten()
        .map(|v| v as f64)
        .sum::<f64>()
            + self.start_ms.unwrap_or_default()
    }
}

/// From the dependency phase's start to the build phase's start after it.
fn deps_time(phases: &[(Instant, Phase)]) -> Option<Duration> {
    let deps = phases.iter().position(|(_, p)| *p == Phase::Dependencies)?;
    let build = phases[deps..].iter().find(|(_, p)| *p == Phase::Build)?;
    Some(build.0.duration_since(phases[deps].0))
}

/// Notes when each phase of a deploy started, from its progress messages.
struct Recorder {
    /// Given to `deploy_source`.
    tx: mpsc::Sender<Progress>,
    /// Ends when every sender is gone.
    task: JoinHandle<Vec<(Instant, Phase)>>,
}

impl Recorder {
    fn start() -> Self {
        let (tx, mut rx) = mpsc::channel(PROGRESS_BOUND);
        let task = tokio::spawn(async move {
            let mut phases = Vec::new();
            while let Some(progress) = rx.recv().await {
                if let Progress::Phase(phase, _) = progress {
                    phases.push((Instant::now(), phase));
                }
            }
            phases
        });
        Self { tx, task }
    }

    /// The phases seen, once the deploy's copies of the sender are gone too.
    async fn finish(self) -> Result<Vec<(Instant, Phase)>> {
        drop(self.tx);
        tokio::time::timeout(RECORDER_PATIENCE, self.task)
            .await
            .context("the deploy kept its progress channel open")?
            .context("the progress recorder failed")
    }
}

/// Calls the greeter until it answers `"<greeting>, Ada!"`, for at most
/// [`FIRST_ANSWER_PATIENCE`]; returns how many calls failed first. A wrong greeting is an
/// error at once: the deploy has returned, so an older version must not answer.
pub async fn first_answer(node: &RunningNode, greeting: &str) -> Result<u32> {
    let expected = format!("{greeting}, Ada!");
    let deadline = Instant::now() + FIRST_ANSWER_PATIENCE;
    let mut failed = 0;
    loop {
        match hello(node).await {
            Ok(message) if message == expected => return Ok(failed),
            Ok(message) => bail!("the greeter said {message:?}, expected {expected:?}"),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!(
                    "no answer from the greeter within {FIRST_ANSWER_PATIENCE:?} ({failed} calls failed)"
                )));
            }
            Err(_) => {
                failed += 1;
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// One `Say.Hello` call through the node's service client; the answer's `message`.
async fn hello(node: &RunningNode) -> Result<String> {
    let outcome = node
        .services()
        .call(CallRequest {
            service: GREETER.parse()?,
            endpoint: HELLO.parse()?,
            body: HELLO_BODY.to_vec(),
            content_type: "application/json".into(),
            headers: Default::default(),
            timeout_ms: Some(u64::try_from(CALL_TIMEOUT.as_millis())?),
            node: None,
            version: None,
        })
        .await
        .map_err(|e| anyhow!("{} {}: {}", e.code, e.id, e.detail))?;
    let reply: Value = serde_json::from_slice(&outcome.body).context("the answer is not JSON")?;
    reply["message"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the answer has no message: {reply}"))
}

/// The values' median (the upper one of an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}
