#![warn(missing_docs)]

//! The Micro Network token ledger: signed transfers, per-account order, equivocation proofs and
//! finality by reputation weight — the pure replicated state machine and its sled persistence.
//!
//! It is **not** a blockchain: there is no global order and no consensus, only each account's
//! own sequence numbers. It does no networking either: the node gossips transfers on
//! `micro/ledger/1`, runs anti-entropy on `/micro/ledger-sync/1.0.0`, signs acks with its key
//! and drives the CLI; this crate gives it the types, the [`wire`] codecs, the rules and the
//! queries ([`Ledger::heads`], [`Ledger::transfers_from`], [`Ledger::proofs`]) to do so.
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use micro_ledger::{Account, Applied, Genesis, Ledger, Tokens};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let alice = SigningKey::from_bytes(&[1; 32]);
//! let bob = Account::from(&SigningKey::from_bytes(&[2; 32]));
//! let genesis = Genesis::local_dev([(Account::from(&alice), Tokens(100))]);
//!
//! // Alice's node: sign, apply and flush; then gossip `sent` (e.g. `wire::encode_transfer`).
//! let db = sled::Config::new().temporary(true).open()?;
//! let mut mine = Ledger::open(&db, genesis.clone())?;
//! let (sent, _) = mine.transfer(&alice, bob, Tokens(30), Tokens(1), "coffee")?;
//!
//! // Any other replica applies what it receives.
//! let db = sled::Config::new().temporary(true).open()?;
//! let mut theirs = Ledger::open(&db, genesis)?;
//! assert!(matches!(theirs.apply(sent)?, Applied::Applied { .. }));
//! assert_eq!(theirs.balance(&bob), Tokens(30));
//! assert_eq!(theirs.snapshot(), mine.snapshot());
//! # Ok(())
//! # }
//! ```
//!
//! # Rules
//! A [`Transfer`] moves `amount` (≥ 1) from `from` to `to` (≠ `from`) plus a `fee` to the genesis
//! treasury, as `from`'s `seq`-th transfer (from 1), on one network ([`NetworkId`], the genesis
//! hash). The sender signs its canonical, domain-separated bytes ([`Transfer::canonical_bytes`]);
//! signatures are checked with ed25519 `verify_strict`. Supply is fixed at genesis and
//! conserved: every balance change is checked arithmetic, and `sum_of_balances() ==
//! total_supply()` always holds.
//!
//! Replicas receive transfers in any order, duplicated, some invalid. [`Ledger::apply`]:
//! - invalid (signature, network, amount 0, seq 0, self-transfer, memo > 256 bytes,
//!   amount + fee overflow) → [`LedgerError::Invalid`], nothing changes;
//! - a slot `(from, seq)` already known with the same transfer → [`Applied::Duplicate`];
//!   with a different one → an equivocation ([`Applied::Equivocation`]);
//! - not its sender's next seq, or its next seq but not covered by the balance → held
//!   ([`Applied::Held`]); an unfunded transfer is held, not refused, because an incoming
//!   transfer that has not arrived yet may fund it;
//! - otherwise applied, and then every held transfer this makes applicable is applied too
//!   (the cascade, iterative).
//!
//! **Convergence.** Applying a transfer only lowers its sender's balance and raises others', so
//! a transfer that is applicable stays applicable whatever else is applied first. The applied
//! set is therefore the unique fixpoint of "apply what is applicable" over the set of known
//! transfers and frozen accounts, whatever the arrival order (see `ledger/settle.rs`). Two
//! replicas that accepted the same transfers and proofs have equal [`Snapshot`]s; the property
//! tests check this on shuffled, duplicated inputs.
//!
//! **Equivocation.** Two different valid signed transfers with the same `(from, seq)` make an
//! [`EquivocationProof`], which anyone can verify and [`Ledger::apply_proof`] accepts from the
//! network. The account is frozen from that seq: both transfers and all later ones from it are
//! void everywhere. If one of them had been applied here, its effects and everything that
//! depended on them are undone by recomputing the state from genesis and the stored transfers
//! with the same fixpoint (O(history); equivocations take a cheating sender, so they are rare).
//! [`Ledger::recompute`] exposes that recompute; on a healthy ledger it changes nothing.
//!
//! **Finality.** Nodes sign an [`Ack`] for each transfer they applied; [`Ledger::status`] calls
//! a transfer [`TransferStatus::Final`] once its distinct ackers weigh more than 2/3 of the
//! total [`Weights`], and records that so it sticks when weights change.
//!
//! # Persistence
//! sled trees named `ledger-*` on a [`sled::Db`] the node passes in. Each apply (cascade and
//! recompute included), each batch, each proof commits as one multi-tree sled transaction, so a
//! `kill -9` never leaves half a transfer applied. Held transfers are persisted (bounded).
//! Opening a database made from another genesis fails. Only [`Ledger::transfer`] flushes before
//! returning — a node must never reuse the seq of a transfer it may have gossiped; remote
//! transfers lost in a crash come back through anti-entropy.
//!
//! # Throughput
//! Two costs dominate: ed25519 `verify_strict` (pure — [`SignedTransfer::verify`] can run on
//! other threads, feeding [`Ledger::apply_verified`]) and sled writes (per applied transfer:
//! the transfer, its id index entry, one history entry per party, and the touched balances).
//! [`Ledger::apply_batch`] commits many transfers in one transaction. Measure with
//! `cargo run --release -p micro-ledger --example ledger_bench`.
//!
//! # Where this differs from the original brief, and why
//! - **Finality versus equivocation.** "Both void" and "final is sticky" conflict when a sender
//!   equivocates after one of its transfers was acked by > 2/3: no honest majority can ack both
//!   halves, but one half can be final before the other surfaces. The state must stay a
//!   function of the set of transfers (finality is a local, weight-dependent judgement), so the
//!   proof wins: the transfer becomes `Void` even if it was `Final`. Finality is sticky against
//!   weight changes only. A `Final → Void` flip is evidence of fraud the node should surface.
//! - **Hold-back eviction.** A strict bound could deadlock an account: its gap slots full of
//!   high seqs, the missing low seq refused forever. When the bound is reached, a lower seq of
//!   the same sender evicts that sender's highest held seq (it is re-fetched later); only a seq
//!   above all of them is refused with [`LedgerError::HoldBackFull`]. A recompute may exceed
//!   the bound (it only re-holds transfers that were accepted before).
//! - **Held transfers of unfunded fresh keys** cost an attacker nothing and can fill the global
//!   hold-back; the node should rate-limit by peer reputation.
//! - **[`TransferStatus::Held`]** is a fourth status next to Pending/Final/Void, and history uses
//!   [`TransferState`] (no weights needed); `status` returns `None` for unknown ids.
//! - **Seq 0 is invalid** ([`TransferError::ZeroSeq`]); seqs start at 1.
//! - **Transfers at or past a frozen seq** are refused with [`LedgerError::Frozen`] and not
//!   stored (they are void anyway, and storing them would let a frozen account fill the disk).
//! - **Acks** are bounded per transfer ([`LedgerConfig::max_acks_per_transfer`]); the node
//!   should drop zero-weight ackers first so junk keys cannot exhaust the budget.
//! - **[`Ledger::transfer`]** picks the seq after every transfer known from the signer (held
//!   ones included, so it never self-equivocates), refuses to sign what the balance cannot
//!   cover, and returns the [`Applied`] outcome with the transfer (its cascade needs acks).
//!   [`Applied::Equivocation`] and [`ProofOutcome::Frozen`] also list the `reverted` ids.
//! - **TransferId covers the signature**, as asked: two signatures over the same transfer are
//!   two signed transfers, hence an equivocation. Honest (RFC 8032, deterministic) signers never
//!   produce that.
//! - **Genesis**: duplicate accounts are rejected, the name is 1–64 bytes, and the network id
//!   hashes the accounts sorted, so reordering the JSON does not change the network.
//! - **History** is ordered by arrival at this replica (there is no global time).
//! - **Additions** the node will want: [`Ledger::apply_verified`] (verify elsewhere),
//!   [`Ledger::open_with`] and [`LedgerConfig`] (bounds), [`Ledger::find`] (by id),
//!   [`Ledger::snapshot`] and [`Ledger::recompute`] (diagnostics), [`Ledger::held_count`] and
//!   [`Ledger::flush`]. [`Ledger::status`] takes `&self`: recording finality is a sled write
//!   through a shared reference.

mod account;
mod ack;
mod config;
mod error;
mod genesis;
mod hex;
mod history;
mod ledger;
mod outcome;
mod proof;
mod signer;
mod tokens;
mod transfer;
pub mod wire;

pub use account::Account;
pub use ack::{Ack, AckError, Weights, is_final};
pub use config::LedgerConfig;
pub use error::LedgerError;
pub use genesis::{Genesis, GenesisError, NetworkId};
pub use hex::ParseHexError;
pub use history::{Head, HistoryDigest};
pub use ledger::Ledger;
pub use outcome::{
    AckOutcome, Applied, Direction, HistoryEntry, HoldReason, ProofOutcome, Snapshot,
    TransferState, TransferStatus,
};
pub use proof::{EquivocationProof, ProofError};
pub use signer::Signer;
pub use tokens::Tokens;
pub use transfer::{
    MAX_MEMO_BYTES, SignedTransfer, Transfer, TransferError, TransferId, VerifiedTransfer,
};
pub use wire::WireError;
