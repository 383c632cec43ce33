//! `micro-simulations`: runs scenario files against many real in-process nodes.
//!
//! ```text
//! micro-simulations run scenarios/churn.toml [--nodes N] [--seed S] [--json out.json]
//! micro-simulations sweep scenarios/lookup.toml --nodes 50,100,200 [--plot out.svg]
//! micro-simulations run scenarios/processes.toml [--processes] [--micro-node PATH]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use micro_simulations::process::ProcessOptions;
use micro_simulations::scenario::{Mode, Transport};
use micro_simulations::{Scenario, run, sweep};

fn parse_transport(s: &str) -> Result<Transport, String> {
    match s {
        "tcp" => Ok(Transport::Tcp),
        "memory" => Ok(Transport::Memory),
        other => Err(format!("{other:?}: expected tcp or memory")),
    }
}

#[derive(Parser)]
#[command(name = "micro-simulations", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What the command line may change in a scenario file.
#[derive(Args)]
struct Overrides {
    /// Seed, instead of the file's.
    #[arg(long)]
    seed: Option<u64>,
    /// Transport, instead of the file's: `tcp` or `memory`.
    #[arg(long, value_parser = parse_transport)]
    transport: Option<Transport>,
    /// Most connections each peer keeps, instead of the file's.
    #[arg(long)]
    peer_connections: Option<u32>,
    /// Run every node as a `micro-node` OS process (`[network] mode = "processes"`),
    /// whatever the file says. Small networks only; refuses what needs in-process nodes.
    #[arg(long)]
    processes: bool,
}

impl Overrides {
    fn apply(&self, s: &mut Scenario) {
        if let Some(seed) = self.seed {
            s.seed = seed;
        }
        if let Some(t) = self.transport {
            s.network.transport = t;
        }
        if self.peer_connections.is_some() {
            s.network.peer_connections = self.peer_connections;
        }
        if self.processes {
            s.network.mode = Mode::Processes;
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Runs one scenario: prints a table, writes the JSON report, exits 1 if an `[expect]`
    /// check failed.
    Run {
        /// The scenario file.
        scenario: PathBuf,
        /// Nodes, instead of the file's (providers keep their share).
        #[arg(long)]
        nodes: Option<usize>,
        #[command(flatten)]
        overrides: Overrides,
        /// Where to write the JSON report (default: `<name>-<nodes>.json` here).
        #[arg(long)]
        json: Option<PathBuf>,
        /// The `micro-node` binary process mode runs (default: next to this executable).
        #[arg(long, value_name = "PATH")]
        micro_node: Option<PathBuf>,
    },
    /// Runs one scenario at several sizes; prints a row per size, writes the JSON reports
    /// and, with `--plot`, an SVG of each metric against the size.
    Sweep {
        /// The scenario file.
        scenario: PathBuf,
        /// The sizes, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        nodes: Vec<usize>,
        #[command(flatten)]
        overrides: Overrides,
        /// Where to draw the plot.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Where to write the JSON reports (default: `<name>-sweep.json` here).
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,micro_simulations=info")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_async(Cli::parse())) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn main_async(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Run {
            scenario,
            nodes,
            overrides,
            json,
            micro_node,
        } => {
            let mut s = Scenario::load(&scenario)?;
            if let Some(n) = nodes {
                s = s.scaled_to(n);
            }
            overrides.apply(&mut s);
            if let Err((field, reason)) = s.validate() {
                anyhow::bail!("{}: {field}: {reason}", scenario.display());
            }
            if micro_node.is_some() && s.network.mode != Mode::Processes {
                anyhow::bail!(
                    "--micro-node applies to process mode: add --processes or set \
                     [network] mode = \"processes\""
                );
            }
            let report = if s.network.mode == Mode::Processes {
                let options = ProcessOptions { binary: micro_node };
                micro_simulations::process::run(s.clone(), &options).await?
            } else {
                run(s.clone()).await?
            };
            print!("{}", report.table());
            let path = json
                .unwrap_or_else(|| PathBuf::from(format!("{}-{}.json", s.name, s.network.nodes)));
            std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("report: {}", path.display());
            Ok(report.passed())
        }
        Command::Sweep {
            scenario,
            nodes,
            overrides,
            plot,
            json,
        } => {
            let mut s = Scenario::load(&scenario)?;
            overrides.apply(&mut s);
            let exe = std::env::current_exe().context("finding this program to run each size")?;
            let result = sweep::sweep(&s, &nodes, &exe).await?;
            print!("{}", result.table());
            let path = json.unwrap_or_else(|| PathBuf::from(format!("{}-sweep.json", s.name)));
            std::fs::write(&path, serde_json::to_vec_pretty(&result)?)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("reports: {}", path.display());
            if let Some(plot) = plot {
                result.plot(&plot)?;
                println!("plot: {}", plot.display());
            }
            Ok(result.runs.iter().all(|r| r.passed()))
        }
    }
}
