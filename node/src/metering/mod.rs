//! Metering: priced calls, paid without waiting for the ledger.
//!
//! A service's record carries its price per call. A caller's node signs a [`receipt`] for
//! every call to a priced service on another node (one call number per provider, so a receipt
//! is good once). The provider first serves the caller from its free allowance (which grows
//! with the caller's reputation, see `micro_reputation::Admission`); past it, it serves only
//! calls that carry a valid receipt from a caller whose ledger balance covers what it already
//! owes plus this call, and bills successful calls (the answer says what it charged in the
//! `micro-charged` header). Every `settle_interval` the caller's node pays each provider what
//! it was charged and has not paid, in one ledger transfer with the memo [`SETTLE_MEMO`]; the
//! provider counts transfers with that memo as settled. A call therefore never waits for
//! ledger finality, and a provider's risk is bounded by the caller's balance.
//!
//! Both books live in sled (`metering-out`: what this node owes; `metering-in`: what callers
//! owe it), next to the ledger in the node's database.

pub mod book;
pub mod receipt;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::identity::Keypair;
use micro_ledger::{Account, NetworkId, Tokens, Transfer};
use micro_overlay::PeerId;
use micro_reputation::{Penalty, RateLimiter, RateLimiterConfig, UnixMillis, Verdict};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval};
use tracing::{debug, info, warn};

use crate::ledger::{NodeLedger, account_of};
use crate::registry::now_ms;
use crate::reputation::NodeReputation;
use book::{Due, IN_TREE, OUT_TREE, Owed};
use receipt::{CallReceipt, ReceiptError, SignedReceipt};

/// The memo of settlement transfers.
pub const SETTLE_MEMO: &str = "micro-settle";
/// Response header: tokens the provider charged for the call.
pub const CHARGED_HEADER: &str = "micro-charged";

/// Metering knobs.
#[derive(Debug, Clone)]
pub struct MeteringConfig {
    /// How often this node pays its providers what it owes them.
    pub settle_interval: Duration,
    /// Per-caller buckets and the newcomers' shared free pool (allowances themselves come
    /// from the reputation model's admission policy).
    pub rate_limits: RateLimiterConfig,
}

impl Default for MeteringConfig {
    /// Settle every 10 s; the rate limiter's defaults.
    fn default() -> Self {
        Self {
            settle_interval: Duration::from_secs(10),
            rate_limits: RateLimiterConfig::default(),
        }
    }
}

/// Why the books could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum MeteringError {
    /// The node key is not ed25519.
    #[error("the node key is not an ed25519 key")]
    NotEd25519,
    /// sled failed.
    #[error("metering store: {0}")]
    Store(#[from] sled::Error),
}

/// How a call is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// From the caller's free allowance: nothing billed.
    Free,
    /// Against a valid receipt: bill `price` if it succeeds.
    Paid {
        /// Tokens to bill.
        price: u64,
    },
}

/// Why a call is refused, as an RPC error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 402, 429 or 500.
    pub code: u16,
    /// For the caller.
    pub detail: String,
}

/// One counterparty in `micro-node metering`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterparty {
    /// Its account.
    pub account: Account,
    /// Tokens charged (owed side) or billed (due side).
    pub charged: u64,
    /// Tokens paid (owed side) or settled (due side).
    pub paid: u64,
    /// Receipts signed for it (owed side) or paid calls served (due side).
    pub calls: u64,
}

/// Both books.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeteringStatus {
    /// What this node owes its providers.
    pub owed: Vec<Counterparty>,
    /// What callers owe this node.
    pub due: Vec<Counterparty>,
}

struct Inner {
    ledger: NodeLedger,
    reputation: NodeReputation,
    key: Keypair,
    account: Account,
    network: NetworkId,
    out: sled::Tree,
    due: sled::Tree,
    limiter: Mutex<RateLimiter>,
    config: MeteringConfig,
}

/// The node's metering. Clone freely.
#[derive(Clone)]
pub struct Metering(Arc<Inner>);

fn now() -> UnixMillis {
    UnixMillis(now_ms())
}

impl Metering {
    /// Opens the books in `db` and hooks settlement transfers from the ledger.
    pub fn open(
        db: &sled::Db,
        ledger: NodeLedger,
        reputation: NodeReputation,
        key: Keypair,
        config: MeteringConfig,
    ) -> Result<Self, MeteringError> {
        let account = account_of(&key.public().to_peer_id()).ok_or(MeteringError::NotEd25519)?;
        let this = Self(Arc::new(Inner {
            network: ledger.network(),
            out: db.open_tree(OUT_TREE)?,
            due: db.open_tree(IN_TREE)?,
            limiter: Mutex::new(RateLimiter::new(config.rate_limits.clone(), now())),
            ledger: ledger.clone(),
            reputation,
            key,
            account,
            config,
        }));
        let weak = Arc::downgrade(&this.0);
        ledger.on_incoming(Box::new(move |transfer| {
            if let Some(inner) = weak.upgrade() {
                Metering(inner).settled(transfer);
            }
        }));
        Ok(this)
    }

