//! Micro's auth model for the gateway: rules allow or deny a resource (a service and an
//! endpoint, each a name or a `prefix*` pattern) with a priority. A token's scopes become allow
//! rules at priority 0; the node's config adds its own rules. [`decide`] is the whole policy.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest [`Pattern`] in characters: an endpoint name (128) and the `*`.
pub const MAX_PATTERN_CHARS: usize = 129;

/// Why a pattern, scope or rule does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A pattern broke the rule quoted in the message.
    #[error(
        "pattern {0:?}: a pattern is 1 to 129 characters of [A-Za-z0-9._-], optionally ending in \
         `*` (any suffix); `*` alone matches everything"
    )]
    BadPattern(String),
    /// A rule is not `allow|deny:SERVICE/ENDPOINT[:PRIORITY]`.
    #[error("rule {0:?}: write allow|deny:SERVICE/ENDPOINT[:PRIORITY], e.g. deny:*/Node.Deploy:10")]
    BadRule(String),
}

/// A service or endpoint name, or a prefix of one followed by `*`. Matching is exact
/// (case-sensitive) without the `*`, by prefix with it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern(String);

impl Pattern {
    /// `*`: matches every name.
    pub fn any() -> Self {
        Self("*".to_owned())
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => self.0 == name,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Pattern {
    type Error = RuleError;

    fn try_from(s: String) -> Result<Self, RuleError> {
        let body = s.strip_suffix('*').unwrap_or(&s);
        let valid = !s.is_empty()
            && s.chars().count() <= MAX_PATTERN_CHARS
            && body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if valid {
            Ok(Self(s))
        } else {
            Err(RuleError::BadPattern(s.chars().take(80).collect()))
        }
    }
}

impl FromStr for Pattern {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, RuleError> {
        Self::try_from(s.to_owned())
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> Self {
        p.0
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A resource: which services and which of their endpoints. Written `SERVICE/ENDPOINT`
/// (`SERVICE` alone means every endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope {
    /// The services.
    pub service: Pattern,
    /// Their endpoints.
    pub endpoint: Pattern,
}

impl Scope {
    /// Whether this scope covers `endpoint` of `service`.
    pub fn covers(&self, service: &str, endpoint: &str) -> bool {
        self.service.matches(service) && self.endpoint.matches(endpoint)
    }
}

impl FromStr for Scope {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, RuleError> {
        let (service, endpoint) = s.split_once('/').unwrap_or((s, "*"));
        Ok(Self {
            service: service.parse()?,
            endpoint: endpoint.parse()?,
        })
    }
}

impl TryFrom<String> for Scope {
    type Error = RuleError;

    fn try_from(s: String) -> Result<Self, RuleError> {
        s.parse()
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> Self {
        s.to_string()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.service, self.endpoint)
    }
}

/// What a rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// The call may go ahead.
    Allow,
    /// The call is refused.
    Deny,
}

/// One rule: `access` to `resource`, weighed by `priority` (higher first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Allow or deny.
    pub access: Access,
    /// What it is about.
    pub resource: Scope,
    /// Higher wins; at equal priority a deny wins.
    pub priority: i32,
}

impl Rule {
    /// The allow rule a token scope stands for: priority 0.
    pub fn allow(resource: Scope) -> Self {
        Self {
            access: Access::Allow,
            resource,
            priority: 0,
        }
    }
}

impl FromStr for Rule {
    type Err = RuleError;

    /// `allow|deny:SERVICE/ENDPOINT[:PRIORITY]`, e.g. `deny:*/Node.Deploy:10`.
    fn from_str(s: &str) -> Result<Self, RuleError> {
        let bad = || RuleError::BadRule(s.chars().take(80).collect());
        let mut parts = s.split(':');
        let access = match parts.next() {
            Some("allow") => Access::Allow,
            Some("deny") => Access::Deny,
            _ => return Err(bad()),
        };
        let resource = parts.next().ok_or_else(bad)?.parse()?;
        let priority = match parts.next() {
            None => 0,
            Some(p) => p.parse().map_err(|_| bad())?,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self {
            access,
            resource,
            priority,
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = match self.access {
            Access::Allow => "allow",
            Access::Deny => "deny",
        };
        write!(f, "{access}:{}:{}", self.resource, self.priority)
    }
}

/// The rule that decides a call of `endpoint` of `service`: among the rules that match, the
/// one of highest priority, a deny winning ties. `None` when no rule matches: the call is
/// then refused (default deny). Pure: the order of `rules` does not matter except between
/// identical rules.
pub fn decide<'a>(
    rules: impl IntoIterator<Item = &'a Rule>,
    service: &str,
    endpoint: &str,
) -> Option<&'a Rule> {
    let mut best: Option<&Rule> = None;
    for rule in rules {
        if !rule.resource.covers(service, endpoint) {
            continue;
        }
        let better = match best {
            None => true,
            Some(b) => {
                rule.priority > b.priority
                    || (rule.priority == b.priority
                        && rule.access == Access::Deny
                        && b.access == Access::Allow)
            }
        };
        if better {
            best = Some(rule);
        }
    }
    best
}

/// Whether `rules` allow the call.
pub fn allows<'a>(
    rules: impl IntoIterator<Item = &'a Rule>,
    service: &str,
    endpoint: &str,
) -> bool {
    decide(rules, service, endpoint).is_some_and(|r| r.access == Access::Allow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(s: &str) -> Rule {
        s.parse().unwrap()
    }

    #[test]
    fn patterns_match_exactly_or_by_prefix() {
        let say: Pattern = "Say.*".parse().unwrap();
        assert!(say.matches("Say.Hello") && say.matches("Say."));
        assert!(!say.matches("Shout.Hello") && !say.matches("say.Hello"));
        let exact: Pattern = "greeter".parse().unwrap();
        assert!(exact.matches("greeter") && !exact.matches("greeter2"));
        assert!(Pattern::any().matches("anything"));
        for bad in ["", "a*b", "**", "a/b", "x y", &"a".repeat(130)] {
            assert!(bad.parse::<Pattern>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_and_rules_round_trip_as_text() {
        let scope: Scope = "greeter".parse().unwrap();
        assert_eq!(scope.to_string(), "greeter/*");
        let r = rule("deny:*/Node.Deploy:10");
        assert_eq!(r.access, Access::Deny);
        assert_eq!(r.priority, 10);
        assert_eq!(rule(&r.to_string()), r);
        assert_eq!(rule("allow:counter/Get").priority, 0);
        for bad in ["", "maybe:a/b", "deny", "deny:a/b:high", "deny:a/b:1:2"] {
            assert!(bad.parse::<Rule>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nothing_matching_is_denied() {
        let rules = [rule("allow:greeter/Say.*")];
        assert!(allows(&rules, "greeter", "Say.Hello"));
        assert!(!allows(&rules, "greeter", "Admin.Reset"));
        assert!(!allows(&rules, "counter", "Say.Hello"));
        assert!(!allows(&[], "greeter", "Say.Hello"));
    }

    #[test]
    fn higher_priority_wins_and_deny_wins_ties() {
        let token = Rule::allow("greeter".parse().unwrap());
        let deny_admin = rule("deny:greeter/Admin.*:0");
        let rules = [token.clone(), deny_admin.clone()];
        assert!(!allows(&rules, "greeter", "Admin.Reset"), "deny wins a tie");
        assert!(allows(&rules, "greeter", "Say.Hello"));
        // Order does not matter.
        let reversed = [deny_admin, token.clone()];
        assert!(!allows(&reversed, "greeter", "Admin.Reset"));
        // A higher-priority allow beats a lower deny, and a higher deny beats any allow.
        let rules = [
            token.clone(),
            rule("deny:*/*:5"),
            rule("allow:greeter/Say.Hello:7"),
        ];
        assert!(allows(&rules, "greeter", "Say.Hello"));
        assert!(!allows(&rules, "greeter", "Say.Other"));
        let decided = decide(&rules, "greeter", "Say.Other").unwrap();
        assert_eq!(decided.priority, 5);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in ".{0,200}") {
            let _ = s.parse::<Rule>();
            let _ = s.parse::<Scope>();
        }

        #[test]
        fn a_deny_at_the_top_priority_always_wins(
            priorities in proptest::collection::vec(-5i32..5, 1..8),
        ) {
            let top = *priorities.iter().max().unwrap();
            let mut rules: Vec<Rule> = priorities
                .iter()
                .map(|p| Rule { priority: *p, ..rule("allow:*/*") })
                .collect();
            rules.push(Rule { priority: top, ..rule("deny:svc/*") });
            prop_assert!(!allows(&rules, "svc", "E"));
            prop_assert!(allows(&rules, "other", "E"));
        }
    }
}
