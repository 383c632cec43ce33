//! [`Signer`]: whatever holds an account's secret key.

use crate::Account;

/// Signs on behalf of one account. The node implements it for its libp2p identity key (whose
/// ed25519 signatures are plain RFC 8032 signatures, so they verify here); tests use
/// [`ed25519_dalek::SigningKey`].
///
/// Implementations must sign deterministically (RFC 8032 does): the crate never signs the same
/// transfer twice, but two different signatures over one transfer would count as an
/// equivocation (see [`crate::TransferId`]).
pub trait Signer {
    /// The account whose key signs.
    fn account(&self) -> Account;
    /// The 64-byte ed25519 signature of `msg`.
    fn sign(&self, msg: &[u8]) -> [u8; 64];
}

impl Signer for ed25519_dalek::SigningKey {
    fn account(&self) -> Account {
        Account::from(self)
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        ed25519_dalek::Signer::sign(self, msg).to_bytes()
    }
}
