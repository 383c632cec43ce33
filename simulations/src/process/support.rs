//! What process mode can play, checked before anything starts. A scenario asking for what
//! only in-process nodes can do (shaping their links, blocking peers inside their swarms,
//! reading their ledgers, sending forged gossip with their keys) is refused naming the
//! field, never run with that part silently skipped.

use crate::scenario::{Adversary, Fault, LinkSpec, LoadKind, Scenario, TopicKind, Transport};

/// Most nodes process mode starts. Each node is a whole `micro-node` process (its own tokio
/// runtime and sled database, ~60 MiB resident in a debug build, see docs/SIMULATIONS.md);
/// past a few dozen on a small machine the run measures the scheduler, not the network, and
/// the in-process mode already covers large networks.
pub const MAX_PROCESS_NODES: usize = 64;

/// Why process mode refuses a scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// More nodes than [`MAX_PROCESS_NODES`].
    #[error("network.nodes: {}", too_many(*.nodes, *.max))]
    TooManyNodes {
        /// Nodes asked for.
        nodes: usize,
        /// The most allowed.
        max: usize,
    },
    /// A feature that needs access to the nodes' insides.
    #[error("{field}: {reason}")]
    Feature {
        /// The scenario field, as a path (`faults[1].kind`).
        field: String,
        /// Why process mode cannot do it.
        reason: &'static str,
    },
}

impl Unsupported {
    /// The field it names, as a path.
    pub fn field(&self) -> String {
        match self {
            Unsupported::TooManyNodes { .. } => "network.nodes".into(),
            Unsupported::Feature { field, .. } => field.clone(),
        }
    }

    /// Why, without the field.
    pub fn reason(&self) -> String {
        match self {
            Unsupported::TooManyNodes { nodes, max } => too_many(*nodes, *max),
            Unsupported::Feature { reason, .. } => (*reason).to_owned(),
        }
    }
}

fn too_many(nodes: usize, max: usize) -> String {
    format!(
        "{nodes} nodes as OS processes is more than {max}: each is a whole micro-node process \
         (own runtime, database, ~60 MiB); use the in-process mode for large networks"
    )
}

const LINK: &str = "link shaping wraps each node's transport inside this process; micro-node \
                    has no flag for it (use the in-process mode)";

