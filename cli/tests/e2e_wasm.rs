//! End-to-end: a wasm component deployed with `micro-node deploy`, watched with `status` and
//! `logs -f`, called, kept across a restart, replaced and killed — all through the binary.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use micro_testkit::process::{Daemon, Stream, cli, cli_json};
use micro_testkit::wasm::{build_example, manifest_path};

const BIN: &str = env!("CARGO_BIN_EXE_micro-node");
const START: Duration = Duration::from_secs(20);
const LOOPBACK: [&str; 6] = micro_testkit::process::LOOPBACK_ARGS;

fn bin() -> &'static Path {
    Path::new(BIN)
}

fn start(dir: &Path) -> Result<Daemon> {
    let mut args = LOOPBACK.to_vec();
    args.push("--super");
    Daemon::start(bin(), dir, &args, START)
}

fn ok(out: std::process::Output) -> Result<String> {
    ensure!(
        out.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_component_is_deployed_called_followed_restored_replaced_and_killed() -> Result<()> {
    let wasm = build_example("greeter");
    let manifest = manifest_path("greeter");
    let (wasm, manifest) = (wasm.to_string_lossy(), manifest.to_string_lossy());
    let dir = tempfile::tempdir()?;
    let node = start(dir.path())?;

    // Without a manifest and without a name, the CLI says what it needs.
    let out = cli(bin(), dir.path(), &["deploy", &wasm])?;
    ensure!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(stderr.contains("--manifest"), "{stderr}");

    let out = ok(cli(
        bin(),
        dir.path(),
        &["deploy", &wasm, "--manifest", &manifest],
    )?)?;
    ensure!(
        out.contains("deployed greeter 0.1.0") && out.contains("micro-node call greeter"),
        "{out}"
    );
    let reply = ok(cli(
        bin(),
        dir.path(),
        &["call", "greeter", "Say.Hello", r#"{"name":"Ada"}"#],
    )?)?;
    ensure!(reply.trim() == r#"{"message":"Hello, Ada!"}"#, "{reply}");
    let status = cli_json(bin(), dir.path(), &["status", "--json"])?;
    let greeter = &status[0];
    ensure!(
        greeter["name"] == "greeter" && greeter["state"] == "running" && greeter["calls"] == 1,
        "{status:#}"
    );
    let table = ok(cli(bin(), dir.path(), &["status"])?)?;
    ensure!(
        table.contains("greeter") && table.contains("MEMORY") && table.contains("FUEL"),
        "{table}"
    );

    // Deployments come back after a restart.
    node.terminate(START)?;
    let node = start(dir.path())?;
    let status = cli_json(bin(), dir.path(), &["status", "--json"])?;
    ensure!(status[0]["name"] == "greeter", "restored: {status:#}");

    // Follow the log while a new version replaces the running one.
    let mut follow = Daemon::spawn(bin(), dir.path(), &["logs", "greeter", "-f", "-n", "0"])?;
    ok(cli(
        bin(),
        dir.path(),
        &[
            "deploy",
            &wasm,
            "--manifest",
            &manifest,
            "--version",
            "0.2.0",
        ],
    )?)?;
    let line = follow.wait_line(Stream::Stdout, "deployed 0.2.0", START)?;
    ensure!(
        line.contains("[0.2.0]") && line.contains("0.1.0 answers only calls pinning it"),
        "{line}"
    );
    drop(follow);
    let history = ok(cli(bin(), dir.path(), &["logs", "greeter"])?)?;
    ensure!(history.contains("deployed 0.1.0"), "{history}");

    // The old version runs beside the new one for callers that pin it.
    let table = ok(cli(bin(), dir.path(), &["status"])?)?;
    ensure!(
        table.contains("0.2.0") && table.contains("older"),
        "{table}"
    );
    let reply = ok(cli(
        bin(),
        dir.path(),
        &["call", "greeter@0.1.0", "Say.Hello", r#"{"name":"Ada"}"#],
    )?)?;
    ensure!(reply.trim() == r#"{"message":"Hello, Ada!"}"#, "{reply}");
    let out = ok(cli(bin(), dir.path(), &["kill", "greeter@0.2.0"])?)?;
    ensure!(out.contains("greeter now answers with 0.1.0"), "{out}");

    ok(cli(bin(), dir.path(), &["kill", "greeter"])?)?;
    let status = cli_json(bin(), dir.path(), &["status", "--json"])?;
    ensure!(status.as_array().context("array")?.is_empty(), "{status:#}");
    let out = cli(bin(), dir.path(), &["kill", "greeter"])?;
    ensure!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        stderr.contains("no wasm service named `greeter`"),
        "{stderr}"
    );
    let out = cli(
        bin(),
        dir.path(),
        &["call", "greeter", "Say.Hello", r#"{"name":"Ada"}"#],
    )?;
    ensure!(!out.status.success(), "no longer callable");
    node.terminate(START)?;
    Ok(())
}

#[test]
fn a_folder_is_deployed_from_source_with_progress_and_a_build_log() -> Result<()> {
    // The example's dependencies are in the machine's cargo home once the example is built;
    // the node builds offline from there (tests never reach the internet).
    build_example("greeter");
    let repo = tempfile::tempdir()?;
    let commit = micro_testkit::wasm::source_repo(repo.path(), "greeter");
    let dir = tempfile::tempdir()?;
    let cargo_home = micro_testkit::wasm::cargo_home();
    let mut args = LOOPBACK.to_vec();
    args.extend(["--super", "--build-offline", "--build-cargo-home"]);
    let home = cargo_home.to_string_lossy();
    args.push(&home);
    let node = Daemon::start(bin(), dir.path(), &args, START)?;

    let out = cli(
        bin(),
        dir.path(),
        &["deploy", &repo.path().to_string_lossy()],
    )?;
    let stdout = ok(out.clone())?;
    ensure!(
        stdout.contains(&format!("deployed greeter {}", &commit[..12])),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        stderr.contains("fetch") && stderr.contains("build"),
        "phases are shown: {stderr}"
    );
    let reply = ok(cli(
        bin(),
        dir.path(),
        &["call", "greeter", "Say.Hello", r#"{"name":"Ada"}"#],
    )?)?;
    ensure!(reply.contains("Hello, Ada!"), "{reply}");
    let log = ok(cli(bin(), dir.path(), &["logs", "greeter", "--build"])?)?;
    ensure!(
        log.contains("cargo build") && log.contains(&commit),
        "{log}"
    );
    let update = ok(cli(bin(), dir.path(), &["update", "greeter"])?)?;
    ensure!(
        update.contains("deployed greeter") || update.contains("up to date"),
        "{update}"
    );
    let out = cli(bin(), dir.path(), &["deploy", "git@github.com:a/b"])?;
    ensure!(!out.status.success());
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("no ssh"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.terminate(START)?;
    Ok(())
}
