//! What the ledger reports back: the outcome of applying a transfer, a proof or an ack, and the
//! state of a transfer as history and finality queries see it.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Account, EquivocationProof, HistoryDigest, SignedTransfer, Tokens, TransferId};

/// The outcome of an accepted transfer; tells the node what to gossip and what to ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied now. `cascade` lists held transfers that became applicable as a result and were
    /// applied too, in order. Gossip the transfer; ack it and the cascade.
    Applied {
        /// The transfer.
        id: TransferId,
        /// Held transfers applied as a consequence.
        cascade: Vec<TransferId>,
    },
    /// Valid but not applicable yet; kept until it is. Gossip it; do not ack it yet.
    Held {
        /// The transfer.
        id: TransferId,
        /// What it waits for.
        reason: HoldReason,
    },
    /// Already known here (applied or held); nothing changed. Do not gossip it again.
    Duplicate {
        /// The transfer.
        id: TransferId,
    },
    /// A different transfer with the same sender and seq was known: the sender is now frozen
    /// from that seq. Gossip the proof. `reverted` lists transfers that had been applied here
    /// and no longer are (voided, or unfunded by what was voided).
    Equivocation {
        /// Both transfers.
        proof: Box<EquivocationProof>,
        /// Previously applied transfers that are not applied any more.
        reverted: Vec<TransferId>,
    },
}

/// Why a valid transfer is held rather than applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldReason {
    /// An earlier seq of the sender is missing.
    Gap,
    /// It is the sender's next seq but the balance does not cover amount + fee (yet: an
    /// incoming transfer may fund it).
    Unfunded,
}

/// The outcome of [`crate::Ledger::apply_proof`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofOutcome {
    /// The account is now frozen from `from_seq`. Gossip the proof.
    Frozen {
        /// The equivocating account.
        account: Account,
        /// Its first void seq.
        from_seq: u64,
        /// Previously applied transfers that are not applied any more.
        reverted: Vec<TransferId>,
    },
    /// The account was already frozen at or before this seq; nothing changed.
    AlreadyFrozen {
        /// The equivocating account.
        account: Account,
        /// Its first void seq (as already known).
        from_seq: u64,
    },
}

/// The outcome of [`crate::Ledger::record_ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// Stored.
    Recorded,
    /// This acker's ack of this transfer was already stored.
    Duplicate,
    /// The transfer is already final here; the ack is stored for replicas that lack it.
    AlreadyFinal,
}

/// Where a known transfer stands on this replica, without weighing acks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferState {
    /// Applied; not (yet) known to be final.
    Applied,
    /// Applied, and acked by more than 2/3 of the weight at some point.
    Final,
    /// Valid, waiting.
    Held(HoldReason),
    /// Void: its sender equivocated at or before its seq.
    Void,
}

/// Finality of a transfer, as [`crate::Ledger::status`] reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TransferStatus {
    /// Applied; the acks so far carry `acked_weight` of `total`.
    Pending {
        /// Sum of the weights of distinct ackers.
        acked_weight: f64,
        /// Total weight.
        total: f64,
    },
    /// Applied and acked by more than 2/3 of the total weight. Sticky: later weight changes
    /// do not undo it (only an equivocation proof voiding it can, see the crate doc).
    Final,
    /// Valid but not applied yet.
    Held(HoldReason),
    /// Void after an equivocation.
    Void,
}

/// Whether a history entry was sent or received by the account asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The account is the sender.
    Sent,
    /// The account is the recipient.
    Received,
}

/// One line of an account's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The transfer's id.
    pub id: TransferId,
    /// The transfer.
    pub transfer: SignedTransfer,
    /// Sent or received.
    pub direction: Direction,
    /// Where it stands here.
    pub state: TransferState,
}

/// The whole replicated state, for comparing replicas in tests and diagnostics. Two replicas
/// that accepted the same set of transfers and proofs have equal snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Balance and next seq of every account not in its initial state (0 tokens, seq 1).
    pub accounts: BTreeMap<Account, (Tokens, u64)>,
    /// Frozen accounts and their first void seq.
    pub frozen: BTreeMap<Account, u64>,
    /// Ids of the held transfers.
    pub held: BTreeSet<TransferId>,
    /// The history digest of every account that sent something.
    pub histories: BTreeMap<Account, HistoryDigest>,
}
