//! The role a node plays, and how it is advertised to other nodes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Prefix of the identify agent version every Micro node sends.
pub const AGENT_PREFIX: &str = "micro-node/";

/// What a node is for in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A peer node: runs services and joins through super nodes.
    Peer,
    /// A super node: reachable backbone that others bootstrap from; Kademlia server.
    Super,
}

impl Role {
    /// The identify agent version that advertises this role, e.g. `micro-node/0.1.0 (super)`.
    pub fn agent_version(self) -> String {
        format!("{AGENT_PREFIX}{} ({self})", env!("CARGO_PKG_VERSION"))
    }

    /// Reads the role from an identify agent version. `None` for agents that are not Micro
    /// nodes or do not say.
    pub fn from_agent_version(agent: &str) -> Option<Role> {
        let rest = agent.strip_prefix(AGENT_PREFIX)?;
        let open = rest.rfind('(')?;
        let role = rest[open + 1..].strip_suffix(')')?;
        role.parse().ok()
    }

    pub(crate) fn to_wire(self) -> i32 {
        match self {
            Role::Peer => crate::proto::Role::Peer as i32,
            Role::Super => crate::proto::Role::Super as i32,
        }
    }

    pub(crate) fn from_wire(value: i32) -> Option<Role> {
        match crate::proto::Role::try_from(value).ok()? {
            crate::proto::Role::Peer => Some(Role::Peer),
            crate::proto::Role::Super => Some(Role::Super),
            crate::proto::Role::Unspecified => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Peer => "peer",
            Role::Super => "super",
        })
    }
}

/// A role name that is neither `peer` nor `super`.
#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}` (expected `peer` or `super`)")]
pub struct UnknownRole(String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "peer" => Ok(Role::Peer),
            "super" => Ok(Role::Super),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_version_round_trips_the_role() {
        for role in [Role::Peer, Role::Super] {
            assert_eq!(Role::from_agent_version(&role.agent_version()), Some(role));
        }
    }

    #[test]
    fn foreign_agents_have_no_role() {
        assert_eq!(Role::from_agent_version("rust-libp2p/0.57"), None);
        assert_eq!(Role::from_agent_version("micro-node/0.1.0"), None);
        assert_eq!(Role::from_agent_version("micro-node/0.1.0 (admin)"), None);
    }
}
