//! The apply rules: moving tokens, refusals, holding, cascades, bounds, batches, queries.

use super::*;
use crate::*;

#[test]
fn applies_moves_tokens_and_fee() {
    let mut l = open();
    let t = transfer_fee(&l, 1, 3, 100, 2, 1, "rent");
    let id = t.id();
    assert_eq!(
        l.apply(t.clone()).unwrap(),
        Applied::Applied {
            id,
            cascade: vec![]
        }
    );
    assert_eq!(l.balance(&acct(1)), Tokens(898));
    assert_eq!(l.balance(&acct(3)), Tokens(100));
    assert_eq!(l.balance(&Genesis::local_dev_treasury()), Tokens(2));
    assert_eq!(l.next_seq(&acct(1)), 2);
    assert_eq!(l.next_seq(&acct(3)), 1);
    assert_eq!(l.total_supply(), Tokens(1500));
    assert_conserved(&l);
    assert_eq!(l.get(&acct(1), 1).unwrap(), Some(t.clone()));
    let sent = l.history(&acct(1), 10).unwrap();
    let received = l.history(&acct(3), 10).unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].direction, Direction::Sent);
    assert_eq!(sent[0].state, TransferState::Applied);
    assert_eq!(received[0].direction, Direction::Received);
    assert_eq!(received[0].transfer, t);
}

#[test]
fn invalid_transfers_are_typed_errors_and_change_nothing() {
    let mut l = open();
    l.apply(transfer(&l, 1, 3, 10, 1)).unwrap();
    let before = l.snapshot();
    let check = |l: &mut Ledger, t: SignedTransfer, expect: &dyn Fn(&LedgerError) -> bool| {
        let err = l.apply(t).unwrap_err();
        assert!(expect(&err), "unexpected error {err:?}");
    };
    let mut bad_sig = transfer(&l, 1, 3, 10, 2);
    bad_sig.signature[10] ^= 0x40;
    check(&mut l, bad_sig, &|e| {
        matches!(e, LedgerError::Invalid(TransferError::BadSignature(_)))
    });
    let mut other_net = transfer(&l, 1, 3, 10, 2);
    other_net.transfer.network = NetworkId([1; 32]);
    let other_net = other_net.transfer.sign(&key(1));
    check(&mut l, other_net, &|e| {
        matches!(e, LedgerError::Invalid(TransferError::WrongNetwork { .. }))
    });
    let t = transfer(&l, 1, 3, 0, 2);
    check(&mut l, t, &|e| {
        matches!(e, LedgerError::Invalid(TransferError::ZeroAmount))
    });
    let t = transfer(&l, 1, 3, 10, 0);
    check(&mut l, t, &|e| {
        matches!(e, LedgerError::Invalid(TransferError::ZeroSeq))
    });
    let t = transfer(&l, 1, 1, 10, 2);
    check(&mut l, t, &|e| {
        matches!(e, LedgerError::Invalid(TransferError::SelfTransfer(_)))
    });
    let long = "x".repeat(MAX_MEMO_BYTES + 1);
    let t = transfer_fee(&l, 1, 3, 10, 0, 2, &long);
    check(&mut l, t, &|e| {
        matches!(e, LedgerError::Invalid(TransferError::MemoTooLong { .. }))
    });
    let t = transfer_fee(&l, 1, 3, u64::MAX, 1, 2, "");
    check(&mut l, t, &|e| {
        matches!(
            e,
            LedgerError::Invalid(TransferError::AmountOverflow { .. })
        )
    });
    assert_eq!(l.snapshot(), before);
    // Replay: a duplicate, never applied twice.
    let replay = l.get(&acct(1), 1).unwrap().unwrap();
    assert_eq!(
        l.apply(replay.clone()).unwrap(),
        Applied::Duplicate { id: replay.id() }
    );
    assert_eq!(l.snapshot(), before);
    assert_conserved(&l);
}

#[test]
fn overdraft_is_held_then_funded_by_a_later_incoming_transfer() {
    let mut l = open();
    let overdraft = transfer(&l, 2, 3, 600, 1);
    let id = overdraft.id();
    assert_eq!(
        l.apply(overdraft).unwrap(),
        Applied::Held {
            id,
            reason: HoldReason::Unfunded
        }
    );
    assert_eq!(l.balance(&acct(2)), Tokens(500));
    assert_eq!(l.balance(&acct(3)), Tokens(0));
    assert_eq!(l.next_seq(&acct(2)), 1);
    let h = l.history(&acct(2), 10).unwrap();
    assert_eq!(h[0].state, TransferState::Held(HoldReason::Unfunded));
    assert_conserved(&l);

    let funding = transfer(&l, 1, 2, 200, 1);
    let fid = funding.id();
    assert_eq!(
        l.apply(funding).unwrap(),
        Applied::Applied {
            id: fid,
            cascade: vec![id]
        }
    );
    assert_eq!(l.balance(&acct(2)), Tokens(100));
    assert_eq!(l.balance(&acct(3)), Tokens(600));
    assert_eq!(l.held_count(), 0);
    assert_conserved(&l);
}