/// Refuses what process mode cannot play; `Ok` means every part of `scenario` will run.
pub fn check(scenario: &Scenario) -> Result<(), Unsupported> {
    let refuse = |field: String, reason: &'static str| Err(Unsupported::Feature { field, reason });
    let n = &scenario.network;
    if n.nodes > MAX_PROCESS_NODES {
        return Err(Unsupported::TooManyNodes {
            nodes: n.nodes,
            max: MAX_PROCESS_NODES,
        });
    }
    if n.transport == Transport::Memory {
        return refuse(
            "network.transport".into(),
            "the in-memory transport exists only inside one process; processes use tcp",
        );
    }
    if n.link != LinkSpec::default() {
        return refuse("network.link".into(), LINK);
    }
    if n.peer_connections.is_some() {
        return refuse(
            "network.peer_connections".into(),
            "micro-node has no flag for a peer's connection cap",
        );
    }
    if scenario.ledger.is_some() {
        return refuse(
            "ledger".into(),
            "ledger finality and convergence are read from each node's ledger state \
             in-process; the control API does not expose it",
        );
    }
    for (i, topic) in scenario.topics.iter().enumerate() {
        if topic.kind == TopicKind::Events {
            return refuse(
                format!("topics[{i}].kind"),
                "event-stream topics are not driven through the control API in process mode \
                 (broker topics are)",
            );
        }
    }
    for (i, load) in scenario.load.iter().enumerate() {
        if load.kind == LoadKind::Transfer {
            return refuse(
                format!("load[{i}].kind"),
                "transfers need the ledger, which process mode does not measure",
            );
        }
    }
    for (i, fault) in scenario.faults.iter().enumerate() {
        match fault {
            Fault::Partition { .. } => {
                return refuse(
                    format!("faults[{i}].kind"),
                    "a partition blocks peers inside each node's swarm; the control API has \
                     no route for it",
                );
            }
            Fault::Degrade { .. } => return refuse(format!("faults[{i}].kind"), LINK),
            Fault::Churn { .. } | Fault::ProviderCrash { .. } | Fault::SuperLoss { .. } => {}
        }
    }
    for (i, adversary) in scenario.adversaries.iter().enumerate() {
        let reason = match adversary {
            Adversary::WrongAnswers { .. } => continue,
            Adversary::ForgeRecords { .. } => {
                "forged records are signed and gossiped with keys inside this process; a \
                 micro-node process cannot be told to forge"
            }
            Adversary::Spam { .. } => {
                "malformed broker messages are published on the raw gossip topic in-process; \
                 the control API only publishes well-formed ones"
            }
            Adversary::Equivocate { .. } => "equivocation needs the ledger",
        };
        return refuse(format!("adversaries[{i}].kind"), reason);
    }
    let e = &scenario.expect;
    if e.ledger_converged.is_some() {
        return refuse(
            "expect.ledger_converged".into(),
            "process mode does not read ledgers",
        );
    }
    if e.equivocators_frozen.is_some() {
        return refuse(
            "expect.equivocators_frozen".into(),
            "process mode does not read ledgers",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::ScenarioError;

    const BASE: &str = r#"
name = "p"
duration_s = 10

[network]
nodes = 8
supers = 2
mode = "processes"

[[services]]
name = "echo"
providers = 2

[[topics]]
name = "news"

[[load]]
kind = "call"
service = "echo"
rate_per_s = 2

[[faults]]
kind = "churn"
rate_per_min = 0.2
"#;

    /// The field and reason `text` is refused with, and its line.
    fn refused(text: &str) -> (usize, String, String) {
        match Scenario::parse(text, Path::new("p.toml")) {
            Err(ScenarioError::Invalid {
                line,
                field,
                reason,
                ..
            }) => (line, field, reason),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_scenario_within_reach_is_accepted() {
        let s = Scenario::parse(BASE, Path::new("p.toml")).expect("accepted");
        assert_eq!(s.network.mode, crate::scenario::Mode::Processes);
        assert_eq!(check(&s), Ok(()));
    }

    #[test]
    fn too_many_nodes_are_refused_saying_why() {
        let (line, field, reason) = refused(&BASE.replace("nodes = 8", "nodes = 65"));
        assert_eq!((line, field.as_str()), (6, "network.nodes"));
        assert!(reason.contains("more than 64"), "{reason}");
        assert!(reason.contains("in-process mode"), "{reason}");
    }

    #[test]
    fn features_needing_in_process_access_are_refused_by_field() {
        let cases = [
            (
                "transport = \"memory\"\nmode = \"processes\"",
                "network.transport",
            ),
            (
                "mode = \"processes\"\npeer_connections = 8",
                "network.peer_connections",
            ),
            (
                "mode = \"processes\"\n[network.link]\nlatency_ms = 5",
                "network.link",
            ),
        ];
        for (network, field) in cases {
            let text = BASE.replace("mode = \"processes\"", network);
            assert_eq!(refused(&text).1, field, "{network}");
        }
        let extra = [
            (
                "[[faults]]\nkind = \"partition\"\nfraction = 0.25\nstart_s = 1\nend_s = 2\n",
                "faults[1].kind",
            ),
            (
                "[[faults]]\nkind = \"degrade\"\nlatency_ms = 5\nstart_s = 1\nend_s = 2\n",
                "faults[1].kind",
            ),
            ("[ledger]\naccounts = 4\n", "ledger"),
            (
                "[[adversaries]]\nkind = \"spam\"\ncount = 1\ntopic = \"news\"\n",
                "adversaries[0].kind",
            ),
            (
                "[[adversaries]]\nkind = \"forge-records\"\ncount = 1\n",
                "adversaries[0].kind",
            ),
            (
                "[[topics]]\nname = \"log\"\nkind = \"events\"\n",
                "topics[1].kind",
            ),
            (
                "[expect]\nledger_converged = true\n",
                "expect.ledger_converged",
            ),
        ];
        for (toml, field) in extra {
            let (line, got, reason) = refused(&format!("{BASE}\n{toml}"));
            assert_eq!(got, field, "{toml}: {reason}");
            assert!(line > 1, "{field} is located in the file");
        }
    }

    #[test]
    fn wrong_answers_need_no_inside_access() {
        let text = format!(
            "{BASE}\n[[adversaries]]\nkind = \"wrong-answers\"\ncount = 1\nservice = \"echo\"\n"
        );
        assert!(Scenario::parse(&text, Path::new("p.toml")).is_ok());
    }

    #[test]
    fn the_same_scenario_in_process_is_not_checked() {
        let text = BASE.replace("mode = \"processes\"", "transport = \"memory\"");
        assert!(Scenario::parse(&text, Path::new("p.toml")).is_ok());
    }
}
