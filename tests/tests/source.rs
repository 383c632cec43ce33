//! Deploying from source: repositories made on the fly, served over `git daemon` on loopback,
//! built in the sandbox, deployed by tag, branch and commit, followed; hostile builds.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use micro_node::RunningNode;
use micro_node::overlay::Role;
use micro_testkit::wasm::{
    GitDaemon, build_example, build_guest, cargo_home, crate_repo, git, source_repo,
};
use micro_testkit::{eventually, init_tracing, json_call, node_config, overlay_config};
use serde_json::{Value, json};
use tokio::sync::mpsc;

async fn node(dir: &std::path::Path) -> Result<RunningNode> {
    let mut config = node_config(dir, overlay_config(Role::Super, Vec::new()));
    config.source.cargo_home = Some(cargo_home());
    config.source.offline_dependencies = true;
    config.source.build.wall = Duration::from_secs(300);
    Ok(RunningNode::start(config).await?)
}

async fn call(node: &RunningNode, service: &str, endpoint: &str, body: Value) -> Result<Value> {
    let outcome = node
        .services()
        .call(json_call(service, endpoint, &body))
        .await
        .map_err(|e| anyhow::anyhow!("{} {}: {}", e.code, e.id, e.detail))?;
    Ok(serde_json::from_slice(&outcome.body)?)
}

