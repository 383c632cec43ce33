//! Builds the example services (`examples/`) and the test guests (`tests/guests/`) as
//! WebAssembly components, for tests that deploy them.
//!
//! Each workspace is built once per test process, whole, with
//! `cargo build --release --target wasm32-wasip2`, into `$CARGO_TARGET_DIR/wasm-guests` (or
//! `<repo>/target/wasm-guests`), so that guest builds never fight the host build over flags.
//! Cargo's own lock on the target directory serialises test processes that build at once.
//! A failed build panics with cargo's output: this is test-only code.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The target every guest is built for.
const TARGET: &str = "wasm32-wasip2";

/// One cargo workspace of guests, and where its components are once it has been built.
struct Workspace {
    /// The workspace's folder, relative to the repository root.
    dir: &'static str,
    /// The folder holding its `.wasm` files, set by the first (successful) build.
    built: OnceLock<PathBuf>,
}

/// The example services, `examples/`.
static EXAMPLES: Workspace = Workspace {
    dir: "examples",
    built: OnceLock::new(),
};

/// The test guests, `tests/guests/`.
static GUESTS: Workspace = Workspace {
    dir: "tests/guests",
    built: OnceLock::new(),
};

/// Builds the example services (once per process) and returns the path of the component
/// `examples/target/.../<name>.wasm`, e.g. `build_example("greeter")`. Panics if the build
/// fails or the workspace has no such crate.
pub fn build_example(name: &str) -> PathBuf {
    EXAMPLES.component(name)
}

/// Builds the test guests (once per process) and returns the path of the component
/// `<name>.wasm`, e.g. `build_guest("hostile")`. Panics if the build fails or the workspace has
/// no such crate.
pub fn build_guest(name: &str) -> PathBuf {
    GUESTS.component(name)
}

/// The manifest of the example service `name`: `examples/<name>/micro.toml`.
pub fn manifest_path(name: &str) -> PathBuf {
    repo_root().join(EXAMPLES.dir).join(name).join("micro.toml")
}

/// The manifest of the test guest `name`: `tests/guests/<name>/micro.toml`.
pub fn guest_manifest_path(name: &str) -> PathBuf {
    repo_root().join(GUESTS.dir).join(name).join("micro.toml")
}

impl Workspace {
    /// The component of crate `name`, building the workspace first if this process has not.
    fn component(&self, name: &str) -> PathBuf {
        let out = self.built.get_or_init(|| build(self.dir));
        // Cargo names a cdylib after its crate, with dashes turned into underscores.
        let path = out.join(format!("{}.wasm", name.replace('-', "_")));
        assert!(
            path.is_file(),
            "{} built, but has no component {name}: {} does not exist",
            self.dir,
            path.display()
        );
        path
    }
}

/// Builds the whole workspace in `dir` and returns the folder of its release components.
fn build(dir: &str) -> PathBuf {
    let root = repo_root();
    let manifest = root.join(dir).join("Cargo.toml");
    let target_dir = target_dir(&root);
    // `CARGO` is the cargo running these tests, so the guests build with the same toolchain.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    ensure_target();
    let output = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            TARGET,
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", Path::new(&cargo).display()));
    if !output.status.success() {
        panic!(
            "building {} failed ({}); is the {TARGET} target installed \
             (`rustup target add {TARGET}`)?\n{}",
            manifest.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    target_dir.join(TARGET).join("release")
}

/// Installs the wasm target with rustup when it is missing, so that `cargo test` alone works
/// on a fresh machine. Without rustup (a distribution's Rust), the build below says what is
/// missing.
fn ensure_target() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let installed = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.trim() == TARGET)
            });
        if let Ok(false) = installed {
            let _ = Command::new("rustup")
                .args(["target", "add", TARGET])
                .status();
        }
    });
}

/// Where guests are built: `$CARGO_TARGET_DIR/wasm-guests`, else `<repo>/target/wasm-guests`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("wasm-guests"),
        _ => root.join("target").join("wasm-guests"),
    }
}

/// The repository root: the parent of this crate's folder, `tests/`.
fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Deploys the component at `wasm` with the manifest at `manifest` on `node`, optionally
/// under another name.
pub async fn deploy(
    node: &micro_node::RunningNode,
    wasm: &Path,
    manifest: &Path,
    rename: Option<&str>,
) -> anyhow::Result<micro_wasm_runtime::Deployed> {
    let text = std::fs::read_to_string(manifest)?;
    let mut manifest = micro_wasm_runtime::Manifest::parse(&text)?;
    if let Some(name) = rename {
        manifest.name = name.to_owned();
    }
    Ok(node.wasm().deploy(manifest, std::fs::read(wasm)?).await?)
}

/// Runs `git args` in `dir` (test-only: panics on failure), with a fixed identity and no user
/// or system configuration.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()
        .unwrap_or_else(|e| panic!("cannot run git: {e}"));
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let name = entry.file_name();
        if name == "target" || name == "Cargo.lock" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy file");
        }
    }
}

/// Makes `dir` a git repository holding the example service `example` as a user would publish
/// it: the example's crate, the SDK and the WIT it builds against, a workspace `Cargo.toml`
/// and the example's `micro.toml` at the top; one commit on branch `main`. Returns the commit.
pub fn source_repo(dir: &Path, example: &str) -> String {
    crate_repo(dir, &format!("examples/{example}"))
}

/// Like [`source_repo`] for any guest crate of this repository, e.g. `tests/guests/hostile`.
pub fn crate_repo(dir: &Path, crate_dir: &str) -> String {
    let root = repo_root();
    copy_dir(&root.join(crate_dir), &dir.join(crate_dir));
    copy_dir(&root.join("sdk/rust"), &dir.join("sdk/rust"));
    copy_dir(&root.join("wit"), &dir.join("wit"));
    std::fs::copy(
        root.join(crate_dir).join("micro.toml"),
        dir.join("micro.toml"),
    )
    .expect("copy micro.toml");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"3\"\nmembers = [\"{crate_dir}\"]\n\n\
             [profile.release]\nopt-level = \"s\"\nstrip = \"debuginfo\"\n"
        ),
    )
    .expect("write Cargo.toml");
    std::fs::write(dir.join(".gitignore"), "target/\n").expect("write .gitignore");
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "first"]);
    git(dir, &["rev-parse", "HEAD"])
}

/// The cargo home of this machine (where `cargo` keeps downloaded crates): builds in tests
/// take their dependencies from it, offline.
pub fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::home_dir().map(|h| h.join(".cargo")))
        .expect("a cargo home")
}

/// A `git daemon` serving the bare repositories under a folder on a free loopback port; killed
/// when dropped.
pub struct GitDaemon {
    child: std::process::Child,
    port: u16,
}

impl GitDaemon {
    /// Serves every repository under `base` (`git://127.0.0.1:<port>/<name>.git`) and returns
    /// once the daemon says it is ready.
    pub fn start(base: &Path) -> anyhow::Result<Self> {
        use std::io::BufRead;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new("git")
            .arg("daemon")
            .arg("--reuseaddr")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .args(["--export-all", "--verbose", "--informative-errors"])
            .arg(base)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("Ready to rumble") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .map_err(|_| anyhow::anyhow!("git daemon did not start"))?;
        Ok(Self { child, port })
    }

    /// The URL of the repository `name` (e.g. `greeter.git`).
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