    // ---- the caller's side ----

    /// A signed receipt for one call of `service` at `price` on `provider`, or `None` if
    /// the provider has no ledger account (no ed25519 key) or the book cannot be written.
    pub fn receipt(&self, provider: &PeerId, service: &str, price: u64) -> Option<Vec<u8>> {
        let provider = account_of(provider)?;
        let seq = book::update(
            &self.0.out,
            &provider,
            Owed::decode,
            |o| o.encode().to_vec(),
            |owed| {
                owed.seq += 1;
                owed.seq
            },
        )
        .map_err(|e| warn!(error = %e, "metering book not written"))
        .ok()?;
        let receipt = CallReceipt {
            caller: self.0.account,
            provider,
            seq,
            price,
            service: service.to_owned(),
        };
        Some(receipt.sign(&self.0.key, &self.0.network).encode())
    }

    /// Records what `provider` charged for a call this node sent a receipt for (never more
    /// than the receipt offered), and that it served the call; returns the amount owed.
    pub fn charged(&self, provider: &PeerId, charged: u64, offered: u64) -> u64 {
        let Some(account) = account_of(provider) else {
            return 0;
        };
        let amount = charged.min(offered);
        if charged > offered {
            warn!(%provider, charged, offered, "provider charged more than the receipt offered");
            self.0
                .reputation
                .penalise(*provider, Penalty::InvalidMessage);
        }
        if amount > 0
            && let Err(e) = book::update(
                &self.0.out,
                &account,
                Owed::decode,
                |o| o.encode().to_vec(),
                |owed| owed.charged = owed.charged.saturating_add(amount),
            )
        {
            warn!(error = %e, "metering book not written");
        }
        self.0.reputation.observe_receipt(*provider, 1);
        amount
    }

