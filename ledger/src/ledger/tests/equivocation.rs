//! Equivocations: detection, proofs, freezing, undoing.

use super::*;
use crate::*;

/// 1 pays 3, 3 spends it on 4; then 1's equivocating twin of the first payment surfaces.
#[test]
fn equivocation_voids_both_and_undoes_what_depended_on_them() {
    let mut l = open();
    let a = transfer(&l, 1, 3, 100, 1);
    let b = transfer_fee(&l, 1, 4, 100, 0, 1, "twin");
    let spend = transfer(&l, 3, 4, 80, 1);
    let later = transfer(&l, 1, 4, 5, 2);
    l.apply(a.clone()).unwrap();
    l.apply(spend.clone()).unwrap();
    l.apply(later.clone()).unwrap();
    assert_eq!(l.balance(&acct(4)), Tokens(85));

    let outcome = l.apply(b.clone()).unwrap();
    let Applied::Equivocation { proof, reverted } = outcome else {
        panic!("expected an equivocation, got {outcome:?}");
    };
    assert_eq!(proof.verify(&l.network()), Ok((acct(1), 1)));
    assert_eq!(*proof, EquivocationProof::new(a.clone(), b.clone()));
    let mut reverted = reverted;
    reverted.sort();
    let mut expected = vec![a.id(), spend.id(), later.id()];
    expected.sort();
    assert_eq!(reverted, expected);

    assert_eq!(l.frozen(&acct(1)), Some(1));
    assert_eq!(l.balance(&acct(1)), Tokens(1000));
    assert_eq!(l.balance(&acct(3)), Tokens(0));
    assert_eq!(l.balance(&acct(4)), Tokens(0));
    assert_eq!(l.next_seq(&acct(1)), 1);
    assert_eq!(l.next_seq(&acct(3)), 1);
    assert_conserved(&l);

    let weights = Fixed::new(&[], 1.0);
    for t in [&a, &b, &later] {
        assert_eq!(
            l.status(&t.id(), &weights).unwrap(),
            Some(TransferStatus::Void)
        );
    }
    // The spend is still valid, just unfunded now.
    assert_eq!(
        l.status(&spend.id(), &weights).unwrap(),
        Some(TransferStatus::Held(HoldReason::Unfunded))
    );
    assert_eq!(l.proofs().unwrap(), vec![*proof]);
    assert!(matches!(
        l.find(&b.id()).unwrap(),
        Some((_, TransferState::Void))
    ));
    // Everything from 1 at or past seq 1 is void; replays of it too.
    assert!(matches!(
        l.apply(transfer(&l, 1, 4, 1, 3)),
        Err(LedgerError::Frozen { from_seq: 1, .. })
    ));
    assert!(matches!(l.apply(a), Err(LedgerError::Frozen { .. })));
    assert!(matches!(
        l.transfer(&key(1), acct(4), Tokens(1), Tokens(0), ""),
        Err(LedgerError::Frozen { .. })
    ));
    // Funding 3 again releases its spend.
    let refund = transfer(&l, 2, 3, 80, 1);
    assert!(matches!(
        l.apply(refund).unwrap(),
        Applied::Applied { cascade, .. } if cascade == vec![spend.id()]
    ));
    let before = l.snapshot();
    assert_eq!(l.recompute().unwrap(), vec![]);
    assert_eq!(l.snapshot(), before);
}

#[test]
fn equivocation_among_held_transfers_needs_no_recompute() {
    let mut l = open();
    l.apply(transfer(&l, 1, 3, 1, 2)).unwrap();
    l.apply(transfer(&l, 1, 3, 1, 3)).unwrap();
    let outcome = l.apply(transfer(&l, 1, 4, 1, 2)).unwrap();
    assert!(matches!(
        outcome,
        Applied::Equivocation { ref reverted, .. } if reverted.is_empty()
    ));
    assert_eq!(l.frozen(&acct(1)), Some(2));
    assert_eq!(l.held_count(), 0);
    // Seq 1 is before the frozen seq and still valid.
    assert!(matches!(
        l.apply(transfer(&l, 1, 3, 1, 1)).unwrap(),
        Applied::Applied { .. }
    ));
    assert_eq!(l.next_seq(&acct(1)), 2);
}

#[test]
fn proofs_from_the_network_converge_replicas() {
    let mut x = open();
    let mut y = open();
    let a = transfer(&x, 1, 3, 100, 1);
    let b = transfer(&x, 1, 4, 100, 1);
    x.apply(a.clone()).unwrap();
    y.apply(b.clone()).unwrap();
    x.apply(transfer(&x, 3, 4, 50, 1)).unwrap();
    y.apply(transfer(&x, 3, 4, 50, 1)).unwrap();
    let Applied::Equivocation { proof, .. } = x.apply(b).unwrap() else {
        panic!("no equivocation");
    };
    let outcome = y.apply_proof((*proof).clone()).unwrap();
    assert!(
        matches!(outcome, ProofOutcome::Frozen { from_seq: 1, ref reverted, .. } if reverted.len() == 1)
    );
    // y never saw `a`; it learns it through anti-entropy and treats it as frozen.
    assert!(matches!(y.apply(a), Err(LedgerError::Frozen { .. })));
    assert_eq!(x.snapshot(), y.snapshot());
    assert_eq!(
        y.apply_proof(*proof).unwrap(),
        ProofOutcome::AlreadyFrozen {
            account: acct(1),
            from_seq: 1
        }
    );
}

#[test]
fn forged_proofs_are_rejected_and_change_nothing() {
    let mut l = open();
    l.apply(transfer(&l, 1, 3, 100, 1)).unwrap();
    let before = l.snapshot();
    let a = transfer(&l, 1, 3, 100, 1);
    let forged = [
        EquivocationProof::new(a.clone(), transfer(&l, 2, 3, 100, 1)),
        EquivocationProof::new(a.clone(), a.clone()),
        EquivocationProof::new(a.clone(), transfer(&l, 1, 3, 100, 2)),
        EquivocationProof {
            a: a.clone(),
            b: {
                let mut t = transfer(&l, 1, 4, 100, 1);
                t.signature[0] ^= 1;
                t
            },
        },
    ];
    for proof in forged {
        assert!(matches!(l.apply_proof(proof), Err(LedgerError::Proof(_))));
    }
    assert_eq!(l.snapshot(), before);
    assert_eq!(l.frozen(&acct(1)), None);
}

/// Replicas that applied different transfers at the same seqs hold the same next seqs but
/// different history digests — what anti-entropy compares to find the equivocation — and
/// agree again once both know it.
#[test]
fn history_digests_expose_divergent_histories_until_the_freeze() {
    let (mut a, mut b) = (open(), open());
    let x = transfer(&a, 1, 3, 100, 1);
    let y = transfer(&a, 1, 4, 100, 1);
    let same = transfer(&a, 1, 2, 5, 2);
    for t in [&x, &same] {
        a.apply(t.clone()).unwrap();
    }
    for t in [&y, &same] {
        b.apply(t.clone()).unwrap();
    }
    assert_eq!(a.next_seq(&acct(1)), b.next_seq(&acct(1)));
    assert_ne!(a.history_digest(&acct(1)), b.history_digest(&acct(1)));
    let fresh = open();
    assert_eq!(fresh.history_digest(&acct(1)), HistoryDigest::default());

    a.apply(y.clone()).unwrap();
    b.apply(x.clone()).unwrap();
    assert_eq!(a.snapshot(), b.snapshot());
    assert_eq!(a.history_digest(&acct(1)), HistoryDigest::default());
    assert_conserved(&a);
}
