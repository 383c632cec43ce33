//! `micro-node ledger balance | history | transfer`.

use anyhow::{Context, Result};
use micro_node::api::{BalanceView, TransferBody, TransferReply};
use micro_node::ledger::HistoryView;
use micro_node::metering::MeteringStatus;

use crate::args::LedgerCommand;
use crate::client::Client;
use crate::query::{QUICK, print_json, print_text};
use crate::render;

/// `micro-node ledger account`: read from the data dir's identity, no node needed.
pub fn account(data_dir: &std::path::Path, json: bool) -> Result<()> {
    let dir = micro_node::data_dir::DataDir::open(data_dir)
        .context("reading the data dir (if the node runs, `ledger balance` shows its account)")?;
    let peer = dir.identity()?.public().to_peer_id();
    let account = micro_node::ledger::account_of(&peer)
        .context("the node's identity is not an ed25519 key")?;
    if json {
        print_json(&serde_json::json!({ "account": account, "peer_id": peer }))
    } else {
        print_text(format!(
            "account  {account}
peer id  {peer}
"
        ))
    }
}

/// Runs one ledger command against the node.
pub async fn run(client: &Client, command: LedgerCommand, json: bool) -> Result<()> {
    match command {
        LedgerCommand::Account => {
            let view: BalanceView = client.get("/ledger/balance", &[], QUICK).await?;
            print_text(format!("account  {}\n", view.account))
        }
        LedgerCommand::Balance { account } => {
            let query: Vec<(&str, String)> = account.map(|a| ("account", a)).into_iter().collect();
            let view: BalanceView = client.get("/ledger/balance", &query, QUICK).await?;
            if json {
                print_json(&view)
            } else {
                print_text(render::balance(&view))
            }
        }
        LedgerCommand::History { account, limit } => {
            let mut query = vec![("limit", limit.to_string())];
            query.extend(account.map(|a| ("account", a)));
            let entries: Vec<HistoryView> = client.get("/ledger/history", &query, QUICK).await?;
            if json {
                print_json(&entries)
            } else {
                print_text(render::history(&entries))
            }
        }
        LedgerCommand::Metering => {
            let status: MeteringStatus = client.get("/metering", &[], QUICK).await?;
            if json {
                print_json(&status)
            } else {
                print_text(render::metering(&status))
            }
        }
        LedgerCommand::Transfer { to, amount, memo } => {
            let body = TransferBody { to, amount, memo };
            let reply: TransferReply = client.post("/ledger/transfers", &body, QUICK).await?;
            if json {
                print_json(&reply)
            } else {
                print_text(format!(
                    "sent {} to {} (seq {}, transfer {}); balance now {}\nit is final once nodes holding 2/3 of the reputation weight acked it: micro-node ledger history\n",
                    reply.amount,
                    reply.to,
                    reply.seq,
                    &reply.id[..16],
                    reply.balance
                ))
            }
        }
    }
}
