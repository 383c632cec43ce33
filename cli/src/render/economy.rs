//! Views of the economy: reputation scores (and, with the ledger, balances and history).

use micro_node::api::{BalanceView, ReputationView};
use micro_node::ledger::HistoryView;
use micro_node::metering::MeteringStatus;

use super::Table;
use super::format::{sanitize, short_peer};

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

/// An account's balance, seq and standing.
pub fn balance(view: &BalanceView) -> String {
    let mut out = format!(
        "account   {}{}\nbalance   {}\nnext seq  {}\nnetwork   {}\n",
        view.account,
        if view.own { " (this node)" } else { "" },
        view.balance,
        view.next_seq,
        &view.network[..16],
    );
    if let Some(seq) = view.frozen_from {
        out.push_str(&format!(
            "FROZEN    from seq {seq}: this account equivocated (signed two transfers with one seq)\n"
        ));
    }
    out
}

/// SIDE (owes / owed), COUNTERPARTY, CALLS, CHARGED, PAID, UNPAID.
pub fn metering(status: &MeteringStatus) -> String {
    if status.owed.is_empty() && status.due.is_empty() {
        return "no metered calls yet\n".to_owned();
    }
    let mut t = Table::new(["SIDE", "COUNTERPARTY", "CALLS", "CHARGED", "PAID", "UNPAID"]);
    let sides = [("owes", &status.owed), ("owed by", &status.due)];
    for (side, parties) in sides {
        for p in parties {
            t.push([
                side.to_owned(),
                p.account.to_string()[..16].to_owned() + "…",
                p.calls.to_string(),
                p.charged.to_string(),
                p.paid.to_string(),
                p.charged.saturating_sub(p.paid).to_string(),
            ]);
        }
    }
    t.to_string()
}

/// SEQ, DIRECTION, AMOUNT, COUNTERPARTY, STATUS, MEMO.
pub fn history(entries: &[HistoryView]) -> String {
    if entries.is_empty() {
        return "no transfers\n".to_owned();
    }
    let mut t = Table::new([
        "SEQ",
        "DIRECTION",
        "AMOUNT",
        "COUNTERPARTY",
        "STATUS",
        "MEMO",
    ]);
    for e in entries {
        let counterparty = if e.direction == "sent" { e.to } else { e.from };
        let status = match e.acked {
            Some(share) => format!("{} ({:.0}% acked)", e.status, share * 100.0),
            None => e.status.clone(),
        };
        t.push([
            e.seq.to_string(),
            e.direction.clone(),
            e.amount.to_string(),
            counterparty.to_string()[..16].to_owned() + "…",
            status,
            sanitize(&e.memo),
        ]);
    }
    t.to_string()
}
