//! Acks and finality.

use super::*;
use crate::*;

#[test]
fn finality_needs_strictly_more_than_two_thirds_and_sticks() {
    let mut l = open();
    let t = transfer(&l, 1, 3, 10, 1);
    let id = t.id();
    l.apply(t).unwrap();
    let thirds = Fixed::new(&[(10, 1.0), (11, 1.0), (12, 1.0)], 3.0);
    assert_eq!(
        l.status(&id, &thirds).unwrap(),
        Some(TransferStatus::Pending {
            acked_weight: 0.0,
            total: 3.0
        })
    );
    for acker in [10, 11] {
        let ack = Ack::sign(&key(acker), id);
        assert_eq!(l.record_ack(&ack).unwrap(), AckOutcome::Recorded);
        assert_eq!(l.record_ack(&ack).unwrap(), AckOutcome::Duplicate);
    }
    // Exactly 2/3: not final.
    assert_eq!(
        l.status(&id, &thirds).unwrap(),
        Some(TransferStatus::Pending {
            acked_weight: 2.0,
            total: 3.0
        })
    );
    // Just above 2/3: final.
    let above = Fixed::new(&[(10, 1.0), (11, 1.000_001), (12, 1.0)], 3.0);
    assert_eq!(l.status(&id, &above).unwrap(), Some(TransferStatus::Final));
    // Sticky: even if the ackers lose all weight.
    let nobody = Fixed::new(&[], 3.0);
    assert_eq!(l.status(&id, &nobody).unwrap(), Some(TransferStatus::Final));
    assert_eq!(
        l.record_ack(&Ack::sign(&key(12), id)).unwrap(),
        AckOutcome::AlreadyFinal
    );
    assert_eq!(
        l.history(&acct(1), 1).unwrap()[0].state,
        TransferState::Final
    );
}

#[test]
fn acks_are_verified_and_bounded() {
    let mut l = open_with(LedgerConfig {
        max_acks_per_transfer: 2,
        ..LedgerConfig::default()
    });
    let t = transfer(&l, 1, 3, 10, 1);
    let id = t.id();
    l.apply(t).unwrap();
    let held = transfer(&l, 3, 4, 1000, 1);
    let held_id = held.id();
    l.apply(held).unwrap();

    assert!(matches!(
        l.record_ack(&Ack::sign(&key(10), TransferId([0; 32]))),
        Err(LedgerError::UnknownTransfer(_))
    ));
    assert!(matches!(
        l.record_ack(&Ack::sign(&key(10), held_id)),
        Err(LedgerError::NotApplied(_))
    ));
    let mut forged = Ack::sign(&key(10), id);
    forged.acker = acct(11);
    assert!(matches!(
        l.record_ack(&forged),
        Err(LedgerError::Ack(AckError::BadSignature(_)))
    ));
    l.record_ack(&Ack::sign(&key(10), id)).unwrap();
    l.record_ack(&Ack::sign(&key(11), id)).unwrap();
    assert!(matches!(
        l.record_ack(&Ack::sign(&key(12), id)),
        Err(LedgerError::TooManyAcks { max: 2, .. })
    ));
    assert_eq!(
        l.status(&TransferId([0; 32]), &Fixed::new(&[], 1.0))
            .unwrap(),
        None
    );
}

#[test]
fn an_equivocation_proof_overrides_finality() {
    let mut l = open();
    let a = transfer(&l, 1, 3, 10, 1);
    let id = a.id();
    l.apply(a).unwrap();
    let one = Fixed::new(&[(10, 1.0)], 1.0);
    l.record_ack(&Ack::sign(&key(10), id)).unwrap();
    assert_eq!(l.status(&id, &one).unwrap(), Some(TransferStatus::Final));
    let twin = transfer(&l, 1, 4, 10, 1);
    assert!(matches!(
        l.apply(twin).unwrap(),
        Applied::Equivocation { .. }
    ));
    assert_eq!(l.status(&id, &one).unwrap(), Some(TransferStatus::Void));
    assert_eq!(
        l.history(&acct(3), 1).unwrap()[0].state,
        TransferState::Void
    );
}

#[test]
fn a_copy_of_a_stored_ack_changes_nothing_and_a_forged_new_one_is_refused() {
    let mut l = open();
    let t = transfer(&l, 1, 3, 10, 1);
    let id = t.id();
    l.apply(t).unwrap();
    let ack = Ack::sign(&key(10), id);
    assert_eq!(l.record_ack(&ack).unwrap(), AckOutcome::Recorded);
    // A copy with a broken signature is a duplicate: the stored ack stays as it was.
    let mut copy = ack.clone();
    copy.signature[0] ^= 1;
    assert_eq!(l.record_ack(&copy).unwrap(), AckOutcome::Duplicate);
    assert_eq!(l.acks(&id).unwrap(), vec![ack]);
    // A forged ack from an acker not stored yet is still verified and refused.
    let mut forged = Ack::sign(&key(11), id);
    forged.signature[0] ^= 1;
    assert!(matches!(l.record_ack(&forged), Err(LedgerError::Ack(_))));
    assert_eq!(l.acks(&id).unwrap().len(), 1);
}
