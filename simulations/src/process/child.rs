//! One node as a `micro-node` child process: its own data dir, TCP on 127.0.0.1, its
//! control API on a loopback port it picks itself (read back from `control.json`), its
//! output in `node.log` inside the data dir. Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use micro_node::overlay::{BootstrapAddr, LocalInfo, PeerId};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::control::{Control, ControlError};

/// Longest a node may take from spawn to answering `/v1/id`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a starting node is looked at.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Longest a clean shutdown (SIGTERM) may take before SIGKILL; the node's own grace is 10 s.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Most bytes of a node's log quoted in an error.
const LOG_TAIL_BYTES: u64 = 2_048;
/// The log file's name inside the data dir.
pub const LOG_FILE: &str = "node.log";

/// A node process did not come up.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// Its data dir or log file could not be made.
    #[error("node {index}: preparing {path}: {source}")]
    Prepare {
        /// The slot.
        index: usize,
        /// What was being made.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The binary could not be started.
    #[error("node {index}: cannot run {binary}: {source}")]
    Spawn {
        /// The slot.
        index: usize,
        /// The binary.
        binary: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It exited while starting.
    #[error("node {index} exited while starting ({status}); its log, kept at {log}, ends:\n{tail}")]
    Exited {
        /// The slot.
        index: usize,
        /// How it exited.
        status: ExitStatus,
        /// Its log.
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },
    /// Its control API did not answer in time.
    #[error(
        "node {index}: control API not up within {waited:?} ({last}); its log, kept at {log}, \
         ends:\n{tail}"
    )]
    NotReady {
        /// The slot.
        index: usize,
        /// How long it was given.
        waited: Duration,
        /// The last failure seen.
        last: String,
        /// Its log.
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },
}

/// How to start one node.
#[derive(Debug, Clone)]
pub struct ChildSpec<'a> {
    /// The `micro-node` binary.
    pub binary: &'a Path,
    /// Its slot (for names and errors).
    pub index: usize,
    /// A super node?
    pub super_node: bool,
    /// Whom it joins through.
    pub bootstrap: Vec<BootstrapAddr>,
}

/// A running node process.
pub struct ChildNode {
    child: Child,
    pid: u32,
    dir: tempfile::TempDir,
    /// Its control API.
    pub control: Control,
    /// Its identity.
    pub peer_id: PeerId,
    /// Its TCP listen address on 127.0.0.1, `/p2p/` included: what others bootstrap from.
    pub addr: Option<BootstrapAddr>,
}

