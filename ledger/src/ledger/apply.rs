//! Accepting transfers and proofs: the duplicate / equivocation / hold / apply decision, the
//! freeze an equivocation causes, and the recompute from genesis that undoes what a freeze
//! voids.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use tracing::{debug, info, warn};

use crate::ledger::Ctx;
use crate::ledger::settle::{Book, applicable, apply_one, settle};
use crate::ledger::store::{AccountState, corrupt};
use crate::ledger::txn::Txn;
use crate::{
    Account, Applied, EquivocationProof, HoldReason, LedgerError, TransferId, VerifiedTransfer,
};

/// What happened to one transfer: `Ok` if accepted (applied, held, duplicate or an
/// equivocation found), `Err` if refused — in which case nothing changed.
pub(crate) type Outcome = Result<Applied, LedgerError>;

/// Accepts one verified transfer into the transaction. The outer error is fatal (storage or
/// corrupt state: the caller abandons the whole transaction); the inner one refuses this
/// transfer only, and is decided before anything is changed.
pub(crate) fn accept(txn: &mut Txn<'_>, t: VerifiedTransfer) -> Result<Outcome, LedgerError> {
    let tr = t.transfer();
    let (from, to, seq, id) = (tr.from, tr.to, tr.seq, t.id());
    if let Some(from_seq) = txn.frozen_at(&from)
        && seq >= from_seq
    {
        return Ok(Err(LedgerError::Frozen {
            account: from,
            from_seq,
        }));
    }
    let state = txn.state(&from);
    // Same slot already known: the same transfer again, or an equivocation.
    let known = if seq < state.next_seq {
        Some(txn.applied_required(&from, seq)?)
    } else {
        txn.held(&from, seq).cloned()
    };
    if let Some(known) = known {
        if known.id() == id {
            return Ok(Ok(Applied::Duplicate { id }));
        }
        return equivocate(txn, known, t).map(Ok);
    }
    let treasury = txn.ctx.treasury;
    if applicable(&*txn, &t) {
        txn.index(&t)?;
        apply_one(txn, &t, treasury)?;
        let cascade = settle(txn, treasury, [from, to, treasury])?;
        return Ok(Ok(Applied::Applied { id, cascade }));
    }
    // Not applicable yet: hold it (an unfunded next seq too — rejecting it would make the
    // outcome depend on whether its funding arrived first).
    let reason = if seq == state.next_seq {
        HoldReason::Unfunded
    } else {
        HoldReason::Gap
    };
    let config = txn.ctx.config;
    let (held_for_account, held_total) = (txn.held_count(&from), txn.held_total());
    if held_for_account >= config.max_held_per_account || held_total >= config.max_held_total {
        match txn.highest_held(&from) {
            // A lower seq is worth more than a higher one: it is what unblocks the account.
            Some(highest) if highest > seq => evict(txn, &from, highest),
            _ => {
                return Ok(Err(LedgerError::HoldBackFull {
                    account: from,
                    seq,
                    held_for_account,
                    held_total,
                }));
            }
        }
    }
    txn.index(&t)?;
    txn.insert_held(t);
    Ok(Ok(Applied::Held { id, reason }))
}

fn evict(txn: &mut Txn<'_>, account: &Account, seq: u64) {
    if let Some(t) = txn.remove_held(account, seq) {
        txn.unindex_id(&t);
        debug!(%account, seq, "hold-back full: evicted the highest held seq");
    }
}

/// `known` is stored at the slot `new` claims: build the proof and freeze the sender.
fn equivocate(
    txn: &mut Txn<'_>,
    known: VerifiedTransfer,
    new: VerifiedTransfer,
) -> Result<Applied, LedgerError> {
    txn.index_id(&new);
    let proof = EquivocationProof::new(known.into_signed(), new.into_signed());
    let reverted = freeze(txn, &proof)?.unwrap_or_default();
    Ok(Applied::Equivocation {
        proof: Box::new(proof),
        reverted,
    })
}

