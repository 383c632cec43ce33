//! The CI scenarios: each file in `scenarios/` runs at its own (CI) size and must meet its
//! `[expect]`. They run one at a time: each starts a few dozen nodes on the same two cores.

use std::path::{Path, PathBuf};

use micro_simulations::{Scenario, run};
use tokio::sync::Mutex;

/// One scenario at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"))
}

async fn passes(name: &str) {
    let _turn = SERIAL.lock().await;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    let scenario = Scenario::load(&scenario(name)).expect("the scenario parses");
    let report = run(scenario).await.expect("the run completes");
    println!("{}", report.table());
    assert!(!report.checks.is_empty(), "{name} checks something");
    assert!(
        report.passed(),
        "{name} failed its checks:\n{}",
        report.table()
    );
}

#[test]
fn every_shipped_scenario_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("the scenarios folder") {
        let path = entry.expect("a dir entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            // A sweep hands each size to its own process as a written-out scenario.
            let scaled = s.scaled_to(s.network.nodes * 2);
            let written = toml::to_string(&scaled).expect("the scenario writes");
            let back = Scenario::parse(&written, &path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back, scaled, "{} round trip", path.display());
            count += 1;
        }
    }
    assert!(count >= 5, "{count} scenarios");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_calls_and_broadcasts_on_a_stable_network() {
    passes("lookup").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_and_calls_survive_churn_and_dead_providers_are_dropped() {
    passes("churn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_the_ledger_converge_after_a_partition_heals() {
    passes("partition").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_records_and_spam_reach_no_honest_node() {
    passes("adversaries").await;
}
