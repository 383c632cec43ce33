//! Revocations on the wire: `{token id, issuer, revoked_at, the token's expiry}` signed by the
//! issuer, gossiped on [`super::TOKENS_TOPIC`]. Only the issuer can revoke its tokens; anyone
//! may forward (or re-publish) a revocation, since the signature is what counts.

use libp2p::identity::Keypair;
use micro_overlay::PeerId;
use prost::Message;

use super::token::{TokenError, TokenId, sign_with, verify_with};

/// What a revocation's signature covers before the payload.
pub const REVOCATION_DOMAIN: &[u8] = b"micro-token-revocation/1\0";
/// Largest signed revocation accepted, in bytes (one is about 150).
pub const MAX_REVOCATION_BYTES: usize = 512;

/// "The token `token_id` of `issuer` is revoked from `revoked_at_ms`". The token's expiry
/// travels with it so receivers know how long the revocation matters (an expired token is
/// refused anyway) and which to drop first when their store is full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The revoked token.
    pub token_id: TokenId,
    /// Its issuer, who signs the revocation.
    pub issuer: PeerId,
    /// When it was revoked, Unix ms.
    pub revoked_at_ms: u64,
    /// When the token expires anyway, Unix ms.
    pub expires_at_ms: u64,
}

#[derive(Clone, PartialEq, Message)]
struct RevocationMsg {
    #[prost(bytes = "vec", tag = "1")]
    token_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    issuer: Vec<u8>,
    #[prost(uint64, tag = "3")]
    revoked_at_ms: u64,
    #[prost(uint64, tag = "4")]
    expires_at_ms: u64,
}

#[derive(Clone, PartialEq, Message)]
struct SignedRevocationMsg {
    #[prost(bytes = "vec", tag = "1")]
    payload: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    signature: Vec<u8>,
}

impl Revocation {
    /// Signs it with `key` (the issuer's); returns the bytes to gossip and store.
    pub fn sign(&self, key: &Keypair) -> Result<Vec<u8>, TokenError> {
        let payload = RevocationMsg {
            token_id: self.token_id.0.to_vec(),
            issuer: self.issuer.to_bytes(),
            revoked_at_ms: self.revoked_at_ms,
            expires_at_ms: self.expires_at_ms,
        }
        .encode_to_vec();
        let signature = sign_with(key, &self.issuer, REVOCATION_DOMAIN, &payload)?;
        Ok(SignedRevocationMsg { payload, signature }.encode_to_vec())
    }

    /// Reads signed revocation bytes and checks the issuer's signature. Size first; never
    /// panics, whatever the bytes.
    pub fn verify(bytes: &[u8]) -> Result<Self, TokenError> {
        if bytes.len() > MAX_REVOCATION_BYTES {
            return Err(TokenError::TooLarge {
                size: bytes.len(),
                limit: MAX_REVOCATION_BYTES,
            });
        }
        let signed = SignedRevocationMsg::decode(bytes)
            .map_err(|e| TokenError::Malformed(format!("revocation: {e}")))?;
        let msg = RevocationMsg::decode(signed.payload.as_slice())
            .map_err(|e| TokenError::Malformed(format!("revocation payload: {e}")))?;
        let issuer = PeerId::from_bytes(&msg.issuer)
            .map_err(|e| TokenError::InvalidField(format!("issuer: {e}")))?;
        verify_with(
            &issuer,
            REVOCATION_DOMAIN,
            &signed.payload,
            &signed.signature,
        )?;
        let token_id = TokenId::from_slice(&msg.token_id)
            .ok_or_else(|| TokenError::InvalidField("token id is not 16 bytes".to_owned()))?;
        Ok(Self {
            token_id,
            issuer,
            revoked_at_ms: msg.revoked_at_ms,
            expires_at_ms: msg.expires_at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn revocation(key: &Keypair) -> Revocation {
        Revocation {
            token_id: TokenId([3; 16]),
            issuer: key.public().to_peer_id(),
            revoked_at_ms: 10,
            expires_at_ms: 20,
        }
    }

    #[test]
    fn only_the_issuer_can_revoke() {
        let key = Keypair::generate_ed25519();
        let r = revocation(&key);
        let bytes = r.sign(&key).unwrap();
        assert!(bytes.len() < MAX_REVOCATION_BYTES);
        assert_eq!(Revocation::verify(&bytes), Ok(r.clone()));

        let other = Keypair::generate_ed25519();
        assert!(r.sign(&other).is_err());
        // A revocation naming the issuer but signed by another key.
        let mut signed = SignedRevocationMsg::decode(bytes.as_slice()).unwrap();
        signed.signature = other
            .sign(&super::super::token::signing_message(
                REVOCATION_DOMAIN,
                &signed.payload,
            ))
            .unwrap();
        assert_eq!(
            Revocation::verify(&signed.encode_to_vec()),
            Err(TokenError::BadSignature)
        );
        // A token's signature domain does not make a revocation.
        signed.signature = key
            .sign(&super::super::token::signing_message(
                super::super::token::SIGNING_DOMAIN,
                &signed.payload,
            ))
            .unwrap();
        assert_eq!(
            Revocation::verify(&signed.encode_to_vec()),
            Err(TokenError::BadSignature)
        );
        assert!(matches!(
            Revocation::verify(&vec![0; MAX_REVOCATION_BYTES + 1]),
            Err(TokenError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn any_bytes_verify_or_fail_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..700),
        ) {
            prop_assert!(Revocation::verify(&bytes).is_err());
        }
    }
}
