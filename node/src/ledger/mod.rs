//! The node's token ledger: `micro-ledger`'s state machine on the network.
//!
//! New transfers, acks and equivocation proofs spread on [`LEDGER_TOPIC`] (each checked before
//! it is forwarded: an invalid one is rejected in gossip validation and costs its forwarder
//! reputation); anti-entropy over `/micro/ledger-sync/1.0.0` ([`sync`]) repairs what gossip
//! missed, e.g. after a partition. Every node acks each transfer it applies; a transfer is final
//! once its ackers hold more than 2/3 of the reputation weight this node computes.
//!
//! The ledger sits behind a mutex held only for one synchronous ledger operation at a time
//! (microseconds; a recompute after an equivocation is the rare long one).

mod sync;
pub mod wire;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use libp2p::identity::Keypair;
use micro_ledger::{
    Account, Ack, Applied, EquivocationProof, Genesis, HistoryEntry, Ledger, LedgerError,
    ProofOutcome, SignedTransfer, Tokens, TransferStatus, Weights,
};
use micro_overlay::{GossipMessage, MessageAcceptance, Overlay, PeerId};
use micro_reputation::{Penalty, Scores};
use prost::Message;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::reputation::NodeReputation;

pub use micro_ledger;

/// The gossipsub topic of transfers, acks and proofs.
pub const LEDGER_TOPIC: &str = "micro/ledger/1";

/// The ledger's knobs.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// The genesis file (JSON); `None` = the built-in local development network, whose
    /// treasury key is public (see [`micro_ledger::Genesis::local_dev`]).
    pub genesis: Option<PathBuf>,
    /// How often anti-entropy asks a peer what this node misses.
    pub sync_interval: Duration,
    /// Longest wait for one sync answer.
    pub sync_timeout: Duration,
    /// Account heads per sync page.
    pub sync_page: u32,
    /// Most pages of heads read in one sync round (bounds a round's work).
    pub sync_pages: u32,
    /// Transfers per range answer.
    pub sync_range: u32,
    /// Largest gossip message accepted, in bytes.
    pub max_gossip_bytes: usize,
    /// Most items (transfers + acks + proofs) in one gossip message.
    pub max_gossip_items: usize,
    /// Acks kept for transfers not applied here yet (gossip may bring an ack before its
    /// transfer); beyond it the oldest is dropped.
    pub max_early_acks: usize,
    /// How long acks of transfers that arrived by gossip or sync wait to travel together in
    /// one gossip message (the node's own transfers carry their ack at once).
    pub ack_flush_interval: Duration,
}

impl Default for LedgerConfig {
    /// The local development genesis; sync every 5 s in pages of 256 heads (at most 64
    /// pages a round) and ranges of 128 transfers; 64 KiB, 256-item gossip messages; 16 384
    /// early acks; acks batched for 100 ms.
    fn default() -> Self {
        Self {
            genesis: None,
            sync_interval: Duration::from_secs(5),
            sync_timeout: Duration::from_secs(10),
            sync_page: 256,
            sync_pages: 64,
            sync_range: 128,
            max_gossip_bytes: 64 * 1024,
            max_gossip_items: 256,
            max_early_acks: 16 * 1024,
            ack_flush_interval: Duration::from_millis(100),
        }
    }
}

/// Transfers remembered as not final yet, for ack anti-entropy.
const MAX_UNSETTLED: usize = 4096;
/// Ledger gossip messages waiting for the ledger's worker at most.
const MAX_INBOX: usize = 4096;
/// Gossip messages applied under one lock of the ledger at most.
const GOSSIP_BATCH: usize = 128;

/// A peer's transfers, acks and proofs, decoded.
type Items = (Vec<SignedTransfer>, Vec<Ack>, Vec<EquivocationProof>);

/// Supply of the built-in local development network, all in its treasury at genesis.
pub const LOCAL_DEV_SUPPLY: u64 = 1_000_000_000;

/// The genesis of the built-in local development network.
pub fn local_dev_genesis() -> Genesis {
    Genesis::local_dev([(Genesis::local_dev_treasury(), Tokens(LOCAL_DEV_SUPPLY))])
}

