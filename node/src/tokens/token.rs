//! The API token: its claims, the bytes its issuer signs, and its printable form.
//!
//! Printable form: `mt1_<payload>.<signature>`, both unpadded base64url. The payload is a
//! protobuf `TokenMsg` (fields in tag order, so one token has one encoding); the signature is
//! the issuer's ed25519 signature over [`SIGNING_DOMAIN`] followed by the payload. The issuer's
//! PeerId carries its public key, so a token is checked with nothing but itself. [`decode`]
//! bounds the size before decoding anything and never panics.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libp2p::identity::Keypair;
use micro_overlay::PeerId;
use prost::Message;
use serde::{Deserialize, Serialize};

use super::rules::{Pattern, Scope};

/// The prefix of every printable token (format version 1).
pub const TOKEN_PREFIX: &str = "mt1_";
/// What a token's signature covers before the payload, so it can never pass for another
/// signed message of the node's key.
pub const SIGNING_DOMAIN: &[u8] = b"micro-api-token/1\0";
/// Largest payload accepted, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// Most scopes in one token.
pub const MAX_SCOPES: usize = 32;
/// Length of an ed25519 signature.
const SIGNATURE_BYTES: usize = 64;
/// Longest printable token accepted: the prefix, the largest payload, the dot, a signature.
pub const MAX_TOKEN_CHARS: usize =
    TOKEN_PREFIX.len() + MAX_PAYLOAD_BYTES.div_ceil(3) * 4 + 1 + SIGNATURE_BYTES.div_ceil(3) * 4;
/// The payload's `version` field.
const WIRE_VERSION: u32 = 1;

/// Why a token (or a revocation) is not acceptable as presented.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Larger than the bound, refused before decoding.
    #[error("token is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The bound.
        limit: usize,
    },
    /// Not in the expected shape (prefix, base64, protobuf).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A payload version this node does not know.
    #[error("token format version {0} is not supported")]
    UnknownVersion(u32),
    /// The signature does not match the payload and its issuer: forged or tampered with.
    #[error("the signature does not match: forged or altered")]
    BadSignature,
    /// A field is out of bounds or invalid.
    #[error("invalid token field: {0}")]
    InvalidField(String),
    /// The key given to sign is not the issuer's.
    #[error("cannot sign a token of {issuer} with another node's key")]
    WrongKey {
        /// The issuer the token names.
        issuer: Box<PeerId>,
    },
}

/// A token's id: 128 random bits, written as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenId(pub [u8; 16]);

impl TokenId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The id from 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }
}

/// A string that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a token id is 32 hex digits")]
pub struct BadTokenId;

impl FromStr for TokenId {
    type Err = BadTokenId;

    fn from_str(s: &str) -> Result<Self, BadTokenId> {
        if s.len() != 32 || !s.is_ascii() {
            return Err(BadTokenId);
        }
        let mut id = [0u8; 16];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| BadTokenId)?;
        }
        Ok(Self(id))
    }
}

impl TryFrom<String> for TokenId {
    type Error = BadTokenId;

    fn try_from(s: String) -> Result<Self, BadTokenId> {
        s.parse()
    }
}

impl From<TokenId> for String {
    fn from(id: TokenId) -> Self {
        id.to_string()
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({self})")
    }
}

/// What a token says. Only [`decode`] (signature checked) and the issuing node make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Its id.
    pub id: TokenId,
    /// The node that signed it, and whose account pays for the calls it allows.
    pub issuer: PeerId,
    /// What it may call: 1 to [`MAX_SCOPES`] services with endpoint patterns.
    pub scopes: Vec<Scope>,
    /// When it was issued, Unix ms.
    pub issued_at_ms: u64,
    /// When it stops working, Unix ms (it works while `now < expires_at_ms`).
    pub expires_at_ms: u64,
    /// Most ledger tokens the calls it allows may cost in all; `None` = no limit.
    pub spend_limit: Option<u64>,
    /// The token it replaced, if it came from a refresh.
    pub refreshed_from: Option<TokenId>,
}

/// The signed payload.
#[derive(Clone, PartialEq, Message)]
struct TokenMsg {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(bytes = "vec", tag = "2")]
    id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    issuer: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    scopes: Vec<ScopeMsg>,
    #[prost(uint64, tag = "5")]
    issued_at_ms: u64,
    #[prost(uint64, tag = "6")]
    expires_at_ms: u64,
    #[prost(uint64, optional, tag = "7")]
    spend_limit: Option<u64>,
    #[prost(bytes = "vec", tag = "8")]
    refreshed_from: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct ScopeMsg {
    #[prost(string, tag = "1")]
    service: String,
    #[prost(string, tag = "2")]
    endpoint: String,
}

