//! What a run measured: a [`Report`] (written as JSON) and its table, and the checks of the
//! scenario's `[expect]`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::metrics::{Delivery, Outcomes, Summary};
use crate::scenario::Expect;

/// Everything one run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// Nodes at the start (super nodes included).
    pub nodes: usize,
    /// Super nodes.
    pub supers: usize,
    /// The transport (`tcp (loopback)` or `memory`).
    pub transport: String,
    /// Where the nodes ran (`in-process` or `os processes`).
    #[serde(default)]
    pub mode: String,
    /// The seed.
    pub seed: u64,
    /// Length of the timeline, in seconds.
    pub duration_s: f64,
    /// Wall time of the whole run (start-up, timeline, settling), in seconds.
    pub wall_s: f64,
    /// Time from a node's overlay start to its `Joined` event, in ms, of the nodes alive at
    /// the end (churn replacements included).
    pub join_ms: Summary,
    /// Peers each node is connected to at the end: what per-connection memory and timers
    /// are multiplied by.
    #[serde(default)]
    pub connected_peers: Summary,
    /// Nodes each node's peer book knows at the end.
    #[serde(default)]
    pub known_nodes: Summary,
    /// Peers the connection managers of the nodes alive at the end disconnected to stay
    /// below their caps, summed.
    #[serde(default)]
    pub connections_trimmed: u64,
    /// DHT provider lookups: success = at least one live provider found.
    pub lookups: Outcomes,
    /// Kademlia requests sent per successful lookup (its messages; hops ≥ requests / 3).
    pub lookup_requests: Summary,
    /// RPC calls: success = the right answer.
    pub calls: Outcomes,
    /// Calls answered wrongly (by wrong-answers adversaries).
    pub wrong_answers: u64,
    /// Broadcast delivery per topic.
    pub topics: Vec<TopicReport>,
    /// Malformed or spoofed messages that reached a subscriber.
    pub spam_delivered: u64,
    /// Forged service records listed by honest nodes at the end (summed over nodes).
    pub forged_accepted: u64,
    /// Crashed providers, and how long until no live node listed them, in seconds.
    pub dead_provider_drop_s: Summary,
    /// Crashed providers still listed somewhere at the end.
    pub dead_providers_still_listed: u64,
    /// Nodes that left (crash or clean) and joined during the timeline.
    pub churn: Churn,
    /// The ledger, if the scenario has one.
    pub ledger: Option<LedgerReport>,
    /// Growth of the process's resident memory from before the first node started to the
    /// end of the timeline, divided by the nodes, in MiB. In process mode: the mean resident
    /// memory (`VmRSS`) of the live node processes at the end.
    pub memory_per_node_mib: f64,
    /// Bytes sent per node per second over the timeline, if the transport counted them.
    pub bytes_per_node_per_s: Option<f64>,
    /// Protocol messages received per node per second over the timeline (see
    /// `micro_overlay::LocalInfo::messages_received`), of the nodes alive at the end.
    #[serde(default)]
    pub messages_per_node_per_s: Option<f64>,
    /// Metrics this run could not observe, each `metric: why` (process mode lists what its
    /// nodes do not expose or what their timers put beyond the run's end).
    #[serde(default)]
    pub not_measured: Vec<String>,
    /// The `[expect]` checks.
    pub checks: Vec<Check>,
}

/// Churn counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Churn {
    /// Nodes that crashed.
    pub crashed: u64,
    /// Nodes that shut down cleanly.
    pub left: u64,
    /// Fresh nodes that took their places.
    pub joined: u64,
}

/// Delivery on one topic.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TopicReport {
    /// The topic.
    pub topic: String,
    /// The numbers.
    pub delivery: Delivery,
}

/// Ledger outcomes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LedgerReport {
    /// Transfers submitted.
    pub transfers: u64,
    /// Of those, applied or held where submitted.
    pub accepted: u64,
    /// Submit-to-final latency on the submitting node, in ms.
    pub finality_ms: Summary,
    /// Time from each partition's heal until every live node held the same state, in ms.
    pub convergence_after_heal_ms: Vec<f64>,
    /// Whether every live node holds the same state at the end.
    pub converged: bool,
    /// How they differ, if they do.
    pub divergence: Option<String>,
    /// Equivocating accounts injected.
    pub equivocators: u64,
    /// Whether every live node froze every one of them.
    pub equivocators_frozen: bool,
}

