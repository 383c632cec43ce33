//! [`Account`]: who holds tokens — an ed25519 public key.

use ed25519_dalek::VerifyingKey;

use crate::hex::hex_newtype;

/// An account: the 32-byte ed25519 public key of a node or of a deployed service.
///
/// Shown and parsed as 64 hex characters (lowercase when shown; either case parses). Any 32
/// bytes make an account — tokens sent to bytes that are not a valid key are simply unspendable
/// — but only a valid key can sign, so every transfer *from* an account is checked against it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Account(pub [u8; 32]);

hex_newtype!(Account, 32);

impl Account {
    /// The raw key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The ed25519 key, or `None` if these bytes are not a point on the curve.
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).ok()
    }
}

impl From<VerifyingKey> for Account {
    fn from(key: VerifyingKey) -> Self {
        Account(key.to_bytes())
    }
}

impl From<&ed25519_dalek::SigningKey> for Account {
    fn from(key: &ed25519_dalek::SigningKey) -> Self {
        Account(key.verifying_key().to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParseHexError;

    #[test]
    fn display_parse_round_trip() {
        let a = Account([0xab; 32]);
        let s = a.to_string();
        assert_eq!(s, "ab".repeat(32));
        assert_eq!(s.parse::<Account>(), Ok(a));
        assert_eq!(s.to_uppercase().parse::<Account>(), Ok(a));
    }

    #[test]
    fn parse_errors_are_typed() {
        assert_eq!(
            "abc".parse::<Account>(),
            Err(ParseHexError::Length {
                expected: 64,
                found: 3
            })
        );
        let bad = format!("{}x", "0".repeat(63));
        assert_eq!(
            bad.parse::<Account>(),
            Err(ParseHexError::Char { index: 63, ch: 'x' })
        );
    }

    #[test]
    fn serde_as_hex_string() {
        let a = Account([1; 32]);
        let json = serde_json::to_string(&a).unwrap_or_default();
        assert_eq!(json, format!("\"{}\"", "01".repeat(32)));
        assert_eq!(serde_json::from_str::<Account>(&json).ok(), Some(a));
        assert!(serde_json::from_str::<Account>("\"zz\"").is_err());
    }

    #[test]
    fn key_round_trip() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let a = Account::from(&key);
        assert_eq!(a.verifying_key(), Some(key.verifying_key()));
    }
}
