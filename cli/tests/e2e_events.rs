//! End-to-end: events published with the CLI survive `kill -9`; a consumer group resumes
//! after its last acknowledged event, with nothing acknowledged delivered again and nothing
//! unacknowledged lost.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, ensure};
use micro_testkit::process::{Daemon, cli};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_micro-node");
const START: Duration = Duration::from_secs(20);
const LOOPBACK: [&str; 6] = micro_testkit::process::LOOPBACK_ARGS;

fn bin() -> &'static Path {
    Path::new(BIN)
}

/// Runs a CLI command that must succeed; returns its stdout.
fn run_ok(dir: &Path, args: &[&str]) -> Result<String> {
    let out = cli(bin(), dir, args)?;
    ensure!(
        out.status.success(),
        "`micro-node {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn acknowledged_events_are_not_redelivered_after_kill_9_and_the_rest_are() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let daemon = Daemon::start(bin(), dir.path(), &LOOPBACK, START)?;
    for n in 1..=100 {
        run_ok(
            dir.path(),
            &["events", "publish", "orders", &format!("{{\"n\":{n}}}")],
        )?;
    }

    let first = run_ok(
        dir.path(),
        &[
            "events", "consume", "orders", "--group", "g", "--from", "earliest", "--max", "40",
        ],
    )?;
    let lines: Vec<&str> = first.lines().collect();
    ensure!(lines.len() == 40, "printed {} events: {first}", lines.len());
    // `offset seq publisher body`
    for (i, line) in lines.iter().enumerate() {
        let fields: Vec<&str> = line.split(' ').collect();
        ensure!(
            fields.len() == 4
                && fields[0] == i.to_string()
                && fields[1] == (i + 1).to_string()
                && fields[3] == format!("{{\"n\":{}}}", i + 1),
            "unexpected line {line:?}"
        );
    }

    // kill -9: no shutdown, no final flush.
    drop(daemon);
    let daemon = Daemon::start(bin(), dir.path(), &LOOPBACK, START)?;

    let rest = run_ok(
        dir.path(),
        &[
            "events", "consume", "orders", "--group", "g", "--max", "1000", "--json",
        ],
    )?;
    let seqs: Vec<u64> = rest
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line)?;
            event["seq"]
                .as_u64()
                .ok_or_else(|| anyhow::anyhow!("no seq in {line}"))
        })
        .collect::<Result<_>>()?;
    ensure!(
        seqs == (41..=100).collect::<Vec<u64>>(),
        "after the restart the group got seqs {seqs:?}"
    );
    // Everything acknowledged now: nothing more.
    let none = run_ok(dir.path(), &["events", "consume", "orders", "--group", "g"])?;
    ensure!(none.is_empty(), "redelivered after acknowledging: {none}");

    let unknown = cli(
        bin(),
        dir.path(),
        &["events", "consume", "nosuch", "--group", "g"],
    )?;
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    ensure!(
        !unknown.status.success(),
        "consuming an unknown topic succeeded"
    );
    ensure!(stderr.contains("unknown topic `nosuch`"), "{stderr}");

    let bad = cli(
        bin(),
        dir.path(),
        &[
            "events", "consume", "orders", "--group", "h", "--from", "soon",
        ],
    )?;
    ensure!(!bad.status.success());
    ensure!(
        String::from_utf8_lossy(&bad.stderr).contains("is not a position"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    ensure!(daemon.terminate(START)?.success(), "the node stops cleanly");
    Ok(())
}