/// Freezes the proof's (already verified) account from its seq: held transfers at or after it
/// become void, and if any of them was applied, the state is recomputed. Returns the ids that
/// were applied and no longer are, or `None` if the account was already frozen at or before
/// that seq (nothing changes).
pub(crate) fn freeze(
    txn: &mut Txn<'_>,
    proof: &EquivocationProof,
) -> Result<Option<Vec<TransferId>>, LedgerError> {
    let (account, seq) = (proof.account(), proof.seq());
    if txn.frozen_at(&account).is_some_and(|f| f <= seq) {
        return Ok(None);
    }
    warn!(%account, seq, "equivocation: account frozen");
    txn.freeze(account, seq);
    txn.put_proof(proof);
    let doomed: Vec<u64> = txn
        .mem
        .held
        .range((account, seq)..=(account, u64::MAX))
        .map(|((_, s), _)| *s)
        .collect();
    for s in doomed {
        if let Some(t) = txn.remove_held(&account, s) {
            txn.put_void(&t);
        }
    }
    if seq < txn.state(&account).next_seq {
        recompute(txn).map(Some)
    } else {
        Ok(Some(Vec::new()))
    }
}

/// Recomputes the whole state from genesis, the known transfers (applied and held) and the
/// frozen set, with the same [`settle`] fixpoint as the incremental path, then rewrites
/// whatever differs. O(applied transfers); only needed when a freeze voids an applied
/// transfer, which takes a cheating sender.
pub(crate) fn recompute(txn: &mut Txn<'_>) -> Result<Vec<TransferId>, LedgerError> {
    let started = Instant::now();
    let senders: BTreeSet<Account> = txn
        .mem
        .accounts
        .iter()
        .filter(|(_, s)| s.next_seq > 1)
        .map(|(a, _)| *a)
        .chain(txn.mem.held.keys().map(|(a, _)| *a))
        .collect();
    let fresh = {
        let mut book = Fresh {
            txn: &*txn,
            accounts: genesis_states(txn.ctx),
        };
        settle(&mut book, txn.ctx.treasury, senders.iter().copied())?;
        book.accounts
    };
    let mut reverted = Vec::new();
    for account in &senders {
        let old = txn.state(account).next_seq;
        let new = fresh.get(account).map_or(1, |s| s.next_seq);
        for seq in new..old {
            let t = txn.applied_required(account, seq)?;
            txn.remove_applied(account, seq);
            reverted.push(t.id());
            if txn.frozen_at(account).is_some_and(|f| seq >= f) {
                txn.put_void(&t);
            } else {
                txn.insert_held(t);
            }
        }
        for seq in old..new {
            let t = txn
                .remove_held(account, seq)
                .ok_or_else(|| corrupt("recompute applied a transfer that is not held"))?;
            txn.put_applied(&t);
        }
    }
    let everyone: BTreeSet<Account> = txn
        .mem
        .accounts
        .keys()
        .chain(fresh.keys())
        .copied()
        .collect();
    for account in everyone {
        let state = fresh.get(&account).copied().unwrap_or_default();
        if txn.state(&account) != state {
            txn.set_state(account, state);
        }
    }
    info!(
        reverted = reverted.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "ledger recomputed from genesis"
    );
    Ok(reverted)
}

fn genesis_states(ctx: &Ctx) -> BTreeMap<Account, AccountState> {
    ctx.genesis
        .accounts
        .iter()
        .filter(|(_, amount)| amount.0 > 0)
        .map(|(account, amount)| (*account, AccountState::funded(*amount)))
        .collect()
}

/// The recompute's book: fresh balances from genesis; candidates are every known transfer,
/// applied or held.
struct Fresh<'t, 'a> {
    txn: &'t Txn<'a>,
    accounts: BTreeMap<Account, AccountState>,
}

impl Book for Fresh<'_, '_> {
    fn state(&self, account: &Account) -> AccountState {
        self.accounts.get(account).copied().unwrap_or_default()
    }

    fn set_state(&mut self, account: Account, state: AccountState) {
        if state == AccountState::default() {
            self.accounts.remove(&account);
        } else {
            self.accounts.insert(account, state);
        }
    }

    fn frozen(&self, account: &Account) -> Option<u64> {
        self.txn.frozen_at(account)
    }

    fn candidate(
        &self,
        account: &Account,
        seq: u64,
    ) -> Result<Option<VerifiedTransfer>, LedgerError> {
        match self.txn.held(account, seq) {
            Some(t) => Ok(Some(t.clone())),
            None => self.txn.applied(account, seq),
        }
    }

    fn on_applied(&mut self, _: &VerifiedTransfer) -> Result<(), LedgerError> {
        Ok(())
    }
}
