//! The control API's bearer credential: random per start, written 0600 into the data dir.

use std::fmt;

use rand::RngCore;

/// Length of the credential in random bytes (hex-encoded on disk and on the wire).
const CREDENTIAL_BYTES: usize = 32;

/// A bearer credential. Its `Debug` output hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    /// A fresh random credential.
    pub fn generate() -> Self {
        let mut bytes = [0u8; CREDENTIAL_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Wraps a credential read from disk or a flag.
    pub fn from_secret(secret: impl Into<String>) -> Self {
        Self(secret.into().trim().to_owned())
    }

    /// The secret, for the `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Compares in time independent of where the inputs differ.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_exact_secret() {
        let c = Credential::generate();
        assert_eq!(c.secret().len(), 2 * CREDENTIAL_BYTES);
        assert!(c.matches(c.secret()));
        assert!(!c.matches(""));
        assert!(!c.matches(&c.secret()[1..]));
        assert_ne!(c, Credential::generate());
        assert!(!format!("{c:?}").contains(c.secret()));
    }
}
