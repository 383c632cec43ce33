//! End-to-end: a local HTTP server served to the network with `micro-node serve`, called from
//! another node's CLI and through its HTTP gateway, with the error codes users meet.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use micro_testkit::backend;
use micro_testkit::process::{Daemon, Stream, cli, cli_json};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_micro-node");
const START: Duration = Duration::from_secs(20);
const LOOPBACK: [&str; 6] = micro_testkit::process::LOOPBACK_ARGS;

fn bin() -> &'static Path {
    Path::new(BIN)
}

fn start(dir: &Path, extra: &[&str]) -> Result<Daemon> {
    let mut args = LOOPBACK.to_vec();
    args.extend_from_slice(extra);
    Daemon::start(bin(), dir, &args, START)
}

fn gateway_of(dir: &Path) -> Result<String> {
    let control: Value = serde_json::from_slice(&std::fs::read(dir.join("control.json"))?)?;
    let addr = control["gateway"]
        .as_str()
        .context("the node runs a gateway")?;
    Ok(format!("http://{addr}"))
}

#[test]
fn a_local_http_service_is_served_called_and_reached_through_the_gateway() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let backend = runtime.block_on(backend::spawn("A"))?;
    let (caller_dir, provider_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut caller = start(caller_dir.path(), &["--super"])?;
    let boot = caller.bootstrap_addr()?;
    let mut provider = start(provider_dir.path(), &["--bootstrap", &boot])?;
    provider.wait_line(Stream::Stderr, "joined the network", START)?;
    let provider_id = cli_json(bin(), provider_dir.path(), &["id", "--json"])?["peer_id"].clone();

    let out = cli(
        bin(),
        provider_dir.path(),
        &[
            "serve",
            "greeter",
            "--http",
            &backend.url(),
            "--endpoint",
            "Say.Hello=greets",
            "--endpoint",
            "Fail",
            "--endpoint",
            "Slow",
            "--version",
            "1.2.0",
        ],
    )?;
    ensure!(
        out.status.success(),
        "serve failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(String::from_utf8_lossy(&out.stdout).contains("micro-node call greeter"));
    caller.wait_line(Stream::Stderr, "learned a provider", START)?;

    // The directory, from the other node.
    let services = cli_json(bin(), caller_dir.path(), &["network", "services", "--json"])?;
    let greeter = services
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "greeter"))
        .context("greeter listed")?;
    ensure!(greeter["versions"] == json!(["1.2.0"]), "{greeter:#}");
    ensure!(
        greeter["providers"][0]["peer_id"] == provider_id,
        "{greeter:#}"
    );
    let local = cli_json(bin(), provider_dir.path(), &["services", "--json"])?;
    ensure!(
        local
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["spec"]["name"] == "greeter"))
    );

    // A call from the other node's CLI.
    let reply = cli_json(
        bin(),
        caller_dir.path(),
        &[
            "call",
            "greeter",
            "Say.Hello",
            r#"{"name":"Ada"}"#,
            "--json",
        ],
    )?;
    ensure!(
        reply["status"] == 200 && reply["provider"] == provider_id,
        "{reply:#}"
    );
    let body: Value = serde_json::from_str(reply["body"].as_str().context("body")?)?;
    ensure!(body["message"] == "Hello Ada", "{body}");
    let out = cli(
        bin(),
        caller_dir.path(),
        &["call", "greeter", "Say.Hello", r#"{"name":"Bob"}"#],
    )?;
    ensure!(String::from_utf8_lossy(&out.stdout).contains("Hello Bob"));

    // The routes view names the provider.
    let routes = cli_json(bin(), caller_dir.path(), &["network", "routes", "--json"])?;
    ensure!(
        routes["services"].as_array().is_some_and(|s| s
            .iter()
            .any(|r| r["service"] == "greeter" && r["peer_id"] == provider_id)),
        "{routes:#}"
    );

    // The gateway, as an HTTP client would use it.
    let gateway = gateway_of(caller_dir.path())?;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Vec<u8>| {
        let request = http
            .post(format!("{gateway}{path}"))
            .header("content-type", "application/json")
            .body(body);
        runtime.block_on(async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            anyhow::Ok((status, body))
        })
    };
    let (status, body) = post("/greeter/Say.Hello", br#"{"name":"Ada"}"#.to_vec())?;
    ensure!(
        status == 200 && body["message"] == "Hello Ada",
        "{status} {body}"
    );
    let (status, body) = post("/nobody/Say.Hello", b"{}".to_vec())?;
    ensure!(
        status == 404
            && body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("nobody")),
        "{status} {body}"
    );
    let (status, body) = post("/greeter/Say.Goodbye", b"{}".to_vec())?;
    ensure!(
        status == 404
            && body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("Say.Goodbye")),
        "{status} {body}"
    );
    let (status, body) = post("/greeter/Say.Hello", b"{not json".to_vec())?;
    ensure!(status == 400 && body["code"] == 400, "{status} {body}");
    let (status, body) = post("/greeter/Fail", b"{}".to_vec())?;
    ensure!(
        status == 502
            && body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("exploded")),
        "{status} {body}"
    );
    let slow = http
        .post(format!("{gateway}/greeter/Slow"))
        .header("micro-timeout-ms", "300")
        .body("{}");
    let (status, body) = runtime.block_on(async {
        let response = slow.send().await?;
        anyhow::Ok((response.status().as_u16(), response.text().await?))
    })?;
    ensure!(
        status == 408,
        "a call past its deadline is a 408, got {status}: {body}"
    );

    // Over the body limit: refused with 413 before the body is read (a fresh client, as the
    // server closes a connection whose body it did not read).
    let big = reqwest::Client::new()
        .post(format!("{gateway}/greeter/Say.Hello"))
        .header("content-type", "application/json")
        .body(vec![b' '; 5 * 1024 * 1024]);
    let status = runtime.block_on(async { big.send().await.map(|r| r.status().as_u16()) })?;
    ensure!(status == 413, "oversized body: {status}");

    // Deregistered: gone from the network, calls are 404.
    let out = cli(bin(), provider_dir.path(), &["deregister", "greeter"])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    caller.wait_line(Stream::Stderr, "provider withdrew", START)?;
    let out = cli(
        bin(),
        caller_dir.path(),
        &["call", "greeter", "Say.Hello", "{}"],
    )?;
    ensure!(!out.status.success());
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    ensure!(provider.terminate(START)?.success());
    ensure!(caller.terminate(START)?.success());
    Ok(())
}
