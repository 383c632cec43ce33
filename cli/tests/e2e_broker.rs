//! End-to-end: `micro-node subscribe` on one node prints what `micro-node publish` sends on
//! another.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use micro_testkit::process::{Daemon, Stream, cli_json};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_micro-node");
const START: Duration = Duration::from_secs(20);
const LOOPBACK: [&str; 6] = micro_testkit::process::LOOPBACK_ARGS;
/// Most publishes tried while the subscription spreads through gossipsub.
const MAX_PUBLISHES: usize = 200;

fn bin() -> &'static Path {
    Path::new(BIN)
}

#[test]
fn a_subscriber_on_one_node_prints_what_another_publishes() -> Result<()> {
    let (a_dir, b_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut a = Daemon::start(
        bin(),
        a_dir.path(),
        &[&LOOPBACK[..], &["--super"]].concat(),
        START,
    )?;
    let boot = a.bootstrap_addr()?;
    let mut b = Daemon::start(
        bin(),
        b_dir.path(),
        &[&LOOPBACK[..], &["--bootstrap", &boot]].concat(),
        START,
    )?;
    b.wait_line(Stream::Stderr, "joined the network", START)?;

    let mut subscriber = Daemon::spawn(bin(), b_dir.path(), &["subscribe", "orders", "--json"])?;
    subscriber.wait_line(Stream::Stderr, "subscribed to orders", START)?;

    // Gossipsub learns of the new subscription within a heartbeat; until then a publish
    // reaches nobody (and says so).
    let mut delivered = None;
    for _ in 0..MAX_PUBLISHES {
        let published = cli_json(
            bin(),
            a_dir.path(),
            &[
                "publish",
                "orders",
                r#"{"id":1}"#,
                "--header",
                "k=v",
                "--json",
            ],
        )?;
        if published["delivered_to"] == 1 {
            delivered = Some(published["id"].clone());
            break;
        }
    }
    let Some(id) = delivered else {
        bail!("the subscription never reached the publisher")
    };
    let line = subscriber.wait_line(Stream::Stdout, &format!("\"id\":{id}"), START)?;
    let message: Value = serde_json::from_str(&line)?;
    let message = &message["message"];
    ensure!(
        message["body"] == r#"{"id":1}"# && message["headers"]["k"] == "v",
        "{message:#}"
    );
    ensure!(message["topic"] == "orders");

    ensure!(
        b.terminate(START)?.success(),
        "a node with a live subscriber stops cleanly"
    );
    ensure!(a.terminate(START)?.success());
    Ok(())
}