/// `domain` followed by `payload`: what a signature covers.
pub(super) fn signing_message(domain: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(domain.len() + payload.len());
    msg.extend_from_slice(domain);
    msg.extend_from_slice(payload);
    msg
}

/// Signs `payload` under `domain` with `key`, which must be `signer`'s.
pub(super) fn sign_with(
    key: &Keypair,
    signer: &PeerId,
    domain: &[u8],
    payload: &[u8],
) -> Result<Vec<u8>, TokenError> {
    if key.public().to_peer_id() != *signer {
        return Err(TokenError::WrongKey {
            issuer: Box::new(*signer),
        });
    }
    key.sign(&signing_message(domain, payload))
        .map_err(|e| TokenError::InvalidField(format!("the key cannot sign: {e}")))
}

/// Checks that `signature` is `signer`'s over `payload` under `domain`.
pub(super) fn verify_with(
    signer: &PeerId,
    domain: &[u8],
    payload: &[u8],
    signature: &[u8],
) -> Result<(), TokenError> {
    let key = crate::identity::public_key_of(signer).ok_or_else(|| {
        TokenError::InvalidField(format!("issuer {signer} does not carry an ed25519 key"))
    })?;
    if signature.len() == SIGNATURE_BYTES
        && key.verify(&signing_message(domain, payload), signature)
    {
        Ok(())
    } else {
        Err(TokenError::BadSignature)
    }
}

impl ApiToken {
    fn to_msg(&self) -> TokenMsg {
        TokenMsg {
            version: WIRE_VERSION,
            id: self.id.0.to_vec(),
            issuer: self.issuer.to_bytes(),
            scopes: self
                .scopes
                .iter()
                .map(|s| ScopeMsg {
                    service: s.service.to_string(),
                    endpoint: s.endpoint.to_string(),
                })
                .collect(),
            issued_at_ms: self.issued_at_ms,
            expires_at_ms: self.expires_at_ms,
            spend_limit: self.spend_limit,
            refreshed_from: self
                .refreshed_from
                .map(|id| id.0.to_vec())
                .unwrap_or_default(),
        }
    }

    /// The bounds [`decode`] enforces on the fields.
    fn check_fields(&self) -> Result<(), TokenError> {
        if self.scopes.is_empty() || self.scopes.len() > MAX_SCOPES {
            return Err(TokenError::InvalidField(format!(
                "{} scopes; a token has 1 to {MAX_SCOPES}",
                self.scopes.len()
            )));
        }
        if self.expires_at_ms <= self.issued_at_ms {
            return Err(TokenError::InvalidField(
                "it expires before it was issued".to_owned(),
            ));
        }
        Ok(())
    }

