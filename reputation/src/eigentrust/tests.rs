//! Tests of the EigenTrust run, including the Sybil bound of the crate docs.

use super::*;
use crate::test_support::node;
use proptest::prelude::*;

const A: f64 = 0.15;

fn tight() -> EigenTrustConfig {
    EigenTrustConfig {
        damping: A,
        epsilon: 1e-14,
        max_iterations: 1_000,
    }
}

fn none() -> HashSet<PeerId> {
    HashSet::new()
}

/// An honest network: `rows[i]` lists `(target, weight)` among the honest peers, normalised to
/// sum to one together with `to_attacker[i]` (trust in the attacker's key `A`).
struct Network {
    graph: TrustGraph,
    honest: Vec<PeerId>,
    supers: Vec<PeerId>,
}

const ATTACKER: u32 = 1_000_000;
const SYBIL_BASE: u32 = 2_000_000;
/// Entries per report, as in the default config: a sybil cannot list more.
const K: usize = 64;

fn network(n: usize, supers: usize, rows: &[Vec<(usize, u32)>], to_attacker: &[u32]) -> Network {
    let honest: Vec<PeerId> = (0..n as u32).map(node).collect();
    let mut graph = TrustGraph::new();
    for (i, row) in rows.iter().enumerate().take(n) {
        let attacker = to_attacker.get(i).copied().unwrap_or(0);
        let total: f64 = row.iter().map(|(_, w)| f64::from(*w)).sum::<f64>() + f64::from(attacker);
        if total == 0.0 {
            continue;
        }
        let mut entries: Vec<(PeerId, f64)> = row
            .iter()
            .map(|(j, w)| (honest[j % n], f64::from(*w) / total))
            .collect();
        if attacker > 0 {
            entries.push((node(ATTACKER), f64::from(attacker) / total));
        }
        graph.set_row(honest[i], entries);
    }
    let supers = honest[..supers.clamp(1, n)].to_vec();
    Network {
        graph,
        honest,
        supers,
    }
}

/// Adds the attacker `A` and `k` sybils. Sybil `s` trusts `A` and the next sybils (up to K
/// entries, all equal, summing to 1). `A` gives `to_sybils` of its trust to the first sybils and
/// the rest to `honest_exit` (if any). Returns the cluster.
fn add_cluster(
    graph: &mut TrustGraph,
    k: usize,
    to_sybils: f64,
    honest_exit: Option<PeerId>,
) -> Vec<PeerId> {
    let attacker = node(ATTACKER);
    let sybils: Vec<PeerId> = (0..k as u32).map(|s| node(SYBIL_BASE + s)).collect();
    let listed = k.min(K - 1);
    let mut row: Vec<(PeerId, f64)> = sybils[..listed]
        .iter()
        .map(|s| (*s, to_sybils / listed as f64))
        .collect();
    if let Some(exit) = honest_exit {
        row.push((exit, 1.0 - to_sybils));
    }
    graph.set_row(attacker, row);
    for (s, sybil) in sybils.iter().enumerate() {
        let others = (k - 1).min(K - 1);
        let share = 1.0 / (others + 1) as f64;
        let mut row = vec![(attacker, share)];
        row.extend((1..=others).map(|d| (sybils[(s + d) % k], share)));
        graph.set_row(*sybil, row);
    }
    let mut cluster = sybils;
    cluster.push(attacker);
    cluster
}

/// `Σ_{i ∉ S} t_i · c_{i,S}`: the trust honest peers send into the cluster.
fn inflow(graph: &TrustGraph, scores: &Scores, cluster: &[PeerId]) -> f64 {
    let inside: HashSet<PeerId> = cluster.iter().copied().collect();
    graph
        .rows
        .iter()
        .filter(|(issuer, _)| !inside.contains(issuer))
        .map(|(issuer, row)| {
            scores.score(issuer)
                * row
                    .iter()
                    .filter(|(p, _)| inside.contains(p))
                    .map(|(_, c)| c)
                    .sum::<f64>()
        })
        .sum()
}

fn total(scores: &Scores, peers: &[PeerId]) -> f64 {
    peers.iter().map(|p| scores.score(p)).sum()
}

fn honest_rows(n: usize) -> impl Strategy<Value = Vec<Vec<(usize, u32)>>> {
    proptest::collection::vec(proptest::collection::vec((0..n, 1u32..100), 0..6), n..=n)
}

#[test]
fn a_dangling_peer_sends_its_mass_back_to_the_seeds() {
    let (s, x) = (node(0), node(1));
    let mut graph = TrustGraph::new();
    graph.set_row(s, [(x, 1.0)]);
    let scores = compute(&graph, &[s], &none(), &tight());
    // t_x = (1 − a) t_s and t_s = 1 − t_x.
    let expected_s = 1.0 / (2.0 - A);
    assert!((scores.score(&s) - expected_s).abs() < 1e-12);
    assert!((scores.score(&x) - (1.0 - A) * expected_s).abs() < 1e-12);
}

