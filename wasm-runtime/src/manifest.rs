//! `micro.toml`: what a service says about itself — name, version, endpoints, subscriptions,
//! limits, configuration and price.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{CallLimits, RuntimeConfig};

/// Most endpoints one manifest declares.
pub const MAX_ENDPOINTS: usize = 256;
/// Most subscriptions one manifest declares.
pub const MAX_SUBSCRIPTIONS: usize = 16;
/// Most configuration entries.
pub const MAX_CONFIG_ENTRIES: usize = 64;
/// Longest configuration value, in bytes.
pub const MAX_CONFIG_VALUE: usize = 4096;
/// Largest manifest text, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
/// Longest version string.
pub const MAX_VERSION_LEN: usize = 64;
/// What `[build] language` may say.
pub const LANGUAGES: [&str; 5] = ["rust", "wasm", "wat", "javascript", "python"];

/// A service's manifest, as read from `micro.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The service's name on the network.
    pub name: String,
    /// Its version (free text: semver, a tag, a commit).
    #[serde(default = "default_version")]
    pub version: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Its endpoints; none declared = any endpoint reaches the handler.
    #[serde(default)]
    pub endpoints: Vec<EndpointSpec>,
    /// Topics whose messages are handed to `on-message`.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    /// Per-call limits, within the node's own.
    #[serde(default)]
    pub limits: ManifestLimits,
    /// Values the service reads with `config(key)`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Tokens a caller pays per call (used by the economy; 0 = free).
    #[serde(default)]
    pub price: u64,
    /// How to build the service from source, when detection is not enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSpec>,
}

/// `[build]`: how a source tree becomes a component.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// `rust`, `wasm` (a prebuilt component in the tree), `wat`, `javascript` or `python`.
    pub language: Option<String>,
    /// For `wasm`/`wat`: the file; for `rust`: the package to build in a workspace; for
    /// `javascript`/`python`: the entry file.
    pub path: Option<String>,
}

fn default_version() -> String {
    "0.0.0".to_owned()
}

/// One endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// Its name, e.g. `Say.Hello`.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
}

/// A topic the service listens to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// The topic's name.
    pub topic: String,
    /// Broker (best effort) or events (stored, ordered).
    #[serde(default)]
    pub source: Source,
}

/// Where subscribed messages come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The broker.
    #[default]
    Broker,
    /// An event stream.
    Events,
}

