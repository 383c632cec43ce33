//! The `micro-simulations` binary refuses bad input with an error that names the file, the
//! line and the field, before starting anything.

use std::process::Command;

fn sim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_micro-simulations"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn a_malformed_scenario_is_refused_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "name = \"bad\"\nduration_s = 5\n\n[network]\nnodes = 10\nsupers = 0\n",
    )
    .unwrap();
    let out = sim(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:6: network.supers: must be in [1,",
            path.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_network_beyond_the_machine_is_refused_with_the_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    std::fs::write(
        &path,
        "name = \"huge\"\nduration_s = 5\n\n[network]\nnodes = 90000\nsupers = 3\n",
    )
    .unwrap();
    let out = sim(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("90000 nodes need about"), "{stderr}");
    assert!(stderr.contains("use fewer nodes"), "{stderr}");
}

#[test]
fn a_missing_file_is_named() {
    let out = sim(&["run", "/nonexistent/scenario.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/scenario.toml"));
}

#[test]
fn a_sweep_runs_each_size_in_its_own_process_and_reports_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.toml");
    std::fs::write(
        &path,
        "name = \"tiny\"\nduration_s = 1\nsettle_s = 0\n\n[network]\nnodes = 3\nsupers = 1\n\
         transport = \"memory\"\n",
    )
    .unwrap();
    let json = dir.path().join("tiny-sweep.json");
    let out = sim(&[
        "sweep",
        path.to_str().unwrap(),
        "--nodes",
        "3,5",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let sweep: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let runs = sweep["runs"].as_array().unwrap();
    let sizes: Vec<u64> = runs.iter().map(|r| r["nodes"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [3, 5]);
    for run in runs {
        // Each size measured in a fresh process: its nodes' memory shows.
        assert!(run["memory_per_node_mib"].as_f64().unwrap() > 0.0, "{run}");
        assert!(run["join_ms"]["count"].as_u64().unwrap() > 0, "{run}");
    }
}

#[test]
fn process_mode_refuses_what_needs_in_process_nodes_before_starting_any() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mem.toml");
    std::fs::write(
        &path,
        "name = \"mem\"\nduration_s = 5\n\n[network]\nnodes = 6\ntransport = \"memory\"\n",
    )
    .unwrap();
    let out = sim(&["run", path.to_str().unwrap(), "--processes"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("network.transport: the in-memory transport exists only inside one process"),
        "{stderr}"
    );
}

#[test]
fn a_missing_micro_node_binary_is_named() {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/processes.toml");
    let out = sim(&["run", scenario, "--micro-node", "/nonexistent/micro-node"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--micro-node /nonexistent/micro-node: no such executable file"),
        "{stderr}"
    );
}
