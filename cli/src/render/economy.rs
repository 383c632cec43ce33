//! Views of the economy: reputation scores (and, with the ledger, balances and history).

use micro_node::api::ReputationView;

use super::Table;
use super::format::short_peer;

/// RANK, PEER, SCORE, WEIGHT (share of all weight), SEED (a super node pre-trusted by the
/// computation); the peer ids in full, so they can be pasted into `reputation PEER`.
pub fn reputation(view: &ReputationView) -> String {
    if view.top.is_empty() {
        return "no scores yet: the first round runs within the reputation interval\n".to_owned();
    }
    let mut t = Table::new(["RANK", "PEER", "SCORE", "WEIGHT", "SEED"]);
    for row in &view.top {
        let share = if view.total_weight == 0 {
            0.0
        } else {
            row.weight as f64 / view.total_weight as f64 * 100.0
        };
        t.push([
            row.rank.to_string(),
            row.peer.to_string(),
            format!("{:.4}", row.score),
            format!("{share:.1}%"),
            if row.pre_trusted { "super" } else { "" }.to_owned(),
        ]);
    }
    format!(
        "{t}{} peers scored, as seen by {}\n",
        view.ranked_peers,
        short_peer(&view.peer)
    )
}