#[test]
fn rows_are_sanitised() {
    let (i, j, k) = (node(0), node(1), node(2));
    let mut graph = TrustGraph::new();
    graph.set_row(
        i,
        [
            (i, 0.5),
            (j, 1.0),
            (k, 2.0),
            (j, 1.0),
            (k, f64::NAN),
            (k, -1.0),
        ],
    );
    let row = graph.row(&i).expect("row");
    assert_eq!(row, &[(j, 0.5), (k, 0.5)]);
    assert_eq!((graph.issuers(), graph.edges()), (1, 2));
}

#[test]
fn no_seed_means_no_scores() {
    let mut graph = TrustGraph::new();
    graph.set_row(node(0), [(node(1), 1.0)]);
    assert!(compute(&graph, &[], &none(), &tight()).is_empty());
    let collapsed = [node(0)].into_iter().collect();
    assert!(compute(&graph, &[node(0)], &collapsed, &tight()).is_empty());
}

#[test]
fn the_result_does_not_depend_on_insertion_order() {
    let rows = [
        (node(0), vec![(node(1), 0.3), (node(2), 0.7)]),
        (
            node(1),
            vec![(node(2), 0.2), (node(3), 0.4), (node(0), 0.4)],
        ),
        (node(2), vec![(node(3), 1.0)]),
        (node(3), vec![(node(1), 0.5)]),
    ];
    let mut forward = TrustGraph::new();
    for (issuer, row) in rows.iter() {
        forward.set_row(*issuer, row.clone());
    }
    let mut backward = TrustGraph::new();
    for (issuer, row) in rows.iter().rev() {
        backward.set_row(*issuer, row.clone());
    }
    let supers = [node(0), node(1)];
    let one = compute(&forward, &supers, &none(), &EigenTrustConfig::default());
    let two = compute(
        &backward,
        &[node(1), node(0)],
        &none(),
        &EigenTrustConfig::default(),
    );
    for p in (0..4).map(node) {
        assert_eq!(one.score(&p).to_bits(), two.score(&p).to_bits());
    }
}

#[test]
fn a_closed_cluster_weighs_the_same_with_one_sybil_or_a_thousand() {
    let rows = vec![
        vec![(1, 50), (2, 30), (3, 20)],
        vec![(0, 40), (2, 40), (4, 20)],
        vec![(3, 60), (1, 40)],
        vec![(4, 10), (0, 90)],
        vec![(2, 50), (0, 50)],
    ];
    let to_attacker = [0, 0, 30, 0, 10];
    let mut results = Vec::new();
    for k in [1, 10, 1_000] {
        let mut net = network(5, 2, &rows, &to_attacker);
        let cluster = add_cluster(&mut net.graph, k, 1.0, None);
        let scores = compute(&net.graph, &net.supers, &none(), &tight());
        let cluster_total = total(&scores, &cluster);
        let inflow = inflow(&net.graph, &scores, &cluster);
        // Closed cluster: the amplification bound is attained exactly.
        assert!(
            (cluster_total - (1.0 - A) / A * inflow).abs() < 1e-9,
            "k = {k}: total {cluster_total}, inflow {inflow}"
        );
        assert!((total(&scores, &net.honest) + cluster_total - 1.0).abs() < 1e-9);
        results.push((cluster_total, scores.score(&net.honest[0])));
    }
    for (cluster_total, honest_0) in &results[1..] {
        assert!((cluster_total - results[0].0).abs() < 1e-9, "{results:?}");
        assert!((honest_0 - results[0].1).abs() < 1e-9, "{results:?}");
    }
}