/// Why the ledger could not start or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeLedgerError {
    /// The genesis file could not be read.
    #[error("genesis file {path}: {source}")]
    GenesisFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The genesis is not valid.
    #[error("genesis: {0}")]
    Genesis(#[from] micro_ledger::GenesisError),
    /// The node key is not ed25519 (ledger accounts are ed25519 keys).
    #[error("the node key is not an ed25519 key")]
    NotEd25519,
    /// The ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The node's key as a ledger signer.
struct NodeSigner<'a> {
    key: &'a Keypair,
    account: Account,
}

impl micro_ledger::Signer for NodeSigner<'_> {
    fn account(&self) -> Account {
        self.account
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let signature = self
            .key
            .sign(msg)
            .expect("ed25519 signing cannot fail; the key was checked at open");
        signature
            .try_into()
            .expect("an ed25519 signature is 64 bytes")
    }
}

/// The ledger account of `peer`, if its id carries an ed25519 key.
pub fn account_of(peer: &PeerId) -> Option<Account> {
    let key = crate::identity::public_key_of(peer)?;
    Some(Account(key.try_into_ed25519().ok()?.to_bytes()))
}

/// The peer whose ed25519 key is `account`.
///
/// Built from the bytes (a peer id of an ed25519 key is the identity multihash of the key's
/// protobuf encoding) without decompressing the curve point: finality looks up the weight of
/// every acker this way, and decompression made that the ledger's hottest path. An account
/// that is not a valid key maps to a peer id no node has, which weighs nothing.
pub fn peer_of(account: &Account) -> Option<PeerId> {
    // Multihash identity (0x00), length 36; protobuf PublicKey { Type = Ed25519 (1),
    // Data = 32 bytes }.
    let mut bytes = [0u8; 38];
    bytes[..6].copy_from_slice(&[0x00, 36, 0x08, 0x01, 0x12, 32]);
    bytes[6..].copy_from_slice(&account.0);
    PeerId::from_bytes(&bytes).ok()
}

/// Reputation scores as ledger weights.
struct ScoreWeights(Arc<Scores>);

impl Weights for ScoreWeights {
    fn weight(&self, account: &Account) -> f64 {
        peer_of(account).map_or(0.0, |p| self.0.weight(&p).0 as f64)
    }

    fn total(&self) -> f64 {
        self.0.total().0 as f64
    }
}

/// One transfer in `ledger history`, with its standing here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryView {
    /// The transfer id (hex).
    pub id: String,
    /// Sender.
    pub from: Account,
    /// Recipient.
    pub to: Account,
    /// Amount.
    pub amount: u64,
    /// Fee.
    pub fee: u64,
    /// The sender's seq.
    pub seq: u64,
    /// Memo.
    pub memo: String,
    /// `sent` or `received`, seen from the account asked about.
    pub direction: String,
    /// `final`, `pending`, `held` or `void`.
    pub status: String,
    /// Share of the total weight that acked it, for pending transfers.
    pub acked: Option<f64>,
}

struct Inner {
    ledger: Mutex<Ledger>,
    /// Acks of transfers not applied here yet; retried when their transfer applies.
    early_acks: Mutex<EarlyAcks>,
    /// Gossip waiting for the ledger's worker ([`NodeLedger::run_gossip`]).
    inbox: tokio::sync::mpsc::Sender<GossipMessage>,
    /// Its other end, taken by the worker.
    inbox_rx: Mutex<Option<tokio::sync::mpsc::Receiver<GossipMessage>>>,
    /// Acks waiting to be gossiped together (see [`LedgerConfig::ack_flush_interval`]).
    outbox: Mutex<Vec<micro_ledger::wire::AckMsg>>,
    /// Transfers applied here and not final yet (bounded, oldest dropped): anti-entropy asks
    /// peers for their acks, since gossip may have missed some.
    unsettled: Mutex<std::collections::VecDeque<micro_ledger::TransferId>>,
    overlay: Overlay,
    key: Keypair,
    account: Account,
    reputation: NodeReputation,
    config: LedgerConfig,
    /// Told of every transfer to this node's account as it applies (metering counts
    /// settlements with it).
    incoming: std::sync::OnceLock<IncomingHook>,
}

/// A callback for transfers to this node's account.
pub type IncomingHook = Box<dyn Fn(&micro_ledger::Transfer) + Send + Sync>;

/// The node's ledger. Clone freely.
#[derive(Clone)]
pub struct NodeLedger(Arc<Inner>);