#[test]
fn gaps_are_held_and_cascade_in_order() {
    let mut l = open();
    let t3 = transfer(&l, 1, 3, 1, 3);
    let t2 = transfer(&l, 1, 3, 1, 2);
    let t1 = transfer(&l, 1, 3, 1, 1);
    assert!(matches!(
        l.apply(t3.clone()).unwrap(),
        Applied::Held {
            reason: HoldReason::Gap,
            ..
        }
    ));
    assert!(matches!(l.apply(t2.clone()).unwrap(), Applied::Held { .. }));
    assert_eq!(
        l.apply(t1.clone()).unwrap(),
        Applied::Applied {
            id: t1.id(),
            cascade: vec![t2.id(), t3.id()]
        }
    );
    assert_eq!(l.next_seq(&acct(1)), 4);
    assert_eq!(l.balance(&acct(3)), Tokens(3));
}

#[test]
fn a_long_cascade_does_not_recurse() {
    let n = 1500;
    let mut l = open_with(LedgerConfig {
        max_held_per_account: n,
        max_held_total: 2 * n,
        ..LedgerConfig::default()
    });
    // Empty accounts 3 and 4 pass one token back and forth; a single incoming token releases
    // the whole chain, alternating between the two accounts (a recursive cascade would nest
    // 2n deep).
    for s in 1..=n as u64 {
        for (from, to) in [(3, 4), (4, 3)] {
            let t = trusted(&l, from, to, 1, s);
            assert!(matches!(l.apply_verified(t), Ok(Applied::Held { .. })));
        }
    }
    let funding = trusted(&l, 1, 3, 1, 1);
    match l.apply_verified(funding).unwrap() {
        Applied::Applied { cascade, .. } => assert_eq!(cascade.len(), 2 * n),
        other => panic!("{other:?}"),
    }
    assert_eq!(l.balance(&acct(3)), Tokens(1));
    assert_eq!(l.next_seq(&acct(3)), n as u64 + 1);
    assert_eq!(l.next_seq(&acct(4)), n as u64 + 1);
    assert_eq!(l.held_count(), 0);
}

#[test]
fn hold_back_is_bounded_and_lower_seqs_evict_higher() {
    let mut l = open_with(LedgerConfig {
        max_held_per_account: 2,
        max_held_total: 3,
        ..LedgerConfig::default()
    });
    l.apply(transfer(&l, 1, 3, 1, 5)).unwrap();
    let six = transfer(&l, 1, 3, 1, 6);
    l.apply(six.clone()).unwrap();
    let before = l.snapshot();
    assert!(matches!(
        l.apply(transfer(&l, 1, 3, 1, 7)),
        Err(LedgerError::HoldBackFull {
            seq: 7,
            held_for_account: 2,
            ..
        })
    ));
    assert_eq!(l.snapshot(), before);
    // Seq 3 is worth more than seq 6: it evicts it.
    assert!(matches!(
        l.apply(transfer(&l, 1, 3, 1, 3)).unwrap(),
        Applied::Held { .. }
    ));
    assert_eq!(l.held_count(), 2);
    assert_eq!(l.get(&acct(1), 6).unwrap(), None);
    assert_eq!(l.find(&six.id()).unwrap(), None);
    // Global bound: one more slot, then only lower seqs of the same sender get in.
    l.apply(transfer(&l, 2, 3, 1, 9)).unwrap();
    assert!(matches!(
        l.apply(transfer(&l, 2, 3, 1, 10)),
        Err(LedgerError::HoldBackFull { held_total: 3, .. })
    ));
    assert!(matches!(
        l.apply(transfer(&l, 2, 3, 1, 4)).unwrap(),
        Applied::Held { .. }
    ));
    assert_eq!(l.held_count(), 3);
    // The account's next seq is always applicable when funded, whatever the bounds.
    assert!(matches!(
        l.apply(transfer(&l, 1, 3, 1, 1)).unwrap(),
        Applied::Applied { .. }
    ));
}

