//! Commands that query a running node and print the answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use micro_node::api::{CallBody, CallReply, PublishBody, ReputationView, RoutesView, StreamLine};
use micro_node::broker::Published;
use micro_node::registry::{Endpoint, ServiceRecord, ServiceSummary};
use micro_node::reputation::Explanation;
use micro_node::services::{Backend, LocalService, ServeSpec};
use micro_overlay::crawl::{CrawlLimits, NetworkGraph};
use micro_overlay::{LocalInfo, NodeInfo, PeerConnection};
use serde::Serialize;

use crate::args::{Command, GraphFormat, NetworkView, PeersView};
use crate::client::Client;
use crate::render;

/// Budget for requests that only read the node's state.
pub(crate) const QUICK: Duration = Duration::from_secs(5);

/// Deadline of `call` when none is given.
const CALL_DEFAULT: Duration = Duration::from_secs(10);

/// `Name` or `Name=description`.
fn parse_endpoint(text: &str) -> Result<Endpoint> {
    let (name, description) = text.split_once('=').unwrap_or((text, ""));
    Ok(Endpoint {
        name: name.trim().parse()?,
        description: description.trim().to_owned(),
        request_schema: None,
        response_schema: None,
    })
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}

pub(crate) fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub(crate) fn print_text(text: String) -> Result<()> {
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
            let view: RoutesView = client.get("/network/routes", &[], QUICK).await?;
            if json {
                print_json(&view)
            } else {
                print_text(format!(
                    "{}\n{}",
                    render::routes(&view.nodes),
                    render::service_routes(&view.services)
                ))
            }
        }
        Command::Network {
            view: NetworkView::Services,
        } => {
            let services: Vec<ServiceSummary> = client.get("/network/services", &[], QUICK).await?;
            if json {
                print_json(&services)
            } else {
                print_text(render::network_services(&services))
            }
        }
        Command::Publish {
            topic,
            body,
            headers,
            content_type,
        } => {
            let request = PublishBody {
                topic,
                body,
                content_type: Some(content_type),
                headers: headers.into_iter().collect(),
            };
            let published: Published = client.post("/broker/publish", &request, QUICK).await?;
            if json {
                print_json(&published)
            } else {
                print_text(format!(
                    "published {} (delivered to {} peer{})\n",
                    published.id,
                    published.delivered_to,
                    if published.delivered_to == 1 { "" } else { "s" }
                ))
            }
        }
        Command::Subscribe { topic } => {
            client
                .stream_lines(
                    "/broker/subscribe",
                    &[("topic", topic.clone())],
                    || eprintln!("subscribed to {topic}; waiting for messages (Ctrl-C to stop)"),
                    |line| {
                        if json {
                            println!("{line}");
                        } else {
                            match serde_json::from_str::<StreamLine>(line)? {
                                StreamLine::Message {
                                    publisher, body, ..
                                } => {
                                    println!("{} {body}", render::short_peer(&publisher));
                                }
                                StreamLine::Missed(n) => {
                                    eprintln!("(missed {n} messages: too slow)")
                                }
                            }
                        }
                        // Each line is flushed as it comes, also into a pipe.
                        std::io::Write::flush(&mut std::io::stdout())?;
                        Ok(())
                    },
                )
                .await
        }
        Command::Events { command } => crate::events::run(client, command, json).await,
        Command::Deploy {
            source,
            follow,
            on,
            manifest,
            name,
            version,
        } => {
            let path = std::path::Path::new(&source);
            let component =
                path.is_file() && path.extension().is_some_and(|e| e == "wasm" || e == "wat");
            if component {
                if on.is_some() {
                    anyhow::bail!(
                        "--on deploys a source (a repository the other node fetches), not a local file"
                    );
                }
                if follow.is_some() {
                    anyhow::bail!(
                        "--follow applies to sources (repositories), not to a built component"
                    );
                }
                crate::wasm::deploy(client, path, manifest.as_deref(), name, version, json).await
            } else {
                if manifest.is_some() || name.is_some() || version.is_some() {
                    anyhow::bail!(
                        "--manifest, --name and --version apply to a built component; a source's micro.toml names it and its commit versions it"
                    );
                }
                crate::deploy::deploy_source(client, &source, follow, on, json).await
            }
        }
        Command::Update { name } => crate::deploy::update(client, &name, json).await,
        Command::Status => crate::wasm::status(client, json).await,
        Command::Logs {
            name, build: true, ..
        } => print_text(
            client
                .get_text(&format!("/deployments/{name}/build-log"), QUICK)
                .await?,
        ),
        Command::Logs {
            name,
            follow,
            lines,
            build: false,
        } => crate::wasm::logs(client, &name, follow, lines, json).await,
        Command::Kill { name } => crate::wasm::kill(client, &name, json).await,
        Command::Ledger { command } => crate::ledger::run(client, command, json).await,
        Command::Token { command } => crate::tokens::run(client, command, json).await,
        Command::Reputation { peer: None } => {
            let view: ReputationView = client.get("/reputation", &[], QUICK).await?;
            if json {
                print_json(&view)
            } else {
                print_text(render::reputation(&view))
            }
        }
        Command::Reputation { peer: Some(peer) } => {
            let why: Explanation = client
                .get(&format!("/reputation/{peer}"), &[], QUICK)
                .await?;
            if json {
                print_json(&why)
            } else {
                print_text(why.to_string())
            }
        }
        Command::Services => {
            let services: Vec<LocalService> = client.get("/services", &[], QUICK).await?;
            if json {
                print_json(&services)
            } else {
                print_text(render::local_services(&services))
            }
        }
        Command::Serve {
            name,
            http,
            endpoints,
            version,
            price,
        } => {
            let spec = ServeSpec {
                name: name.parse()?,
                version,
                older_versions: Vec::new(),
                backend: Backend::Http { url: http },
                endpoints: endpoints
                    .iter()
                    .map(|e| parse_endpoint(e))
                    .collect::<Result<_>>()?,
                metadata: Default::default(),
                price_per_call: price,
            };
            let record: ServiceRecord = client.post("/services", &spec, QUICK).await?;
            if json {
                print_json(&record)
            } else {
                print_text(format!(
                    "serving {} (version {}) on the network as {}\ncall it with: micro-node call {} <Endpoint> '{{}}'\n",
                    record.name, record.version, record.owner, record.name
                ))
            }
        }
        Command::Deregister { name } => {
            client.delete(&format!("/services/{name}"), QUICK).await?;
            if json {
                print_json(&serde_json::json!({ "deregistered": name }))
            } else {
                print_text(format!("{name} deregistered\n"))
            }
        }
        Command::Call {
            service,
            endpoint,
            body,
            timeout,
            content_type,
            node,
        } => {
            let budget = timeout.unwrap_or(CALL_DEFAULT);
            let call = CallBody {
                service,
                endpoint,
                body,
                content_type: Some(content_type),
                timeout_ms: Some(u64::try_from(budget.as_millis()).unwrap_or(u64::MAX)),
                node,
            };
            let reply: CallReply = client.post("/call", &call, budget).await?;
            if json {
                print_json(&reply)
            } else {
                print_text(format!("{}\n", reply.body.trim_end()))
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
