//! `micro-node`: runs a Micro Network node and talks to a running one.

mod args;
mod client;
mod daemon;
mod deploy;
mod events;
mod ledger;
mod query;
mod render;
mod tokens;
mod wasm;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::args::Cli;

/// Log filter when `RUST_LOG` is unset: our crates at info, libraries at warn.
const DEFAULT_LOG: &str = "warn,micro_overlay=info,micro_node=info,micro_cli=info";

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(micro_node::default_data_dir);
    match cli.command {
        None => daemon::run(daemon::node_config(data_dir, cli.control, cli.run)).await,
        Some(args::Command::Ledger {
            command: args::LedgerCommand::Account,
        }) if !cli.run.any_given() => ledger::account(&data_dir, cli.json),
        Some(_) if cli.run.any_given() => anyhow::bail!(
            "--super, --listen, --bootstrap, --kad-mode, --discovery-interval, the --gateway and token options and the --build/--source options apply when running a node, not with a command"
        ),
        Some(command) => {
            let client = client::Client::new(&data_dir, cli.control, cli.credential)?;
            query::run(&client, command, cli.json).await
        }
    }
}