/// Acks that arrived before their transfer was applied here, by transfer, bounded.
#[derive(Default)]
struct EarlyAcks {
    by_transfer: std::collections::HashMap<micro_ledger::TransferId, Vec<Ack>>,
    /// Arrival order, for dropping the oldest when full.
    order: std::collections::VecDeque<micro_ledger::TransferId>,
    len: usize,
}

impl EarlyAcks {
    fn push(&mut self, ack: Ack, max: usize) {
        while self.len >= max {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(dropped) = self.by_transfer.remove(&oldest) {
                self.len -= dropped.len();
            }
        }
        let waiting = self.by_transfer.entry(ack.transfer).or_default();
        if waiting.is_empty() {
            self.order.push_back(ack.transfer);
        }
        waiting.push(ack);
        self.len += 1;
    }

    fn take(&mut self, id: &micro_ledger::TransferId) -> Vec<Ack> {
        let acks = self.by_transfer.remove(id).unwrap_or_default();
        self.len -= acks.len();
        acks
    }
}

/// What a batch of gossiped or synced items did.
#[derive(Default)]
struct Absorbed {
    /// Why an item was invalid, if one was.
    invalid: Option<String>,
    /// Acks this node signed for what it applied.
    acks: Vec<Ack>,
    /// Proofs found or taken that others should hear of.
    proofs: Vec<EquivocationProof>,
}

