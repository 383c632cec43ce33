//! Transfers: the [`Transfer`] a sender means, its canonical signed bytes, the
//! [`SignedTransfer`] that travels, and the [`VerifiedTransfer`] the ledger applies.

use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};

use crate::hex::hex_newtype;
use crate::{Account, NetworkId, Signer, Tokens};

/// Domain separator of a transfer's signed bytes.
const TRANSFER_DOMAIN: &[u8] = b"micro-ledger/transfer/v1\0";

/// Longest memo, in bytes.
pub const MAX_MEMO_BYTES: usize = 256;

/// Length of the canonical encoding without the memo.
const FIXED_LEN: usize = TRANSFER_DOMAIN.len() + 32 * 3 + 8 * 3 + 2;

/// Bytes of the canonical encoding that storage leaves out: the domain and the network.
const STORED_SKIP: usize = TRANSFER_DOMAIN.len() + 32;

/// One movement of tokens: `amount` from `from` to `to`, plus `fee` to the treasury, as the
/// `seq`-th transfer of `from` (sequence numbers start at 1 for every account).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transfer {
    /// The network this transfer is valid on (its genesis hash).
    pub network: NetworkId,
    /// The sender, whose key signs.
    pub from: Account,
    /// The recipient; never the sender.
    pub to: Account,
    /// Tokens moved to `to`; at least 1.
    pub amount: Tokens,
    /// Tokens moved to the genesis treasury; may be 0.
    pub fee: Tokens,
    /// Position in the sender's history, from 1.
    pub seq: u64,
    /// Free text, at most [`MAX_MEMO_BYTES`] bytes.
    pub memo: String,
}

/// Why a transfer is invalid on its own, whatever the ledger's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// Signed for another network.
    #[error("transfer is for network {found}, this ledger is {expected}")]
    WrongNetwork {
        /// This ledger's network.
        expected: NetworkId,
        /// The transfer's network.
        found: NetworkId,
    },
    /// `amount` is 0.
    #[error("transfer amount is zero")]
    ZeroAmount,
    /// `seq` is 0 (sequence numbers start at 1).
    #[error("transfer seq is zero; sequence numbers start at 1")]
    ZeroSeq,
    /// `from == to`.
    #[error("transfer from {0} to itself")]
    SelfTransfer(Account),
    /// The memo is longer than [`MAX_MEMO_BYTES`].
    #[error("memo is {len} bytes, at most {max} allowed")]
    MemoTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `amount + fee` does not fit in a u64.
    #[error("amount {amount} plus fee {fee} overflows")]
    AmountOverflow {
        /// The amount.
        amount: Tokens,
        /// The fee.
        fee: Tokens,
    },
    /// `from` is not a valid ed25519 public key, so nothing can be signed by it.
    #[error("sender {0} is not a valid ed25519 public key")]
    InvalidKey(Account),
    /// The signature does not verify (strictly) under `from`.
    #[error("bad signature from {0}")]
    BadSignature(Account),
}

