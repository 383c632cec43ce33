//! End-to-end: a two-node network started from a genesis file, a transfer with
//! `micro-node ledger transfer`, balances and history on both nodes, an overdraft refused, a
//! priced service called from the free allowance (`serve --price`, `services`, `ledger
//! metering`), and `micro-node reputation` — all through the binary.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use micro_node::ledger::micro_ledger::{Account, Genesis, Tokens};
use micro_testkit::eventually;
use micro_testkit::process::{Daemon, cli, cli_json};

const BIN: &str = env!("CARGO_BIN_EXE_micro-node");
const START: Duration = Duration::from_secs(20);
const LOOPBACK: [&str; 6] = micro_testkit::process::LOOPBACK_ARGS;

fn bin() -> &'static Path {
    Path::new(BIN)
}

fn start(dir: &Path, extra: &[&str]) -> Result<Daemon> {
    let mut args = LOOPBACK.to_vec();
    args.extend(extra);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_between_two_nodes_from_a_genesis_file() -> Result<()> {
    let (a_dir, b_dir, work) = (
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    );

    // Node a's account, before its first start, for the genesis to name it.
    let own = cli_json(bin(), a_dir.path(), &["ledger", "account", "--json"])?;
    let account: Account = own["account"].as_str().context("account")?.parse()?;

    let b_peer = cli_json(bin(), b_dir.path(), &["ledger", "account", "--json"])?["peer_id"]
        .as_str()
        .context("b's peer id")?
        .to_owned();

    // A network whose genesis gives node a 1000 tokens.
    let genesis = Genesis {
        network_name: "e2e".to_owned(),
        treasury: account,
        accounts: vec![(account, Tokens(1000))],
    };
    let path = work.path().join("genesis.json");
    std::fs::write(&path, genesis.to_json()?)?;
    let genesis_path = path.to_string_lossy().into_owned();
    let mut a = start(a_dir.path(), &["--super", "--genesis", &genesis_path])?;
    let boot = a.bootstrap_addr()?;
    let own = cli_json(bin(), a_dir.path(), &["ledger", "balance", "--json"])?;
    ensure!(own["own"] == true && own["balance"] == 1000, "{own:#}");
    let b = start(
        b_dir.path(),
        &["--bootstrap", &boot, "--genesis", &genesis_path],
    )?;

    let out = ok(cli(
        bin(),
        a_dir.path(),
        &["ledger", "transfer", &b_peer, "25", "--memo", "thanks"],
    )?)?;
    ensure!(
        out.contains("sent 25") && out.contains("balance now 975"),
        "{out}"
    );
    eventually("b holds the 25 tokens", START, || async {
        let balance = cli_json(bin(), b_dir.path(), &["ledger", "balance", "--json"])?;
        Ok(balance["balance"] == 25)
    })
    .await?;
    let history = ok(cli(bin(), b_dir.path(), &["ledger", "history"])?)?;
    ensure!(
        history.contains("received") && history.contains("25") && history.contains("thanks"),
        "{history}"
    );
    let from_b = cli_json(
        bin(),
        b_dir.path(),
        &["ledger", "balance", &account.to_string(), "--json"],
    )?;
    ensure!(
        from_b["balance"] == 975,
        "b sees a's balance too: {from_b:#}"
    );

    // An overdraft is refused with 402 and changes nothing.
    let out = cli(
        bin(),
        a_dir.path(),
        &["ledger", "transfer", &b_peer, "5000"],
    )?;
    ensure!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(stderr.contains("402"), "{stderr}");
    let balance = cli_json(bin(), a_dir.path(), &["ledger", "balance", "--json"])?;
    ensure!(balance["balance"] == 975, "{balance:#}");

    // A priced service on a: b's first call comes from its free allowance, and both
    // sides show it (a's counters, b's receipt in its metering book).
    let backend = micro_testkit::backend::spawn("a").await?;
    let url = backend.url();
    ok(cli(
        bin(),
        a_dir.path(),
        &["serve", "greeter", "--http", &url, "--price", "3"],
    )?)?;
    eventually("b calls a's priced service", START, || async {
        Ok(cli(
            bin(),
            b_dir.path(),
            &["call", "greeter", "Say.Hello", r#"{"name":"b"}"#],
        )?
        .status
        .success())
    })
    .await?;
    let served = cli_json(bin(), a_dir.path(), &["services", "--json"])?;
    let greeter = served
        .as_array()
        .and_then(|s| s.iter().find(|s| s["spec"]["name"] == "greeter"))
        .context("a serves greeter")?;
    ensure!(
        greeter["spec"]["price_per_call"] == 3 && greeter["free_calls"] == 1,
        "{greeter:#}"
    );
    let services = ok(cli(bin(), a_dir.path(), &["services"])?)?;
    ensure!(services.contains("EARNED"), "{services}");
    let book = ok(cli(bin(), b_dir.path(), &["ledger", "metering"])?)?;
    ensure!(book.contains("owes"), "{book}");

    // Reputation: the scores a computes, and why b scores what it does.
    let why = ok(cli(bin(), a_dir.path(), &["reputation", &b_peer])?)?;
    ensure!(why.contains(&b_peer), "{why}");
    ok(cli(bin(), a_dir.path(), &["reputation"])?)?;

    b.terminate(START)?;
    a.terminate(START)?;
    Ok(())
}