fn sink() -> mpsc::Sender<micro_node::source::Progress> {
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_folder_is_built_in_the_sandbox_and_deployed() -> Result<()> {
    init_tracing();
    // Downloads the example's dependencies into the cargo home once (the build is offline).
    tokio::task::spawn_blocking(|| build_example("greeter")).await?;
    let repo = tempfile::tempdir()?;
    let commit = source_repo(repo.path(), "greeter");
    let dir = tempfile::tempdir()?;
    let node = node(dir.path()).await?;
    let done = node
        .wasm()
        .deploy_source(&repo.path().to_string_lossy(), None, &sink())
        .await?;
    ensure!(
        done.commit == commit,
        "a clean git tree is versioned by its commit"
    );
    ensure!(done.deployed.version == commit[..12], "{done:?}");
    ensure!(!done.cached, "first build");
    let reply = call(&node, "greeter", "Say.Hello", json!({"name": "Ada"})).await?;
    ensure!(reply["message"] == "Hello, Ada!", "{reply}");
    let again = node
        .wasm()
        .deploy_source(&repo.path().to_string_lossy(), None, &sink())
        .await?;
    ensure!(again.cached, "the same commit comes from the build cache");
    let log = node
        .wasm()
        .builder()
        .latest_log("greeter")
        .context("a build log")?;
    let log = std::fs::read_to_string(log)?;
    ensure!(log.contains("cargo build"), "{log}");
    node.shutdown().await;
    Ok(())
}

/// Commits every change in `repo` and pushes `main` (and tags) to the bare `remote`.
fn commit_and_push(repo: &std::path::Path, remote: &std::path::Path, message: &str) -> String {
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
    git(
        repo,
        &["push", "-q", "--tags", &remote.to_string_lossy(), "main"],
    );
    git(repo, &["rev-parse", "HEAD"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_over_git_daemon_deploys_by_tag_commit_and_branch_and_evolves() -> Result<()> {
    init_tracing();
    tokio::task::spawn_blocking(|| build_guest("hostile")).await?;
    let work = tempfile::tempdir()?;
    let (repo, served) = (work.path().join("hostile"), work.path().join("served"));
    std::fs::create_dir_all(&repo)?;
    crate_repo(&repo, "tests/guests/hostile");
    // Long enough for a call to outlive a redeploy.
    let manifest = std::fs::read_to_string(repo.join("micro.toml"))?;
    std::fs::write(
        repo.join("micro.toml"),
        manifest.replace("timeout_ms = 2000", "timeout_ms = 60000"),
    )?;
    git(&repo, &["commit", "-q", "-a", "--amend", "--no-edit"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    git(&repo, &["tag", "v1"]);
    let bare = served.join("hostile.git");
    git(
        work.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &repo.to_string_lossy(),
            &bare.to_string_lossy(),
        ],
    );
    let daemon = GitDaemon::start(&served)?;
    let url = daemon.url("hostile.git");
    let dir = tempfile::tempdir()?;
    let node = node(dir.path()).await?;
    let version = |node: &RunningNode| {
        node.wasm()
            .status()
            .into_iter()
            .find(|s| s.name == "hostile")
            .map(|s| s.version)
    };

    // By tag.
    let done = node
        .wasm()
        .deploy_source(&format!("{url}@v1"), None, &sink())
        .await?;
    ensure!(done.commit == first, "v1 is the first commit");
    ensure!(version(&node).as_deref() == Some(&first[..12]));
    let echo = call(&node, "hostile", "Echo", json!({"n": 1})).await?;
    ensure!(echo == json!({"n": 1}), "{echo}");

    // A second commit; then the first again by its short hash (the server does not serve
    // arbitrary commits: the fetch falls back to every branch and tag).
    std::fs::write(
        repo.join("micro.toml"),
        std::fs::read_to_string(repo.join("micro.toml"))?
            .replace("description = ", "description = \"second\"\n# was: "),
    )?;
    let second = commit_and_push(&repo, &bare, "second");
    let done = node
        .wasm()
        .deploy_source(&format!("{url}@{}", &first[..9]), None, &sink())
        .await?;
    ensure!(done.commit == first && done.cached, "{done:?}");

    // By branch, followed: a new commit pushed to main is built and takes over, while a call
    // in flight on the old version still completes.
    let done = node
        .wasm()
        .deploy_source(
            &format!("{url}@main"),
            Some(Duration::from_secs(1)),
            &sink(),
        )
        .await?;
    ensure!(done.commit == second, "main is at the second commit");
    let in_flight = tokio::spawn({
        let services = node.services().clone();
        async move {
            let mut sleep = json_call("hostile", "Sleep", &json!({"ms": 20_000}));
            sleep.timeout_ms = Some(30_000);
            services.call(sleep).await
        }
    });
    eventually("the slow call runs", Duration::from_secs(20), || async {
        Ok(node.wasm().status()[0].instances >= 1)
    })
    .await?;
    std::fs::write(
        repo.join("micro.toml"),
        std::fs::read_to_string(repo.join("micro.toml"))?.replace("second", "third"),
    )?;
    let third = commit_and_push(&repo, &bare, "third");
    eventually(
        "the third commit serves",
        Duration::from_secs(120),
        || async { Ok(version(&node).as_deref() == Some(&third[..12])) },
    )
    .await?;
    ensure!(
        !in_flight.is_finished(),
        "the new version took over while the old one still ran a call"
    );
    let slow = in_flight.await?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ensure!(slow.status == 200, "the call on the old version completed");
    ensure!(call(&node, "hostile", "Echo", json!({"n": 3})).await? == json!({"n": 3}));
    // The commit it replaced still answers calls that pin it by short hash.
    let calls_on = |commit: &str| {
        node.wasm()
            .status()
            .into_iter()
            .find(|s| s.name == "hostile" && s.version == commit[..12])
            .map(|s| s.calls)
    };
    let before = calls_on(&second).context("the second commit still runs")?;
    let pinned = format!("hostile@{}", &second[..7]);
    ensure!(call(&node, &pinned, "Echo", json!({"n": 2})).await? == json!({"n": 2}));
    ensure!(
        calls_on(&second) == Some(before + 1),
        "the pinned call ran on the second commit"
    );

    // A commit that does not build: the running version stays, and the log says why.
    std::fs::write(
        repo.join("tests/guests/hostile/src/lib.rs"),
        "this is not rust",
    )?;
    let broken = commit_and_push(&repo, &bare, "broken");
    eventually(
        "the failed build is reported",
        Duration::from_secs(120),
        || async {
            Ok(node.wasm().logs("hostile").is_some_and(|l| {
                l.tail(50)
                    .iter()
                    .any(|l| l.message.contains("still running"))
            }))
        },
    )
    .await?;
    ensure!(
        version(&node).as_deref() == Some(&third[..12]),
        "still the third commit, not {broken}"
    );
    ensure!(call(&node, "hostile", "Echo", json!({"n": 4})).await? == json!({"n": 4}));

    // Unknown repository and revision: clear errors naming them.
    let err = node
        .wasm()
        .deploy_source(&daemon.url("nope.git"), None, &sink())
        .await
        .expect_err("no such repository")
        .to_string();
    ensure!(err.contains("nope.git"), "{err}");
    let err = node
        .wasm()
        .deploy_source(&format!("{url}@no-such-branch"), None, &sink())
        .await
        .expect_err("no such revision")
        .to_string();
    ensure!(err.contains("no-such-branch"), "{err}");
    node.shutdown().await;
    Ok(())
}

/// A crate whose build script does `build_rs`, with a `micro.toml` naming it `evil`.
fn evil_crate(build_rs: &str) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"evil\"\nversion = \"0.1.0\"\nedition = \"2024\"\nbuild = \"build.rs\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n",
    )?;
    std::fs::write(root.join("src/lib.rs"), "")?;
    std::fs::write(root.join("build.rs"), build_rs)?;
    std::fs::write(root.join("micro.toml"), "name = \"evil\"\n")?;
    Ok(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sources_and_builds_are_contained() -> Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let mut config = node_config(dir.path(), overlay_config(Role::Super, Vec::new()));
    config.source.cargo_home = Some(cargo_home());
    config.source.offline_dependencies = true;
    config.source.build.wall = Duration::from_secs(20);
    config.source.build.pids = 64;
    config.source.fetch.max_tree_bytes = 1024 * 1024;
    let node = RunningNode::start(config).await?;
    let deploy = |folder: &std::path::Path| {
        let wasm = node.wasm().clone();
        let source = folder.to_string_lossy().into_owned();
        async move {
            wasm.deploy_source(&source, None, &sink())
                .await
                .expect_err("refused")
                .to_string()
        }
    };

    // No network inside the build: the connection fails, and nothing reaches the listener.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let evil = evil_crate(&format!(
        "fn main() {{ std::net::TcpStream::connect(\"127.0.0.1:{port}\").map(|_| ()).unwrap_or_else(|e| panic!(\"network: {{e}}\")); }}"
    ))?;
    let err = deploy(evil.path()).await;
    ensure!(
        err.contains("network: ") && err.contains("unreachable"),
        "{err}"
    );
    ensure!(listener.accept().is_err(), "no connection left the sandbox");

    // A build that never ends is killed at its limit.
    let evil = evil_crate("fn main() { loop { std::hint::black_box(0u8); } }")?;
    let started = std::time::Instant::now();
    let err = deploy(evil.path()).await;
    ensure!(err.contains("killed after"), "{err}");
    ensure!(
        started.elapsed() < Duration::from_secs(60),
        "killed on time"
    );

    // A build that forks without bound hits the process limit.
    let evil = evil_crate(
        "use std::process::{Command, Stdio}; fn main() { for i in 0..500 { Command::new(\"sleep\").arg(\"30\").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!(\"fork {i}: {e}\")); } }",
    )?;
    let err = deploy(evil.path()).await;
    ensure!(err.contains("fork "), "{err}");

    // Writing outside the scratch copy: read-only.
    let outside = tempfile::tempdir()?;
    let target = outside.path().join("escaped.txt");
    let evil = evil_crate(&format!(
        "fn main() {{ std::fs::write({:?}, \"x\").unwrap_or_else(|e| panic!(\"write: {{e}}\")); }}",
        target
    ))?;
    let err = deploy(evil.path()).await;
    ensure!(err.contains("Read-only file system"), "{err}");
    ensure!(!target.exists(), "nothing was written outside");

    // The shared crate cache is read-only to build scripts.
    let poisoned = cargo_home().join("micro-poisoned-by-a-build");
    let evil = evil_crate(
        "fn main() { let home = std::env::var(\"CARGO_HOME\").expect(\"CARGO_HOME\"); std::fs::write(format!(\"{home}/micro-poisoned-by-a-build\"), \"x\").unwrap_or_else(|e| panic!(\"poison: {e}\")); }",
    )?;
    let err = deploy(evil.path()).await;
    ensure!(err.contains("poison: Read-only file system"), "{err}");
    ensure!(!poisoned.exists(), "the cargo home is untouched");

    // Shared memory is private to the build: nothing lands in the host's /dev/shm.
    let shm = format!("/dev/shm/micro-escape-{}", std::process::id());
    let evil = evil_crate(&format!(
        "fn main() {{ std::fs::write({shm:?}, \"x\").unwrap_or_else(|e| panic!(\"shm: {{e}}\")); }}"
    ))?;
    let _ = deploy(evil.path()).await;
    ensure!(
        !std::path::Path::new(&shm).exists(),
        "the build's /dev/shm is its own"
    );

    // A symlink out of the tree.
    let evil = tempfile::tempdir()?;
    std::fs::write(evil.path().join("micro.toml"), "name = \"evil\"\n")?;
    std::os::unix::fs::symlink("/etc/passwd", evil.path().join("leak"))?;
    let err = deploy(evil.path()).await;
    ensure!(
        err.contains("`leak` is a symlink pointing outside"),
        "{err}"
    );

    // A core module, and a component importing sockets.
    let evil = tempfile::tempdir()?;
    std::fs::write(
        evil.path().join("micro.toml"),
        "name = \"evil\"\n[build]\nlanguage = \"wasm\"\npath = \"core.wasm\"\n",
    )?;
    std::fs::write(evil.path().join("core.wasm"), b"\0asm\x01\0\0\0")?;
    let err = deploy(evil.path()).await;
    ensure!(err.contains("core WebAssembly module"), "{err}");
    let evil = tempfile::tempdir()?;
    std::fs::write(evil.path().join("micro.toml"), "name = \"evil\"\n")?;
    std::fs::write(
        evil.path().join("service.wat"),
        r#"(component (import "wasi:sockets/tcp@0.2.0" (instance)))"#,
    )?;
    let err = deploy(evil.path()).await;
    ensure!(err.contains("wasi:sockets/tcp@0.2.0"), "{err}");

    // A malformed manifest: line and field.
    let evil = tempfile::tempdir()?;
    std::fs::write(
        evil.path().join("micro.toml"),
        "name = \"evil\"\n[limits]\nmemory_mb = \"lots\"\n",
    )?;
    let err = deploy(evil.path()).await;
    ensure!(err.contains("line 3") && err.contains("memory_mb"), "{err}");

    // Too large.
    let evil = tempfile::tempdir()?;
    std::fs::write(evil.path().join("micro.toml"), "name = \"evil\"\n")?;
    std::fs::write(evil.path().join("blob"), vec![0u8; 2 * 1024 * 1024])?;
    let err = deploy(evil.path()).await;
    ensure!(err.contains("larger than"), "{err}");

    // A language whose toolchain this machine lacks: the error says what to install.
    let js = tempfile::tempdir()?;
    std::fs::write(js.path().join("micro.toml"), "name = \"evil\"\n")?;
    std::fs::write(js.path().join("package.json"), "{}")?;
    let jco_installed = std::process::Command::new("jco")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !jco_installed {
        let err = deploy(js.path()).await;
        ensure!(
            err.contains("jco is not installed") && err.contains("npm install"),
            "{err}"
        );
    }

    ensure!(node.wasm().status().is_empty(), "nothing was deployed");
    node.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_deploys_on_another_only_if_that_node_allows_it() -> Result<()> {
    init_tracing();
    // A source with a prebuilt component: no build, so the test is about the protocol.
    let wasm = tokio::task::spawn_blocking(|| build_example("greeter")).await?;
    let folder = tempfile::tempdir()?;
    std::fs::copy(&wasm, folder.path().join("greeter.wasm"))?;
    std::fs::copy(
        micro_testkit::wasm::manifest_path("greeter"),
        folder.path().join("micro.toml"),
    )?;
    let source = folder.path().to_string_lossy().into_owned();

    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let boot = node(dirs[0].path()).await?;
    let join = |dir: &std::path::Path, allow: Vec<micro_node::overlay::PeerId>| {
        let mut config = node_config(
            dir,
            overlay_config(Role::Peer, vec![micro_testkit::bootstrap_addr(&boot)]),
        );
        config.source.remote_deployers = allow;
        RunningNode::start(config)
    };
    let target = join(dirs[1].path(), vec![boot.peer_id()]).await?;
    let stranger = join(dirs[2].path(), Vec::new()).await?;
    eventually("both joined", Duration::from_secs(20), || async {
        let knows_target = stranger
            .overlay()
            .known_nodes()
            .await?
            .iter()
            .any(|n| n.peer_id == target.peer_id() && !n.addrs.is_empty());
        Ok(boot.overlay().connected_peers().await?.len() >= 2 && knows_target)
    })
    .await?;

    let err = stranger
        .wasm()
        .deploy_on(target.peer_id(), &source, None, &sink())
        .await
        .expect_err("the target does not take deploys from the stranger")
        .to_string();
    ensure!(err.contains("does not take deploys from"), "{err}");
    ensure!(target.wasm().status().is_empty());

    let done = boot
        .wasm()
        .deploy_on(target.peer_id(), &source, None, &sink())
        .await?;
    ensure!(done.deployed.name == "greeter", "{done:?}");
    ensure!(
        target.wasm().status().iter().any(|s| s.name == "greeter"),
        "it runs on the target"
    );
    ensure!(boot.wasm().status().is_empty(), "not on the caller");
    eventually(
        "the third node reaches greeter",
        Duration::from_secs(20),
        || async {
            Ok(
                call(&stranger, "greeter", "Say.Hello", json!({"name": "Ada"}))
                    .await
                    .is_ok_and(|reply| reply["message"] == "Hello, Ada!"),
            )
        },
    )
    .await?;
    for node in [stranger, target, boot] {
        node.shutdown().await;
    }
    Ok(())
}