    /// Signs the token with `key` (the issuer's) and returns its printable form. Fails if the
    /// key is not the issuer's or the token breaks a bound [`decode`] enforces.
    pub fn sign(&self, key: &Keypair) -> Result<String, TokenError> {
        self.check_fields()?;
        let payload = self.to_msg().encode_to_vec();
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(TokenError::TooLarge {
                size: payload.len(),
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        let signature = sign_with(key, &self.issuer, SIGNING_DOMAIN, &payload)?;
        Ok(format!(
            "{TOKEN_PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&signature)
        ))
    }

    /// Whether it has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
    }

    /// Its lifetime as issued, in ms.
    pub fn ttl_ms(&self) -> u64 {
        self.expires_at_ms.saturating_sub(self.issued_at_ms)
    }
}

/// Reads a printable token and checks its signature against the issuer it names.
///
/// In order: the length (before decoding anything), the shape, the payload's size and
/// encoding, the version, the issuer's id, the signature, then every field. Says nothing about
/// whether the issuer is trusted, or the token expired or revoked: that is the caller's policy.
pub fn decode(text: &str) -> Result<ApiToken, TokenError> {
    if text.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::TooLarge {
            size: text.len(),
            limit: MAX_TOKEN_CHARS,
        });
    }
    let body = text
        .strip_prefix(TOKEN_PREFIX)
        .ok_or_else(|| TokenError::Malformed(format!("it does not start with {TOKEN_PREFIX}")))?;
    let (payload, signature) = body
        .split_once('.')
        .ok_or_else(|| TokenError::Malformed("no `.` before the signature".to_owned()))?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| TokenError::Malformed(format!("payload: {e}")))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| TokenError::Malformed(format!("signature: {e}")))?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(TokenError::TooLarge {
            size: payload.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let msg = TokenMsg::decode(payload.as_slice())
        .map_err(|e| TokenError::Malformed(format!("payload: {e}")))?;
    if msg.version != WIRE_VERSION {
        return Err(TokenError::UnknownVersion(msg.version));
    }
    let issuer = PeerId::from_bytes(&msg.issuer)
        .map_err(|e| TokenError::InvalidField(format!("issuer: {e}")))?;
    verify_with(&issuer, SIGNING_DOMAIN, &payload, &signature)?;
    let token = from_msg(msg, issuer)?;
    token.check_fields()?;
    Ok(token)
}

fn from_msg(msg: TokenMsg, issuer: PeerId) -> Result<ApiToken, TokenError> {
    let id = TokenId::from_slice(&msg.id)
        .ok_or_else(|| TokenError::InvalidField("the id is not 16 bytes".to_owned()))?;
    if msg.scopes.len() > MAX_SCOPES {
        return Err(TokenError::InvalidField(format!(
            "{} scopes, over {MAX_SCOPES}",
            msg.scopes.len()
        )));
    }
    let scopes = msg
        .scopes
        .into_iter()
        .map(|s| {
            Ok(Scope {
                service: s.service.parse::<Pattern>()?,
                endpoint: s.endpoint.parse::<Pattern>()?,
            })
        })
        .collect::<Result<Vec<_>, super::rules::RuleError>>()
        .map_err(|e| TokenError::InvalidField(e.to_string()))?;
    let refreshed_from = match msg.refreshed_from.len() {
        0 => None,
        _ => Some(TokenId::from_slice(&msg.refreshed_from).ok_or_else(|| {
            TokenError::InvalidField("refreshed_from is not 16 bytes".to_owned())
        })?),
    };
    Ok(ApiToken {
        id,
        issuer,
        scopes,
        issued_at_ms: msg.issued_at_ms,
        expires_at_ms: msg.expires_at_ms,
        spend_limit: msg.spend_limit,
        refreshed_from,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) const NOW: u64 = 1_700_000_000_000;

    pub(crate) fn token(key: &Keypair) -> ApiToken {
        ApiToken {
            id: TokenId([7; 16]),
            issuer: key.public().to_peer_id(),
            scopes: vec!["greeter/Say.*".parse().unwrap(), "counter".parse().unwrap()],
            issued_at_ms: NOW,
            expires_at_ms: NOW + 60_000,
            spend_limit: Some(500),
            refreshed_from: None,
        }
    }

    /// Rebuilds a printable token from (possibly altered) parts.
    fn assemble(payload: &[u8], signature: &[u8]) -> String {
        format!(
            "{TOKEN_PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    fn parts(text: &str) -> (Vec<u8>, Vec<u8>) {
        let (p, s) = text[TOKEN_PREFIX.len()..].split_once('.').unwrap();
        (
            URL_SAFE_NO_PAD.decode(p).unwrap(),
            URL_SAFE_NO_PAD.decode(s).unwrap(),
        )
    }

    #[test]
    fn sign_then_decode_round_trips() {
        let key = Keypair::generate_ed25519();
        let mut t = token(&key);
        let text = t.sign(&key).unwrap();
        assert!(text.starts_with(TOKEN_PREFIX) && text.len() <= MAX_TOKEN_CHARS);
        assert_eq!(decode(&text), Ok(t.clone()));
        t.spend_limit = None;
        t.refreshed_from = Some(TokenId([1; 16]));
        assert_eq!(decode(&t.sign(&key).unwrap()), Ok(t));
    }

    #[test]
    fn token_ids_are_32_hex_digits() {
        let id = TokenId::random();
        assert_eq!(id.to_string().len(), 32);
        assert_eq!(id.to_string().parse(), Ok(id));
        assert!("xyz".parse::<TokenId>().is_err());
        assert!("ä".repeat(16).parse::<TokenId>().is_err());
        assert_ne!(TokenId::random(), TokenId::random());
    }

    #[test]
    fn tampering_is_forgery() {
        let key = Keypair::generate_ed25519();
        let text = token(&key).sign(&key).unwrap();
        let (payload, signature) = parts(&text);

        // A bit flipped in the payload (e.g. a later expiry).
        let mut msg = TokenMsg::decode(payload.as_slice()).unwrap();
        msg.expires_at_ms += 1_000_000;
        let tampered = assemble(&msg.encode_to_vec(), &signature);
        assert_eq!(decode(&tampered), Err(TokenError::BadSignature));

        // A bit flipped in the signature.
        let mut bad_sig = signature.clone();
        bad_sig[3] ^= 1;
        assert_eq!(
            decode(&assemble(&payload, &bad_sig)),
            Err(TokenError::BadSignature)
        );

        // Re-signed by another key but still naming the first issuer.
        let other = Keypair::generate_ed25519();
        let forged = other
            .sign(&signing_message(SIGNING_DOMAIN, &payload))
            .unwrap();
        assert_eq!(
            decode(&assemble(&payload, &forged)),
            Err(TokenError::BadSignature)
        );

        // The right key over the payload without the domain prefix.
        let undomained = key.sign(&payload).unwrap();
        assert_eq!(
            decode(&assemble(&payload, &undomained)),
            Err(TokenError::BadSignature)
        );

        // Signing someone else's token is refused.
        assert!(matches!(
            token(&key).sign(&other),
            Err(TokenError::WrongKey { .. })
        ));
    }

    #[test]
    fn oversized_and_malformed_tokens_are_refused_before_decoding() {
        let huge = format!("{TOKEN_PREFIX}{}", "A".repeat(MAX_TOKEN_CHARS));
        assert!(matches!(decode(&huge), Err(TokenError::TooLarge { .. })));
        let key = Keypair::generate_ed25519();
        let big_payload = vec![0u8; MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(
            decode(&assemble(&big_payload, &[0; 64])),
            Err(TokenError::TooLarge { .. })
        ));
        for bad in ["", "mt1_", "mt2_abc.def", "mt1_abc", "mt1_!!.??"] {
            assert!(
                matches!(decode(bad), Err(TokenError::Malformed(_))),
                "{bad:?}"
            );
        }
        // Too many scopes: refused at signing and at decoding.
        let mut t = token(&key);
        t.scopes = vec!["s".parse().unwrap(); MAX_SCOPES + 1];
        assert!(matches!(t.sign(&key), Err(TokenError::InvalidField(_))));
        let mut msg = t.to_msg();
        msg.scopes.truncate(MAX_SCOPES + 1);
        let payload = msg.encode_to_vec();
        let sig = key
            .sign(&signing_message(SIGNING_DOMAIN, &payload))
            .unwrap();
        assert!(matches!(
            decode(&assemble(&payload, &sig)),
            Err(TokenError::InvalidField(_))
        ));
    }

    #[test]
    fn expiry_is_strict() {
        let key = Keypair::generate_ed25519();
        let t = token(&key);
        assert!(!t.is_expired(t.expires_at_ms - 1));
        assert!(t.is_expired(t.expires_at_ms));
        let mut backwards = t;
        backwards.expires_at_ms = backwards.issued_at_ms;
        assert!(backwards.sign(&key).is_err());
    }

    proptest! {
        #[test]
        fn any_text_decodes_or_fails_without_panicking(s in ".{0,300}") {
            let _ = decode(&s);
            let prefixed = format!("{TOKEN_PREFIX}{s}");
            let _ = decode(&prefixed);
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panicking(
            payload in proptest::collection::vec(any::<u8>(), 0..600),
            signature in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            prop_assert!(decode(&assemble(&payload, &signature)).is_err());
        }

        #[test]
        fn valid_tokens_round_trip(
            scopes in proptest::collection::vec(("[a-z0-9][a-z0-9._-]{0,20}\\*?", "[A-Za-z0-9._-]{1,30}\\*?"), 1..MAX_SCOPES),
            issued in 0u64..u64::MAX / 2,
            ttl in 1u64..1_000_000_000,
            limit in proptest::option::of(any::<u64>()),
            from in proptest::option::of(any::<[u8; 16]>()),
        ) {
            let key = Keypair::ed25519_from_bytes([9; 32]).unwrap();
            let t = ApiToken {
                id: TokenId::random(),
                issuer: key.public().to_peer_id(),
                scopes: scopes
                    .iter()
                    .map(|(s, e)| Scope { service: s.parse().unwrap(), endpoint: e.parse().unwrap() })
                    .collect(),
                issued_at_ms: issued,
                expires_at_ms: issued + ttl,
                spend_limit: limit,
                refreshed_from: from.map(TokenId),
            };
            let text = t.sign(&key).unwrap();
            prop_assert!(text.len() <= MAX_TOKEN_CHARS);
            prop_assert_eq!(decode(&text), Ok(t));
        }
    }
}
