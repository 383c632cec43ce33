//! End-to-end: the `micro-node` binary as a user runs it — three daemons on loopback, the
//! CLI against them, signals, and the mistakes users make.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use micro_testkit::process::{Daemon, Stream, cli, cli_json};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_micro-node");
const START: Duration = Duration::from_secs(20);
const LOOPBACK: [&str; 6] = micro_testkit::process::LOOPBACK_ARGS;

fn bin() -> &'static Path {
    Path::new(BIN)
}

fn peer_ids(value: &Value, key: &str) -> BTreeSet<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item[key].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn start(dir: &Path, extra: &[&str]) -> Result<Daemon> {
    let mut args = LOOPBACK.to_vec();
    args.extend_from_slice(extra);
    Daemon::start(bin(), dir, &args, START)
}

#[test]
fn three_daemons_form_a_network_the_cli_can_see() -> Result<()> {
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let mut super_node = start(dirs[0].path(), &["--super"])?;
    let boot = super_node.bootstrap_addr()?;
    let mut peers = Vec::new();
    for dir in &dirs[1..] {
        let mut peer = start(dir.path(), &["--bootstrap", &boot])?;
        peer.wait_line(Stream::Stderr, "joined the network", START)?;
        peers.push(peer);
    }

    let ids: Vec<String> = dirs
        .iter()
        .map(|d| {
            let id = cli_json(bin(), d.path(), &["id", "--json"])?;
            id["peer_id"]
                .as_str()
                .map(str::to_owned)
                .context("id has a peer_id")
        })
        .collect::<Result<_>>()?;
    let super_id = &ids[0];

    // The super sees both peers; each peer sees the super, with its role.
    let super_peers = cli_json(bin(), dirs[0].path(), &["peers", "--json"])?;
    let expected: BTreeSet<String> = ids[1..].iter().cloned().collect();
    ensure!(
        expected.is_subset(&peer_ids(&super_peers, "peer_id")),
        "super's peers: {super_peers:#}"
    );
    let leaf_peers = cli_json(bin(), dirs[2].path(), &["peers", "--json"])?;
    let to_super = leaf_peers
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["peer_id"] == super_id.as_str()))
        .context("leaf is connected to the super")?;
    ensure!(to_super["role"] == "super", "{to_super:#}");

    // The crawl from a peer finds all three nodes and at least the two links to the super.
    let graph = cli_json(bin(), dirs[2].path(), &["network", "graph", "--json"])?;
    let crawled: BTreeSet<String> = peer_ids(&graph["nodes"], "peer_id");
    ensure!(
        crawled == ids.iter().cloned().collect(),
        "graph nodes: {graph:#}"
    );
    let edges = graph["edges"].as_array().context("edges")?;
    for peer in &ids[1..] {
        ensure!(
            edges
                .iter()
                .any(|e| (e["a"] == super_id.as_str() && e["b"] == peer.as_str())
                    || (e["b"] == super_id.as_str() && e["a"] == peer.as_str())),
            "edge super–{peer} missing: {graph:#}"
        );
    }
    ensure!(graph["partial"] == false, "{graph:#}");

    // The human views print and mention what they should.
    for args in [
        &["peers"][..],
        &["peers", "graph"],
        &["peers", "graph", "--format", "dot"],
        &["network", "nodes"],
        &["network", "routes"],
        &["network", "graph"],
        &["network", "graph", "--format", "dot"],
        &["id"],
    ] {
        let out = cli(bin(), dirs[0].path(), args)?;
        ensure!(
            out.status.success(),
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            !out.stdout.is_empty(),
            "`{}` printed nothing",
            args.join(" ")
        );
    }
    let dot = cli(
        bin(),
        dirs[2].path(),
        &["network", "graph", "--format", "dot"],
    )?;
    let dot = String::from_utf8(dot.stdout)?;
    ensure!(
        dot.starts_with("graph") && dot.contains(super_id.as_str()) && dot.contains("--"),
        "{dot}"
    );

    // A wrong credential is refused with 401.
    let out = cli(
        bin(),
        dirs[0].path(),
        &["peers", "--credential", "not-the-credential"],
    )?;
    ensure!(!out.status.success());
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // SIGTERM: clean exit 0, and the CLI then says no node is running.
    for peer in peers {
        let status = peer.terminate(START)?;
        ensure!(status.success(), "peer exited with {status}");
    }
    let status = super_node.terminate(START)?;
    ensure!(status.success(), "super exited with {status}");
    let out = cli(bin(), dirs[0].path(), &["peers"])?;
    ensure!(!out.status.success());
    ensure!(String::from_utf8_lossy(&out.stderr).contains("no node is running"));
    Ok(())
}

