//! The node's ledger messages: the gossip envelope on [`super::LEDGER_TOPIC`] and the
//! anti-entropy request and response of `/micro/ledger-sync/1.0.0`. Transfers, acks and
//! proofs inside are `micro-ledger`'s own wire types.

use micro_ledger::wire::{AckMsg, EquivocationProofMsg, SignedTransferMsg};
use prost::Message;

/// One gossip message: any mix of transfers, acks and proofs.
#[derive(Clone, PartialEq, Message)]
pub struct Gossip {
    /// New transfers.
    #[prost(message, repeated, tag = "1")]
    pub transfers: Vec<SignedTransferMsg>,
    /// Acks of applied transfers.
    #[prost(message, repeated, tag = "2")]
    pub acks: Vec<AckMsg>,
    /// Equivocation proofs.
    #[prost(message, repeated, tag = "3")]
    pub proofs: Vec<EquivocationProofMsg>,
}

/// An anti-entropy question.
#[derive(Clone, PartialEq, Message)]
pub struct SyncRequest {
    /// What is asked.
    #[prost(oneof = "Ask", tags = "1, 2, 3, 4")]
    pub ask: Option<Ask>,
}

/// The questions of [`SyncRequest`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Ask {
    /// A page of account heads after an account.
    #[prost(message, tag = "1")]
    Heads(HeadsRequest),
    /// An account's transfers from a seq, with their acks.
    #[prost(message, tag = "2")]
    Range(RangeRequest),
    /// Every equivocation proof.
    #[prost(message, tag = "3")]
    Proofs(ProofsRequest),
    /// The acks held for some transfers.
    #[prost(message, tag = "4")]
    Acks(AcksRequest),
}

/// "Which acks do you hold for these transfers?" (transfers pending finality here).
#[derive(Clone, PartialEq, Message)]
pub struct AcksRequest {
    /// Transfer ids, 32 bytes each.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub ids: Vec<Vec<u8>>,
}

/// "Which accounts after `after` do you know, and their next seq?"
#[derive(Clone, PartialEq, Message)]
pub struct HeadsRequest {
    /// The last account of the previous page; empty for the first page.
    #[prost(bytes = "vec", tag = "1")]
    pub after: Vec<u8>,
    /// Most heads wanted.
    #[prost(uint32, tag = "2")]
    pub limit: u32,
}

/// "Send `account`'s transfers from `from_seq`."
#[derive(Clone, PartialEq, Message)]
pub struct RangeRequest {
    /// The sender account.
    #[prost(bytes = "vec", tag = "1")]
    pub account: Vec<u8>,
    /// The first seq wanted.
    #[prost(uint64, tag = "2")]
    pub from_seq: u64,
    /// Most transfers wanted.
    #[prost(uint32, tag = "3")]
    pub limit: u32,
}

/// "Send your equivocation proofs."
#[derive(Clone, PartialEq, Message)]
pub struct ProofsRequest {}

/// One account's next seq and history digest.
#[derive(Clone, PartialEq, Message)]
pub struct Head {
    /// The account.
    #[prost(bytes = "vec", tag = "1")]
    pub account: Vec<u8>,
    /// Its next seq here.
    #[prost(uint64, tag = "2")]
    pub next_seq: u64,
    /// The digest of its applied history here (32 bytes; empty from a node that predates
    /// it).
    #[prost(bytes = "vec", tag = "3")]
    pub history: Vec<u8>,
}

/// An anti-entropy answer; which fields are set depends on the question.
#[derive(Clone, PartialEq, Message)]
pub struct SyncResponse {
    /// Heads, in account order.
    #[prost(message, repeated, tag = "1")]
    pub heads: Vec<Head>,
    /// Transfers, in seq order.
    #[prost(message, repeated, tag = "2")]
    pub transfers: Vec<SignedTransferMsg>,
    /// Acks of those transfers.
    #[prost(message, repeated, tag = "3")]
    pub acks: Vec<AckMsg>,
    /// Proofs.
    #[prost(message, repeated, tag = "4")]
    pub proofs: Vec<EquivocationProofMsg>,
}
