//! [`LedgerConfig`]: the ledger's bounds.

/// Bounds on what the ledger keeps for transfers it cannot apply yet and for acks. The defaults
/// suit a single laptop and a network of thousands of accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerConfig {
    /// Most held (not yet applicable) transfers kept per sender. When full, a lower seq evicts
    /// the highest held one (lower seqs unblock progress; the evicted one is re-fetched by
    /// anti-entropy); otherwise the new one is refused with
    /// [`crate::LedgerError::HoldBackFull`]. Default 64.
    pub max_held_per_account: usize,
    /// Most held transfers kept in total, same policy. Default 10 000.
    pub max_held_total: usize,
    /// Most acks stored per transfer; further ones are refused with
    /// [`crate::LedgerError::TooManyAcks`]. The node should drop acks from accounts of zero
    /// weight before recording them, so junk keys cannot use up this budget. Default 1024.
    pub max_acks_per_transfer: usize,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            max_held_per_account: 64,
            max_held_total: 10_000,
            max_acks_per_transfer: 1024,
        }
    }
}
