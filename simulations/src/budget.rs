//! What a run will cost the machine, checked before it starts: a scenario that asks for more
//! memory than is available is refused with the estimate, not killed by the OOM killer
//! halfway.

use anyhow::{Result, bail};

use crate::scenario::Scenario;

/// Resident memory one in-process node takes besides its connections, measured (see
/// docs/SIMULATIONS.md: 3.3 MiB) and rounded up: overlay, sled database and caches,
/// services, ledger, reputation.
pub const NODE_BYTES: u64 = 4 * 1024 * 1024;

/// Resident memory per connection end (Noise, Yamux, every protocol's handler), measured
/// (about 130 KiB) and rounded up.
pub const CONNECTION_BYTES: u64 = 160 * 1024;
/// What the process needs besides its nodes.
pub const BASE_BYTES: u64 = 256 * 1024 * 1024;
/// Share of the available memory a run may plan to use.
const HEADROOM: f64 = 0.8;

/// The memory one node of `scenario` is expected to need, in bytes: a peer connects to
/// every other node, up to its connection cap (in a small network, all of them).
pub fn per_node(scenario: &Scenario) -> u64 {
    let n = &scenario.network;
    let cap = n.peer_connections.unwrap_or_else(|| {
        micro_node::overlay::OverlayConfig::default()
            .limits
            .max_established
    });
    let connections = (n.nodes.saturating_sub(1) as u64).min(u64::from(cap));
    NODE_BYTES + CONNECTION_BYTES * connections
}

/// The memory `scenario` is expected to need, in bytes.
pub fn estimate(scenario: &Scenario) -> u64 {
    BASE_BYTES + per_node(scenario) * scenario.network.nodes as u64
}

/// Refuses `scenario` if its estimate does not fit in the available memory.
pub fn check(scenario: &Scenario) -> Result<()> {
    let need = estimate(scenario);
    if let Some(available) = available_bytes() {
        let budget = (available as f64 * HEADROOM) as u64;
        if need > budget {
            bail!(
                "{} nodes need about {} MiB ({:.1} MiB per node + {} MiB), but only {} MiB \
                 are available ({}% of them usable): use fewer nodes, or fewer connections \
                 per peer (--peer-connections)",
                scenario.network.nodes,
                need >> 20,
                per_node(scenario) as f64 / f64::from(1 << 20),
                BASE_BYTES >> 20,
                available >> 20,
                (HEADROOM * 100.0) as u32,
            );
        }
    }
    Ok(())
}

/// `MemAvailable` from /proc/meminfo, in bytes.
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_kib(&meminfo, "MemAvailable:")
}

/// This process's resident memory, in bytes (0 where unknown).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_kib(&s, "VmRSS:"))
        .unwrap_or(0)
}

fn parse_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_lines_in_kib() {
        let text = "MemTotal:       24000000 kB\nMemAvailable:   1000 kB\n";
        assert_eq!(parse_kib(text, "MemAvailable:"), Some(1_024_000));
        assert_eq!(parse_kib(text, "VmRSS:"), None);
    }

    #[test]
    fn a_network_beyond_the_machine_is_refused_up_front() {
        let text = r#"
name = "huge"
duration_s = 1
[network]
nodes = 100000
"#;
        let scenario = Scenario::parse(text, std::path::Path::new("huge.toml")).unwrap();
        // 100 000 × 24 MiB (128 connections each) is far beyond any machine this runs on.
        assert!(available_bytes().is_some(), "/proc/meminfo is readable");
        let err = check(&scenario).unwrap_err().to_string();
        assert!(err.contains("100000 nodes need about"), "{err}");
    }

    #[test]
    fn connections_per_node_are_bounded_by_the_network_and_the_cap() {
        let scenario = |nodes: usize, cap: Option<u32>| {
            let mut s = Scenario::parse(
                "name = \"s\"\nduration_s = 1\n[network]\nnodes = 2\n",
                std::path::Path::new("s.toml"),
            )
            .unwrap();
            s.network.nodes = nodes;
            s.network.peer_connections = cap;
            s
        };
        assert_eq!(
            per_node(&scenario(24, None)),
            NODE_BYTES + 23 * CONNECTION_BYTES
        );
        assert_eq!(
            per_node(&scenario(1000, None)),
            NODE_BYTES + 128 * CONNECTION_BYTES
        );
        assert_eq!(
            per_node(&scenario(1000, Some(32))),
            NODE_BYTES + 32 * CONNECTION_BYTES
        );
    }
}
