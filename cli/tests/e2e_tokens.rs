//! End-to-end: a node whose gateway requires API tokens, and `micro-node token issue | list |
//! revoke | refresh` as a user runs them: no token 401, a token 200, out of scope 403, forged
//! 401, revoked 401, expired 401, and the expired token refreshed into one that works.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use micro_testkit::eventually;
use micro_testkit::process::{Daemon, cli, cli_json};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_micro-node");
const START: Duration = Duration::from_secs(20);
const LOOPBACK: [&str; 6] = micro_testkit::process::LOOPBACK_ARGS;

fn bin() -> &'static Path {
    Path::new(BIN)
}

fn ok(out: std::process::Output) -> Result<String> {
    ensure!(
        out.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The gateway's address from the data dir's `control.json`.
fn gateway_of(dir: &Path) -> Result<String> {
    let control: Value = serde_json::from_slice(&std::fs::read(dir.join("control.json"))?)?;
    let addr = control["gateway"]
        .as_str()
        .context("the node runs a gateway")?;
    Ok(format!("http://{addr}"))
}

/// `POST {gateway}{path}` with `{}` and an optional bearer token: status and detail.
async fn call(gateway: &str, path: &str, token: Option<&str>) -> Result<(u16, String)> {
    let mut request = reqwest::Client::new()
        .post(format!("{gateway}{path}"))
        .header("content-type", "application/json")
        .body("{}");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let detail = body["detail"].as_str().unwrap_or_default().to_owned();
    Ok((status, detail))
}

fn issue(dir: &Path, args: &[&str]) -> Result<(String, String)> {
    let mut all = vec!["token", "issue", "--json"];
    all.extend_from_slice(args);
    let issued = cli_json(bin(), dir, &all)?;
    let token = issued["token"].as_str().context("a token")?.to_owned();
    let id = issued["view"]["id"].as_str().context("an id")?.to_owned();
    Ok((token, id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_open_close_expire_and_refresh_the_gateway() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut args = LOOPBACK.to_vec();
    args.push("--require-token");
    let node = Daemon::start(bin(), dir.path(), &args, START)?;
    let gateway = gateway_of(dir.path())?;
    let ping = "/node/Node.Ping";

    let (status, detail) = call(&gateway, ping, None).await?;
    ensure!(
        status == 401 && detail.contains("missing"),
        "{status} {detail}"
    );

    // The human output leads with the token itself.
    let out = ok(cli(
        bin(),
        dir.path(),
        &[
            "token",
            "issue",
            "--services",
            "node",
            "--spend-limit",
            "500",
        ],
    )?)?;
    let token = out.lines().next().context("a first line")?.to_owned();
    ensure!(token.starts_with("mt1_"), "{out}");
    let (status, detail) = call(&gateway, ping, Some(&token)).await?;
    ensure!(status == 200, "with a token: {status} {detail}");
    let (status, detail) = call(&gateway, "/greeter/Say.Hello", Some(&token)).await?;
    ensure!(
        status == 403 && detail.contains("greeter/Say.Hello"),
        "out of scope: {status} {detail}"
    );

    // A token for some endpoints only, and a forged one.
    let (info_only, _) = issue(
        dir.path(),
        &[
            "--services",
            "node",
            "--endpoints",
            "Node.Info",
            "--ttl",
            "1h",
        ],
    )?;
    let (status, _) = call(&gateway, "/node/Node.Info", Some(&info_only)).await?;
    ensure!(status == 200, "{status}");
    let (status, _) = call(&gateway, ping, Some(&info_only)).await?;
    ensure!(status == 403, "{status}");
    let mut forged = info_only.clone().into_bytes();
    let at = forged.len() - 5;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged)?;
    let (status, detail) = call(&gateway, ping, Some(&forged)).await?;
    ensure!(
        status == 401 && detail.contains("forged"),
        "{status} {detail}"
    );

    // Listed, then revoked.
    let (revoked, revoked_id) = issue(dir.path(), &["--services", "node"])?;
    let list = ok(cli(bin(), dir.path(), &["token", "list"])?)?;
    ensure!(
        list.contains(&revoked_id) && list.contains("active") && list.contains("0/500"),
        "{list}"
    );
    let out = ok(cli(bin(), dir.path(), &["token", "revoke", &revoked_id])?)?;
    ensure!(out.contains("revoked"), "{out}");
    let (status, detail) = call(&gateway, ping, Some(&revoked)).await?;
    ensure!(
        status == 401 && detail.contains("revoked"),
        "{status} {detail}"
    );
    let out = cli(bin(), dir.path(), &["token", "revoke", "not-an-id"])?;
    ensure!(!out.status.success());

    // A short-lived token works, then expires (polled, not slept on).
    let (short, short_id) = issue(dir.path(), &["--services", "node", "--ttl", "1s"])?;
    let (status, _) = call(&gateway, ping, Some(&short)).await?;
    ensure!(status == 200 || status == 401, "{status}");
    eventually("the gateway says the token expired", START, || async {
        let (status, detail) = call(&gateway, ping, Some(&short)).await?;
        Ok(status == 401 && detail.contains("expired"))
    })
    .await?;

    // Refreshing the expired token gives one that works and retires the old one.
    let refreshed = cli_json(
        bin(),
        dir.path(),
        &["token", "refresh", &short, "--ttl", "1h", "--json"],
    )?;
    ensure!(
        refreshed["view"]["refreshed_from"] == short_id.as_str(),
        "{refreshed:#}"
    );
    let fresh = refreshed["token"].as_str().context("a token")?;
    let (status, detail) = call(&gateway, ping, Some(fresh)).await?;
    ensure!(status == 200, "refreshed: {status} {detail}");
    let (status, detail) = call(&gateway, ping, Some(&short)).await?;
    ensure!(
        status == 401 && detail.contains("revoked"),
        "{status} {detail}"
    );
    let out = cli(bin(), dir.path(), &["token", "refresh", &short])?;
    ensure!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("409"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let list = cli_json(bin(), dir.path(), &["token", "list", "--json"])?;
    let statuses: Vec<&str> = list
        .as_array()
        .context("a list")?
        .iter()
        .filter_map(|v| v["status"].as_str())
        .collect();
    for wanted in ["active", "revoked", "refreshed"] {
        ensure!(statuses.contains(&wanted), "{wanted} in {statuses:?}");
    }

    ensure!(node.terminate(START)?.success());
    Ok(())
}
