//! From a source tree to one component: detect the language, download dependencies (no
//! repository code runs), build in the sandbox (no network), cache by (source, toolchain,
//! manifest), keep the log.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use micro_wasm_runtime::Manifest;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::sandbox::{self, SandboxError, SandboxLimits, StepLog};
use super::{BuildError, Phase, Progress};

/// The languages a tree can be built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Language {
    /// Cargo, for `wasm32-wasip2`, release; `Some(package)` in a workspace.
    Rust(Option<String>),
    /// A prebuilt component (binary) at this path in the tree.
    Wasm(PathBuf),
    /// A component in WAT text at this path in the tree.
    Wat(PathBuf),
    /// `componentize-js` (through `jco`) on this entry file.
    JavaScript(PathBuf),
    /// `componentize-py` on this module.
    Python(String),
}

impl Language {
    /// Its name, as `[build] language` says it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Rust(_) => "rust",
            Self::Wasm(_) => "wasm",
            Self::Wat(_) => "wat",
            Self::JavaScript(_) => "javascript",
            Self::Python(_) => "python",
        }
    }
}

fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    found
}

/// What `tree` is, by its manifest's `[build]` or by its files: `Cargo.toml` → Rust,
/// `package.json` → JavaScript, `pyproject.toml`/`requirements.txt` → Python, one `.wasm` →
/// prebuilt, one `.wat` → text.
pub fn detect(tree: &Path, manifest: Option<&Manifest>) -> Result<Language, BuildError> {
    let build = manifest.and_then(|m| m.build.clone()).unwrap_or_default();
    let path = build.path.clone();
    let one = |ext: &str| -> Result<PathBuf, BuildError> {
        if let Some(p) = &path {
            return Ok(PathBuf::from(p));
        }
        let found = files_with_extension(tree, ext);
        match found.as_slice() {
            [one] => Ok(one
                .strip_prefix(tree)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| one.clone())),
            [] => Err(BuildError::Detect(format!(
                "no .{ext} file at the top of the tree"
            ))),
            _ => Err(BuildError::Detect(format!(
                "several .{ext} files at the top of the tree: say which in micro.toml's [build] path"
            ))),
        }
    };
    let language = match build.language.as_deref() {
        Some("rust") => Language::Rust(path),
        Some("wasm") => Language::Wasm(one("wasm")?),
        Some("wat") => Language::Wat(one("wat")?),
        Some("javascript") => {
            Language::JavaScript(PathBuf::from(path.unwrap_or_else(|| "index.js".into())))
        }
        Some("python") => Language::Python(path.unwrap_or_else(|| "app".into())),
        Some(other) => return Err(BuildError::Detect(format!("unknown language `{other}`"))),
        None if tree.join("Cargo.toml").is_file() => Language::Rust(None),
        None if tree.join("package.json").is_file() => Language::JavaScript("index.js".into()),
        None if tree.join("pyproject.toml").is_file()
            || tree.join("requirements.txt").is_file() =>
        {
            Language::Python("app".into())
        }
        None if !files_with_extension(tree, "wasm").is_empty() => Language::Wasm(one("wasm")?),
        None if !files_with_extension(tree, "wat").is_empty() => Language::Wat(one("wat")?),
        None => {
            return Err(BuildError::Detect(
                "no Cargo.toml, package.json, pyproject.toml, .wasm or .wat at the top of the tree, and no [build] in micro.toml".to_owned(),
            ));
        }
    };
    Ok(language)
}