#[test]
fn transfer_signs_the_next_seq_and_refuses_what_it_cannot_cover() {
    let mut l = open();
    let (t, applied) = l
        .transfer(&key(1), acct(3), Tokens(100), Tokens(1), "hello")
        .unwrap();
    assert_eq!(t.transfer.seq, 1);
    assert!(matches!(applied, Applied::Applied { .. }));
    assert_eq!(l.balance(&acct(1)), Tokens(899));
    assert!(matches!(
        l.transfer(&key(1), acct(3), Tokens(900), Tokens(0), ""),
        Err(LedgerError::InsufficientFunds {
            balance: Tokens(899),
            needed: Tokens(900),
            ..
        })
    ));
    assert!(matches!(
        l.transfer(&key(1), acct(1), Tokens(1), Tokens(0), ""),
        Err(LedgerError::Invalid(TransferError::SelfTransfer(_)))
    ));
    // With its own seq 3 held (arrived from a peer after a restore), the next one is 4.
    l.apply(transfer(&l, 1, 3, 1, 3)).unwrap();
    let (t, applied) = l
        .transfer(&key(1), acct(3), Tokens(1), Tokens(0), "")
        .unwrap();
    assert_eq!(t.transfer.seq, 4);
    assert!(matches!(
        applied,
        Applied::Held {
            reason: HoldReason::Gap,
            ..
        }
    ));
}

#[test]
fn treasury_may_send_and_receive() {
    let mut l = open();
    let treasury = Genesis::local_dev_treasury_key();
    l.apply(transfer_fee(&l, 1, 3, 10, 5, 1, "")).unwrap();
    // The treasury pays a fee to itself: net, it pays only the amount.
    let t = Transfer {
        network: l.network(),
        from: Genesis::local_dev_treasury(),
        to: acct(3),
        amount: Tokens(3),
        fee: Tokens(2),
        seq: 1,
        memo: String::new(),
    }
    .sign(&treasury);
    l.apply(t).unwrap();
    assert_eq!(l.balance(&Genesis::local_dev_treasury()), Tokens(2));
    // Paying the treasury with a fee: it receives both.
    l.apply(
        Transfer {
            network: l.network(),
            from: acct(3),
            to: Genesis::local_dev_treasury(),
            amount: Tokens(4),
            fee: Tokens(1),
            seq: 1,
            memo: String::new(),
        }
        .sign(&key(3)),
    )
    .unwrap();
    assert_eq!(l.balance(&Genesis::local_dev_treasury()), Tokens(7));
    assert_conserved(&l);
}

#[test]
fn batch_equals_one_by_one() {
    let mut one = open();
    let mut batch = open();
    let mut bad = transfer(&one, 2, 3, 1, 1);
    bad.signature[1] ^= 1;
    let transfers = vec![
        transfer(&one, 3, 4, 50, 1),
        transfer(&one, 1, 3, 100, 1),
        bad,
        transfer(&one, 1, 3, 100, 1),
        transfer(&one, 2, 4, 10, 2),
    ];
    let expected: Vec<_> = transfers
        .iter()
        .map(|t| one.apply(t.clone()).map_err(|e| e.to_string()))
        .collect();
    let got: Vec<_> = batch
        .apply_batch(transfers)
        .unwrap()
        .into_iter()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(one.snapshot(), batch.snapshot());
}

#[test]
fn sync_queries_page_through_the_state() {
    let mut l = open();
    for seq in 1..=4 {
        l.apply(transfer(&l, 1, 3, 1, seq)).unwrap();
    }
    l.apply(transfer(&l, 1, 3, 1, 7)).unwrap();
    let seqs = |v: Vec<SignedTransfer>| v.iter().map(|t| t.transfer.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(l.transfers_from(&acct(1), 2, 10).unwrap()),
        [2, 3, 4, 7]
    );
    assert_eq!(seqs(l.transfers_from(&acct(1), 1, 2).unwrap()), [1, 2]);
    assert_eq!(seqs(l.transfers_from(&acct(1), 5, 10).unwrap()), [7]);
    let all = l.heads(None, 100);
    assert_eq!(all.len(), 3); // 1, 2 and 3 (4 and the treasury are untouched)
    let first = l.heads(None, 2);
    let rest = l.heads(Some(first[1].account), 2);
    assert_eq!([first, rest].concat(), all);
    assert!(all.iter().any(|h| h.account == acct(1) && h.next_seq == 5));
    assert_eq!(l.history(&acct(3), 2).unwrap().len(), 2);
    assert_eq!(l.history(&acct(3), 2).unwrap()[0].transfer.transfer.seq, 7);
}