impl NodeLedger {
    /// Opens the ledger in `db` with the configured genesis.
    pub fn open(
        db: &sled::Db,
        overlay: Overlay,
        key: Keypair,
        reputation: NodeReputation,
        config: LedgerConfig,
    ) -> Result<Self, NodeLedgerError> {
        let genesis = match &config.genesis {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    NodeLedgerError::GenesisFile {
                        path: path.clone(),
                        source,
                    }
                })?;
                Genesis::from_json(&text)?
            }
            None => local_dev_genesis(),
        };
        let account = account_of(&key.public().to_peer_id()).ok_or(NodeLedgerError::NotEd25519)?;
        let ledger = Ledger::open(db, genesis)?;
        info!(network = %ledger.network(), %account, "ledger open");
        let (inbox, inbox_rx) = tokio::sync::mpsc::channel(MAX_INBOX);
        Ok(Self(Arc::new(Inner {
            ledger: Mutex::new(ledger),
            inbox,
            inbox_rx: Mutex::new(Some(inbox_rx)),
            early_acks: Mutex::new(EarlyAcks::default()),
            outbox: Mutex::new(Vec::new()),
            unsettled: Mutex::new(std::collections::VecDeque::new()),
            overlay,
            key,
            account,
            reputation,
            config,
            incoming: std::sync::OnceLock::new(),
        })))
    }

    /// Sets the callback told of every transfer to this node's account when it applies here
    /// (called with the ledger locked: it must be quick and must not call the ledger). Only
    /// the first call takes effect.
    pub fn on_incoming(&self, hook: IncomingHook) {
        if self.0.incoming.set(hook).is_err() {
            warn!("a ledger incoming-transfer hook was already set");
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.0.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn signer(&self) -> NodeSigner<'_> {
        NodeSigner {
            key: &self.0.key,
            account: self.0.account,
        }
    }

    /// Whether `topic` is the ledger's.
    pub fn owns(topic: &str) -> bool {
        topic == LEDGER_TOPIC
    }

    /// This node's account.
    pub fn account(&self) -> Account {
        self.0.account
    }

    /// The network (genesis hash) this ledger belongs to.
    pub fn network(&self) -> micro_ledger::NetworkId {
        self.ledger().network()
    }

    /// The balance of `account`.
    pub fn balance(&self, account: &Account) -> Tokens {
        self.ledger().balance(account)
    }

    /// The total supply (genesis) and the sum of all balances, which must be equal.
    pub fn supply(&self) -> Result<(Tokens, Tokens), NodeLedgerError> {
        let ledger = self.ledger();
        Ok((ledger.total_supply(), ledger.sum_of_balances()?))
    }

    /// The next seq of `account`.
    pub fn next_seq(&self, account: &Account) -> u64 {
        self.ledger().next_seq(account)
    }

    /// The digest of `account`'s applied history (what anti-entropy compares).
    pub fn history_digest(&self, account: &Account) -> micro_ledger::HistoryDigest {
        self.ledger().history_digest(account)
    }

    /// Whether `account` is frozen (it equivocated), and from which seq.
    pub fn frozen(&self, account: &Account) -> Option<u64> {
        self.ledger().frozen(account)
    }

    /// A snapshot of the whole replicated state, for comparing nodes.
    pub fn snapshot(&self) -> micro_ledger::Snapshot {
        self.ledger().snapshot()
    }

    /// Pays `amount` from this node's account to `to`: signed, applied, flushed, then
    /// gossiped with this node's ack.
    pub async fn transfer(
        &self,
        to: Account,
        amount: Tokens,
        memo: String,
    ) -> Result<SignedTransfer, NodeLedgerError> {
        let this = self.clone();
        let (transfer, acks) = tokio::task::spawn_blocking(move || {
            let signer = this.signer();
            let mut ledger = this.ledger();
            let (transfer, applied) = ledger.transfer(&signer, to, amount, Tokens::ZERO, memo)?;
            let acks = this.ack_applied(&mut ledger, &applied);
            Ok::<_, NodeLedgerError>((transfer, acks))
        })
        .await
        .map_err(|e| LedgerError::Corrupt(format!("transfer task failed: {e}")))??;
        info!(to = %transfer.transfer.to, amount = amount.0, seq = transfer.transfer.seq, "transfer sent");
        self.publish(wire::Gossip {
            transfers: vec![(&transfer).into()],
            acks: acks.iter().map(Into::into).collect(),
            proofs: Vec::new(),
        })
        .await;
        Ok(transfer)
    }

    /// Takes a transfer signed elsewhere (a wallet, a service's key): applied (or held) here,
    /// acked, and gossiped. An equivocation it reveals is gossiped as a proof and collapses
    /// the sender's reputation.
    pub async fn submit(&self, transfer: SignedTransfer) -> Result<Applied, NodeLedgerError> {
        let this = self.clone();
        let message: micro_ledger::wire::SignedTransferMsg = (&transfer).into();
        let (applied, acks) = tokio::task::spawn_blocking(move || {
            let mut ledger = this.ledger();
            let applied = ledger.apply(transfer)?;
            let acks = this.ack_applied(&mut ledger, &applied);
            Ok::<_, NodeLedgerError>((applied, acks))
        })
        .await
        .map_err(|e| LedgerError::Corrupt(format!("submit task failed: {e}")))??;
        let mut proofs = Vec::new();
        if let Applied::Equivocation { proof, .. } = &applied {
            if let Some(peer) = peer_of(&proof.account()) {
                self.0.reputation.collapse(peer);
            }
            proofs.push(proof.as_ref().into());
        }
        self.publish(wire::Gossip {
            transfers: vec![message],
            acks: acks.iter().map(Into::into).collect(),
            proofs,
        })
        .await;
        Ok(applied)
    }

    /// Signs and records acks for what `applied` applied; returns them to gossip.
    /// Also records the acks that were waiting for those transfers.
    fn ack_applied(&self, ledger: &mut Ledger, applied: &Applied) -> Vec<Ack> {
        let ids: Vec<micro_ledger::TransferId> = match applied {
            Applied::Applied { id, cascade } => std::iter::once(*id)
                .chain(cascade.iter().copied())
                .collect(),
            _ => Vec::new(),
        };
        {
            let mut unsettled = self.0.unsettled.lock().unwrap_or_else(|e| e.into_inner());
            for id in &ids {
                if unsettled.len() >= MAX_UNSETTLED {
                    unsettled.pop_front();
                }
                unsettled.push_back(*id);
            }
        }
        {
            let mut early = self.0.early_acks.lock().unwrap_or_else(|e| e.into_inner());
            for id in &ids {
                for ack in early.take(id) {
                    if let Err(e) = ledger.record_ack(&ack) {
                        debug!(error = %e, "early ack not recorded");
                    }
                }
            }
        }
        if let Some(hook) = self.0.incoming.get() {
            for id in &ids {
                match ledger.find(id) {
                    Ok(Some((t, _))) if t.transfer.to == self.0.account => hook(&t.transfer),
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "applied transfer not found"),
                }
            }
        }
        let signer = self.signer();
        ids.into_iter()
            .map(|id| {
                let ack = Ack::sign(&signer, id);
                if let Err(e) = ledger.record_ack(&ack) {
                    debug!(error = %e, "own ack not recorded");
                }
                ack
            })
            .collect()
    }

    /// Applies transfers, acks and proofs from a peer (gossip or sync).
    fn absorb(
        &self,
        transfers: Vec<SignedTransfer>,
        acks: Vec<Ack>,
        proofs: Vec<EquivocationProof>,
    ) -> Absorbed {
        self.absorb_batch(vec![(transfers, acks, proofs)])
            .pop()
            .unwrap_or_default()
    }

    /// Applies several peers' items under one lock of the ledger; one outcome per item set.
    fn absorb_batch(&self, batch: Vec<Items>) -> Vec<Absorbed> {
        let mut ledger = self.ledger();
        let outcomes: Vec<Absorbed> = batch
            .into_iter()
            .map(|items| self.absorb_into(&mut ledger, items))
            .collect();
        drop(ledger);
        for proof in outcomes.iter().flat_map(|o| &o.proofs) {
            if let Some(peer) = peer_of(&proof.account()) {
                self.0.reputation.collapse(peer);
            }
        }
        outcomes
    }

    fn absorb_into(&self, ledger: &mut Ledger, (transfers, acks, proofs): Items) -> Absorbed {
        let mut out = Absorbed::default();
        for transfer in transfers {
            match ledger.apply(transfer) {
                Ok(applied @ Applied::Applied { .. }) => {
                    let acks = self.ack_applied(ledger, &applied);
                    out.acks.extend(acks);
                }
                Ok(Applied::Held { .. } | Applied::Duplicate { .. }) => {}
                Ok(Applied::Equivocation { proof, reverted }) => {
                    warn!(account = %proof.account(), seq = proof.seq(), reverted = reverted.len(), "equivocation detected");
                    out.proofs.push(*proof);
                }
                Err(LedgerError::Invalid(e)) => out.invalid = Some(e.to_string()),
                Err(e @ (LedgerError::Frozen { .. } | LedgerError::HoldBackFull { .. })) => {
                    debug!(error = %e, "transfer not taken");
                }
                Err(e) => warn!(error = %e, "transfer not applied"),
            }
        }
        for proof in proofs {
            match ledger.apply_proof(proof.clone()) {
                Ok(ProofOutcome::Frozen { account, .. }) => {
                    warn!(%account, "account frozen by an equivocation proof");
                    out.proofs.push(proof);
                }
                Ok(ProofOutcome::AlreadyFrozen { .. }) => {}
                Err(LedgerError::Proof(e)) => out.invalid = Some(e.to_string()),
                Err(e) => warn!(error = %e, "proof not applied"),
            }
        }
        let mut early = self.0.early_acks.lock().unwrap_or_else(|e| e.into_inner());
        for ack in acks {
            match ledger.record_ack(&ack) {
                Ok(_) => {}
                Err(LedgerError::Ack(e)) => out.invalid = Some(e.to_string()),
                Err(LedgerError::UnknownTransfer(_) | LedgerError::NotApplied(_)) => {
                    // Verified (record_ack checks the signature first) but early: keep it.
                    early.push(ack, self.0.config.max_early_acks);
                }
                Err(e) => debug!(error = %e, "ack not recorded"),
            }
        }
        drop(early);
        out
    }

    /// Publishes `gossip` on the ledger topic (nothing if empty).
    async fn publish(&self, gossip: wire::Gossip) {
        if gossip.transfers.is_empty() && gossip.acks.is_empty() && gossip.proofs.is_empty() {
            return;
        }
        if let Err(e) = self
            .0
            .overlay
            .publish(LEDGER_TOPIC, gossip.encode_to_vec())
            .await
        {
            debug!(error = %e, "ledger gossip not published (no peer on the topic?)");
        }
    }

    /// Queues a ledger gossip message for [`NodeLedger::run_gossip`]; when the queue is full
    /// the message is ignored (gossipsub neither forwards it nor blames its sender) and
    /// anti-entropy repairs what it carried.
    pub fn enqueue(&self, message: GossipMessage) {
        if let Err(e) = self.0.inbox.try_send(message) {
            use tokio::sync::mpsc::error::TrySendError;
            let (TrySendError::Full(message) | TrySendError::Closed(message)) = e;
            debug!(peer = %message.propagation_source, "ledger busy: gossip message ignored");
            let overlay = self.0.overlay.clone();
            tokio::spawn(async move {
                overlay
                    .report_message(&message, MessageAcceptance::Ignore)
                    .await;
            });
        }
    }

    /// Handles queued ledger gossip until told to stop: whatever has queued up (up to
    /// [`GOSSIP_BATCH`] messages) is applied under one lock of the ledger, each message
    /// judged on its own, and the acks it produced go out together.
    pub async fn run_gossip(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let Some(mut inbox) = self
            .0
            .inbox_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            warn!("the ledger's gossip worker runs once");
            return;
        };
        loop {
            let first = tokio::select! {
                message = inbox.recv() => message,
                _ = stop.changed() => return,
            };
            let Some(first) = first else { return };
            let mut batch = vec![first];
            while batch.len() < GOSSIP_BATCH {
                match inbox.try_recv() {
                    Ok(message) => batch.push(message),
                    Err(_) => break,
                }
            }
            self.on_gossip_batch(batch).await;
        }
    }

    /// Handles ledger gossip messages: decoded within bounds, applied, forwarded if valid;
    /// invalid content is rejected and penalised.
    pub async fn on_gossip(&self, message: GossipMessage) {
        self.on_gossip_batch(vec![message]).await;
    }

    async fn on_gossip_batch(&self, messages: Vec<GossipMessage>) {
        let mut valid = Vec::new();
        let mut items = Vec::new();
        for message in messages {
            match self.decode_gossip(&message.data) {
                Ok(decoded) => {
                    items.push(decoded);
                    valid.push(message);
                }
                Err(reason) => {
                    warn!(peer = %message.propagation_source, %reason, "malformed ledger gossip");
                    self.reject(&message).await;
                }
            }
        }
        let this = self.clone();
        let outcomes = tokio::task::spawn_blocking(move || this.absorb_batch(items))
            .await
            .unwrap_or_default();
        let mut spread = Absorbed::default();
        for (message, absorbed) in valid.iter().zip(outcomes) {
            // Valid content is forwarded even when it is not new here (an ack of a transfer
            // final here, or one that came before its transfer): others may still need it,
            // and gossipsub already drops repeats of one message.
            match &absorbed.invalid {
                Some(reason) => {
                    warn!(peer = %message.propagation_source, %reason, "invalid ledger gossip");
                    self.reject(message).await;
                }
                None => {
                    self.0
                        .overlay
                        .report_message(message, MessageAcceptance::Accept)
                        .await;
                }
            }
            spread.acks.extend(absorbed.acks);
            spread.proofs.extend(absorbed.proofs);
        }
        self.spread(&spread).await;
    }

    /// Rejects a gossip message (not forwarded) and penalises who sent it.
    async fn reject(&self, message: &GossipMessage) {
        self.0
            .reputation
            .penalise(message.propagation_source, Penalty::InvalidMessage);
        self.0
            .overlay
            .report_message(message, MessageAcceptance::Reject)
            .await;
    }

    /// Passes on what absorbing found: proofs at once, acks with the next batch.
    async fn spread(&self, absorbed: &Absorbed) {
        if !absorbed.proofs.is_empty() {
            self.publish(wire::Gossip {
                transfers: Vec::new(),
                acks: Vec::new(),
                proofs: absorbed.proofs.iter().map(Into::into).collect(),
            })
            .await;
        }
        if absorbed.acks.is_empty() {
            return;
        }
        let full = {
            let mut outbox = self.0.outbox.lock().unwrap_or_else(|e| e.into_inner());
            outbox.extend(absorbed.acks.iter().map(Into::into));
            outbox.len() >= self.0.config.max_gossip_items
        };
        if full {
            self.flush_acks().await;
        }
    }

    /// Gossips the waiting acks, in messages within the gossip bounds.
    async fn flush_acks(&self) {
        let acks = std::mem::take(&mut *self.0.outbox.lock().unwrap_or_else(|e| e.into_inner()));
        // An ack is ~140 bytes encoded: 256 of them stay well under 64 KiB.
        let per_message = self.0.config.max_gossip_items.clamp(1, 256);
        for chunk in acks.chunks(per_message) {
            self.publish(wire::Gossip {
                transfers: Vec::new(),
                acks: chunk.to_vec(),
                proofs: Vec::new(),
            })
            .await;
        }
    }

    /// Flushes batched acks every [`LedgerConfig::ack_flush_interval`] until told to stop.
    pub async fn run_acks(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let every = self
            .0
            .config
            .ack_flush_interval
            .max(Duration::from_millis(5));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush_acks().await,
                _ = stop.changed() => return,
            }
        }
    }

    /// The items of a gossip message, or why it is malformed.
    #[allow(clippy::type_complexity)]
    fn decode_gossip(
        &self,
        data: &[u8],
    ) -> Result<(Vec<SignedTransfer>, Vec<Ack>, Vec<EquivocationProof>), String> {
        let config = &self.0.config;
        if data.len() > config.max_gossip_bytes {
            return Err(format!(
                "{} bytes, over the {}-byte limit",
                data.len(),
                config.max_gossip_bytes
            ));
        }
        let gossip = wire::Gossip::decode(data).map_err(|e| e.to_string())?;
        let items = gossip.transfers.len() + gossip.acks.len() + gossip.proofs.len();
        if items > config.max_gossip_items {
            return Err(format!(
                "{items} items, over the limit of {}",
                config.max_gossip_items
            ));
        }
        decode_items(gossip.transfers, gossip.acks, gossip.proofs)
    }

    /// `account`'s latest transfers (newest first) with their standing here.
    pub fn history(
        &self,
        account: &Account,
        limit: usize,
    ) -> Result<Vec<HistoryView>, NodeLedgerError> {
        let weights = ScoreWeights(self.0.reputation.scores());
        let ledger = self.ledger();
        let entries = ledger.history(account, limit)?;
        entries
            .into_iter()
            .map(|entry| {
                let status = ledger.status(&entry.id, &weights)?;
                Ok(view(entry, status))
            })
            .collect()
    }

    /// The acks this node holds for a transfer.
    pub fn acks(&self, id: &micro_ledger::TransferId) -> Result<Vec<Ack>, NodeLedgerError> {
        Ok(self.ledger().acks(id)?)
    }

    /// The standing of one transfer here, if known.
    pub fn status(
        &self,
        id: &micro_ledger::TransferId,
    ) -> Result<Option<TransferStatus>, NodeLedgerError> {
        let weights = ScoreWeights(self.0.reputation.scores());
        Ok(self.ledger().status(id, &weights)?)
    }
}