#[test]
fn a_second_daemon_on_the_same_data_dir_fails_fast() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let first = start(dir.path(), &[])?;
    let out = cli(bin(), dir.path(), &LOOPBACK)?;
    ensure!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(stderr.contains("in use by another micro-node"), "{stderr}");
    ensure!(stderr.contains(&format!("pid {}", first.pid())), "{stderr}");
    // The first one is unharmed.
    cli_json(bin(), dir.path(), &["id", "--json"])?;
    first.terminate(START)?;
    Ok(())
}

#[test]
fn the_identity_survives_restarts_and_a_corrupt_key_is_never_overwritten() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let first = start(dir.path(), &[])?;
    let id = cli_json(bin(), dir.path(), &["id", "--json"])?["peer_id"].clone();
    first.terminate(START)?;
    let second = start(dir.path(), &[])?;
    ensure!(cli_json(bin(), dir.path(), &["id", "--json"])?["peer_id"] == id);
    second.terminate(START)?;

    let key = dir.path().join("identity.key");
    std::fs::write(&key, b"garbage")?;
    let out = cli(bin(), dir.path(), &LOOPBACK)?;
    ensure!(!out.status.success());
    ensure!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
    ensure!(
        std::fs::read(&key)? == b"garbage",
        "the key file was left alone"
    );
    Ok(())
}

#[test]
fn user_mistakes_get_one_line_errors() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cases: [(&[&str], &str); 5] = [
        (&["peers"], "no node is running"),
        (&["--bootstrap", "/ip4/127.0.0.1/tcp/4001"], "/p2p/"),
        (&["--bootstrap", "not-an-address"], "not a multiaddr"),
        (
            &["--control", "0.0.0.0:0", "--listen", "/ip4/127.0.0.1/tcp/0"],
            "loopback",
        ),
        (&["--super", "peers"], "apply when running a node"),
    ];
    for (args, expected) in cases {
        let out = cli(bin(), dir.path(), args)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success(), "`{}` should fail", args.join(" "));
        ensure!(stderr.contains(expected), "`{}`: {stderr}", args.join(" "));
        ensure!(!stderr.contains("panicked"), "{stderr}");
    }

    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let listen = format!("/ip4/127.0.0.1/tcp/{}", taken.local_addr()?.port());
    let out = cli(
        bin(),
        dir.path(),
        &[
            "--listen",
            &listen,
            "--control",
            "127.0.0.1:0",
            "--gateway",
            "127.0.0.1:0",
        ],
    )?;
    ensure!(!out.status.success());
    ensure!(String::from_utf8_lossy(&out.stderr).contains("in use"));

    // A data dir that cannot be created.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"")?;
    let out = cli(bin(), &file.join("sub"), &LOOPBACK)?;
    ensure!(String::from_utf8_lossy(&out.stderr).contains("not writable"));
    Ok(())
}

#[test]
fn an_unreachable_bootstrap_leaves_the_node_running_and_retrying() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let nobody = format!(
        "/ip4/127.0.0.1/tcp/{port}/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
    );
    let mut node = start(dir.path(), &["--bootstrap", &nobody])?;
    node.wait_line(
        Stream::Stderr,
        "dialled 1 of 1 bootstrap node(s) again",
        START,
    )?;
    let id = cli_json(bin(), dir.path(), &["id", "--json"])?;
    ensure!(
        id["joined"] == false && id["connected_peers"] == 0,
        "{id:#}"
    );
    ensure!(node.terminate(START)?.success());
    Ok(())
}
