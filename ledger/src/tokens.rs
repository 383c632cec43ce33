//! [`Tokens`]: an amount of the network's native token.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of the native token, in its smallest unit. All arithmetic on it is checked: a
/// result that would not fit is `None`, never a wrap.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Tokens(pub u64);

impl Tokens {
    /// No tokens.
    pub const ZERO: Tokens = Tokens(0);

    /// The raw amount.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: Tokens) -> Option<Tokens> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(Tokens(v)),
            None => None,
        }
    }

    /// `self - other`, or `None` if `other` is larger.
    pub const fn checked_sub(self, other: Tokens) -> Option<Tokens> {
        match self.0.checked_sub(other.0) {
            Some(v) => Some(Tokens(v)),
            None => None,
        }
    }
}

impl From<u64> for Tokens {
    fn from(v: u64) -> Self {
        Tokens(v)
    }
}

impl fmt::Display for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Tokens(2).checked_add(Tokens(3)), Some(Tokens(5)));
        assert_eq!(Tokens(u64::MAX).checked_add(Tokens(1)), None);
        assert_eq!(Tokens(3).checked_sub(Tokens(3)), Some(Tokens::ZERO));
        assert_eq!(Tokens(2).checked_sub(Tokens(3)), None);
    }

    #[test]
    fn serde_is_a_plain_number() {
        assert_eq!(serde_json::to_string(&Tokens(7)).ok().as_deref(), Some("7"));
        assert_eq!(serde_json::from_str::<Tokens>("7").ok(), Some(Tokens(7)));
        assert!(serde_json::from_str::<Tokens>("-1").is_err());
    }
}