impl ChildNode {
    /// Spawns the node and waits (up to [`START_TIMEOUT`]) until its control API answers.
    pub async fn start(spec: ChildSpec<'_>) -> Result<ChildNode, ChildError> {
        let index = spec.index;
        let dir = tempfile::Builder::new()
            .prefix(&format!("micro-sim-node-{index}-"))
            .tempdir()
            .map_err(|source| ChildError::Prepare {
                index,
                path: std::env::temp_dir(),
                source,
            })?;
        let log_path = dir.path().join(LOG_FILE);
        let log = std::fs::File::create(&log_path).map_err(|source| ChildError::Prepare {
            index,
            path: log_path.clone(),
            source,
        })?;
        let log_too = log.try_clone().map_err(|source| ChildError::Prepare {
            index,
            path: log_path.clone(),
            source,
        })?;
        let mut command = Command::new(spec.binary);
        command
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--control", "127.0.0.1:0"])
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .arg("--no-gateway")
            // As in-process: every node serves the DHT (on loopback `auto` never confirms an
            // external address, so peers would stay clients).
            .args(["--kad-mode", "server"]);
        if spec.super_node {
            command.arg("--super");
        }
        for b in &spec.bootstrap {
            command.arg("--bootstrap").arg(b.addr.to_string());
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_too))
            .kill_on_drop(true);
        let child = command.spawn().map_err(|source| ChildError::Spawn {
            index,
            binary: spec.binary.to_owned(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        debug!(slot = index, pid, "node process spawned");
        let mut starting = Starting { index, child, dir };
        let (control, info) = starting.wait_ready().await?;
        let Starting { child, dir, .. } = starting;
        let addr = info
            .listen_addrs
            .iter()
            .find_map(|a| a.to_string().parse::<BootstrapAddr>().ok());
        info!(slot = index, pid, peer = %info.peer_id, "node process up");
        Ok(ChildNode {
            child,
            pid,
            dir,
            control,
            peer_id: info.peer_id,
            addr,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its data dir (the log is [`LOG_FILE`] in it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its resident memory now, from `/proc/<pid>/status` (`None` if unreadable).
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        vm_rss_bytes(&status)
    }

    /// Stops it: a crash is SIGKILL; a clean leave is SIGTERM (the node drains and exits),
    /// then SIGKILL if it takes longer than [`STOP_TIMEOUT`]. Its data dir goes with it.
    pub async fn stop(mut self, crash: bool) -> PeerId {
        let peer = self.peer_id;
        if !crash && let Err(e) = terminate(self.pid) {
            warn!(pid = self.pid, error = %e, "cannot send SIGTERM; killing");
        }
        if crash
            || tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
                .await
                .is_err()
        {
            if !crash {
                warn!(
                    pid = self.pid,
                    "no clean exit within {STOP_TIMEOUT:?}; killing"
                );
            }
            let _ = self.child.kill().await;
        }
        info!(%peer, crash, "node process left");
        peer
    }
}

/// A node between spawn and ready: on failure, its dir is kept so its log can be read.
struct Starting {
    index: usize,
    child: Child,
    dir: tempfile::TempDir,
}

impl Starting {
    async fn wait_ready(&mut self) -> Result<(Control, LocalInfo), ChildError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut tick = tokio::time::interval(POLL_EVERY);
        loop {
            tick.tick().await;
            if let Ok(Some(status)) = self.child.try_wait() {
                let (log, tail) = self.keep_log();
                return Err(ChildError::Exited {
                    index: self.index,
                    status,
                    log,
                    tail,
                });
            }
            let last = match Control::open(self.dir.path()) {
                Ok((control, _)) => match control.id().await {
                    Ok(info) => return Ok((control, info)),
                    Err(e) => e.to_string(),
                },
                Err(ControlError::DataDir { reason, .. }) => reason,
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                let _ = self.child.kill().await;
                let (log, tail) = self.keep_log();
                return Err(ChildError::NotReady {
                    index: self.index,
                    waited: START_TIMEOUT,
                    last,
                    log,
                    tail,
                });
            }
        }
    }

    /// Keeps the data dir past this run and returns its log's path and last lines.
    fn keep_log(&mut self) -> (PathBuf, String) {
        self.dir.disable_cleanup(true);
        let log = self.dir.path().join(LOG_FILE);
        let tail = tail(&log, LOG_TAIL_BYTES);
        (log, tail)
    }
}

/// Sends SIGTERM to `pid`.
fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    if pid <= 0 {
        return Err(std::io::Error::other("no pid"));
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; `pid` is our own
    // child's, not yet reaped (we still hold its `Child`), so it names no other process.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
pub fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The last `max` bytes of `path` (lossy UTF-8), or why it could not be read.
fn tail(path: &Path, max: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let read = || -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(max)))?;
        let mut bytes = Vec::new();
        file.take(max).read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_else(|e| format!("(cannot read the log: {e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tmicro-node\nVmPeak:\t  9000 kB\nVmRSS:\t   20480 kB\nThreads:\t5\n";
        assert_eq!(vm_rss_bytes(status), Some(20 * 1024 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tx\n"), None);
        assert_eq!(vm_rss_bytes("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn a_log_tail_is_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        std::fs::write(&path, "a".repeat(5000) + "END").expect("write");
        let t = tail(&path, 10);
        assert_eq!(t.len(), 10);
        assert!(t.ends_with("END"));
        assert!(tail(&dir.path().join("none"), 10).contains("cannot read"));
    }

    #[test]
    fn our_own_rss_is_readable() {
        let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
        assert!(vm_rss_bytes(&status).is_some_and(|b| b > 0));
    }
}
