//! Convergence and conservation properties of the ledger.
//!
//! Replicas receive the same multiset of transfers — valid chains (some needing incoming funds
//! first), invalid ones, equivocations, duplicates — in different orders; they must end in the
//! same state, equal to a naive model computed from the *set*, and equal to a recompute from
//! genesis. Supply is conserved after every step, and no frozen account ever has a transfer
//! applied at or past its frozen seq.
//!
//! ed25519 verification takes ~17 ms in a debug build, so transfers come from a pool signed
//! and verified once; replicas get them through `apply_verified` (the invalid ones through
//! `apply`, which refuses them before any signature work, except the bad-signature one).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use micro_ledger::{
    Account, Applied, Genesis, HistoryDigest, Ledger, LedgerError, NetworkId, ProofOutcome,
    SignedTransfer, Snapshot, Tokens, Transfer, TransferId, VerifiedTransfer,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Accounts that send; the last one is the treasury.
const ACCOUNTS: usize = 6;
/// Longest chain per account.
const SEQS: usize = 4;
/// Different transfers signed for each (account, seq): one is the chain's, others equivocate.
const VARIANTS: usize = 3;
const GENESIS_BALANCES: [u64; ACCOUNTS] = [300, 120, 50, 0, 0, 0];
const AMOUNTS: [u64; 6] = [1, 5, 20, 50, 120, 200];
const FEES: [u64; 4] = [0, 0, 1, 2];

