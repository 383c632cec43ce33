//! Event ids: the SHA-256 of an event's signed bytes, shown as 64 lowercase hex digits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An event's identity: SHA-256 of the encoded `Event` exactly as its publisher signed it
/// (`SignedEvent.event`). Equal ids mean byte-identical events.
///
/// Displays (and serializes) as 64 lowercase hex digits; parses from 64 hex digits of either
/// case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(pub [u8; 32]);

/// Why a text is not an [`EventId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an event id: expected 64 hex digits")]
pub struct EventIdError(String);

impl EventId {
    /// The id of the given encoded event bytes.
    pub fn of(event_bytes: &[u8]) -> Self {
        Self(Sha256::digest(event_bytes).into())
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl FromStr for EventId {
    type Err = EventIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || EventIdError(s.chars().take(80).collect());
        let digits = s.as_bytes();
        if digits.len() != 64 {
            return Err(err());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let hi = hex_value(pair[0]).ok_or_else(err)?;
            let lo = hex_value(pair[1]).ok_or_else(err)?;
            *byte = (hi << 4) | lo;
        }
        Ok(Self(out))
    }
}

/// The value of one hex digit, if it is one.
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl TryFrom<String> for EventId {
    type Error = EventIdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> Self {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_digest_and_serde() {
        let id = EventId::of(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(id.to_string(), hex);
        assert_eq!(hex.to_uppercase().parse::<EventId>(), Ok(id));
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{hex}\""));
        assert_eq!(
            serde_json::from_str::<EventId>(&format!("\"{hex}\"")).unwrap(),
            id
        );
        for bad in [
            "",
            "ab",
            &hex[..63],
            &format!("{hex}0"),
            &hex.replace('b', "g"),
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in any::<[u8; 32]>()) {
            let id = EventId(bytes);
            prop_assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
        }

        #[test]
        fn parsing_never_panics(s in ".{0,70}") {
            let _ = s.parse::<EventId>();
        }
    }
}
