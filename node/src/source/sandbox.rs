//! Running untrusted build steps: a child process in new mount and PID namespaces (and a new,
//! empty network namespace — no network at all — unless the step is the dependency download),
//! every file system read-only except the folders it may write, with no capabilities, under
//! CPU, memory, process-count, file-size and wall-time limits.
//!
//! Built from `unshare`, `mount` and `setpriv` (util-linux) and cgroups where the machine
//! offers them: nothing to install beyond a stock Linux. Without the namespaces (not root and
//! no unprivileged user namespaces) builds are refused rather than run unconfined.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// What a sandboxed step may use.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Wall time; the whole process tree is killed at it.
    pub wall: Duration,
    /// CPU seconds per process.
    pub cpu_secs: u64,
    /// Memory of the whole tree (cgroup), in bytes; address space per process is capped at
    /// four times it where cgroups are missing.
    pub memory_bytes: u64,
    /// Processes at once (cgroup `pids.max`).
    pub pids: u32,
    /// Largest file a process may write, in bytes.
    pub file_bytes: u64,
    /// Output kept for the build log, in bytes (the tail).
    pub log_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            wall: Duration::from_secs(600),
            cpu_secs: 1200,
            memory_bytes: 4 * 1024 * 1024 * 1024,
            pids: 512,
            file_bytes: 1024 * 1024 * 1024,
            log_bytes: 1024 * 1024,
        }
    }
}

/// Why a sandboxed step did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The namespaces could not be created.
    #[error(
        "the build sandbox is unavailable ({0}); builds need Linux namespaces: run the node as root or enable unprivileged user namespaces"
    )]
    Unavailable(String),
    /// Killed at the wall-time limit.
    #[error("killed after {0:?}, the build's time limit")]
    TimedOut(Duration),
    /// The step failed.
    #[error("exited with {status}{hint}")]
    Failed {
        /// Exit status.
        status: String,
        /// What the limit hit was, if one is known.
        hint: String,
    },
    /// Starting it failed.
    #[error("cannot start the sandbox: {0}")]
    Spawn(std::io::Error),
}

/// A finished step: its output's tail (the log).
#[derive(Debug, Clone, Default)]
pub struct StepLog {
    /// The kept lines.
    pub lines: Vec<String>,
    /// Bytes of output dropped from the front.
    pub dropped: u64,
}

impl StepLog {
    fn push(&mut self, line: String, limit: usize) {
        self.lines.push(line);
        let mut size: usize = self.lines.iter().map(|l| l.len() + 1).sum();
        while size > limit && self.lines.len() > 1 {
            let gone = self.lines.remove(0);
            size -= gone.len() + 1;
            self.dropped += gone.len() as u64 + 1;
        }
    }

