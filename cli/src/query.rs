//! Commands that query a running node and print the answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use micro_overlay::crawl::{CrawlLimits, NetworkGraph};
use micro_overlay::{LocalInfo, NodeInfo, PeerConnection, Route};
use serde::Serialize;

use crate::args::{Command, GraphFormat, NetworkView, PeersView};
use crate::client::Client;
use crate::render;

/// Budget for requests that only read the node's state.
const QUICK: Duration = Duration::from_secs(5);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_text(text: String) -> Result<()> {
    print!("{text}");
    Ok(())
}

fn print_graph(graph: &NetworkGraph, format: GraphFormat, json: bool) -> Result<()> {
    match (json, format) {
        (true, _) | (_, GraphFormat::Json) => print_json(graph),
        (false, GraphFormat::Dot) => print_text(render::graph_dot(graph)),
        (false, GraphFormat::Text) => print_text(render::graph_text(graph)),
    }
}

/// Runs one query command against the node behind `client`.
pub async fn run(client: &Client, command: Command, json: bool) -> Result<()> {
    match command {
        Command::Id => {
            let info: LocalInfo = client.get("/id", &[], QUICK).await?;
            if json {
                print_json(&info)
            } else {
                print_text(render::id(&info))
            }
        }
        Command::Peers { view: None } => {
            let peers: Vec<PeerConnection> = client.get("/peers", &[], QUICK).await?;
            if json {
                print_json(&peers)
            } else {
                print_text(render::peers(&peers, now_ms()))
            }
        }
        Command::Peers {
            view: Some(PeersView::Graph(format)),
        } => {
            let graph: NetworkGraph = client.get("/peers/graph", &[], QUICK).await?;
            print_graph(&graph, format.format, json)
        }
        Command::Network {
            view: NetworkView::Nodes,
        } => {
            let nodes: Vec<NodeInfo> = client.get("/network/nodes", &[], QUICK).await?;
            if json {
                print_json(&nodes)
            } else {
                print_text(render::nodes(&nodes, now_ms()))
            }
        }
        Command::Network {
            view: NetworkView::Routes,
        } => {
            let routes: Vec<Route> = client.get("/network/routes", &[], QUICK).await?;
            if json {
                print_json(&routes)
            } else {
                print_text(render::routes(&routes))
            }
        }
        Command::Network {
            view:
                NetworkView::Graph {
                    format,
                    depth,
                    max_nodes,
                    timeout,
                },
        } => {
            let mut query = Vec::new();
            if let Some(depth) = depth {
                query.push(("depth", depth.to_string()));
            }
            if let Some(max) = max_nodes {
                query.push(("max_nodes", max.to_string()));
            }
            let budget = timeout.unwrap_or(CrawlLimits::default().timeout);
            query.push(("timeout_ms", budget.as_millis().to_string()));
            let graph: NetworkGraph = client.get("/network/graph", &query, budget).await?;
            print_graph(&graph, format.format, json)
        }
    }
}
