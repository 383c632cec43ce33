//! Fetching source with the `git` command: a bare cache per repository, shallow where the
//! server allows it, revisions resolved to commits, trees exported without `.git`.
//!
//! The git CLI rather than an in-process library: it is the reference implementation of every
//! transport and of `fsck`, it runs in a child process we can time out and kill, and its
//! configuration can be pinned per call (no hooks, no user or system config, only the
//! protocols we allow, objects checked on the way in).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::process::Command;
use tracing::debug;

/// Fetch limits.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    /// Longest one git command may take.
    pub timeout: Duration,
    /// Largest repository cache (the bare repository), in bytes.
    pub max_repo_bytes: u64,
    /// Largest exported tree, in bytes.
    pub max_tree_bytes: u64,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            max_repo_bytes: 512 * 1024 * 1024,
            max_tree_bytes: 512 * 1024 * 1024,
        }
    }
}

/// Why fetching failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The repository could not be reached or read.
    #[error("cannot fetch {url}: {detail}")]
    Unreachable {
        /// The URL.
        url: String,
        /// git's explanation.
        detail: String,
    },
    /// No such branch, tag or commit.
    #[error("{url} has no branch, tag or commit `{rev}`")]
    UnknownRev {
        /// The URL.
        url: String,
        /// The revision.
        rev: String,
    },
    /// The repository is larger than allowed.
    #[error("{what} is larger than the {limit}-byte limit")]
    TooLarge {
        /// What.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A git command took too long.
    #[error("git {0} took longer than {1:?}")]
    Timeout(String, Duration),
    /// The tree holds a symlink that leaves it.
    #[error("the repository's `{0}` is a symlink pointing outside the repository")]
    SymlinkEscape(String),
    /// git is missing or failed to start.
    #[error("cannot run git: {0} (install git, e.g. `apt-get install git`)")]
    Git(std::io::Error),
    /// Local files.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> FetchError {
    let what = what.into();
    move |source| FetchError::Io { what, source }
}

/// A revision resolved in a repository's cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The bare repository holding it.
    pub repo: PathBuf,
    /// The full commit hash.
    pub commit: String,
}

/// The repository caches of one node.
#[derive(Debug, Clone)]
pub struct Fetcher {
    dir: PathBuf,
    limits: FetchLimits,
}

/// Is `rev` possibly a (short or full) commit hash?
fn looks_like_commit(rev: &str) -> bool {
    (7..=40).contains(&rev.len()) && rev.chars().all(|c| c.is_ascii_hexdigit())
}

