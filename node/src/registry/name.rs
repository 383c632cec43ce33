//! Service and endpoint names: validated once where they enter the node, trusted inside.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest [`ServiceName`], in characters.
pub const MAX_SERVICE_NAME_LEN: usize = 64;
/// The longest [`EndpointName`], in characters.
pub const MAX_ENDPOINT_NAME_LEN: usize = 128;
/// The longest version pin in a [`ServiceRef`], in characters.
pub const MAX_VERSION_PIN_LEN: usize = 128;

/// How much of a rejected input an error message quotes, in characters.
const QUOTE_LEN: usize = 80;

const SERVICE_RULE: &str = "a service name is 1 to 64 characters, the first one of [a-z0-9], \
                            the rest of [a-z0-9._-]";
const ENDPOINT_RULE: &str = "an endpoint name is 1 to 128 characters of [A-Za-z0-9_.-]";
const VERSION_RULE: &str =
    "a version after `@` is 1 to 128 characters of [A-Za-z0-9_.+-], e.g. 1.2.0 or 9f3c2e1";

/// Why a string is not a valid [`ServiceName`] or [`EndpointName`].
///
/// Each variant quotes the rule and (the first 80 characters of) the rejected input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The input is empty.
    #[error("empty name: {rule}")]
    Empty {
        /// The rule the input broke.
        rule: &'static str,
    },
    /// The input has more characters than allowed.
    #[error("name {input:?} is {len} characters long: {rule}")]
    TooLong {
        /// The start of the rejected input.
        input: String,
        /// Its length in characters.
        len: usize,
        /// The rule the input broke.
        rule: &'static str,
    },
    /// The input holds a character that is not allowed where it stands.
    #[error("name {input:?} has {found:?} at position {position}: {rule}")]
    BadChar {
        /// The start of the rejected input.
        input: String,
        /// The offending character.
        found: char,
        /// Its position, counted in characters from 0.
        position: usize,
        /// The rule the input broke.
        rule: &'static str,
    },
}

/// The first [`QUOTE_LEN`] characters of `input`, so an error never carries a huge string.
fn quote(input: &str) -> String {
    match input.char_indices().nth(QUOTE_LEN) {
        Some((end, _)) => format!("{}…", &input[..end]),
        None => input.to_owned(),
    }
}

/// Checks `input` against a length bound and a per-position character rule.
fn check(
    input: &str,
    max_len: usize,
    allowed: impl Fn(usize, char) -> bool,
    rule: &'static str,
) -> Result<(), NameError> {
    if input.is_empty() {
        return Err(NameError::Empty { rule });
    }
    let len = input.chars().count();
    if len > max_len {
        return Err(NameError::TooLong {
            input: quote(input),
            len,
            rule,
        });
    }
    match input.chars().enumerate().find(|&(i, c)| !allowed(i, c)) {
        Some((position, found)) => Err(NameError::BadChar {
            input: quote(input),
            found,
            position,
            rule,
        }),
        None => Ok(()),
    }
}

/// A service's name, e.g. `greeter` or `billing.v2`: 1 to 64 characters, the first one of
/// `[a-z0-9]`, the rest of `[a-z0-9._-]`.
///
/// Serialized (serde) as a plain string and validated when deserialized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceName(String);

impl ServiceName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServiceName {
    type Error = NameError;

    fn try_from(value: String) -> Result<Self, NameError> {
        check(
            &value,
            MAX_SERVICE_NAME_LEN,
            |i, c| {
                c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || (i > 0 && matches!(c, '.' | '_' | '-'))
            },
            SERVICE_RULE,
        )?;
        Ok(Self(value))
    }
}

impl FromStr for ServiceName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::try_from(s.to_owned())
    }
}

impl From<ServiceName> for String {
    fn from(name: ServiceName) -> Self {
        name.0
    }
}

impl AsRef<str> for ServiceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A service as callers name it: `greeter` (whatever version each provider runs now) or
/// `greeter@9f3c2e1` (that version only: the whole version or at least seven hex digits of
/// it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceRef {
    /// The service.
    pub name: ServiceName,
    /// The version pinned, if any.
    pub version: Option<String>,
}

impl FromStr for ServiceRef {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let Some((name, version)) = s.split_once('@') else {
            return Ok(Self {
                name: s.parse()?,
                version: None,
            });
        };
        check(
            version,
            MAX_VERSION_PIN_LEN,
            |_, c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'),
            VERSION_RULE,
        )?;
        Ok(Self {
            name: name.parse()?,
            version: Some(version.to_owned()),
        })
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

/// An endpoint's name in Micro style, e.g. `Say.Hello`: 1 to 128 characters of
/// `[A-Za-z0-9_.-]`.
///
/// Serialized (serde) as a plain string and validated when deserialized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EndpointName(String);

impl EndpointName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EndpointName {
    type Error = NameError;

