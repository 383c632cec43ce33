//! The metering books, in sled: per provider what this node owes (`metering-out`), per
//! caller what it owes this node (`metering-in`). Fixed-size big-endian records keyed by the
//! counterparty's account.

use micro_ledger::Account;

/// Tree of what this node owes its providers.
pub(super) const OUT_TREE: &str = "metering-out";
/// Tree of what callers owe this node.
pub(super) const IN_TREE: &str = "metering-in";

/// Receipt numbers remembered below the highest seen: a receipt up to this far behind the
/// newest (calls overtaking each other) is still accepted once; an older one is refused.
pub(super) const WINDOW: u64 = 64;

/// What this node owes one provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owed {
    /// The last receipt number signed for it.
    pub seq: u64,
    /// Tokens it charged (the sum of its `micro-charged` answers, each at most the receipt).
    pub charged: u64,
    /// Tokens paid to it by settlement transfers.
    pub paid: u64,
}

impl Owed {
    /// Charged and not paid yet.
    pub fn unpaid(&self) -> u64 {
        self.charged.saturating_sub(self.paid)
    }

    pub(super) fn encode(&self) -> [u8; 24] {
        let mut out = [0; 24];
        out[..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..16].copy_from_slice(&self.charged.to_be_bytes());
        out[16..].copy_from_slice(&self.paid.to_be_bytes());
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<Self> {
        let b: &[u8; 24] = bytes.try_into().ok()?;
        Some(Self {
            seq: u64_at(b, 0),
            charged: u64_at(b, 8),
            paid: u64_at(b, 16),
        })
    }
}

/// What one caller owes this node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Due {
    /// The highest receipt number used.
    pub highest: u64,
    /// Bit `i` set: receipt `highest - i` was used (bit 0 is `highest` itself).
    pub window: u64,
    /// Tokens billed (successful paid calls).
    pub billed: u64,
    /// Tokens received in settlement transfers.
    pub settled: u64,
    /// Paid calls served.
    pub calls: u64,
}

impl Due {
    /// Billed and not settled yet.
    pub fn unsettled(&self) -> u64 {
        self.billed.saturating_sub(self.settled)
    }

    /// Marks receipt `seq` used; false if it was used before or is older than the window.
    pub fn use_seq(&mut self, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            self.window = if shift >= WINDOW {
                0
            } else {
                self.window << shift
            };
            self.window |= 1;
            self.highest = seq;
            return true;
        }
        let behind = self.highest - seq;
        if behind >= WINDOW || self.window & (1 << behind) != 0 {
            return false;
        }
        self.window |= 1 << behind;
        true
    }

    pub(super) fn encode(&self) -> [u8; 40] {
        let mut out = [0; 40];
        for (i, v) in [
            self.highest,
            self.window,
            self.billed,
            self.settled,
            self.calls,
        ]
        .into_iter()
        .enumerate()
        {
            out[i * 8..(i + 1) * 8].copy_from_slice(&v.to_be_bytes());
        }
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<Self> {
        let b: &[u8; 40] = bytes.try_into().ok()?;
        Some(Self {
            highest: u64_at(b, 0),
            window: u64_at(b, 8),
            billed: u64_at(b, 16),
            settled: u64_at(b, 24),
            calls: u64_at(b, 32),
        })
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(v)
}

/// Reads, changes and writes one record atomically (sled compare-and-swap loop); nothing is
/// written when the change leaves it as it was.
pub(super) fn update<T: Copy + Default, R>(
    tree: &sled::Tree,
    key: &Account,
    decode: fn(&[u8]) -> Option<T>,
    encode: fn(&T) -> Vec<u8>,
    mut change: impl FnMut(&mut T) -> R,
) -> sled::Result<R> {
    loop {
        let old = tree.get(key.0)?;
        let mut value = old.as_deref().and_then(decode).unwrap_or_default();
        let result = change(&mut value);
        let new = encode(&value);
        let unchanged = match &old {
            Some(old) => old.as_ref() == new.as_slice(),
            None => new == encode(&T::default()),
        };
        if unchanged {
            return Ok(result);
        }
        match tree.compare_and_swap(key.0, old, Some(new))? {
            Ok(()) => return Ok(result),
            Err(_) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_receipt_number_is_used_once() {
        let mut due = Due::default();
        assert!(due.use_seq(1));
        assert!(!due.use_seq(1));
        assert!(due.use_seq(3));
        assert!(
            due.use_seq(2),
            "a call overtaken by a later one still counts"
        );
        assert!(!due.use_seq(2));
        assert!(!due.use_seq(0));
    }

    #[test]
    fn numbers_older_than_the_window_are_refused() {
        let mut due = Due::default();
        assert!(due.use_seq(1000));
        assert!(!due.use_seq(1000 - WINDOW));
        assert!(due.use_seq(1000 - WINDOW + 1));
    }

    #[test]
    fn records_roundtrip() {
        let owed = Owed {
            seq: 1,
            charged: 2,
            paid: 3,
        };
        assert_eq!(Owed::decode(&owed.encode()), Some(owed));
        let due = Due {
            highest: 9,
            window: 0b101,
            billed: 7,
            settled: 5,
            calls: 3,
        };
        assert_eq!(Due::decode(&due.encode()), Some(due));
        assert_eq!(Due::decode(&[0; 39]), None);
    }

    proptest! {
        /// Whatever order receipts arrive in, none is accepted twice.
        #[test]
        fn no_receipt_number_is_accepted_twice(seqs in proptest::collection::vec(1u64..200, 0..400)) {
            let mut due = Due::default();
            let mut accepted = std::collections::HashSet::new();
            for seq in seqs {
                if due.use_seq(seq) {
                    prop_assert!(accepted.insert(seq), "receipt {} accepted twice", seq);
                }
            }
        }
    }
}