/// One `[expect]` check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// The expectation's name.
    pub name: String,
    /// What was expected, as text.
    pub expected: String,
    /// What was measured.
    pub actual: String,
    /// Whether it held.
    pub passed: bool,
}

impl Report {
    /// Evaluates `expect` against the measurements into [`Report::checks`].
    pub fn check(&mut self, expect: &Expect) {
        let mut checks = Vec::new();
        let mut min = |name: &str, want: Option<f64>, got: Option<f64>| {
            if let Some(want) = want {
                checks.push(Check {
                    name: name.to_owned(),
                    expected: format!("≥ {want}"),
                    actual: got.map_or("nothing measured".into(), |v| format!("{v:.4}")),
                    passed: got.is_some_and(|v| v >= want),
                });
            }
        };
        min(
            "lookup_success",
            expect.lookup_success_min,
            self.lookups.success_ratio,
        );
        min(
            "rpc_success",
            expect.rpc_success_min,
            self.calls.success_ratio,
        );
        for topic in &self.topics {
            min(
                &format!("delivery_ratio[{}]", topic.topic),
                expect.delivery_ratio_min,
                topic.delivery.ratio,
            );
        }
        let mut max = |name: &str, want: Option<f64>, got: f64| {
            if let Some(want) = want {
                checks.push(Check {
                    name: name.to_owned(),
                    expected: format!("≤ {want}"),
                    actual: format!("{got}"),
                    passed: got <= want,
                });
            }
        };
        max(
            "forged_accepted",
            expect.forged_accepted_max.map(|v| v as f64),
            self.forged_accepted as f64,
        );
        max(
            "spam_delivered",
            expect.spam_delivered_max.map(|v| v as f64),
            self.spam_delivered as f64,
        );
        if let Some(want) = expect.dead_provider_dropped_max_s {
            let worst = self.dead_provider_drop_s.max;
            checks.push(Check {
                name: "dead_provider_dropped".into(),
                expected: format!("≤ {want} s, none left listed"),
                actual: format!(
                    "{} s max, {} still listed",
                    worst.map_or("-".into(), |v| format!("{v:.2}")),
                    self.dead_providers_still_listed
                ),
                // Nothing crashed is nothing measured, not a pass.
                passed: self.dead_providers_still_listed == 0 && worst.is_some_and(|w| w <= want),
            });
        }
        let ledger = self.ledger.clone().unwrap_or_default();
        let mut flag = |name: &str, want: Option<bool>, got: bool| {
            if let Some(want) = want {
                checks.push(Check {
                    name: name.to_owned(),
                    expected: want.to_string(),
                    actual: got.to_string(),
                    passed: got == want,
                });
            }
        };
        flag(
            "ledger_converged",
            expect.ledger_converged,
            ledger.converged,
        );
        flag(
            "equivocators_frozen",
            expect.equivocators_frozen,
            ledger.equivocators_frozen,
        );
        self.checks = checks;
    }

    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The report as an aligned text table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |k: &str, v: String| rows.push((k.to_owned(), v));
        row(
            "scenario",
            format!(
                "{} ({} nodes, {} super, {}, {}, seed {})",
                self.scenario,
                self.nodes,
                self.supers,
                self.transport,
                if self.mode.is_empty() {
                    "in-process"
                } else {
                    &self.mode
                },
                self.seed
            ),
        );
        row(
            "time",
            format!(
                "{:.0} s timeline, {:.1} s wall",
                self.duration_s, self.wall_s
            ),
        );
        row("join", latency(&self.join_ms));
        row(
            "connections",
            format!(
                "p50 {}  max {} per node, {} trimmed; knows p50 {} nodes",
                num(self.connected_peers.p50),
                num(self.connected_peers.max),
                self.connections_trimmed,
                num(self.known_nodes.p50)
            ),
        );
        if self.lookups.attempts > 0 {
            row("lookups", outcomes(&self.lookups));
            row(
                "lookup requests",
                format!(
                    "p50 {}  p99 {}",
                    num(self.lookup_requests.p50),
                    num(self.lookup_requests.p99)
                ),
            );
        }
        if self.calls.attempts > 0 {
            row(
                "calls",
                format!(
                    "{}  ({} wrong answers)",
                    outcomes(&self.calls),
                    self.wrong_answers
                ),
            );
        }
        for t in &self.topics {
            let d = &t.delivery;
            row(
                &format!("delivery {}", t.topic),
                format!(
                    "{}/{} = {}  ({} messages)  {}",
                    d.delivered,
                    d.expected,
                    pct(d.ratio),
                    d.messages,
                    latency(&d.latency_ms)
                ),
            );
        }
        row("spam delivered", self.spam_delivered.to_string());
        row("forged records kept", self.forged_accepted.to_string());
        row(
            "dead provider dropped",
            format!(
                "{} crashed, p50 {} s  max {} s, {} still listed",
                self.dead_provider_drop_s.count + self.dead_providers_still_listed as usize,
                num(self.dead_provider_drop_s.p50),
                num(self.dead_provider_drop_s.max),
                self.dead_providers_still_listed
            ),
        );
        row(
            "churn",
            format!(
                "{} crashed, {} left, {} joined",
                self.churn.crashed, self.churn.left, self.churn.joined
            ),
        );
        if let Some(l) = &self.ledger {
            row(
                "ledger",
                format!(
                    "{} transfers ({} accepted), final {}, converged {}",
                    l.transfers,
                    l.accepted,
                    latency(&l.finality_ms),
                    l.converged
                ),
            );
            if let Some(d) = &l.divergence {
                row("ledger divergence", d.clone());
            }
            row(
                "ledger heal",
                format!(
                    "convergence after heal {:?} ms; {} equivocators, frozen everywhere: {}",
                    l.convergence_after_heal_ms
                        .iter()
                        .map(|v| v.round() as u64)
                        .collect::<Vec<_>>(),
                    l.equivocators,
                    l.equivocators_frozen
                ),
            );
        }
        row(
            "memory",
            format!("{:.1} MiB per node", self.memory_per_node_mib),
        );
        if let Some(b) = self.bytes_per_node_per_s {
            row("traffic", format!("{:.0} B/s sent per node", b));
        }
        if let Some(m) = self.messages_per_node_per_s {
            row("messages", format!("{m:.1}/s received per node"));
        }
        for note in &self.not_measured {
            row("not measured", note.clone());
        }
        for c in &self.checks {
            row(
                &format!("check {}", c.name),
                format!(
                    "{}  (expected {}, got {})",
                    if c.passed { "pass" } else { "FAIL" },
                    c.expected,
                    c.actual
                ),
            );
        }
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        out
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.2}%", v * 100.0))
}

