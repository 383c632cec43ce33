//! Acks and finality: storing verified acks of applied transfers, and weighing them.

use crate::ack::sane;
use crate::ledger::Ledger;
use crate::ledger::query::acker_of;
use crate::ledger::store::Table;
use crate::{Ack, AckOutcome, LedgerError, TransferId, TransferState, TransferStatus, Weights};

impl Ledger {
    /// Verifies and stores an ack. Only acks of transfers applied here are stored
    /// ([`LedgerError::UnknownTransfer`], [`LedgerError::NotApplied`] otherwise), at most
    /// [`crate::LedgerConfig::max_acks_per_transfer`] per transfer. Acks of a transfer already
    /// final here are stored too ([`AckOutcome::AlreadyFinal`]): a replica that missed them in
    /// gossip fetches them from this one. Not flushed: acks lost in a crash are re-sent or
    /// re-fetched.
    ///
    /// An ack from an acker whose ack of this transfer is already stored is a
    /// [`AckOutcome::Duplicate`] before its signature is checked: anti-entropy answers repeat
    /// every ack a peer holds, and verifying copies was most of their cost. Such an ack
    /// changes nothing whatever its signature.
    pub fn record_ack(&mut self, ack: &Ack) -> Result<AckOutcome, LedgerError> {
        let mut key = ack.transfer.0.to_vec();
        key.extend_from_slice(&ack.acker.0);
        if self.store.tree(Table::Acks).contains_key(&key)? {
            return Ok(AckOutcome::Duplicate);
        }
        ack.verify()?;
        let id = ack.transfer;
        let (from, seq) = self.slot_of(&id)?.ok_or(LedgerError::UnknownTransfer(id))?;
        let final_here = match self.state_at(&from, seq)? {
            Some((t, TransferState::Final)) if t.id() == id => true,
            Some((t, TransferState::Applied)) if t.id() == id => false,
            _ => return Err(LedgerError::NotApplied(id)),
        };
        let acks = self.store.tree(Table::Acks);
        let max = self.ctx.config.max_acks_per_transfer;
        if acks.scan_prefix(id.0).take(max).count() >= max {
            return Err(LedgerError::TooManyAcks { id, max });
        }
        acks.insert(key, &ack.signature[..])?;
        Ok(if final_here {
            AckOutcome::AlreadyFinal
        } else {
            AckOutcome::Recorded
        })
    }

    /// The finality of a known transfer (`None` if unknown here): `Final` once the distinct
    /// ackers of an applied transfer weigh more than 2/3 of `weights.total()` (exactly 2/3 is
    /// not enough). The first time it is seen final, that is recorded (not flushed), and from
    /// then on it stays `Final` whatever the weights — unless an equivocation proof voids it
    /// or what funded it, which takes precedence (see the crate doc).
    pub fn status(
        &self,
        id: &TransferId,
        weights: &dyn Weights,
    ) -> Result<Option<TransferStatus>, LedgerError> {
        let Some((from, seq)) = self.slot_of(id)? else {
            return Ok(None);
        };
        if self.frozen(&from).is_some_and(|f| f <= seq) {
            return Ok(Some(TransferStatus::Void));
        }
        let Some((t, state)) = self.state_at(&from, seq)? else {
            return Ok(None);
        };
        if t.id() != *id {
            return Ok(None);
        }
        Ok(Some(match state {
            TransferState::Final => TransferStatus::Final,
            TransferState::Held(reason) => TransferStatus::Held(reason),
            TransferState::Void => TransferStatus::Void,
            TransferState::Applied => {
                let total = sane(weights.total());
                let mut acked_weight = 0.0;
                for item in self.store.tree(Table::Acks).scan_prefix(id.0) {
                    acked_weight += sane(weights.weight(&acker_of(&item?.0)?));
                }
                if crate::is_final(acked_weight, total) {
                    self.store.tree(Table::Final).insert(id.0, &[][..])?;
                    TransferStatus::Final
                } else {
                    TransferStatus::Pending {
                        acked_weight,
                        total,
                    }
                }
            }
        }))
    }
}