/// Parses wire items into ledger types.
#[allow(clippy::type_complexity)]
fn decode_items(
    transfers: Vec<micro_ledger::wire::SignedTransferMsg>,
    acks: Vec<micro_ledger::wire::AckMsg>,
    proofs: Vec<micro_ledger::wire::EquivocationProofMsg>,
) -> Result<(Vec<SignedTransfer>, Vec<Ack>, Vec<EquivocationProof>), String> {
    let transfers = transfers
        .into_iter()
        .map(SignedTransfer::try_from)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("transfer: {e}"))?;
    let acks = acks
        .into_iter()
        .map(Ack::try_from)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("ack: {e}"))?;
    let proofs = proofs
        .into_iter()
        .map(EquivocationProof::try_from)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("proof: {e}"))?;
    Ok((transfers, acks, proofs))
}

fn view(entry: HistoryEntry, status: Option<TransferStatus>) -> HistoryView {
    let t = &entry.transfer.transfer;
    let (status, acked) = match status {
        Some(TransferStatus::Final) => ("final", None),
        Some(TransferStatus::Pending {
            acked_weight,
            total,
        }) => (
            "pending",
            Some(if total > 0.0 {
                acked_weight / total
            } else {
                0.0
            }),
        ),
        Some(TransferStatus::Held(_)) => ("held", None),
        Some(TransferStatus::Void) | None => ("void", None),
    };
    HistoryView {
        id: entry.id.to_string(),
        from: t.from,
        to: t.to,
        amount: t.amount.0,
        fee: t.fee.0,
        seq: t.seq,
        memo: t.memo.clone(),
        direction: match entry.direction {
            micro_ledger::Direction::Sent => "sent",
            micro_ledger::Direction::Received => "received",
        }
        .to_owned(),
        status: status.to_owned(),
        acked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_peer_ids_map_both_ways() {
        for _ in 0..16 {
            let peer = Keypair::generate_ed25519().public().to_peer_id();
            let account = account_of(&peer).expect("ed25519");
            assert_eq!(peer_of(&account), Some(peer));
        }
    }
}
