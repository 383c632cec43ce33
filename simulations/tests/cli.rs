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
