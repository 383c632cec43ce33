//! Topic names, checked once at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest topic name.
pub const MAX_TOPIC_LEN: usize = 128;

/// A broker or events topic: 1–128 characters of `[A-Za-z0-9._-]`, and `/` inside (not at
/// either end, never doubled).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TopicName(String);

/// Why a topic name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Empty or too long.
    #[error("topic `{0}` must be 1 to 128 characters long")]
    Length(String),
    /// A character outside the allowed set, or a misplaced `/`.
    #[error("topic `{0}` may only use letters, digits, `.`, `_`, `-` and single inner `/`")]
    Charset(String),
}

impl TopicName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TopicName {
    type Error = TopicError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.is_empty() || s.len() > MAX_TOPIC_LEN {
            return Err(TopicError::Length(s));
        }
        let allowed = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
        if !allowed || s.starts_with('/') || s.ends_with('/') || s.contains("//") {
            return Err(TopicError::Charset(s));
        }
        Ok(Self(s))
    }
}

impl FromStr for TopicName {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<TopicName> for String {
    fn from(t: TopicName) -> Self {
        t.0
    }
}

impl fmt::Display for TopicName {
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
        for good in ["orders", "a", "billing.v1", "shop/orders", "x_y-z.1"] {
            assert!(good.parse::<TopicName>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "/x",
            "x/",
            "a//b",
            "héllo",
            "a b",
            "a\nb",
            &"x".repeat(129),
        ] {
            assert!(bad.parse::<TopicName>().is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_accepted_names_round_trip(s in ".{0,140}") {
            if let Ok(topic) = s.parse::<TopicName>() {
                prop_assert_eq!(topic.to_string(), s);
            }
        }
    }
}