fn latency(s: &Summary) -> String {
    format!(
        "p50 {} ms  p99 {} ms  max {} ms  (n={})",
        num(s.p50),
        num(s.p99),
        num(s.max),
        s.count
    )
}

fn outcomes(o: &Outcomes) -> String {
    format!(
        "{}/{} = {}  {}",
        o.successes,
        o.attempts,
        pct(o.success_ratio),
        latency(&o.latency_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_compare_measurements_with_expectations() {
        let mut report = Report {
            lookups: Outcomes::of(100, &vec![1.0; 99]),
            calls: Outcomes::of(0, &[]),
            forged_accepted: 0,
            spam_delivered: 2,
            ..Report::default()
        };
        report.check(&Expect {
            lookup_success_min: Some(0.99),
            rpc_success_min: Some(0.5),
            forged_accepted_max: Some(0),
            spam_delivered_max: Some(0),
            ..Expect::default()
        });
        let passed: Vec<(&str, bool)> = report
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.passed))
            .collect();
        assert_eq!(
            passed,
            [
                ("lookup_success", true),
                // Nothing attempted is not a success.
                ("rpc_success", false),
                ("forged_accepted", true),
                ("spam_delivered", false),
            ]
        );
        assert!(!report.passed());
        let table = report.table();
        let line = table
            .lines()
            .find(|l| l.starts_with("check spam_delivered"))
            .expect("a row per check");
        assert!(line.contains("FAIL"), "{table}");
    }
}
