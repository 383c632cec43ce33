//! [`EquivocationProof`]: two different signed transfers from one account with one seq.

use crate::{Account, NetworkId, SignedTransfer, TransferError, TransferId};

/// Evidence that `from` signed two different transfers with the same sequence number. It is
/// self-verifying ([`EquivocationProof::verify`]), so any replica can act on it: the account is
/// frozen from that seq, and both transfers and everything after them are void.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquivocationProof {
    /// One of the two transfers (the one with the smaller id, when built with `new`).
    pub a: SignedTransfer,
    /// The other.
    pub b: SignedTransfer,
}

/// Why an equivocation proof proves nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The two transfers come from different accounts.
    #[error("proof transfers come from different accounts ({a} and {b})")]
    DifferentAccounts {
        /// Sender of `a`.
        a: Account,
        /// Sender of `b`.
        b: Account,
    },
    /// The two transfers have different sequence numbers.
    #[error("proof transfers have different seqs ({a} and {b})")]
    DifferentSeqs {
        /// Seq of `a`.
        a: u64,
        /// Seq of `b`.
        b: u64,
    },
    /// Both halves are the same signed transfer.
    #[error("proof holds the same transfer twice")]
    SameTransfer,
    /// One half is not a valid transfer on this network (bad signature included).
    #[error("proof transfer {which} is invalid: {source}")]
    InvalidTransfer {
        /// `"a"` or `"b"`.
        which: &'static str,
        /// What is wrong with it.
        source: TransferError,
    },
}

impl EquivocationProof {
    /// A proof from two transfers, ordered by id so that the same pair always makes the same
    /// proof. Not checked; see [`EquivocationProof::verify`].
    pub fn new(x: SignedTransfer, y: SignedTransfer) -> EquivocationProof {
        if x.id() <= y.id() {
            EquivocationProof { a: x, b: y }
        } else {
            EquivocationProof { a: y, b: x }
        }
    }

    /// The equivocating account (as claimed by `a`).
    pub fn account(&self) -> Account {
        self.a.transfer.from
    }

    /// The seq signed twice (as claimed by `a`).
    pub fn seq(&self) -> u64 {
        self.a.transfer.seq
    }

    /// The ids of both transfers.
    pub fn ids(&self) -> [TransferId; 2] {
        [self.a.id(), self.b.id()]
    }

    /// Checks that both halves are valid transfers on `network` (signatures included), from the
    /// same account, with the same seq, and different. Returns the account and seq.
    pub fn verify(&self, network: &NetworkId) -> Result<(Account, u64), ProofError> {
        let (a, b) = (&self.a.transfer, &self.b.transfer);
        if a.from != b.from {
            return Err(ProofError::DifferentAccounts {
                a: a.from,
                b: b.from,
            });
        }
        if a.seq != b.seq {
            return Err(ProofError::DifferentSeqs { a: a.seq, b: b.seq });
        }
        let va = self
            .a
            .clone()
            .verify(network)
            .map_err(|source| ProofError::InvalidTransfer { which: "a", source })?;
        let vb = self
            .b
            .clone()
            .verify(network)
            .map_err(|source| ProofError::InvalidTransfer { which: "b", source })?;
        if va.id() == vb.id() {
            return Err(ProofError::SameTransfer);
        }
        Ok((a.from, a.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Tokens, Transfer};
    use ed25519_dalek::SigningKey;

    const NET: NetworkId = NetworkId([4; 32]);

    fn signed(key: &SigningKey, seq: u64, amount: u64) -> SignedTransfer {
        Transfer {
            network: NET,
            from: Account::from(key),
            to: Account([8; 32]),
            amount: Tokens(amount),
            fee: Tokens(0),
            seq,
            memo: String::new(),
        }
        .sign(key)
    }

    #[test]
    fn valid_proof_verifies_in_either_order() {
        let k = SigningKey::from_bytes(&[1; 32]);
        let p = EquivocationProof::new(signed(&k, 3, 1), signed(&k, 3, 2));
        assert_eq!(p.verify(&NET), Ok((Account::from(&k), 3)));
        let q = EquivocationProof::new(signed(&k, 3, 2), signed(&k, 3, 1));
        assert_eq!(p, q);
    }

    #[test]
    fn forged_proofs_are_rejected() {
        let k = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let p = EquivocationProof::new(signed(&k, 3, 1), signed(&other, 3, 1));
        assert!(matches!(
            p.verify(&NET),
            Err(ProofError::DifferentAccounts { .. })
        ));
        let p = EquivocationProof::new(signed(&k, 3, 1), signed(&k, 4, 1));
        assert!(matches!(
            p.verify(&NET),
            Err(ProofError::DifferentSeqs { .. })
        ));
        let p = EquivocationProof::new(signed(&k, 3, 1), signed(&k, 3, 1));
        assert_eq!(p.verify(&NET), Err(ProofError::SameTransfer));
        let mut bad = signed(&k, 3, 2);
        bad.signature[0] ^= 1;
        let p = EquivocationProof {
            a: signed(&k, 3, 1),
            b: bad,
        };
        assert!(matches!(
            p.verify(&NET),
            Err(ProofError::InvalidTransfer {
                which: "b",
                source: TransferError::BadSignature(_)
            })
        ));
        // A proof from another network does not freeze anything here.
        let p = EquivocationProof::new(signed(&k, 3, 1), signed(&k, 3, 2));
        assert!(matches!(
            p.verify(&NetworkId([9; 32])),
            Err(ProofError::InvalidTransfer { .. })
        ));
    }
}