impl Transfer {
    /// The bytes that are signed: domain || network || from || to || amount BE || fee BE ||
    /// seq BE || memo length (u16 BE) || memo. Fixed layout, so there is exactly one encoding of
    /// each transfer (unlike a protobuf or JSON encoding).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let memo = self.memo.as_bytes();
        let mut out = Vec::with_capacity(FIXED_LEN + memo.len());
        out.extend_from_slice(TRANSFER_DOMAIN);
        out.extend_from_slice(&self.network.0);
        out.extend_from_slice(&self.from.0);
        out.extend_from_slice(&self.to.0);
        out.extend_from_slice(&self.amount.0.to_be_bytes());
        out.extend_from_slice(&self.fee.0.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        // Over-long memos are rejected by `check`; saturating keeps this function total.
        out.extend_from_slice(&u16::try_from(memo.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(memo);
        out
    }

    /// The rules that need no state and no signature: network, amount, seq, sender ≠
    /// recipient, memo length, and that `amount + fee` fits. Returns `amount + fee`.
    pub fn check(&self, network: &NetworkId) -> Result<Tokens, TransferError> {
        if self.network != *network {
            return Err(TransferError::WrongNetwork {
                expected: *network,
                found: self.network,
            });
        }
        if self.amount == Tokens::ZERO {
            return Err(TransferError::ZeroAmount);
        }
        if self.seq == 0 {
            return Err(TransferError::ZeroSeq);
        }
        if self.from == self.to {
            return Err(TransferError::SelfTransfer(self.from));
        }
        if self.memo.len() > MAX_MEMO_BYTES {
            return Err(TransferError::MemoTooLong {
                len: self.memo.len(),
                max: MAX_MEMO_BYTES,
            });
        }
        self.amount
            .checked_add(self.fee)
            .ok_or(TransferError::AmountOverflow {
                amount: self.amount,
                fee: self.fee,
            })
    }

    /// Signs the canonical bytes. Does not check that `signer` is `from`: a mismatch shows up
    /// as [`TransferError::BadSignature`] on verification.
    pub fn sign(self, signer: &dyn Signer) -> SignedTransfer {
        let signature = signer.sign(&self.canonical_bytes());
        SignedTransfer {
            transfer: self,
            signature,
        }
    }
}

/// A transfer with the sender's ed25519 signature over [`Transfer::canonical_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignedTransfer {
    /// What was signed.
    pub transfer: Transfer,
    /// The sender's signature.
    pub signature: [u8; 64],
}

/// The identity of a signed transfer: sha256(canonical bytes || signature), shown as hex.
///
/// It covers the signature, so two different signatures over the same transfer are two
/// different signed transfers — and, sharing a `(from, seq)`, an equivocation. Honest signers
/// are deterministic (RFC 8032), so only a sender that tries can produce that.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransferId(pub [u8; 32]);

hex_newtype!(TransferId, 32);

fn transfer_id(canonical: &[u8], signature: &[u8; 64]) -> TransferId {
    let mut h = Sha256::new();
    h.update(canonical);
    h.update(signature);
    TransferId(h.finalize().into())
}

impl SignedTransfer {
    /// This transfer's [`TransferId`].
    pub fn id(&self) -> TransferId {
        transfer_id(&self.transfer.canonical_bytes(), &self.signature)
    }

    /// Checks every stateless rule ([`Transfer::check`]) and the signature (ed25519
    /// `verify_strict`, which rejects malleable and small-order signatures). Pure, so callers
    /// may run it on any thread before handing the result to the ledger.
    pub fn verify(self, network: &NetworkId) -> Result<VerifiedTransfer, TransferError> {
        let total = self.transfer.check(network)?;
        let from = self.transfer.from;
        let key = from
            .verifying_key()
            .ok_or(TransferError::InvalidKey(from))?;
        let canonical = self.transfer.canonical_bytes();
        key.verify_strict(&canonical, &Signature::from_bytes(&self.signature))
            .map_err(|_| TransferError::BadSignature(from))?;
        let id = transfer_id(&canonical, &self.signature);
        Ok(VerifiedTransfer {
            signed: self,
            id,
            total,
        })
    }

    /// The storage form: the canonical bytes without the domain and network (every stored
    /// transfer is of the ledger's network) || signature.
    pub(crate) fn stored_bytes(&self) -> Vec<u8> {
        let canonical = self.transfer.canonical_bytes();
        let mut out = Vec::with_capacity(canonical.len() - STORED_SKIP + 64);
        out.extend_from_slice(&canonical[STORED_SKIP..]);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses [`SignedTransfer::stored_bytes`] of a transfer on `network`; `None` if they are
    /// not exactly that form.
    pub(crate) fn from_stored_bytes(bytes: &[u8], network: NetworkId) -> Option<SignedTransfer> {
        let (body, signature) = bytes.split_at_checked(bytes.len().checked_sub(64)?)?;
        let (from, rest) = body.split_first_chunk::<32>()?;
        let (to, rest) = rest.split_first_chunk::<32>()?;
        let (amount, rest) = rest.split_first_chunk::<8>()?;
        let (fee, rest) = rest.split_first_chunk::<8>()?;
        let (seq, rest) = rest.split_first_chunk::<8>()?;
        let (len, memo) = rest.split_first_chunk::<2>()?;
        if usize::from(u16::from_be_bytes(*len)) != memo.len() {
            return None;
        }
        Some(SignedTransfer {
            transfer: Transfer {
                network,
                from: Account(*from),
                to: Account(*to),
                amount: Tokens(u64::from_be_bytes(*amount)),
                fee: Tokens(u64::from_be_bytes(*fee)),
                seq: u64::from_be_bytes(*seq),
                memo: String::from_utf8(memo.to_vec()).ok()?,
            },
            signature: signature.try_into().ok()?,
        })
    }
}

/// A [`SignedTransfer`] whose stateless rules and signature have been checked against one
/// network. Only [`SignedTransfer::verify`] (and the ledger, for what it stored itself) makes
/// one, so holding it proves the check was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTransfer {
    signed: SignedTransfer,
    id: TransferId,
    total: Tokens,
}

impl VerifiedTransfer {
    /// Rebuilds one from the ledger's own storage, which only ever holds verified transfers.
    pub(crate) fn from_trusted(signed: SignedTransfer) -> Option<VerifiedTransfer> {
        let total = signed.transfer.amount.checked_add(signed.transfer.fee)?;
        let id = signed.id();
        Some(VerifiedTransfer { signed, id, total })
    }

