//! Lowercase hex for the crate's fixed-size identifiers, and the macro that gives each of them
//! `Display`, `Debug`, `FromStr` and serde as hex strings. Ten lines of codec are cheaper than a
//! dependency.

/// A string that is not the hex form of a fixed-size identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseHexError {
    /// The string has the wrong number of characters.
    #[error("expected {expected} hex characters, found {found}")]
    Length {
        /// Characters an identifier of this type has.
        expected: usize,
        /// Characters the input had.
        found: usize,
    },
    /// A character is not a hex digit.
    #[error("invalid hex character {ch:?} at position {index}")]
    Char {
        /// Byte offset of the character in the input.
        index: usize,
        /// The offending character.
        ch: char,
    },
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Exactly `2 * N` hex digits (either case) into `N` bytes.
pub(crate) fn decode<const N: usize>(s: &str) -> Result<[u8; N], ParseHexError> {
    let bytes = s.as_bytes();
    if bytes.len() != 2 * N {
        return Err(ParseHexError::Length {
            expected: 2 * N,
            found: s.chars().count(),
        });
    }
    let nibble = |index: usize| -> Result<u8, ParseHexError> {
        let c = bytes[index];
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(ParseHexError::Char {
                index,
                ch: s
                    .get(index..)
                    .and_then(|rest| rest.chars().next())
                    .unwrap_or('?'),
            }),
        }
    };
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (nibble(2 * i)? << 4) | nibble(2 * i + 1)?;
    }
    Ok(out)
}

/// `Display`/`Debug`/`FromStr`/serde as lowercase hex for a `pub struct $name(pub [u8; $n])`.
macro_rules! hex_newtype {
    ($name:ident, $n:expr) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&$crate::hex::encode(&self.0))
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::hex::ParseHexError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::hex::decode::<$n>(s).map($name)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use hex_newtype;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_lowercase() {
        let bytes = [0x00, 0x7f, 0xab, 0xff];
        assert_eq!(encode(&bytes), "007fabff");
        assert_eq!(decode::<4>("007FABff"), Ok(bytes));
    }

    #[test]
    fn typed_errors() {
        assert_eq!(
            decode::<2>("abc"),
            Err(ParseHexError::Length {
                expected: 4,
                found: 3
            })
        );
        assert_eq!(
            decode::<2>("ab0g"),
            Err(ParseHexError::Char { index: 3, ch: 'g' })
        );
        // A multi-byte character must not panic on slicing.
        assert_eq!(
            decode::<2>("aéb"),
            Err(ParseHexError::Char { index: 1, ch: 'é' })
        );
    }
}