/// The toolchain that builds `language`, for the build cache key and error messages.
pub async fn toolchain_id(language: &Language) -> Result<String, BuildError> {
    let (program, args, hint): (&str, &[&str], &str) = match language {
        Language::Rust(_) => (
            "rustc",
            &["--version"],
            "install Rust with rustup: https://rustup.rs",
        ),
        Language::JavaScript(_) => (
            "jco",
            &["--version"],
            "install the Bytecode Alliance's jco (componentize-js): npm install -g @bytecodealliance/jco @bytecodealliance/componentize-js",
        ),
        Language::Python(_) => (
            "componentize-py",
            &["--version"],
            "install componentize-py: pip install componentize-py",
        ),
        Language::Wasm(_) | Language::Wat(_) => return Ok("none".to_owned()),
    };
    let out = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .map_err(|_| BuildError::MissingToolchain {
            tool: program.to_owned(),
            hint: hint.to_owned(),
        })?;
    if !out.status.success() {
        return Err(BuildError::MissingToolchain {
            tool: program.to_owned(),
            hint: hint.to_owned(),
        });
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if matches!(language, Language::Rust(_)) {
        let sysroot = tokio::process::Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .await
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .unwrap_or_default();
        if !sysroot.join("lib/rustlib/wasm32-wasip2").is_dir() {
            return Err(BuildError::MissingToolchain {
                tool: "the Rust target wasm32-wasip2".to_owned(),
                hint: "rustup target add wasm32-wasip2".to_owned(),
            });
        }
    }
    Ok(version)
}

/// The build cache key: the same source, toolchain and manifest build the same component.
pub fn cache_key(source_id: &str, language: &Language, toolchain: &str, manifest: &str) -> String {
    let mut h = Sha256::new();
    for part in [source_id, language.name(), toolchain, manifest] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Paths and environment of one build.
pub struct Workspace<'a> {
    /// The source tree (writable scratch copy).
    pub tree: &'a Path,
    /// Scratch space for HOME and TMPDIR.
    pub scratch: &'a Path,
    /// Cargo's home (dependency downloads), shared by builds.
    pub cargo_home: &'a Path,
    /// Cargo's target dir for this repository (incremental across commits).
    pub target_dir: &'a Path,
    /// The `micro:service` WIT, for componentizers.
    pub wit_dir: &'a Path,
    /// Resolve dependencies from the cargo home only.
    pub offline: bool,
}

fn env_for(ws: &Workspace<'_>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vec![
        ("PATH".into(), std::env::var_os("PATH").unwrap_or_default()),
        ("HOME".into(), ws.scratch.join("home").into()),
        ("TMPDIR".into(), ws.scratch.join("tmp").into()),
        ("CARGO_HOME".into(), ws.cargo_home.into()),
        ("CARGO_TARGET_DIR".into(), ws.target_dir.into()),
        ("CARGO_TERM_COLOR".into(), "never".into()),
        ("CARGO_TERM_PROGRESS_WHEN".into(), "never".into()),
        ("LC_ALL".into(), "C".into()),
    ];
    for keep in ["RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
        if let Some(v) = std::env::var_os(keep) {
            env.push((keep.into(), v));
        }
    }
    if std::env::var_os("RUSTUP_HOME").is_none()
        && let Some(home) = std::env::home_dir()
    {
        env.push(("RUSTUP_HOME".into(), home.join(".rustup").into()));
    }
    env
}

