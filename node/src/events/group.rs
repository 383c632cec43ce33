//! Consumer group names, checked once at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest consumer group name.
pub const MAX_GROUP_LEN: usize = 64;

/// A consumer group: 1–64 characters of `[A-Za-z0-9._-]`.
///
/// Groups are node-local: each remembers how far through one topic's log its consumers got.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

/// Why a consumer group name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consumer group `{0}` must be 1 to 64 characters of letters, digits, `.`, `_` and `-`")]
pub struct GroupNameError(String);

impl GroupName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GroupName {
    type Error = GroupNameError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        let ok = !s.is_empty()
            && s.len() <= MAX_GROUP_LEN
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s))
        } else {
            Err(GroupNameError(s.chars().take(80).collect()))
        }
    }
}

impl FromStr for GroupName {
    type Err = GroupNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<GroupName> for String {
    fn from(g: GroupName) -> Self {
        g.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn good_and_bad_names() {
        for good in ["billing", "a", "workers.v2", "x_y-z"] {
            assert!(good.parse::<GroupName>().is_ok(), "{good}");
        }
        for bad in ["", "a/b", "a b", "é", "a\0b", &"x".repeat(65)] {
            assert!(bad.parse::<GroupName>().is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_accepted_names_round_trip(s in ".{0,70}") {
            if let Ok(g) = s.parse::<GroupName>() {
                prop_assert_eq!(g.to_string(), s);
            }
        }
    }
}
