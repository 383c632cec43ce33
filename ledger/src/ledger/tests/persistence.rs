//! Reopening a database.

use super::*;
use crate::*;

#[test]
fn reopen_restores_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let (snapshot, proofs, history) = {
        let db = sled::open(dir.path()).unwrap();
        let mut l = Ledger::open(&db, genesis()).unwrap();
        l.apply(transfer(&l, 1, 3, 100, 1)).unwrap();
        l.apply(transfer(&l, 3, 4, 500, 1)).unwrap(); // held, unfunded
        l.apply(transfer(&l, 2, 4, 5, 1)).unwrap();
        l.apply(transfer(&l, 2, 4, 6, 1)).unwrap(); // equivocation
        l.apply(transfer(&l, 1, 4, 1, 5)).unwrap(); // held, gap
        l.flush().unwrap();
        (
            l.snapshot(),
            l.proofs().unwrap(),
            l.history(&acct(4), 10).unwrap(),
        )
    };
    let db = sled::open(dir.path()).unwrap();
    let l = Ledger::open(&db, genesis()).unwrap();
    assert_eq!(l.snapshot(), snapshot);
    assert_eq!(l.proofs().unwrap(), proofs);
    assert_eq!(l.history(&acct(4), 10).unwrap(), history);
    assert_eq!(snapshot.held.len(), 2);
    assert_eq!(snapshot.frozen.len(), 1);
    drop(l);
    let other = Genesis::local_dev([(acct(1), Tokens(1))]);
    assert!(matches!(
        Ledger::open(&db, other),
        Err(LedgerError::GenesisMismatch { .. })
    ));
}

/// A database of format 1 (16-byte account states, no history digests) opens as format 2 with
/// the digests a replica that applied the same transfers computes.
#[test]
fn format_1_databases_migrate_to_history_digests() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = {
        let db = sled::open(dir.path()).unwrap();
        let mut l = Ledger::open(&db, genesis()).unwrap();
        l.apply(transfer(&l, 1, 3, 100, 1)).unwrap();
        l.apply(transfer(&l, 1, 2, 7, 2)).unwrap();
        l.apply(transfer(&l, 3, 4, 50, 1)).unwrap();
        let snapshot = l.snapshot();
        drop(l);
        // Rewrite it as format 1 wrote it.
        let accounts = db.open_tree("ledger-accounts").unwrap();
        for item in accounts.iter() {
            let (k, v) = item.unwrap();
            accounts.insert(k, &v[..16]).unwrap();
        }
        db.open_tree("ledger-meta")
            .unwrap()
            .insert(b"format", &[1u8][..])
            .unwrap();
        db.flush().unwrap();
        snapshot
    };
    assert_eq!(snapshot.histories.len(), 2);
    let db = sled::open(dir.path()).unwrap();
    let l = Ledger::open(&db, genesis()).unwrap();
    assert_eq!(l.snapshot(), snapshot);
    let format = db.open_tree("ledger-meta").unwrap().get(b"format").unwrap();
    assert_eq!(format.as_deref(), Some(&[2u8][..]));
}
