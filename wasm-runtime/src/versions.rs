//! The versions of one service that run side by side: the current one takes every call that
//! names no version (and every message); older ones answer only calls that pin them, until
//! newer deploys push them out.

use std::sync::Arc;

use crate::service::Deployment;

/// Shortest prefix of a version that pins it: short commit hashes (`9f3c2e1`) are seven.
const MIN_PREFIX: usize = 7;

/// Whether `pin` (from `service@pin`) names `version`: the same text, or a prefix of at least
/// seven hex digits of it, so `greeter@9f3c2e1` pins the commit `9f3c2e1d…`. Shorter prefixes
/// do not match: `1` must not pin `1.2.0`.
pub fn version_matches(version: &str, pin: &str) -> bool {
    version == pin
        || (pin.len() >= MIN_PREFIX
            && pin.bytes().all(|b| b.is_ascii_hexdigit())
            && version.starts_with(pin))
}

/// One service's running versions.
pub(crate) struct Versions {
    /// Takes unpinned calls and messages.
    pub(crate) current: Arc<Deployment>,
    /// Newest first; answer pinned calls only.
    pub(crate) older: Vec<Arc<Deployment>>,
}

/// What installing a version did to the others.
pub(crate) struct Installed {
    /// The version that was current before, if any.
    pub(crate) replaced: Option<String>,
    /// Deployments no longer running (pushed out, or the same version redeployed).
    pub(crate) dropped: Vec<Arc<Deployment>>,
}

impl Versions {
    /// A service whose only version is `current`.
    pub(crate) fn new(current: Arc<Deployment>) -> Self {
        Self {
            current,
            older: Vec::new(),
        }
    }

    /// Makes `new` current. The previous current version joins the older ones unless `new`
    /// has the same version (a redeploy replaces it); an older deployment of `new`'s version
    /// is replaced; at most `keep` older versions stay.
    pub(crate) fn install(&mut self, new: Arc<Deployment>, keep: usize) -> Installed {
        let version = new.manifest.version.clone();
        let previous = std::mem::replace(&mut self.current, new);
        let replaced = Some(previous.manifest.version.clone());
        let mut dropped = Vec::new();
        let (same, others): (Vec<_>, Vec<_>) = self
            .older
            .drain(..)
            .partition(|d| d.manifest.version == version);
        dropped.extend(same);
        self.older = others;
        if previous.manifest.version == version {
            dropped.push(previous);
        } else {
            self.older.insert(0, previous);
        }
        if self.older.len() > keep {
            dropped.extend(self.older.drain(keep..));
        }
        Installed { replaced, dropped }
    }

    /// The deployment answering a call pinned to `pin`, or the current one without a pin.
    pub(crate) fn pick(&self, pin: Option<&str>) -> Option<&Arc<Deployment>> {
        match pin {
            None => Some(&self.current),
            Some(pin) => self
                .all()
                .find(|d| version_matches(&d.manifest.version, pin)),
        }
    }

    /// Current first, then older, newest first.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Deployment>> {
        std::iter::once(&self.current).chain(&self.older)
    }

    /// Stops the version `pin` names. If it was current, the newest older version becomes
    /// current. Returns the stopped deployment and whether any version is left.
    pub(crate) fn remove(&mut self, pin: &str) -> Option<(Arc<Deployment>, bool)> {
        if version_matches(&self.current.manifest.version, pin) {
            if self.older.is_empty() {
                return Some((self.current.clone(), false));
            }
            let next = self.older.remove(0);
            return Some((std::mem::replace(&mut self.current, next), true));
        }
        let at = self
            .older
            .iter()
            .position(|d| version_matches(&d.manifest.version, pin))?;
        Some((self.older.remove(at), true))
    }
}

#[cfg(test)]
mod tests {
    use super::version_matches;

    #[test]
    fn pins_match_whole_versions_and_long_hex_prefixes() {
        let commit = "9f3c2e1d0a4b5c6d7e8f9f3c2e1d0a4b5c6d7e8f";
        assert!(version_matches(commit, commit));
        assert!(version_matches(commit, "9f3c2e1"));
        assert!(!version_matches(commit, "9f3c2e"), "six digits are too few");
        assert!(!version_matches(commit, "9f3c2e2"));
        assert!(version_matches("1.2.0", "1.2.0"));
        assert!(!version_matches("1.2.0", "1"));
        assert!(!version_matches("1.2.0", "1.2"));
        assert!(!version_matches("abcdefgh-rc", "abcdefgh"), "not hex");
    }
}
