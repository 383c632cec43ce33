//! Process mode end to end: `scenarios/processes.toml` with every node a real `micro-node`
//! process, driven through its control API. Needs the binary next to the test executable's
//! directory, as `cargo test --workspace` leaves it (or `cargo build -p micro-cli` first).

use std::path::Path;

use micro_simulations::Scenario;
use micro_simulations::process::{ProcessOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_of_micro_node_processes_answers_lookups_calls_and_broadcasts() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/processes.toml");
    let scenario = Scenario::load(&path).expect("the scenario parses");
    let nodes = scenario.network.nodes;
    let report = run(scenario, &ProcessOptions::default())
        .await
        .unwrap_or_else(|e| panic!("the run completes: {e}"));
    let table = report.table();
    println!("{table}");
    assert_eq!(report.mode, "os processes", "{table}");
    // Every node but the first super node (which joins once dialled) joined.
    assert!(report.join_ms.count >= nodes - 1, "{table}");
    assert!(report.lookups.attempts > 0, "{table}");
    assert_eq!(report.lookups.success_ratio, Some(1.0), "{table}");
    assert!(report.calls.attempts > 0, "{table}");
    assert_eq!(report.calls.success_ratio, Some(1.0), "{table}");
    assert_eq!(report.wrong_answers, 0, "{table}");
    let news = &report.topics[0].delivery;
    assert!(news.messages > 0 && news.expected > 0, "{table}");
    assert_eq!(news.delivered, news.expected, "{table}");
    assert_eq!(report.spam_delivered, 0, "{table}");
    assert!(report.memory_per_node_mib > 0.0, "{table}");
    assert!(
        report
            .not_measured
            .iter()
            .any(|n| n.starts_with("bytes_per_node_per_s")),
        "{table}"
    );
    assert!(report.passed(), "{table}");
}