struct Pool {
    genesis: Genesis,
    accounts: Vec<Account>,
    /// `valid[account][seq - 1][variant]`.
    valid: Vec<Vec<Vec<VerifiedTransfer>>>,
    /// Transfers every replica must refuse.
    invalid: Vec<SignedTransfer>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let keys: Vec<SigningKey> = (0..ACCOUNTS)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let accounts: Vec<Account> = keys.iter().map(Account::from).collect();
        let genesis = Genesis {
            network_name: "micro-properties".into(),
            treasury: accounts[ACCOUNTS - 1],
            accounts: accounts
                .iter()
                .zip(GENESIS_BALANCES)
                .map(|(a, b)| (*a, Tokens(b)))
                .collect(),
        };
        let network = genesis.network_id();
        let make = |from: usize, to: usize, amount: u64, fee: u64, seq: u64, memo: &str| {
            Transfer {
                network,
                from: accounts[from],
                to: accounts[to],
                amount: Tokens(amount),
                fee: Tokens(fee),
                seq,
                memo: memo.into(),
            }
            .sign(&keys[from])
        };
        let valid = (0..ACCOUNTS)
            .map(|from| {
                (1..=SEQS as u64)
                    .map(|seq| {
                        (0..VARIANTS)
                            .map(|v| {
                                // A fixed spread of recipients, amounts and fees.
                                let h = from * 31 + seq as usize * 7 + v * 13;
                                let to = (from + 1 + h % (ACCOUNTS - 1)) % ACCOUNTS;
                                let t = make(from, to, AMOUNTS[h % 6], FEES[h % 4], seq, "");
                                t.verify(&network).expect("pool transfers are valid")
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let mut wrong_network = make(0, 1, 1, 0, 1, "");
        wrong_network.transfer.network = NetworkId([9; 32]);
        let mut bad_signature = make(0, 1, 1, 0, 1, "");
        bad_signature.signature[7] ^= 1;
        let invalid = vec![
            wrong_network,
            make(0, 1, 0, 0, 1, ""),               // zero amount
            make(0, 0, 1, 0, 1, ""),               // to itself
            make(0, 1, 1, 0, 1, &"m".repeat(257)), // memo too long
            make(0, 1, u64::MAX, 1, 1, ""),        // amount + fee overflows
            make(1, 2, 1, 0, 0, ""),               // seq 0
            bad_signature,
        ];
        Pool {
            genesis,
            accounts,
            valid,
            invalid,
        }
    })
}

/// One item a replica receives.
#[derive(Clone, Debug)]
enum Item {
    Valid(VerifiedTransfer),
    Invalid(SignedTransfer),
}

#[derive(Clone, Debug)]
struct Scenario {
    /// Every item, duplicates included.
    items: Vec<Item>,
    /// Ids of the second halves of equivocations (a replica may be spared them).
    alternates: BTreeSet<TransferId>,
    seeds: [u64; 3],
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::array::uniform6(0..=SEQS),
        prop::array::uniform6(prop::array::uniform4(0..VARIANTS)),
        prop::collection::vec((0..ACCOUNTS, 1..=SEQS, 1..VARIANTS), 0..3),
        prop::collection::vec(0..7usize, 0..3),
        prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        any::<[u64; 3]>(),
    )
        .prop_map(|(lens, variants, equivocations, invalid, dups, seeds)| {
            let pool = pool();
            let mut items = Vec::new();
            // The first transfer each (account, seq) slot got; any other one there is the
            // second half of an equivocation.
            let mut first: BTreeMap<(usize, usize), TransferId> = BTreeMap::new();
            for (a, len) in lens.iter().enumerate() {
                for seq in 1..=*len {
                    let t = pool.valid[a][seq - 1][variants[a][seq - 1]].clone();
                    first.insert((a, seq), t.id());
                    items.push(Item::Valid(t));
                }
            }
            let mut alternates = BTreeSet::new();
            for (a, seq, offset) in equivocations {
                let main = variants[a][seq - 1];
                let t = pool.valid[a][seq - 1][(main + offset) % VARIANTS].clone();
                // Past the chain's end the slot may be empty (then this one is its first) or
                // hold an earlier equivocation's transfer (then this one is a second half).
                if *first.entry((a, seq)).or_insert(t.id()) != t.id() {
                    alternates.insert(t.id());
                }
                items.push(Item::Valid(t));
            }
            for i in invalid {
                items.push(Item::Invalid(pool.invalid[i].clone()));
            }
            if !items.is_empty() {
                for d in dups {
                    items.push(d.get(&items).clone());
                }
            }
            Scenario {
                items,
                alternates,
                seeds,
            }
        })
}

fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    v.shuffle(&mut StdRng::seed_from_u64(seed));
    v
}

fn replica() -> (sled::Db, Ledger) {
    let db = sled::Config::new()
        .temporary(true)
        .open()
        .expect("temporary sled db");
    let ledger = Ledger::open(&db, pool().genesis.clone()).expect("open ledger");
    (db, ledger)
}

/// Checks the invariants that must hold after every step.
fn check_invariants(l: &Ledger) -> Result<(), TestCaseError> {
    prop_assert_eq!(l.sum_of_balances().expect("sum"), l.total_supply());
    for a in &pool().accounts {
        if let Some(f) = l.frozen(a) {
            prop_assert!(l.next_seq(a) <= f, "frozen account applied past its seq");
        }
    }
    Ok(())
}

fn feed(l: &mut Ledger, item: Item) -> Result<(), TestCaseError> {
    match item {
        Item::Valid(t) => match l.apply_verified(t) {
            Ok(_) | Err(LedgerError::Frozen { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected refusal: {e}"),
        },
        Item::Invalid(t) => {
            prop_assert!(matches!(l.apply(t), Err(LedgerError::Invalid(_))));
        }
    }
    check_invariants(l)
}

/// The state as a function of the set: frozen from the lowest double-signed seq; apply
/// whatever is applicable, scanning again until nothing changes.
fn model(items: &[Item]) -> Snapshot {
    let pool = pool();
    let mut known: BTreeMap<TransferId, VerifiedTransfer> = BTreeMap::new();
    for item in items {
        if let Item::Valid(t) = item {
            known.insert(t.id(), t.clone());
        }
    }
    let mut slots: BTreeMap<(Account, u64), BTreeSet<TransferId>> = BTreeMap::new();
    for t in known.values() {
        slots
            .entry((t.transfer().from, t.transfer().seq))
            .or_default()
            .insert(t.id());
    }
    let mut frozen: BTreeMap<Account, u64> = BTreeMap::new();
    for ((a, seq), ids) in &slots {
        if ids.len() > 1 {
            let f = frozen.entry(*a).or_insert(*seq);
            *f = (*f).min(*seq);
        }
    }
    let live = |t: &VerifiedTransfer| {
        frozen
            .get(&t.transfer().from)
            .is_none_or(|f| t.transfer().seq < *f)
    };
    let mut state: BTreeMap<Account, (u64, u64)> = pool
        .genesis
        .accounts
        .iter()
        .map(|(a, b)| (*a, (b.0, 1)))
        .collect();
    let mut applied = BTreeSet::new();
    let mut histories: BTreeMap<Account, HistoryDigest> = BTreeMap::new();
    loop {
        let mut progress = false;
        for t in known.values().filter(|t| live(t)) {
            let tr = t.transfer();
            let (balance, next) = state.get(&tr.from).copied().unwrap_or((0, 1));
            if applied.contains(&t.id()) || next != tr.seq || balance < t.total().0 {
                continue;
            }
            state.insert(tr.from, (balance - t.total().0, next + 1));
            state.entry(tr.to).or_insert((0, 1)).0 += tr.amount.0;
            state.entry(pool.genesis.treasury).or_insert((0, 1)).0 += tr.fee.0;
            applied.insert(t.id());
            let history = histories.entry(tr.from).or_default();
            *history = history.extend(&t.id());
            progress = true;
        }
        if !progress {
            break;
        }
    }
    Snapshot {
        accounts: state
            .into_iter()
            .filter(|(_, s)| *s != (0, 1))
            .map(|(a, (b, n))| (a, (Tokens(b), n)))
            .collect(),
        frozen: frozen.clone(),
        held: known
            .values()
            .filter(|t| live(t) && !applied.contains(&t.id()))
            .map(VerifiedTransfer::id)
            .collect(),
        histories,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Three replicas, three orders (with duplicates): one state, the model's, and the
    /// recompute's.
    #[test]
    fn replicas_converge_whatever_the_order(s in scenario()) {
        let expected = model(&s.items);
        let mut snapshots = Vec::new();
        for seed in s.seeds {
            let (_db, mut l) = replica();
            for item in shuffled(&s.items, seed) {
                feed(&mut l, item)?;
            }
            let snapshot = l.snapshot();
            prop_assert_eq!(l.recompute().expect("recompute"), Vec::<TransferId>::new());
            prop_assert_eq!(&l.snapshot(), &snapshot, "incremental state differs from recompute");
            snapshots.push(snapshot);
        }
        for snapshot in &snapshots {
            prop_assert_eq!(snapshot, &expected);
        }
    }

    /// A replica that never sees the second half of an equivocation learns it from the
    /// proof (received at any point) and ends in the same state.
    #[test]
    fn proofs_alone_bring_a_replica_to_the_same_state(s in scenario(), at in any::<prop::sample::Index>()) {
        let (_x_db, mut x) = replica();
        for item in shuffled(&s.items, s.seeds[0]) {
            feed(&mut x, item)?;
        }
        let proofs = x.proofs().expect("proofs");
        prop_assert_eq!(proofs.len(), x.snapshot().frozen.len());

        let (_y_db, mut y) = replica();
        let mut items: Vec<Item> = shuffled(&s.items, s.seeds[1])
            .into_iter()
            .filter(|i| !matches!(i, Item::Valid(t) if s.alternates.contains(&t.id())))
            .collect();
        let split = at.index(items.len() + 1);
        let rest = items.split_off(split);
        for item in items {
            feed(&mut y, item)?;
        }
        for proof in &proofs {
            let outcome = y.apply_proof(proof.clone()).expect("valid proof");
            let frozen = matches!(outcome, ProofOutcome::Frozen { .. });
            prop_assert!(frozen, "proof changed nothing: {:?}", outcome);
            check_invariants(&y)?;
        }
        for item in rest {
            feed(&mut y, item)?;
        }
        prop_assert_eq!(y.snapshot(), x.snapshot());
    }
}

/// Supply is conserved in the face of a cascade undone by an equivocation, through the public
/// API with real signatures only.
#[test]
fn equivocation_undo_conserves_supply() {
    let pool = pool();
    let (_db, mut l) = replica();
    for seq in 0..SEQS {
        for a in 0..ACCOUNTS {
            let _ = l.apply_verified(pool.valid[a][seq][0].clone());
            assert_eq!(l.sum_of_balances().ok(), Some(l.total_supply()));
        }
    }
    let twin = pool.valid[0][0][1].clone();
    assert!(matches!(
        l.apply_verified(twin),
        Ok(Applied::Equivocation { .. })
    ));
    assert_eq!(l.sum_of_balances().ok(), Some(l.total_supply()));
    assert_eq!(l.frozen(&pool.accounts[0]), Some(1));
    assert_eq!(l.next_seq(&pool.accounts[0]), 1);
}
