//! Running the `micro-node` binary as a user would: daemons in the background, CLI commands
//! in the foreground.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Flags that keep a daemon on loopback with OS-chosen ports: P2P, control API and gateway.
pub const LOOPBACK_ARGS: [&str; 6] = [
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--control",
    "127.0.0.1:0",
    "--gateway",
    "127.0.0.1:0",
];

/// Which stream a daemon line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (the banner).
    Stdout,
    /// Standard error (the logs).
    Stderr,
}

/// A `micro-node` daemon started by a test; killed on drop if still running.
pub struct Daemon {
    child: Child,
    lines: mpsc::Receiver<(Stream, String)>,
    seen: Vec<(Stream, String)>,
    /// The daemon's data dir.
    pub data_dir: PathBuf,
}

impl Daemon {
    /// Starts `bin` on `data_dir` with `args` (plus `--data-dir`), and waits (up to `timeout`)
    /// for its `ready:` line.
    pub fn start(bin: &Path, data_dir: &Path, args: &[&str], timeout: Duration) -> Result<Self> {
        let mut daemon = Self::spawn(bin, data_dir, args)?;
        daemon.wait_line(Stream::Stdout, "ready:", timeout)?;
        Ok(daemon)
    }

    /// Starts `bin` on `data_dir` with `args` (plus `--data-dir`) in the background, without
    /// waiting for anything: for long-running commands such as `subscribe`.
    pub fn spawn(bin: &Path, data_dir: &Path, args: &[&str]) -> Result<Self> {
        let mut child = Command::new(bin)
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "info,micro_node::services=debug")
            .env_remove("MICRO_CONTROL_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().context("no stdout")?;
        let stderr = child.stderr.take().context("no stderr")?;
        for (stream, reader) in [
            (
                Stream::Stdout,
                Box::new(stdout) as Box<dyn std::io::Read + Send>,
            ),
            (Stream::Stderr, Box::new(stderr)),
        ] {
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    if tx.send((stream, line)).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Self {
            child,
            lines,
            seen: Vec::new(),
            data_dir: data_dir.to_owned(),
        })
    }

    /// Waits for a line on `stream` containing `needle`; returns it. Lines already seen count.
    pub fn wait_line(&mut self, stream: Stream, needle: &str, timeout: Duration) -> Result<String> {
        if let Some((_, line)) = self
            .seen
            .iter()
            .find(|(s, l)| *s == stream && l.contains(needle))
        {
            return Ok(line.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((s, line)) => {
                    self.seen.push((s, line.clone()));
                    if s == stream && line.contains(needle) {
                        return Ok(line);
                    }
                }
                Err(_) => bail!(
                    "no {stream:?} line containing `{needle}` within {timeout:?}; output so far:\n{}",
                    self.output()
                ),
            }
        }
    }

    /// Everything the daemon printed so far.
    pub fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen
            .iter()
            .map(|(s, l)| format!("[{s:?}] {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The banner's `micro-node --bootstrap <addr>` suggestions, first TCP one.
    pub fn bootstrap_addr(&mut self) -> Result<String> {
        let line = self.wait_line(
            Stream::Stdout,
            "--bootstrap /ip4/127.0.0.1/tcp/",
            Duration::from_secs(1),
        )?;
        line.split_whitespace()
            .last()
            .map(str::to_owned)
            .context("empty banner line")
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (up to `timeout`) for the exit status.
    pub fn terminate(mut self, timeout: Duration) -> Result<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            // Exit is observed through the log stream closing, not by sleeping.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "daemon did not exit within {timeout:?} of SIGTERM:\n{}",
                    self.output()
                );
            }
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Ok(self.child.wait()?);
                }
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `bin` once with `--data-dir data_dir` and `args`, capturing its output.
pub fn cli(bin: &Path, data_dir: &Path, args: &[&str]) -> Result<Output> {
    Command::new(bin)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("MICRO_CONTROL_TOKEN")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))
}

/// Runs a CLI command that must succeed and print JSON; returns the parsed value.
pub fn cli_json(bin: &Path, data_dir: &Path, args: &[&str]) -> Result<serde_json::Value> {
    let out = cli(bin, data_dir, args)?;
    if !out.status.success() {
        bail!(
            "`micro-node {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "`micro-node {}` printed no JSON: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