    /// The log as text.
    pub fn text(&self) -> String {
        let mut text = String::new();
        if self.dropped > 0 {
            text.push_str(&format!(
                "[… {} bytes of earlier output dropped]\n",
                self.dropped
            ));
        }
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// Sets up the namespaces' file systems, joins the cgroups, drops every capability and runs
/// the command. Arguments: cgroup dirs (`:`-separated, may be empty), writable dirs, `--`, the
/// command.
const SETUP: &str = r#"set -eu
cgroups="$1"; shift
old_ifs="$IFS"; IFS=":"
for cg in $cgroups; do [ -n "$cg" ] && echo $$ > "$cg/cgroup.procs"; done
IFS="$old_ifs"
mount --make-rprivate /
rw=""
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  mount --bind "$1" "$1"
  rw="$rw
$1"
  shift
done
shift
for m in $(awk '{print $5}' /proc/self/mountinfo); do
  case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
  if printf '%s\n' "$rw" | grep -qxF -- "$m"; then continue; fi
  mount -o remount,bind,ro "$m" 2>/dev/null || true
done
mount -t proc proc /proc 2>/dev/null || true
mount -t tmpfs -o size=64m,nosuid,nodev tmpfs /dev/shm 2>/dev/null || true
exec setpriv --no-new-privs --bounding-set=-all --inh-caps=-all -- "$@"
"#;

/// A cgroup made for one step, removed when dropped.
struct Cgroups(Vec<PathBuf>);

impl Cgroups {
    /// Creates `micro-build-<id>` in the pids and memory hierarchies that exist and are
    /// writable (cgroup v2, or v1's `pids` and `memory`), with the step's limits.
    fn create(id: &str, limits: &SandboxLimits) -> Self {
        let root = Path::new("/sys/fs/cgroup");
        let mut made = Vec::new();
        let mut make = |dir: PathBuf, files: &[(&str, String)]| {
            if std::fs::create_dir(&dir).is_err() {
                return;
            }
            for (file, value) in files {
                if let Err(e) = std::fs::write(dir.join(file), value) {
                    debug!(dir = %dir.display(), file, error = %e, "cgroup limit not set");
                }
            }
            made.push(dir);
        };
        let name = format!("micro-build-{id}");
        if root.join("cgroup.controllers").exists() {
            make(
                root.join(&name),
                &[
                    ("pids.max", limits.pids.to_string()),
                    ("memory.max", limits.memory_bytes.to_string()),
                    ("memory.swap.max", "0".to_owned()),
                ],
            );
        } else {
            make(
                root.join("pids").join(&name),
                &[("pids.max", limits.pids.to_string())],
            );
            make(
                root.join("memory").join(&name),
                &[("memory.limit_in_bytes", limits.memory_bytes.to_string())],
            );
        }
        if made.is_empty() {
            warn!(
                "no writable cgroups: build process count and memory are bounded by rlimits only"
            );
        }
        Self(made)
    }

    fn arg(&self) -> String {
        self.0
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Did the pids limit refuse a fork?
    fn hit_pids(&self) -> bool {
        self.0.iter().any(|dir| {
            std::fs::read_to_string(dir.join("pids.events"))
                .ok()
                .and_then(|e| {
                    e.split_whitespace()
                        .nth(1)
                        .and_then(|n| n.parse::<u64>().ok())
                })
                .is_some_and(|n| n > 0)
        })
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in &self.0 {
            // Empty once the namespace's processes are gone; SIGKILLed ones go quickly.
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Is this process root (so namespaces need no user namespace)?
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Runs `program args` in `cwd` inside the sandbox, with exactly `env`, able to write only
/// `writable`. Output lines go to `lines` (if given) as they come; the tail of the output is
/// returned whatever the outcome, for the build log.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    program: &Path,
    args: &[OsString],
    cwd: &Path,
    env: &[(OsString, OsString)],
    writable: &[PathBuf],
    network: bool,
    limits: &SandboxLimits,
    lines: Option<&mpsc::Sender<String>>,
) -> (StepLog, Result<(), SandboxError>) {
    let mut log = StepLog::default();
    let step = Step {
        program,
        args,
        cwd,
        env,
        writable,
        network,
        limits,
    };
    let result = run_logged(&step, lines, &mut log).await;
    if let Err(e) = &result {
        debug!(error = %e, log = %log.text(), "sandboxed step failed");
    }
    (log, result)
}

/// One sandboxed command.
struct Step<'a> {
    program: &'a Path,
    args: &'a [OsString],
    cwd: &'a Path,
    env: &'a [(OsString, OsString)],
    writable: &'a [PathBuf],
    network: bool,
    limits: &'a SandboxLimits,
}

async fn run_logged(
    step: &Step<'_>,
    lines: Option<&mpsc::Sender<String>>,
    log: &mut StepLog,
) -> Result<(), SandboxError> {
    let Step {
        program,
        args,
        cwd,
        env,
        writable,
        network,
        limits,
    } = *step;
    let id = format!(
        "{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    );
    let cgroups = Cgroups::create(&id, limits);
    let mut cmd = Command::new("unshare");
    if !is_root() {
        cmd.args(["--user", "--map-root-user"]);
    }
    if !network {
        cmd.arg("--net");
    }
    cmd.args([
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "--",
        "sh",
        "-c",
        SETUP,
    ])
    .arg("micro-sandbox")
    .arg(cgroups.arg());
    for dir in writable {
        cmd.arg(dir);
    }
    cmd.arg("--")
        .arg("prlimit")
        .arg(format!("--cpu={}", limits.cpu_secs))
        .arg(format!("--as={}", limits.memory_bytes.saturating_mul(4)))
        .arg(format!("--fsize={}", limits.file_bytes))
        .arg("--nofile=4096")
        .arg("--core=0")
        .arg("--")
        .arg(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(SandboxError::Spawn)?;
    let (tx, mut rx) = mpsc::channel::<String>(256);
    let streams: [Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>; 2] = [
        child.stdout.take().map(|s| Box::new(s) as _),
        child.stderr.take().map(|s| Box::new(s) as _),
    ];
    for stream in streams.into_iter().flatten() {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            // Lines are read with a bound: a step printing without newlines cannot grow us.
            loop {
                buf.clear();
                match (&mut reader)
                    .take(16 * 1024)
                    .read_until(b'\n', &mut buf)
                    .await
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                        if tx.send(line).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    let collect = async {
        while let Some(line) = rx.recv().await {
            if let Some(lines) = lines {
                // A slow listener loses progress lines, never the log.
                let _ = lines.try_send(line.clone());
            }
            log.push(line, limits.log_bytes);
        }
        child.wait().await
    };
    let status = match tokio::time::timeout(limits.wall, collect).await {
        Ok(status) => status.map_err(SandboxError::Spawn)?,
        Err(_) => {
            // Killing `unshare` kills the namespace's init (`--kill-child`), and with it every
            // process of the step.
            let _ = child.kill().await;
            return Err(SandboxError::TimedOut(limits.wall));
        }
    };
    if status.success() {
        return Ok(());
    }
    let first = log.lines.first().map(String::as_str).unwrap_or_default();
    if first.starts_with("unshare:") {
        return Err(SandboxError::Unavailable(first.to_owned()));
    }
    let hint = if cgroups.hit_pids() {
        format!(
            " (it tried to run more than {} processes at once)",
            limits.pids
        )
    } else if status.to_string().contains("SIGXCPU") || status.to_string().contains("signal: 24") {
        format!(" (it used its {} s of CPU time)", limits.cpu_secs)
    } else {
        String::new()
    };
    Err(SandboxError::Failed {
        status: status.to_string(),
        hint,
    })
}
