//! EigenTrust (Kamvar, Schlosser, Garcia-Molina 2003) over a sparse trust graph.
//!
//! ```text
//! t⁽⁰⁾ = p
//! t⁽ⁿ⁺¹⁾ = (1 − a) · Cᵀ t⁽ⁿ⁾ + a · p        until ‖t⁽ⁿ⁺¹⁾ − t⁽ⁿ⁾‖₁ < ε or n = max_iterations
//! ```
//!
//! `C` is row-substochastic: row `i` holds issuer `i`'s reported `c_ij`, summing to at most 1.
//! Whatever a row does not assign (a peer with no report, the trust left out of a top-K report,
//! rounding) goes to `p`, the uniform distribution over the pre-trusted peers, so `Σ t = 1` at
//! every step. Collapsed peers are removed before the run: their rows are dropped, edges to them
//! are dropped (that trust goes to `p` too), they are removed from `p`; they score exactly 0.
//!
//! The run is sparse: one pass over the edges per iteration, O(edges × iterations) time and
//! O(peers + edges) memory. It is deterministic: peers are indexed in first-appearance order
//! over issuers sorted by peer id, so the same graph gives bit-identical scores on every node.

use crate::report::TrustReport;
use crate::scores::Scores;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Parameters of the power iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EigenTrustConfig {
    /// Damping `a`: the share of every peer's score that returns to the pre-trusted set at each
    /// step. Default 0.15. Larger values favour the super nodes and shrink what a Sybil cluster
    /// can amplify (`(1 − a)/a`, see the crate docs); smaller values trust the graph more.
    pub damping: f64,
    /// Stop when the L1 change of an iteration is below this. Default 1e-9.
    pub epsilon: f64,
    /// Stop after this many iterations regardless. Default 200 (the error shrinks by `1 − a`
    /// per iteration, so 0.85²⁰⁰ ≈ 10⁻¹⁴: ε is always reached first with the defaults).
    pub max_iterations: u32,
}

impl Default for EigenTrustConfig {
    fn default() -> Self {
        EigenTrustConfig {
            damping: 0.15,
            epsilon: 1e-9,
            max_iterations: 200,
        }
    }
}

/// The trust reports to run EigenTrust over: one row of normalised trust per issuer.
#[derive(Clone, Debug, Default)]
pub struct TrustGraph {
    rows: BTreeMap<PeerId, Vec<(PeerId, f64)>>,
}

impl TrustGraph {
    /// An empty graph.
    pub fn new() -> TrustGraph {
        TrustGraph::default()
    }

    /// Sets issuer's row, replacing any previous one. The row is sanitised, so any input is
    /// safe: self-trust, non-finite and non-positive values are dropped, repeated peers merged,
    /// and a row summing to more than 1 is scaled down to sum to 1.
    pub fn set_row(&mut self, issuer: PeerId, row: impl IntoIterator<Item = (PeerId, f64)>) {
        let mut merged: Vec<(PeerId, f64)> = Vec::new();
        let mut position: HashMap<PeerId, usize> = HashMap::new();
        for (peer, c) in row {
            if peer == issuer || !c.is_finite() || c <= 0.0 {
                continue;
            }
            match position.get(&peer) {
                Some(&i) => merged[i].1 += c,
                None => {
                    position.insert(peer, merged.len());
                    merged.push((peer, c));
                }
            }
        }
        let sum: f64 = merged.iter().map(|(_, c)| c).sum();
        if sum > 1.0 {
            for (_, c) in &mut merged {
                *c /= sum;
            }
        }
        self.rows.insert(issuer, merged);
    }

    /// Sets the row of a verified report's issuer. Cheaper than [`TrustGraph::set_row`]: a
    /// [`TrustReport`] already guarantees distinct, positive entries, none for the issuer,
    /// summing to at most one, so nothing needs merging or scaling.
    pub fn set_report(&mut self, report: &TrustReport) {
        let row = report
            .entries()
            .iter()
            .map(|e| (e.peer, e.trust.as_fraction()))
            .collect();
        self.rows.insert(report.issuer(), row);
    }

    /// The row of `issuer`, if it has one.
    pub fn row(&self, issuer: &PeerId) -> Option<&[(PeerId, f64)]> {
        self.rows.get(issuer).map(Vec::as_slice)
    }

    /// Number of issuers with a row.
    pub fn issuers(&self) -> usize {
        self.rows.len()
    }

    /// Number of edges over all rows.
    pub fn edges(&self) -> usize {
        self.rows.values().map(Vec::len).sum()
    }
}