    /// Pays every provider what it charged and was not paid yet: one transfer each.
    pub async fn settle(&self) {
        let owed: Vec<(Account, Owed)> = self
            .0
            .out
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| Some((Account(k.as_ref().try_into().ok()?), Owed::decode(&v)?)))
            .filter(|(_, owed)| owed.unpaid() > 0)
            .collect();
        for (provider, owed) in owed {
            let amount = owed.unpaid();
            match self
                .0
                .ledger
                .transfer(provider, Tokens(amount), SETTLE_MEMO.to_owned())
                .await
            {
                Ok(_) => {
                    let paid = book::update(
                        &self.0.out,
                        &provider,
                        Owed::decode,
                        |o| o.encode().to_vec(),
                        |o| o.paid = o.paid.saturating_add(amount),
                    );
                    if let Err(e) = paid.and_then(|()| self.0.out.flush().map(drop)) {
                        warn!(error = %e, "metering book not written after a settlement");
                    }
                    info!(%provider, amount, "settled metered calls");
                }
                Err(e) => warn!(%provider, amount, error = %e, "cannot settle metered calls"),
            }
        }
    }

    /// Settles every interval until told to stop.
    pub async fn run_settlement(self, mut stop: watch::Receiver<bool>) {
        let mut tick = interval(self.0.config.settle_interval.max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.settle().await,
                _ = stop.changed() => return,
            }
        }
    }

    // ---- the provider's side ----

    /// Decides a call from `caller` to `service` at `price` (> 0) carrying `receipt` (empty
    /// if none): free while the caller's allowance lasts, then paid if the receipt is valid
    /// and the caller's balance covers what it owes plus this call.
    pub fn admit(
        &self,
        caller: &PeerId,
        service: &str,
        price: u64,
        receipt: &[u8],
    ) -> Result<Admit, Refusal> {
        let allowance = self.0.reputation.admission(caller);
        let verdict = self
            .0
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(*caller, &allowance, false, now());
        match verdict {
            Verdict::Free | Verdict::Paid => return Ok(Admit::Free),
            Verdict::TooManyRequests { retry_after_ms } => {
                return Err(Refusal {
                    code: 429,
                    detail: format!(
                        "too many calls: {} a second at most for this caller; retry in {retry_after_ms} ms",
                        allowance.max_calls_per_second
                    ),
                });
            }
            Verdict::PaymentRequired => {}
        }
        if receipt.is_empty() {
            return Err(Refusal {
                code: 402,
                detail: format!(
                    "payment required: the free allowance ({} calls an hour) is used up and `{service}` costs {price} tokens a call",
                    allowance.free_calls_per_hour
                ),
            });
        }
        let caller_account = account_of(caller).ok_or_else(|| Refusal {
            code: 402,
            detail: "payment required: the caller has no ledger account".into(),
        })?;
        let signed = self
            .check_receipt(caller_account, service, price, receipt)
            .inspect_err(|e| {
                warn!(%caller, error = %e, "refused a call receipt");
                self.0.reputation.penalise(*caller, Penalty::InvalidMessage);
            })
            .map_err(|e| Refusal {
                code: 400,
                detail: e.to_string(),
            })?;
        let balance = self.0.ledger.balance(&caller_account).0;
        let outcome = book::update(
            &self.0.due,
            &caller_account,
            Due::decode,
            |d| d.encode().to_vec(),
            |due| {
                if due.unsettled().saturating_add(price) > balance {
                    return Err(Refusal {
                        code: 402,
                        detail: format!(
                            "payment required: balance {balance} does not cover {} unsettled plus {price} for this call",
                            due.unsettled()
                        ),
                    });
                }
                if !due.use_seq(signed.receipt.seq) {
                    return Err(Refusal {
                        code: 400,
                        detail: ReceiptError::Replayed(signed.receipt.seq).to_string(),
                    });
                }
                Ok(Admit::Paid { price })
            },
        )
        .map_err(|e| Refusal {
            code: 500,
            detail: format!("metering book: {e}"),
        })?;
        if let Err(refusal) = &outcome
            && refusal.code == 400
        {
            warn!(%caller, detail = %refusal.detail, "refused a replayed receipt");
            self.0.reputation.penalise(*caller, Penalty::InvalidMessage);
        }
        outcome
    }

    fn check_receipt(
        &self,
        caller: Account,
        service: &str,
        price: u64,
        bytes: &[u8],
    ) -> Result<SignedReceipt, ReceiptError> {
        let signed = SignedReceipt::decode(bytes)?;
        let r = &signed.receipt;
        if r.caller != caller {
            return Err(ReceiptError::WrongCaller {
                claimed: r.caller,
                actual: caller,
            });
        }
        if r.provider != self.0.account {
            return Err(ReceiptError::WrongProvider(r.provider));
        }
        if r.service != service {
            return Err(ReceiptError::WrongService {
                receipt: r.service.clone(),
                called: service.to_owned(),
            });
        }
        if r.price < price {
            return Err(ReceiptError::TooLow {
                offered: r.price,
                price,
            });
        }
        signed.verify(&self.0.network)?;
        Ok(signed)
    }

    /// Bills a successful paid call.
    pub fn bill(&self, caller: &PeerId, price: u64) {
        let Some(account) = account_of(caller) else {
            return;
        };
        if let Err(e) = book::update(
            &self.0.due,
            &account,
            Due::decode,
            |d| d.encode().to_vec(),
            |due| {
                due.billed = due.billed.saturating_add(price);
                due.calls += 1;
            },
        ) {
            warn!(error = %e, "metering book not written");
        }
    }

    /// Counts a settlement transfer to this node.
    fn settled(&self, transfer: &Transfer) {
        if transfer.to != self.0.account || transfer.memo != SETTLE_MEMO {
            return;
        }
        let amount = transfer.amount.0;
        if let Err(e) = book::update(
            &self.0.due,
            &transfer.from,
            Due::decode,
            |d| d.encode().to_vec(),
            |due| due.settled = due.settled.saturating_add(amount),
        ) {
            warn!(error = %e, "metering book not written");
        }
        debug!(from = %transfer.from, amount, "settlement received");
    }

    /// Both books.
    pub fn status(&self) -> MeteringStatus {
        let read = |tree: &sled::Tree, owed: bool| -> Vec<Counterparty> {
            tree.iter()
                .filter_map(Result::ok)
                .filter_map(|(k, v)| {
                    let account = Account(k.as_ref().try_into().ok()?);
                    Some(if owed {
                        let o = Owed::decode(&v)?;
                        Counterparty {
                            account,
                            charged: o.charged,
                            paid: o.paid,
                            calls: o.seq,
                        }
                    } else {
                        let d = Due::decode(&v)?;
                        Counterparty {
                            account,
                            charged: d.billed,
                            paid: d.settled,
                            calls: d.calls,
                        }
                    })
                })
                .collect()
        };
        MeteringStatus {
            owed: read(&self.0.out, true),
            due: read(&self.0.due, false),
        }
    }
}
