//! [`LedgerError`]: everything the ledger can refuse or fail at.

use crate::{
    Account, AckError, GenesisError, NetworkId, ProofError, Tokens, TransferError, TransferId,
};

/// Why a ledger operation did not happen. Refusals of one transfer (everything but
/// `Storage`, `Corrupt`, `GenesisMismatch`, `Genesis` and `Poisoned`) leave the state unchanged.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The transfer breaks a stateless rule or its signature is bad.
    #[error("invalid transfer: {0}")]
    Invalid(#[from] TransferError),
    /// The sender equivocated at `from_seq`; this transfer (seq ≥ `from_seq`) is void.
    #[error("account {account} is frozen from seq {from_seq} after an equivocation")]
    Frozen {
        /// The frozen account.
        account: Account,
        /// Its first void seq.
        from_seq: u64,
    },
    /// The transfer cannot be applied yet and the hold-back bounds are reached; the node
    /// should fetch it again later through anti-entropy.
    #[error(
        "hold-back full for {account} seq {seq} ({held_for_account} held for it, {held_total} in total)"
    )]
    HoldBackFull {
        /// The sender.
        account: Account,
        /// The refused seq.
        seq: u64,
        /// Transfers held for this sender.
        held_for_account: usize,
        /// Transfers held in total.
        held_total: usize,
    },
    /// The equivocation proof proves nothing.
    #[error("invalid equivocation proof: {0}")]
    Proof(#[from] ProofError),
    /// The ack's signature is bad.
    #[error("invalid ack: {0}")]
    Ack(#[from] AckError),
    /// No transfer with this id is known here.
    #[error("unknown transfer {0}")]
    UnknownTransfer(TransferId),
    /// The transfer is known but not applied here (held or void), so it cannot be acked.
    #[error("transfer {0} is not applied on this replica")]
    NotApplied(TransferId),
    /// The transfer already has the maximum number of stored acks.
    #[error("transfer {id} already has {max} acks")]
    TooManyAcks {
        /// The transfer.
        id: TransferId,
        /// The bound ([`crate::LedgerConfig::max_acks_per_transfer`]).
        max: usize,
    },
    /// A local transfer would not be applicable: the balance does not cover it.
    #[error("{account} has {balance} tokens, the transfer needs {needed}")]
    InsufficientFunds {
        /// The sender.
        account: Account,
        /// Its balance.
        balance: Tokens,
        /// Amount plus fee.
        needed: Tokens,
    },
    /// The genesis is invalid.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The database was created for another network.
    #[error("database holds the ledger of network {stored}, but the genesis given is {given}")]
    GenesisMismatch {
        /// Network in the database.
        stored: NetworkId,
        /// Network of the genesis passed to `open`.
        given: NetworkId,
    },
    /// sled failed.
    #[error("ledger storage: {0}")]
    Storage(#[from] sled::Error),
    /// Stored data breaks an invariant the ledger keeps (a bug or a damaged database).
    #[error("corrupt ledger data: {0}")]
    Corrupt(String),
    /// A storage failure left the in-memory state unknown and reloading it failed too; reopen
    /// the ledger.
    #[error("ledger state is unknown after a storage failure; reopen it")]
    Poisoned,
}
