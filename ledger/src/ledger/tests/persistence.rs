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