/// Bytes under `path` (files only; symlinks not followed).
pub(crate) fn tree_bytes(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => total += entry.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

impl Fetcher {
    /// Caches under `dir` (one bare repository per URL).
    pub fn new(dir: PathBuf, limits: FetchLimits) -> Self {
        Self { dir, limits }
    }

    /// Where `url` is cached.
    pub fn repo_dir(&self, url: &str) -> PathBuf {
        let hash = Sha256::digest(url.as_bytes());
        let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.git"))
    }

    /// A git command with pinned configuration and a scrubbed environment.
    fn git(&self, repo: &Path) -> Command {
        let mut cmd = Command::new("git");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_ASKPASS", "/bin/false")
            .env("LC_ALL", "C")
            .arg("--git-dir")
            .arg(repo);
        for setting in [
            "protocol.allow=never",
            "protocol.https.allow=always",
            "protocol.http.allow=always",
            "protocol.git.allow=always",
            "protocol.file.allow=always",
            "transfer.fsckObjects=true",
            "core.hooksPath=/dev/null",
            "submodule.recurse=false",
            "gc.auto=0",
        ] {
            cmd.arg("-c").arg(setting);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `git args` in `repo`; stdout on success, else stderr's last meaningful line.
    /// While it runs, the repository may not grow past its limit.
    async fn run(&self, repo: &Path, args: &[&str]) -> Result<Result<String, String>, FetchError> {
        let what = args.first().copied().unwrap_or("git").to_owned();
        let child = self.git(repo).args(args).spawn().map_err(FetchError::Git)?;
        let limit = self.limits.max_repo_bytes;
        let watch = async {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let repo = repo.to_path_buf();
                let size = tokio::task::spawn_blocking(move || tree_bytes(&repo))
                    .await
                    .unwrap_or(0);
                if size > limit {
                    return size;
                }
            }
        };
        let output = tokio::select! {
            out = tokio::time::timeout(self.limits.timeout, child.wait_with_output()) => match out {
                Ok(out) => out.map_err(FetchError::Git)?,
                Err(_) => return Err(FetchError::Timeout(what, self.limits.timeout)),
            },
            _ = watch => {
                return Err(FetchError::TooLarge { what: "the repository".to_owned(), limit });
            }
        };
        if output.status.success() {
            return Ok(Ok(String::from_utf8_lossy(&output.stdout).into_owned()));
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("git failed")
            .trim_start_matches("fatal: ")
            .chars()
            .take(300)
            .collect();
        debug!(command = ?args, %stderr, "git failed");
        Ok(Err(detail))
    }

    /// Fetches `rev` (default branch if `None`) of `url` into its cache and resolves it to a
    /// commit. Shallow for branches and tags; a short commit hash needs the full history.
    pub async fn fetch(&self, url: &str, rev: Option<&str>) -> Result<Fetched, FetchError> {
        let repo = self.repo_dir(url);
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(io(format!("creating {}", self.dir.display())))?;
        if !repo.join("HEAD").exists() {
            let init = Command::new("git")
                .args(["init", "--bare", "-q"])
                .arg(&repo)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .await
                .map_err(FetchError::Git)?;
            if !init.status.success() {
                return Err(FetchError::Io {
                    what: format!("creating {}", repo.display()),
                    source: std::io::Error::other(
                        String::from_utf8_lossy(&init.stderr).trim().to_owned(),
                    ),
                });
            }
        }
        let unreachable = |detail: String| FetchError::Unreachable {
            url: url.to_owned(),
            detail,
        };
        let unknown = |rev: &str| FetchError::UnknownRev {
            url: url.to_owned(),
            rev: rev.to_owned(),
        };
        let wanted = rev.unwrap_or("HEAD");
        let shallow = self
            .run(
                &repo,
                &[
                    "fetch",
                    "-q",
                    "--no-tags",
                    "--depth",
                    "1",
                    "--",
                    url,
                    wanted,
                ],
            )
            .await?;
        let target = match shallow {
            Ok(_) => "FETCH_HEAD".to_owned(),
            Err(detail) if rev.is_some_and(looks_like_commit) => {
                // Servers need not serve an arbitrary commit: fetch every branch and tag.
                let full = self
                    .run(
                        &repo,
                        &[
                            "fetch",
                            "-q",
                            "--tags",
                            "--",
                            url,
                            "+refs/heads/*:refs/remotes/origin/*",
                        ],
                    )
                    .await?;
                if let Err(full) = full {
                    return Err(unreachable(full));
                }
                debug!(%detail, "shallow fetch of a commit refused; fetched everything");
                wanted.to_owned()
            }
            Err(detail) if detail.contains("couldn't find remote ref") => {
                return Err(unknown(wanted));
            }
            Err(detail) => return Err(unreachable(detail)),
        };
        let spec = format!("{target}^{{commit}}");
        match self
            .run(&repo, &["rev-parse", "--verify", "-q", &spec])
            .await?
        {
            Ok(commit) => Ok(Fetched {
                repo,
                commit: commit.trim().to_owned(),
            }),
            Err(_) => Err(unknown(wanted)),
        }
    }

    /// The commit `rev` (default branch if `None`) of `url` points to now, without fetching
    /// objects (`git ls-remote`): how `--follow` notices new commits cheaply.
    pub async fn remote_head(
        &self,
        url: &str,
        rev: Option<&str>,
    ) -> Result<Option<String>, FetchError> {
        let repo = self.repo_dir(url);
        let wanted = rev.unwrap_or("HEAD");
        let out = self
            .run(&repo, &["ls-remote", "--", url, wanted])
            .await?
            .map_err(|detail| FetchError::Unreachable {
                url: url.to_owned(),
                detail,
            })?;
        // Prefer an annotated tag's peeled commit (`<tag>^{}`) over the tag object.
        let mut found = None;
        for line in out.lines() {
            let Some((hash, name)) = line.split_once('\t') else {
                continue;
            };
            if name.ends_with("^{}") {
                return Ok(Some(hash.to_owned()));
            }
            found.get_or_insert_with(|| hash.to_owned());
        }
        Ok(found)
    }

    /// Writes the tree of `fetched` into `dest` (which must not exist), without `.git`;
    /// refuses trees over the size limit or with symlinks that leave the tree.
    pub async fn export(&self, fetched: &Fetched, dest: &Path) -> Result<(), FetchError> {
        tokio::fs::create_dir_all(dest)
            .await
            .map_err(io(format!("creating {}", dest.display())))?;
        let mut archive = self.git(&fetched.repo);
        archive.args(["archive", "--format=tar", &fetched.commit]);
        let mut archive = archive.spawn().map_err(FetchError::Git)?;
        let tar_input: Stdio = archive
            .stdout
            .take()
            .ok_or_else(|| FetchError::Git(std::io::Error::other("no stdout")))?
            .try_into()
            .map_err(FetchError::Git)?;
        let untar = Command::new("tar")
            .args(["-x", "--no-same-owner", "--no-same-permissions", "-C"])
            .arg(dest)
            .stdin(tar_input)
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(self.limits.timeout, untar)
            .await
            .map_err(|_| FetchError::Timeout("archive".to_owned(), self.limits.timeout))?
            .map_err(io("running tar"))?;
        let archived = archive.wait().await.map_err(FetchError::Git)?;
        if !out.status.success() || !archived.success() {
            return Err(FetchError::Io {
                what: format!("extracting {}", fetched.commit),
                source: std::io::Error::other(
                    String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                ),
            });
        }
        let (dest, limit) = (dest.to_path_buf(), self.limits.max_tree_bytes);
        tokio::task::spawn_blocking(move || check_tree(&dest, limit))
            .await
            .map_err(|e| FetchError::Io {
                what: "checking the tree".to_owned(),
                source: std::io::Error::other(e),
            })?
    }
}

/// Refuses a tree larger than `limit` or holding a symlink that points outside it.
pub(crate) fn check_tree(root: &Path, limit: u64) -> Result<(), FetchError> {
    let root = root
        .canonicalize()
        .map_err(io(format!("reading {}", root.display())))?;
    let mut total = 0u64;
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(io(format!("reading {}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(io(format!("reading {}", dir.display())))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(io(format!("reading {}", path.display())))?;
            let shown = || {
                path.strip_prefix(&root)
                    .unwrap_or(&path)
                    .display()
                    .to_string()
            };
            if kind.is_symlink() {
                let target =
                    std::fs::read_link(&path).map_err(io(format!("reading {}", path.display())))?;
                // Resolved lexically against the link's folder: `..` may not climb out.
                let mut resolved = path.parent().unwrap_or(&root).to_path_buf();
                for part in target.components() {
                    match part {
                        std::path::Component::ParentDir => {
                            resolved.pop();
                        }
                        std::path::Component::Normal(p) => resolved.push(p),
                        std::path::Component::CurDir => {}
                        _ => return Err(FetchError::SymlinkEscape(shown())),
                    }
                }
                if !resolved.starts_with(&root) {
                    return Err(FetchError::SymlinkEscape(shown()));
                }
            } else if kind.is_dir() {
                stack.push(path);
            } else {
                total += entry.metadata().map_or(0, |m| m.len());
                if total > limit {
                    return Err(FetchError::TooLarge {
                        what: "the source tree".to_owned(),
                        limit,
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_leaving_the_tree_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::write(root.join("src/lib.rs"), "").expect("write");
        std::os::unix::fs::symlink("lib.rs", root.join("src/alias.rs")).expect("link");
        std::os::unix::fs::symlink("../src/lib.rs", root.join("src/up.rs")).expect("link");
        check_tree(root, 1 << 20).expect("links inside the tree are fine");
        std::os::unix::fs::symlink("../../etc/passwd", root.join("src/evil")).expect("link");
        assert!(matches!(
            check_tree(root, 1 << 20),
            Err(FetchError::SymlinkEscape(p)) if p == "src/evil"
        ));
        std::fs::remove_file(root.join("src/evil")).expect("rm");
        std::os::unix::fs::symlink("/etc/passwd", root.join("abs")).expect("link");
        assert!(matches!(
            check_tree(root, 1 << 20),
            Err(FetchError::SymlinkEscape(_))
        ));
        std::fs::remove_file(root.join("abs")).expect("rm");
        std::fs::write(root.join("big"), vec![0; 2048]).expect("write");
        assert!(matches!(
            check_tree(root, 1024),
            Err(FetchError::TooLarge { .. })
        ));
    }

    #[test]
    fn commit_hashes_are_told_from_names() {
        assert!(looks_like_commit("9f3c2e1"));
        assert!(looks_like_commit(&"a".repeat(40)));
        assert!(!looks_like_commit("main"));
        assert!(!looks_like_commit("v1.2.0"));
    }
}