async fn step(
    program: &str,
    args: &[&str],
    ws: &Workspace<'_>,
    network: bool,
    limits: &SandboxLimits,
    lines: &mpsc::Sender<String>,
    log: &mut String,
) -> Result<(), BuildError> {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    // The cargo home (shared crate downloads) is writable only while dependencies are fetched,
    // which runs no repository code; the build, which does, sees it read-only, so a build
    // script cannot tamper with crates later builds of other services use.
    let mut writable = vec![
        ws.tree.to_path_buf(),
        ws.scratch.to_path_buf(),
        ws.target_dir.to_path_buf(),
    ];
    if network {
        writable.push(ws.cargo_home.to_path_buf());
    }
    log.push_str(&format!(
        "$ {program} {}\n",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let (step_log, result): (StepLog, Result<(), SandboxError>) = sandbox::run(
        Path::new(program),
        &args,
        ws.tree,
        &env_for(ws),
        &writable,
        network,
        limits,
        Some(lines),
    )
    .await;
    log.push_str(&step_log.text());
    result.map_err(|e| BuildError::Build {
        step: format!(
            "{program} {}",
            args.first()
                .map(|a| a.to_string_lossy())
                .unwrap_or_default()
        ),
        reason: e.to_string(),
        tail: step_log
            .lines
            .iter()
            .rev()
            .take(12)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

/// Where componentizers write their output, in the tree.
const COMPONENTIZED: &str = "service.wasm";

/// Runs a componentizer (`jco`, `componentize-py`) with no network and reads what it wrote.
async fn componentize(
    program: &str,
    args: &[&str],
    ws: &Workspace<'_>,
    limits: &SandboxLimits,
    progress: &mpsc::Sender<Progress>,
    lines: &mpsc::Sender<String>,
    log: &mut String,
) -> Result<Vec<u8>, BuildError> {
    let _ = progress
        .send(Progress::Phase(
            Phase::Build,
            format!("{program} (no network)"),
        ))
        .await;
    step(program, args, ws, false, limits, lines, log).await?;
    tokio::fs::read(ws.tree.join(COMPONENTIZED))
        .await
        .map_err(|e| BuildError::Output(format!("{program} wrote no {COMPONENTIZED}: {e}")))
}

/// Builds `language` in the workspace; returns the component's bytes. `log` collects every
/// step's output.
pub async fn build(
    language: &Language,
    manifest_name: &str,
    ws: &Workspace<'_>,
    limits: &SandboxLimits,
    progress: &mpsc::Sender<Progress>,
    log: &mut String,
) -> Result<Vec<u8>, BuildError> {
    for dir in [
        ws.scratch.join("home"),
        ws.scratch.join("tmp"),
        ws.cargo_home.to_path_buf(),
        ws.target_dir.to_path_buf(),
    ] {
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| BuildError::Io(format!("creating {}: {e}", dir.display())))?;
    }
    let (lines_tx, mut lines_rx) = mpsc::channel::<String>(256);
    let forward = {
        let progress = progress.clone();
        tokio::spawn(async move {
            while let Some(line) = lines_rx.recv().await {
                let _ = progress.try_send(Progress::Line(line));
            }
        })
    };
    let result = async {
        match language {
            Language::Wasm(path) | Language::Wat(path) => {
                let file = ws.tree.join(path);
                tokio::fs::read(&file)
                    .await
                    .map_err(|e| BuildError::Detect(format!("{}: {e}", path.display())))
            }
            Language::Rust(package) => {
                let _ = progress
                    .send(Progress::Phase(Phase::Dependencies, "cargo fetch".into()))
                    .await;
                let offline: &[&str] = if ws.offline { &["--offline"] } else { &[] };
                if !ws.tree.join("Cargo.lock").is_file() {
                    let args = [&["generate-lockfile"][..], offline].concat();
                    step("cargo", &args, ws, true, limits, &lines_tx, log).await?;
                }
                let args = [&["fetch", "--locked"][..], offline].concat();
                step("cargo", &args, ws, true, limits, &lines_tx, log).await?;
                let _ = progress
                    .send(Progress::Phase(
                        Phase::Build,
                        "cargo build --release --target wasm32-wasip2 (no network)".into(),
                    ))
                    .await;
                let mut args = vec![
                    "build",
                    "--release",
                    "--offline",
                    "--locked",
                    "--target",
                    "wasm32-wasip2",
                ];
                if let Some(p) = package {
                    args.extend(["-p", p]);
                }
                step("cargo", &args, ws, false, limits, &lines_tx, log).await?;
                let out = ws.target_dir.join("wasm32-wasip2/release");
                let candidates = files_with_extension(&out, "wasm");
                let wanted = package
                    .as_deref()
                    .unwrap_or(manifest_name)
                    .replace('-', "_");
                let chosen = candidates
                    .iter()
                    .find(|p| p.file_stem().is_some_and(|s| s.to_string_lossy() == wanted))
                    .or(if candidates.len() == 1 {
                        candidates.first()
                    } else {
                        None
                    })
                    .ok_or_else(|| {
                        BuildError::Output(format!(
                            "expected one component in {}, found {}",
                            out.display(),
                            if candidates.is_empty() {
                                "none (is the crate a cdylib?)".to_owned()
                            } else {
                                candidates
                                    .iter()
                                    .filter_map(|p| p.file_name())
                                    .map(|n| n.to_string_lossy().into_owned())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        ))
                    })?;
                tokio::fs::read(chosen)
                    .await
                    .map_err(|e| BuildError::Io(format!("{}: {e}", chosen.display())))
            }
            Language::JavaScript(entry) => {
                let wit = ws
                    .wit_dir
                    .join("service.wit")
                    .to_string_lossy()
                    .into_owned();
                let entry = entry.to_string_lossy().into_owned();
                let args = [
                    "componentize",
                    &entry,
                    "--wit",
                    &wit,
                    "--world-name",
                    "service",
                    "-o",
                    COMPONENTIZED,
                ];
                componentize("jco", &args, ws, limits, progress, &lines_tx, log).await
            }
            Language::Python(module) => {
                let wit = ws.wit_dir.to_string_lossy().into_owned();
                let args = [
                    "-d",
                    &wit,
                    "-w",
                    "service",
                    "componentize",
                    module,
                    "-o",
                    COMPONENTIZED,
                ];
                componentize(
                    "componentize-py",
                    &args,
                    ws,
                    limits,
                    progress,
                    &lines_tx,
                    log,
                )
                .await
            }
        }
    }
    .await;
    drop(lines_tx);
    let _ = forward.await;
    result
}
