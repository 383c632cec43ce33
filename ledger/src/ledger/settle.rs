//! The one rule that moves tokens, and the fixpoint that applies it until nothing changes.
//!
//! A transfer is *applicable* when it is its sender's next seq, the sender is not frozen at
//! that seq, and the sender's balance covers amount + fee. Applying a transfer only lowers its
//! sender's balance and raises others', so an applicable transfer stays applicable whatever
//! else is applied first. Hence every maximal sequence of applications reaches the same set of
//! applied transfers — the state is a function of the set of known transfers and the frozen
//! set, not of arrival order. [`settle`] computes that fixpoint with a worklist (iterative, so a
//! long chain of held transfers cannot overflow the stack); both the incremental path and the
//! recompute after an equivocation run it, over different [`Book`]s.

use std::collections::VecDeque;

use crate::ledger::store::{AccountState, corrupt};
use crate::{Account, LedgerError, Tokens, TransferId, VerifiedTransfer};

/// The state [`settle`] reads and writes.
pub(crate) trait Book {
    /// Balance and next seq of an account.
    fn state(&self, account: &Account) -> AccountState;
    /// Replaces them.
    fn set_state(&mut self, account: Account, state: AccountState);
    /// First void seq of a frozen account.
    fn frozen(&self, account: &Account) -> Option<u64>;
    /// The known, not yet applied transfer at `(account, seq)`, if any.
    fn candidate(
        &self,
        account: &Account,
        seq: u64,
    ) -> Result<Option<VerifiedTransfer>, LedgerError>;
    /// Called after `t`'s balance effects, to move it into the applied set.
    fn on_applied(&mut self, t: &VerifiedTransfer) -> Result<(), LedgerError>;
}

/// Whether `t` is applicable now (see the module doc).
pub(crate) fn applicable(book: &impl Book, t: &VerifiedTransfer) -> bool {
    let tr = t.transfer();
    let state = book.state(&tr.from);
    state.next_seq == tr.seq
        && book.frozen(&tr.from).is_none_or(|f| tr.seq < f)
        && state.balance >= t.total()
}

/// Applies an applicable transfer: debit amount + fee, bump the sender's seq, credit the
/// recipient and the treasury. Checked throughout; since balances always sum to the supply,
/// which fits in a u64, an overflow means corrupt state.
pub(crate) fn apply_one(
    book: &mut impl Book,
    t: &VerifiedTransfer,
    treasury: Account,
) -> Result<(), LedgerError> {
    let tr = t.transfer();
    let mut from = book.state(&tr.from);
    from.balance = from
        .balance
        .checked_sub(t.total())
        .ok_or_else(|| corrupt("applying an unfunded transfer"))?;
    from.next_seq = from
        .next_seq
        .checked_add(1)
        .ok_or_else(|| corrupt("sequence number overflow"))?;
    from.history = from.history.extend(&t.id());
    book.set_state(tr.from, from);
    credit(book, tr.to, tr.amount)?;
    if tr.fee > Tokens::ZERO {
        credit(book, treasury, tr.fee)?;
    }
    book.on_applied(t)
}

fn credit(book: &mut impl Book, account: Account, amount: Tokens) -> Result<(), LedgerError> {
    let mut state = book.state(&account);
    state.balance = state
        .balance
        .checked_add(amount)
        .ok_or_else(|| corrupt("balance overflow: balances exceed the supply"))?;
    book.set_state(account, state);
    Ok(())
}

/// Applies applicable candidates until none is left, starting from the accounts in `start`
/// (whose state may have changed). Returns the ids applied, in order.
pub(crate) fn settle(
    book: &mut impl Book,
    treasury: Account,
    start: impl IntoIterator<Item = Account>,
) -> Result<Vec<TransferId>, LedgerError> {
    let mut work: VecDeque<Account> = start.into_iter().collect();
    let mut applied = Vec::new();
    while let Some(account) = work.pop_front() {
        // Drain this account's chain before moving on; each application may fund others.
        loop {
            let next_seq = book.state(&account).next_seq;
            let Some(t) = book.candidate(&account, next_seq)? else {
                break;
            };
            if !applicable(book, &t) {
                break;
            }
            apply_one(book, &t, treasury)?;
            work.push_back(t.transfer().to);
            if t.transfer().fee > Tokens::ZERO {
                work.push_back(treasury);
            }
            applied.push(t.id());
        }
    }
    Ok(applied)
}
