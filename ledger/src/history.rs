//! What anti-entropy compares per account: its next seq and a digest of its applied history.

use sha2::{Digest, Sha256};

use crate::{Account, TransferId};

/// Domain separation of the history chain.
const DOMAIN: &[u8] = b"micro-ledger-history/1\0";

/// A digest of an account's applied history: a sha256 chain over the ids of its transfers
/// from seq 1 up to its next seq (all zeros before the first). Two replicas at the same next
/// seq with different digests disagree about some transfer of that account — which only an
/// equivocating sender can cause — even where balances alone cannot show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HistoryDigest(pub [u8; 32]);

impl HistoryDigest {
    /// The digest after `id` is applied on top of `self`.
    pub fn extend(&self, id: &TransferId) -> HistoryDigest {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(self.0);
        h.update(id.0);
        HistoryDigest(h.finalize().into())
    }
}

/// One account's head: its next seq and the digest of the history before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The account.
    pub account: Account,
    /// One past its last applied transfer.
    pub next_seq: u64,
    /// The digest of its applied transfers `1..next_seq`.
    pub history: HistoryDigest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_depends_on_every_id_and_their_order() {
        let (a, b) = (TransferId([1; 32]), TransferId([2; 32]));
        let zero = HistoryDigest::default();
        let ab = zero.extend(&a).extend(&b);
        assert_ne!(ab, zero.extend(&b).extend(&a));
        assert_ne!(ab, zero.extend(&a).extend(&a));
        assert_eq!(ab, zero.extend(&a).extend(&b));
        assert_ne!(zero.extend(&a), zero);
    }
}