    /// The signed transfer.
    pub fn signed(&self) -> &SignedTransfer {
        &self.signed
    }

    /// The transfer.
    pub fn transfer(&self) -> &Transfer {
        &self.signed.transfer
    }

    /// Its [`TransferId`].
    pub fn id(&self) -> TransferId {
        self.id
    }

    /// `amount + fee`: what the sender's balance must cover.
    pub fn total(&self) -> Tokens {
        self.total
    }

    /// Gives back the signed transfer.
    pub fn into_signed(self) -> SignedTransfer {
        self.signed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn net() -> NetworkId {
        NetworkId([5; 32])
    }

    fn transfer(key: &SigningKey) -> Transfer {
        Transfer {
            network: net(),
            from: Account::from(key),
            to: Account([2; 32]),
            amount: Tokens(10),
            fee: Tokens(1),
            seq: 1,
            memo: "hi".into(),
        }
    }

    #[test]
    fn canonical_layout() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let bytes = transfer(&key).canonical_bytes();
        assert!(bytes.starts_with(b"micro-ledger/transfer/v1\0"));
        assert_eq!(bytes.len(), FIXED_LEN + 2);
        assert!(bytes.ends_with(&[0, 2, b'h', b'i']));
    }

    #[test]
    fn sign_verify_and_stored_round_trip() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signed = transfer(&key).sign(&key);
        let id = signed.id();
        let back = SignedTransfer::from_stored_bytes(&signed.stored_bytes(), net());
        assert_eq!(back.as_ref(), Some(&signed));
        let v = signed.verify(&net()).unwrap();
        assert_eq!(v.id(), id);
        assert_eq!(v.total(), Tokens(11));
    }

    #[test]
    fn stored_bytes_reject_garbage() {
        assert!(SignedTransfer::from_stored_bytes(&[], net()).is_none());
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut bytes = transfer(&key).sign(&key).stored_bytes();
        bytes.insert(FIXED_LEN - STORED_SKIP, b'x'); // memo longer than its length prefix says
        assert!(SignedTransfer::from_stored_bytes(&bytes, net()).is_none());
    }

    #[test]
    fn stateless_rules() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let with = |f: &dyn Fn(&mut Transfer)| {
            let mut t = transfer(&key);
            f(&mut t);
            t.sign(&key).verify(&net()).err()
        };
        assert!(matches!(
            with(&|t| t.network = NetworkId([6; 32])),
            Some(TransferError::WrongNetwork { .. })
        ));
        assert_eq!(
            with(&|t| t.amount = Tokens(0)),
            Some(TransferError::ZeroAmount)
        );
        assert_eq!(with(&|t| t.seq = 0), Some(TransferError::ZeroSeq));
        assert!(matches!(
            with(&|t| t.to = t.from),
            Some(TransferError::SelfTransfer(_))
        ));
        assert!(matches!(
            with(&|t| t.memo = "m".repeat(MAX_MEMO_BYTES + 1)),
            Some(TransferError::MemoTooLong { len: 257, .. })
        ));
        assert_eq!(with(&|t| t.memo = "m".repeat(MAX_MEMO_BYTES)), None);
        assert!(matches!(
            with(&|t| t.amount = Tokens(u64::MAX)),
            Some(TransferError::AmountOverflow { .. })
        ));
    }

    #[test]
    fn signature_checks() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut signed = transfer(&key).sign(&key);
        signed.signature[3] ^= 1;
        assert!(matches!(
            signed.verify(&net()),
            Err(TransferError::BadSignature(_))
        ));
        // Signed by someone else.
        let other = SigningKey::from_bytes(&[2; 32]);
        let signed = transfer(&key).sign(&other);
        assert!(matches!(
            signed.verify(&net()),
            Err(TransferError::BadSignature(_))
        ));
        // Tampered after signing.
        let mut signed = transfer(&key).sign(&key);
        signed.transfer.amount = Tokens(11);
        assert!(matches!(
            signed.verify(&net()),
            Err(TransferError::BadSignature(_))
        ));
    }
}