    fn try_from(value: String) -> Result<Self, NameError> {
        check(
            &value,
            MAX_ENDPOINT_NAME_LEN,
            |_, c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
            ENDPOINT_RULE,
        )?;
        Ok(Self(value))
    }
}

impl FromStr for EndpointName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::try_from(s.to_owned())
    }
}

impl From<EndpointName> for String {
    fn from(name: EndpointName) -> Self {
        name.0
    }
}

impl AsRef<str> for EndpointName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EndpointName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn service_names_follow_the_rule() {
        for ok in [
            "a",
            "greeter",
            "billing.v2",
            "0day",
            "my_svc-1.2",
            &"a".repeat(64),
        ] {
            assert!(
                ok.parse::<ServiceName>().is_ok(),
                "{ok:?} should be accepted"
            );
        }
        for bad in [
            "",
            "Greeter",
            "-svc",
            ".svc",
            "_svc",
            "svc/1",
            "svc 1",
            "é",
            &"a".repeat(65),
        ] {
            assert!(
                bad.parse::<ServiceName>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn endpoint_names_follow_the_rule() {
        for ok in [
            "Say.Hello",
            "x",
            "_private",
            "-",
            "a.b_c-D9",
            &"A".repeat(128),
        ] {
            assert!(
                ok.parse::<EndpointName>().is_ok(),
                "{ok:?} should be accepted"
            );
        }
        for bad in ["", "Say Hello", "Say/Hello", "ü", &"A".repeat(129)] {
            assert!(
                bad.parse::<EndpointName>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn errors_name_the_rule_and_the_input() {
        let err = "Greeter".parse::<ServiceName>().unwrap_err();
        assert_eq!(
            err,
            NameError::BadChar {
                input: "Greeter".into(),
                found: 'G',
                position: 0,
                rule: SERVICE_RULE
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("\"Greeter\"") && msg.contains("[a-z0-9]"),
            "{msg}"
        );

        let long = "x".repeat(10_000);
        let msg = long.parse::<EndpointName>().unwrap_err().to_string();
        assert!(msg.contains("10000 characters") && msg.len() < 400, "{msg}");
    }

    #[test]
    fn serde_is_a_plain_string_validated_on_the_way_in() {
        let name: ServiceName = "greeter".parse().unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"greeter\"");
        assert_eq!(
            serde_json::from_str::<ServiceName>("\"greeter\"").unwrap(),
            name
        );
        assert!(serde_json::from_str::<ServiceName>("\"Bad Name\"").is_err());
        assert!(serde_json::from_str::<EndpointName>("\"Say Hello\"").is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in any::<String>()) {
            let _ = s.parse::<ServiceName>();
            let _ = s.parse::<EndpointName>();
        }

        #[test]
        fn accepted_service_names_round_trip(s in "[a-z0-9][a-z0-9._-]{0,63}") {
            let name = s.parse::<ServiceName>();
            prop_assert!(name.is_ok(), "{:?} refused: {:?}", s, name);
            let name = name.unwrap();
            prop_assert_eq!(name.to_string(), s);
            prop_assert_eq!(name.to_string().parse::<ServiceName>().unwrap(), name);
        }

        #[test]
        fn accepted_endpoint_names_round_trip(s in "[A-Za-z0-9_.-]{1,128}") {
            let name = s.parse::<EndpointName>();
            prop_assert!(name.is_ok(), "{:?} refused: {:?}", s, name);
            let name = name.unwrap();
            prop_assert_eq!(name.to_string(), s);
            prop_assert_eq!(name.to_string().parse::<EndpointName>().unwrap(), name);
        }

        #[test]
        fn whatever_is_accepted_round_trips(s in "[a-zA-Z0-9._ /-]{0,130}|.{0,10}") {
            if let Ok(name) = s.parse::<ServiceName>() {
                prop_assert_eq!(name.to_string().parse::<ServiceName>().unwrap(), name);
            }
            if let Ok(name) = s.parse::<EndpointName>() {
                prop_assert_eq!(name.to_string().parse::<EndpointName>().unwrap(), name);
            }
        }
    }

    #[test]
    fn service_refs_split_at_the_version_pin() {
        let plain: ServiceRef = "greeter".parse().unwrap();
        assert_eq!(plain.name.as_str(), "greeter");
        assert_eq!(plain.version, None);
        let pinned: ServiceRef = "greeter@9f3c2e1".parse().unwrap();
        assert_eq!(pinned.name.as_str(), "greeter");
        assert_eq!(pinned.version.as_deref(), Some("9f3c2e1"));
        assert_eq!(pinned.to_string(), "greeter@9f3c2e1");
        assert!("greeter@".parse::<ServiceRef>().is_err(), "empty pin");
        assert!(
            "greeter@1.0 beta".parse::<ServiceRef>().is_err(),
            "space in pin"
        );
        assert!("Greeter@1.0".parse::<ServiceRef>().is_err(), "bad name");
        assert!(
            format!("g@{}", "1".repeat(129))
                .parse::<ServiceRef>()
                .is_err()
        );
    }
}