#[test]
fn collapsing_a_peer_is_removing_it_and_keeps_the_honest_order() {
    let (s0, s1, h0, h1, h2, h3, x) = (
        node(0),
        node(1),
        node(2),
        node(3),
        node(4),
        node(5),
        node(9),
    );
    let honest = [s0, s1, h0, h1, h2, h3];
    let base = |with_x: bool| {
        let mut g = TrustGraph::new();
        g.set_row(s0, [(h0, 0.5), (h1, 0.3), (h2, 0.2)]);
        g.set_row(s1, [(h0, 0.4), (h1, 0.4), (h3, 0.2)]);
        if with_x {
            g.set_row(h0, [(h1, 0.4), (s0, 0.4), (x, 0.2)]);
            g.set_row(x, [(h3, 1.0)]);
        } else {
            g.set_row(h0, [(h1, 0.4), (s0, 0.4)]);
        }
        g.set_row(h1, [(h2, 0.6), (s1, 0.4)]);
        g.set_row(h2, [(h3, 0.5), (h0, 0.5)]);
        g.set_row(h3, [(s0, 1.0)]);
        g
    };
    let supers = [s0, s1];
    let order = |scores: &Scores| {
        let mut order = honest.to_vec();
        order.sort_by(|a, b| scores.score(b).total_cmp(&scores.score(a)));
        order
    };
    let live = compute(&base(true), &supers, &none(), &tight());
    let collapsed_set: HashSet<PeerId> = [x].into_iter().collect();
    let collapsed = compute(&base(true), &supers, &collapsed_set, &tight());
    let removed = compute(&base(false), &supers, &none(), &tight());
    assert!(live.score(&x) > 0.0);
    assert_eq!(collapsed.score(&x), 0.0);
    for p in honest {
        assert_eq!(collapsed.score(&p).to_bits(), removed.score(&p).to_bits());
    }
    assert_eq!(order(&live), order(&collapsed));
    assert!((total(&collapsed, &honest) - 1.0).abs() < 1e-12);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Scores sum to one, and every super node keeps at least `a / |supers|`.
    #[test]
    fn scores_sum_to_one_and_supers_keep_their_floor(
        (n, rows) in (2usize..30).prop_flat_map(|n| (Just(n), honest_rows(n))),
        supers in 1usize..5,
    ) {
        let net = network(n, supers, &rows, &[]);
        let scores = compute(&net.graph, &net.supers, &none(), &EigenTrustConfig::default());
        let sum: f64 = scores.iter().map(|(_, t)| t).sum();
        prop_assert!((sum - 1.0).abs() < 1e-9, "sum {}", sum);
        let floor = A / net.supers.len() as f64;
        for s in &net.supers {
            prop_assert!(scores.score(s) >= floor - 1e-12);
        }
        prop_assert!(scores.residual() < 1e-9);
    }

}

proptest! {
    // The Sybil properties build graphs of hundreds of keys: fewer cases keep the suite fast.
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Sybils that no honest or pre-trusted peer trusts get nothing, however many there are.
    #[test]
    fn unreachable_sybils_weigh_nothing(
        (n, rows) in (2usize..20).prop_flat_map(|n| (Just(n), honest_rows(n))),
        k in 1usize..400,
    ) {
        let mut net = network(n, 2, &rows, &[]);
        let cluster = add_cluster(&mut net.graph, k, 1.0, None);
        let scores = compute(&net.graph, &net.supers, &none(), &EigenTrustConfig::default());
        for p in &cluster {
            prop_assert_eq!(scores.score(p), 0.0);
            prop_assert_eq!(scores.weight(p).0, 0);
        }
    }

    /// The cluster's weight is bounded by `(1 − a)/a` × the honest trust flowing into it, for
    /// any number of sybils and any split of the attacker's own trust; and when the cluster keeps
    /// all its trust inside (the attacker's best play), its weight does not depend on `k`.
    #[test]
    fn the_sybil_cluster_is_bounded_by_honest_inflow(
        (n, rows, to_attacker) in (3usize..20).prop_flat_map(|n| (
            Just(n),
            honest_rows(n),
            proptest::collection::vec(0u32..50, n..=n),
        )),
        k in 1usize..200,
        to_sybils in 0.05f64..1.0,
        exit in 0usize..20,
    ) {
        let exit = node((exit % n) as u32);
        // An open cluster (the attacker also trusts an honest peer).
        let mut open = network(n, 2, &rows, &to_attacker);
        let cluster = add_cluster(&mut open.graph, k, to_sybils, Some(exit));
        let scores = compute(&open.graph, &open.supers, &none(), &tight());
        let cluster_total = total(&scores, &cluster);
        let bound = (1.0 - A) / A * inflow(&open.graph, &scores, &cluster);
        prop_assert!(cluster_total <= bound + 1e-9, "total {} bound {}", cluster_total, bound);

        // A closed cluster with k sybils weighs what it weighs with one.
        let mut closed = network(n, 2, &rows, &to_attacker);
        let cluster = add_cluster(&mut closed.graph, k, 1.0, None);
        let with_k = total(&compute(&closed.graph, &closed.supers, &none(), &tight()), &cluster);
        let mut single = network(n, 2, &rows, &to_attacker);
        let cluster = add_cluster(&mut single.graph, 1, 1.0, None);
        let with_1 = total(&compute(&single.graph, &single.supers, &none(), &tight()), &cluster);
        prop_assert!((with_k - with_1).abs() < 1e-9, "k = {}: {} vs {}", k, with_k, with_1);
    }
}
