//! Acknowledgements and finality: an [`Ack`] says "I applied this transfer"; a transfer is final
//! once ackers holding more than 2/3 of the reputation weight ([`Weights`]) have acked it.

use ed25519_dalek::Signature;

use crate::{Account, Signer, TransferId};

/// Domain separator of an ack's signed bytes.
const ACK_DOMAIN: &[u8] = b"micro-ledger/ack/v1\0";

/// "Account `acker` has applied transfer `transfer`", signed by the acker. The transfer id
/// already commits to the network, so the ack does too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ack {
    /// The acknowledged transfer.
    pub transfer: TransferId,
    /// Who acknowledges (a node's account).
    pub acker: Account,
    /// The acker's signature over [`Ack::signed_bytes`].
    pub signature: [u8; 64],
}

/// Why an ack is not acceptable on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The acker is not a valid ed25519 key.
    #[error("acker {0} is not a valid ed25519 public key")]
    InvalidKey(Account),
    /// The signature does not verify (strictly) under the acker's key.
    #[error("bad ack signature from {0}")]
    BadSignature(Account),
}

impl Ack {
    /// The signed bytes: domain || transfer id.
    pub fn signed_bytes(transfer: &TransferId) -> Vec<u8> {
        let mut out = Vec::with_capacity(ACK_DOMAIN.len() + 32);
        out.extend_from_slice(ACK_DOMAIN);
        out.extend_from_slice(&transfer.0);
        out
    }

    /// `signer`'s ack of `transfer`.
    pub fn sign(signer: &dyn Signer, transfer: TransferId) -> Ack {
        Ack {
            transfer,
            acker: signer.account(),
            signature: signer.sign(&Self::signed_bytes(&transfer)),
        }
    }

    /// Checks the signature with ed25519 `verify_strict`.
    pub fn verify(&self) -> Result<(), AckError> {
        let key = self
            .acker
            .verifying_key()
            .ok_or(AckError::InvalidKey(self.acker))?;
        key.verify_strict(
            &Self::signed_bytes(&self.transfer),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| AckError::BadSignature(self.acker))
    }
}

/// Reputation weight of ackers, supplied by the node (from the reputation crate). Weights that
/// are negative or not finite count as 0.
pub trait Weights {
    /// The weight of one account.
    fn weight(&self, account: &Account) -> f64;
    /// The total weight finality is measured against.
    fn total(&self) -> f64;
}

/// Clamps a weight to a finite, non-negative number.
pub(crate) fn sane(weight: f64) -> f64 {
    if weight.is_finite() && weight > 0.0 {
        weight
    } else {
        0.0
    }
}

/// Whether `acked` is strictly more than 2/3 of `total` (exactly 2/3 is not enough). Computed as
/// `3 * acked > 2 * total`, which is exact for integral weights.
pub fn is_final(acked: f64, total: f64) -> bool {
    let (acked, total) = (sane(acked), sane(total));
    total > 0.0 && 3.0 * acked > 2.0 * total
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    #[test]
    fn sign_and_verify() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let ack = Ack::sign(&key, TransferId([1; 32]));
        assert_eq!(ack.verify(), Ok(()));
        let mut forged = ack.clone();
        forged.transfer = TransferId([2; 32]);
        assert_eq!(forged.verify(), Err(AckError::BadSignature(ack.acker)));
    }

    #[test]
    fn two_thirds_is_not_final() {
        assert!(!is_final(2.0, 3.0));
        assert!(is_final(2.000_001, 3.0));
        assert!(!is_final(200.0, 300.0));
        assert!(is_final(201.0, 300.0));
        assert!(!is_final(0.0, 0.0));
        assert!(!is_final(f64::NAN, 3.0));
        assert!(!is_final(f64::INFINITY, 3.0));
    }
}