/// Runs EigenTrust over `graph`, seeded uniformly by `pre_trusted`, with `collapsed` peers
/// removed. With no (non-collapsed) pre-trusted peer, nothing is reachable and the scores are
/// empty.
pub fn compute(
    graph: &TrustGraph,
    pre_trusted: &[PeerId],
    collapsed: &HashSet<PeerId>,
    config: &EigenTrustConfig,
) -> Scores {
    let a = config.damping.clamp(0.0, 1.0);
    let mut seeds: Vec<PeerId> = pre_trusted
        .iter()
        .filter(|p| !collapsed.contains(p))
        .copied()
        .collect();
    seeds.sort();
    seeds.dedup();
    if seeds.is_empty() {
        return Scores::new([], seeds, 0, 0.0, a);
    }

    // Index peers: seeds first, then in first-appearance order over sorted issuers. Hashing
    // peer ids here is the main cost of the run; the collapsed set is consulted once per
    // distinct peer, not per edge.
    let capacity = graph.rows.len() + seeds.len();
    let mut interner = Interner {
        index: HashMap::with_capacity(capacity),
        peers: Vec::with_capacity(capacity),
        collapsed: Vec::with_capacity(capacity),
    };
    for s in &seeds {
        interner.intern(*s, collapsed);
    }
    let mut edges: Vec<(u32, u32, f64)> = Vec::with_capacity(graph.edges());
    for (issuer, row) in &graph.rows {
        let i = interner.intern(*issuer, collapsed);
        if interner.collapsed[i as usize] {
            continue;
        }
        for (peer, c) in row {
            let j = interner.intern(*peer, collapsed);
            if !interner.collapsed[j as usize] {
                edges.push((i, j, (1.0 - a) * c));
            }
        }
    }
    let peers = interner.peers;
    let n = peers.len();

    // Compressed sparse rows. `edges` is grouped by issuer already (rows are visited once each),
    // but issuers got their index in visiting order, so a counting sort settles it.
    let mut start = vec![0usize; n + 1];
    for (i, _, _) in &edges {
        start[*i as usize + 1] += 1;
    }
    for k in 0..n {
        start[k + 1] += start[k];
    }
    let mut targets = vec![0u32; edges.len()];
    let mut weights = vec![0f64; edges.len()];
    let mut fill = start.clone();
    for (i, j, w) in &edges {
        let slot = &mut fill[*i as usize];
        targets[*slot] = *j;
        weights[*slot] = *w;
        *slot += 1;
    }
    // Mass each peer keeps in the graph per unit of score; the rest returns to the seeds.
    let kept: Vec<f64> = (0..n)
        .map(|i| weights[start[i]..start[i + 1]].iter().sum())
        .collect();

    let seed_share = 1.0 / seeds.len() as f64;
    let mut t = vec![0f64; n];
    t[..seeds.len()].fill(seed_share);
    let mut next = vec![0f64; n];
    let mut iterations = 0;
    let mut residual = f64::INFINITY;
    while iterations < config.max_iterations {
        iterations += 1;
        next.fill(0.0);
        let mut to_seeds = 0.0;
        for i in 0..n {
            let ti = t[i];
            if ti == 0.0 {
                continue;
            }
            for k in start[i]..start[i + 1] {
                next[targets[k] as usize] += ti * weights[k];
            }
            to_seeds += ti * (1.0 - kept[i]);
        }
        let share = to_seeds * seed_share;
        for value in next.iter_mut().take(seeds.len()) {
            *value += share;
        }
        residual = t.iter().zip(&next).map(|(x, y)| (x - y).abs()).sum();
        std::mem::swap(&mut t, &mut next);
        if residual < config.epsilon {
            break;
        }
    }
    Scores::new(peers.into_iter().zip(t), seeds, iterations, residual, a)
}

/// Peer ids to dense indices, in first-appearance order.
struct Interner {
    index: HashMap<PeerId, u32>,
    peers: Vec<PeerId>,
    /// Whether the peer at each index is collapsed.
    collapsed: Vec<bool>,
}

impl Interner {
    /// The index of `peer`, assigning the next one on first sight.
    fn intern(&mut self, peer: PeerId, collapsed: &HashSet<PeerId>) -> u32 {
        *self.index.entry(peer).or_insert_with(|| {
            self.peers.push(peer);
            self.collapsed.push(collapsed.contains(&peer));
            // At most rows × entries peers, far below u32::MAX for any configured bound.
            (self.peers.len() - 1) as u32
        })
    }
}

#[cfg(test)]
mod tests;
