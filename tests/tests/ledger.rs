//! The token ledger on real nodes: transfers signed by many accounts, submitted to different
//! nodes, spread by gossip and anti-entropy until every node holds the same balances; acks make
//! them final; an equivocation is caught everywhere; bad transfers change nothing.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use micro_node::RunningNode;
use micro_node::ledger::micro_ledger::{Applied, Tokens, TransferStatus};
use micro_testkit::ledger::{Wallets, converge, converged, ledger_network};
use micro_testkit::{eventually, heal, init_tracing, partition};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PATIENCE: Duration = Duration::from_secs(60);
const ACCOUNTS: usize = 8;
const START_BALANCE: u64 = 10_000;

fn supply_conserved(nodes: &[RunningNode]) -> Result<()> {
    for node in nodes {
        let (supply, sum) = node.ledger().supply()?;
        ensure!(
            supply == sum,
            "supply {supply:?} but balances sum to {sum:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_from_many_accounts_converge_and_become_final() -> Result<()> {
    init_tracing();
    let mut wallets = Wallets::new(ACCOUNTS, START_BALANCE);
    let (_dirs, nodes) = ledger_network(5, &wallets).await?;
    let mut rng = StdRng::seed_from_u64(7);
    let mut last = None;
    for i in 0..150 {
        let from = rng.random_range(0..ACCOUNTS);
        let to = wallets.account((from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS);
        let transfer = wallets.pay(from, to, rng.random_range(1..50), &format!("t{i}"));
        let node = &nodes[rng.random_range(0..nodes.len())];
        // Applied, or held until gossip brings the sender's earlier transfers to this node.
        let applied = node.ledger().submit(transfer.clone()).await?;
        ensure!(
            matches!(applied, Applied::Applied { .. } | Applied::Held { .. }),
            "{applied:?}"
        );
        last = Some(transfer);
    }
    converge(&nodes, "every node holds the same balances", PATIENCE).await?;
    supply_conserved(&nodes)?;
    let snapshot = nodes[0].ledger().snapshot();
    ensure!(
        (0..ACCOUNTS)
            .all(|i| nodes[0].ledger().next_seq(&wallets.account(i)) == wallets.next_seq[i]),
        "every transfer applied: {snapshot:?}"
    );

    // Acks from the nodes holding the weight make the last transfer final everywhere.
    let last = last.context("sent transfers")?;
    let id = last.id();
    eventually(
        "the last transfer is final on every node",
        PATIENCE,
        || async {
            Ok(nodes
                .iter()
                .all(|n| matches!(n.ledger().status(&id), Ok(Some(TransferStatus::Final)))))
        },
    )
    .await?;

    // Bad input changes nothing: a forged signature, an overdraft, a replay.
    let before = nodes[1].ledger().snapshot();
    let mut forged = wallets.pay(0, wallets.account(1), 1, "forged");
    forged.signature[0] ^= 1;
    ensure!(
        nodes[1].ledger().submit(forged).await.is_err(),
        "bad signature refused"
    );
    wallets.next_seq[0] -= 1;
    let replayed = nodes[1].ledger().submit(last).await?;
    ensure!(
        matches!(replayed, Applied::Duplicate { .. }),
        "a replay is never applied twice: {replayed:?}"
    );
    let overdraft = wallets.pay(
        2,
        wallets.account(3),
        START_BALANCE * ACCOUNTS as u64,
        "all of it",
    );
    let held = nodes[1].ledger().submit(overdraft).await?;
    ensure!(
        matches!(held, Applied::Held { .. }),
        "an overdraft waits for funds: {held:?}"
    );
    let after = nodes[1].ledger().snapshot();
    ensure!(after.accounts == before.accounts, "balances unchanged");
    supply_conserved(&nodes)?;
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

/// Sends `count` random transfers among `accounts`, each to a random node of `side`.
async fn traffic(
    wallets: &mut Wallets,
    rng: &mut StdRng,
    side: &[RunningNode],
    accounts: &[usize],
    count: usize,
) -> Result<()> {
    for i in 0..count {
        let from = accounts[rng.random_range(0..accounts.len())];
        let to = accounts[rng.random_range(0..accounts.len())];
        let to = if to == from {
            (from + 1) % ACCOUNTS
        } else {
            to
        };
        let transfer = wallets.pay(
            from,
            wallets.account(to),
            rng.random_range(1..20),
            &format!("p{i}"),
        );
        side[rng.random_range(0..side.len())]
            .ledger()
            .submit(transfer)
            .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_nodes_converge_after_a_partition_heals_and_catch_equivocations() -> Result<()> {
    init_tracing();
    let mut wallets = Wallets::new(ACCOUNTS, START_BALANCE);
    let (_dirs, nodes) = ledger_network(7, &wallets).await?;
    let mut rng = StdRng::seed_from_u64(11);
    let all: Vec<usize> = (1..ACCOUNTS - 1).collect();
    traffic(&mut wallets, &mut rng, &nodes, &all, 200).await?;
    converge(&nodes, "all seven hold the same balances", PATIENCE).await?;

    // Two halves that cannot reach each other; each side keeps transferring.
    let (a, b) = nodes.split_at(3);
    partition(a, b).await?;
    eventually("the halves are apart", PATIENCE, || async {
        let mut apart = true;
        for x in a {
            let peers = x.overlay().connected_peers().await?;
            apart &= !peers
                .iter()
                .any(|p| b.iter().any(|y| y.peer_id() == p.peer_id));
        }
        Ok(apart)
    })
    .await?;
    // Account 7 pays on side b first, long before the heal (so gossip's message cache no
    // longer replays it then).
    let before = wallets.pay(7, wallets.account(5), 5, "before");
    b[0].ledger().submit(before).await?;
    traffic(&mut wallets, &mut rng, a, &[1, 2, 3], 150).await?;
    traffic(&mut wallets, &mut rng, b, &[4, 5, 6], 150).await?;
    // Account 0 spends its first seq twice, once on each side. Account 7, which paid once on
    // side b, spends its second seq twice on side a: side a freezes it at seq 2 without
    // having seen seq 1, which stays valid and must still reach it after the heal.
    let (x, y) = (
        wallets.sign(0, wallets.account(1), 100, 1, "to one"),
        wallets.sign(0, wallets.account(4), 100, 1, "to another"),
    );
    a[1].ledger().submit(x).await?;
    b[1].ledger().submit(y).await?;
    let (x, y) = (
        wallets.sign(7, wallets.account(2), 5, 2, "once"),
        wallets.sign(7, wallets.account(3), 5, 2, "twice"),
    );
    a[0].ledger().submit(x).await?;
    let caught = a[0].ledger().submit(y).await?;
    ensure!(matches!(caught, Applied::Equivocation { .. }), "{caught:?}");
    ensure!(
        !converged(&nodes),
        "the halves diverged while apart (else the partition did nothing)"
    );

    heal(a, b).await?;
    converge(&nodes, "all seven converge after the heal", PATIENCE).await?;
    supply_conserved(&nodes)?;
    for node in &nodes {
        for (equivocator, seq) in [(0, 1), (7, 2)] {
            ensure!(
                node.ledger().frozen(&wallets.account(equivocator)) == Some(seq),
                "{} froze account {equivocator} at seq {seq}",
                node.peer_id()
            );
        }
        ensure!(
            node.ledger().next_seq(&wallets.account(7)) == 2,
            "{} applied account 7's transfer from before its equivocation",
            node.peer_id()
        );
        for i in 1..ACCOUNTS - 1 {
            ensure!(
                node.ledger().next_seq(&wallets.account(i)) == wallets.next_seq[i],
                "every transfer of account {i} is applied on {}",
                node.peer_id()
            );
        }
    }
    // Both spends of account 0 are void: it still holds its genesis balance.
    ensure!(nodes[6].ledger().balance(&wallets.account(0)) == Tokens(START_BALANCE));
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}