/// Limits a manifest may ask for; each is capped by the node's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestLimits {
    /// Wall time per call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Linear memory per instance, in MiB.
    pub memory_mb: Option<u64>,
    /// Fuel (instructions) per call.
    pub fuel: Option<u64>,
    /// Calls at once.
    pub max_concurrent: Option<u32>,
    /// Largest response, in KiB.
    pub max_response_kb: Option<u64>,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not valid TOML, or a field of the wrong type or name (the message has line and field).
    #[error("micro.toml: {0}")]
    Syntax(String),
    /// A field's value breaks a rule.
    #[error("micro.toml: field `{field}`: {reason}")]
    Invalid {
        /// The field, e.g. `endpoints[2].name`.
        field: String,
        /// The rule it breaks.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Manifest {
    /// A manifest with only a name and version: every endpoint reaches the handler.
    pub fn minimal(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            endpoints: Vec::new(),
            subscriptions: Vec::new(),
            limits: ManifestLimits::default(),
            config: BTreeMap::new(),
            price: 0,
            build: None,
        }
    }

    /// Parses and checks `micro.toml` text.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::Syntax(format!(
                "{} bytes, more than the {MAX_MANIFEST_BYTES} allowed",
                text.len()
            )));
        }
        let manifest: Self =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks every rule a parsed (or deserialized) manifest must follow.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.chars().enumerate().all(|(i, c)| {
                c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || (i > 0 && matches!(c, '.' | '_' | '-'))
            });
        if !name_ok {
            return Err(invalid(
                "name",
                format!(
                    "`{}` is not a service name: 1 to 64 of [a-z0-9._-], starting with [a-z0-9]",
                    self.name.escape_debug()
                ),
            ));
        }
        if self.version.is_empty()
            || self.version.len() > MAX_VERSION_LEN
            || self.version.chars().any(|c| c.is_control() || c == '@')
        {
            return Err(invalid(
                "version",
                format!("1 to {MAX_VERSION_LEN} printable characters, no `@`"),
            ));
        }
        if self.endpoints.len() > MAX_ENDPOINTS {
            return Err(invalid("endpoints", format!("at most {MAX_ENDPOINTS}")));
        }
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            let ok = !endpoint.name.is_empty()
                && endpoint.name.len() <= 128
                && endpoint
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(invalid(
                    format!("endpoints[{i}].name"),
                    "1 to 128 characters of [A-Za-z0-9_.-]",
                ));
            }
        }
        if self.subscriptions.len() > MAX_SUBSCRIPTIONS {
            return Err(invalid(
                "subscriptions",
                format!("at most {MAX_SUBSCRIPTIONS}"),
            ));
        }
        for (i, sub) in self.subscriptions.iter().enumerate() {
            if sub.topic.is_empty() || sub.topic.len() > 128 {
                return Err(invalid(
                    format!("subscriptions[{i}].topic"),
                    "1 to 128 characters",
                ));
            }
        }
        if self.config.len() > MAX_CONFIG_ENTRIES {
            return Err(invalid(
                "config",
                format!("at most {MAX_CONFIG_ENTRIES} entries"),
            ));
        }
        if let Some((key, _)) = self.config.iter().find(|(_, v)| v.len() > MAX_CONFIG_VALUE) {
            return Err(invalid(
                format!("config.{key}"),
                format!("at most {MAX_CONFIG_VALUE} bytes"),
            ));
        }
        if let Some(build) = &self.build {
            if let Some(language) = &build.language
                && !LANGUAGES.contains(&language.as_str())
            {
                return Err(invalid(
                    "build.language",
                    format!("`{language}` is not one of {}", LANGUAGES.join(", ")),
                ));
            }
            if let Some(path) = &build.path
                && (path.is_empty()
                    || path.starts_with('/')
                    || path.split(['/', '\\']).any(|part| part == ".."))
            {
                return Err(invalid(
                    "build.path",
                    "a relative path inside the repository, without `..`",
                ));
            }
        }
        let l = &self.limits;
        for (field, value) in [
            ("limits.timeout_ms", l.timeout_ms),
            ("limits.memory_mb", l.memory_mb),
            ("limits.fuel", l.fuel),
            ("limits.max_concurrent", l.max_concurrent.map(u64::from)),
            ("limits.max_response_kb", l.max_response_kb),
        ] {
            if value == Some(0) {
                return Err(invalid(field, "must be greater than 0"));
            }
        }
        Ok(())
    }

    /// The limits calls of this service run under: the manifest's where given, the node's
    /// defaults elsewhere, never above the node's caps.
    pub fn call_limits(&self, config: &RuntimeConfig) -> CallLimits {
        let d = config.default_limits;
        let l = &self.limits;
        let mib = |mb: u64| usize::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        let kib = |kb: u64| usize::try_from(kb.saturating_mul(1024)).unwrap_or(usize::MAX);
        CallLimits {
            timeout: l
                .timeout_ms
                .map_or(d.timeout, Duration::from_millis)
                .min(d.timeout.max(Duration::from_secs(60))),
            memory_bytes: l
                .memory_mb
                .map_or(d.memory_bytes, mib)
                .min(config.max_memory_bytes),
            fuel: l.fuel.unwrap_or(d.fuel).min(d.fuel.saturating_mul(10)),
            max_response_bytes: l
                .max_response_kb
                .map_or(d.max_response_bytes, kib)
                .min(d.max_response_bytes.saturating_mul(4)),
            max_concurrent: l
                .max_concurrent
                .unwrap_or(d.max_concurrent)
                .min(config.max_instances),
            max_table_elements: d.max_table_elements,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREETER: &str = r#"
name = "greeter"
version = "0.1.0"
description = "Says hello."

[[endpoints]]
name = "Say.Hello"
description = "Greets {name}."

[[subscriptions]]
topic = "orders"

[limits]
timeout_ms = 5000
memory_mb = 32

[config]
greeting = "Hi"
"#;

    #[test]
    fn parses_a_full_manifest() {
        let m = Manifest::parse(GREETER).expect("valid");
        assert_eq!(m.name, "greeter");
        assert_eq!(m.endpoints[0].name, "Say.Hello");
        assert_eq!(m.subscriptions[0].source, Source::Broker);
        assert_eq!(m.config["greeting"], "Hi");
        let limits = m.call_limits(&RuntimeConfig::new("/tmp/x"));
        assert_eq!(limits.timeout, Duration::from_secs(5));
        assert_eq!(limits.memory_bytes, 32 * 1024 * 1024);
    }

    #[test]
    fn a_syntax_error_names_the_line_and_field() {
        let text = "name = \"greeter\"\nversion = \"1\"\n[limits]\nmemory_mb = \"lots\"\n";
        let err = Manifest::parse(text).expect_err("memory_mb is a string");
        let msg = err.to_string();
        assert!(msg.contains("line 4"), "{msg}");
        assert!(msg.contains("memory_mb"), "{msg}");
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = Manifest::parse("name = \"a\"\ncolour = \"red\"\n").expect_err("unknown field");
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = Manifest::parse("name = \"Bad Name\"\n").expect_err("bad name");
        assert!(err.to_string().contains("field `name`"), "{err}");
        let err = Manifest::parse("name = \"a\"\n[[endpoints]]\nname = \"x y\"\n")
            .expect_err("bad endpoint");
        assert!(err.to_string().contains("endpoints[0].name"), "{err}");
        let err = Manifest::parse("name = \"a\"\n[limits]\nfuel = 0\n").expect_err("zero fuel");
        assert!(err.to_string().contains("limits.fuel"), "{err}");
    }

    #[test]
    fn build_sections_are_checked() {
        let m =
            Manifest::parse("name = \"a\"\n[build]\nlanguage = \"rust\"\npath = \"crates/a\"\n")
                .expect("valid");
        assert_eq!(m.build.and_then(|b| b.path).as_deref(), Some("crates/a"));
        let err = Manifest::parse("name = \"a\"\n[build]\nlanguage = \"cobol\"\n")
            .expect_err("unknown language");
        assert!(err.to_string().contains("build.language"), "{err}");
        let err = Manifest::parse("name = \"a\"\n[build]\npath = \"../../etc\"\n")
            .expect_err("escaping path");
        assert!(err.to_string().contains("build.path"), "{err}");
    }

    #[test]
    fn manifest_limits_never_exceed_the_node_caps() {
        let mut m = Manifest::minimal("a", "1");
        m.limits.memory_mb = Some(1 << 40);
        m.limits.max_concurrent = Some(u32::MAX);
        let config = RuntimeConfig::new("/tmp/x");
        let limits = m.call_limits(&config);
        assert_eq!(limits.memory_bytes, config.max_memory_bytes);
        assert_eq!(limits.max_concurrent, config.max_instances);
    }
}
