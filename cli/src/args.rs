//! Command-line arguments (clap derive).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use micro_overlay::{BootstrapAddr, KadMode, Multiaddr};

/// Run a Micro Network node, or talk to the one running on this data dir.
///
/// Without a command, starts a node. With one, asks the running node over its control API.
#[derive(Debug, Parser)]
#[command(name = "micro-node", version)]
pub struct Cli {
    /// The node's data dir: identity, control credential, databases.
    /// [default: $MICRO_DATA_DIR or ~/.micro]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Control API address: where the node serves it, or where the CLI finds it (overrides
    /// the address the node recorded in its data dir). Loopback only. [default: 127.0.0.1:7700]
    #[arg(long, global = true, value_name = "ADDR")]
    pub control: Option<SocketAddr>,

    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// Control API credential to present instead of the data dir's `control.token`.
    #[arg(
        long,
        global = true,
        env = "MICRO_CONTROL_TOKEN",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub credential: Option<String>,

    /// What to do; without one, the node runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// How to run the node.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Flags for running a node.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run as a super node: reachable backbone, Kademlia server, higher connection limits.
    #[arg(long = "super")]
    pub super_node: bool,

    /// Address to listen on (repeatable). [default: TCP and QUIC on 0.0.0.0, any port]
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<Multiaddr>,

    /// Node to join through, a full multiaddr ending in /p2p/<PeerId> (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<BootstrapAddr>,

    /// Kademlia mode. Super nodes always serve. [default: auto]
    #[arg(long, value_enum, value_name = "MODE")]
    pub kad_mode: Option<KadModeArg>,

    /// How often to bootstrap and walk the DHT to learn new nodes, e.g. `60s`, `5m`.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub discovery_interval: Option<Duration>,

    /// HTTP gateway address (`POST /{service}/{endpoint}`). [default: 127.0.0.1:7780]
    #[arg(long, value_name = "ADDR", conflicts_with = "no_gateway")]
    pub gateway: Option<SocketAddr>,

    /// Run without the HTTP gateway.
    #[arg(long)]
    pub no_gateway: bool,

    /// Require an API token (`micro-node token issue`) on every gateway call, even on
    /// loopback. A gateway listening beyond loopback always requires one.
    #[arg(long, conflicts_with = "no_gateway")]
    pub require_token: bool,

    /// Let the gateway accept tokens issued by this node too (repeatable; default: only this
    /// node's own tokens).
    #[arg(
        long = "trust-issuer",
        value_name = "PEER_ID",
        conflicts_with = "no_gateway"
    )]
    pub trusted_issuers: Vec<micro_overlay::PeerId>,

    /// A gateway rule weighed with every token's scopes (which are allow rules at priority 0):
    /// `allow|deny:SERVICE/ENDPOINT[:PRIORITY]`, e.g. `deny:*/Node.Deploy:10` (repeatable).
    #[arg(
        long = "gateway-rule",
        value_name = "RULE",
        conflicts_with = "no_gateway"
    )]
    pub gateway_rules: Vec<micro_node::tokens::Rule>,

    /// Let `serve --http` point at backends on other machines (default: loopback only).
    #[arg(long)]
    pub allow_remote_backends: bool,

    /// Where short source names like `someone/greeter` resolve (default https://github.com).
    #[arg(long, value_name = "URL")]
    pub source_base: Option<String>,

    /// Cargo's home for builds from source (default `<data dir>/build/cargo-home`).
    #[arg(long, value_name = "DIR")]
    pub build_cargo_home: Option<PathBuf>,

    /// Build dependencies only from what the cargo home holds: no downloads.
    #[arg(long)]
    pub build_offline: bool,

    /// Accept `deploy … --on <this node>` from this peer (repeatable; default: from none).
    #[arg(long = "allow-deploy-from", value_name = "PEER_ID")]
    pub allow_deploy_from: Vec<micro_overlay::PeerId>,

    /// The ledger's genesis (JSON: network_name, treasury, accounts); default: the built-in
    /// local development network. Every node of a network needs the same one.
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
}

impl RunArgs {
    /// Whether any flag for running a node was given (they make no sense with a command).
    pub fn any_given(&self) -> bool {
        self.super_node
            || !self.listen.is_empty()
            || !self.bootstrap.is_empty()
            || self.kad_mode.is_some()
            || self.discovery_interval.is_some()
            || self.gateway.is_some()
            || self.no_gateway
            || self.require_token
            || !self.trusted_issuers.is_empty()
            || !self.gateway_rules.is_empty()
            || self.allow_remote_backends
            || self.source_base.is_some()
            || self.build_cargo_home.is_some()
            || self.build_offline
            || !self.allow_deploy_from.is_empty()
            || self.genesis.is_some()
    }
}

/// `--kad-mode` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KadModeArg {
    /// Serve once an external address is confirmed.
    Auto,
    /// Always serve Kademlia queries.
    Server,
    /// Never serve Kademlia queries.
    Client,
}

impl From<KadModeArg> for KadMode {
    fn from(arg: KadModeArg) -> Self {
        match arg {
            KadModeArg::Auto => KadMode::Auto,
            KadModeArg::Server => KadMode::Server,
            KadModeArg::Client => KadMode::Client,
        }
    }
}

/// Commands sent to a running node.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// This node: identity, role, addresses to share.
    Id,
    /// This node's connections.
    Peers {
        /// `graph`: the connections as a graph.
        #[command(subcommand)]
        view: Option<PeersView>,
    },
    /// The network as this node sees it.
    Network {
        /// Which view.
        #[command(subcommand)]
        view: NetworkView,
    },
    /// Serve a local HTTP backend to the network: an RPC to NAME's endpoint E becomes
    /// `POST URL/E` with the request body.
    Serve {
        /// The service's name on the network, e.g. `greeter`.
        name: String,
        /// Base URL of the backend (loopback unless the node allows remote backends).
        #[arg(long, value_name = "URL")]
        http: String,
        /// An endpoint, `Name` or `Name=description` (repeatable). None = forward any.
        #[arg(long = "endpoint", value_name = "ENDPOINT")]
        endpoints: Vec<String>,
        /// The version to announce.
        #[arg(long, default_value = "latest")]
        version: String,
        /// Tokens a call from another node costs once its free allowance is used (0 = free).
        #[arg(long, default_value_t = 0)]
        price: u64,
    },
    /// The services this node serves.
    Services,
    /// Publish a message on a broker topic (fire and forget).
    Publish {
        /// The topic, e.g. `orders`.
        topic: String,
        /// The message body.
        body: String,
        /// A header `key=value` (repeatable).
        #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// MIME type of the body.
        #[arg(long, default_value = "application/json")]
        content_type: String,
    },
    /// Print the messages published on a broker topic from now on, one per line, until
    /// interrupted (--json: one JSON object per line).
    Subscribe {
        /// The topic.
        topic: String,
    },
    /// Durable event streams: publish, consume with consumer groups, inspect topics.
    Events {
        /// What to do.
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Deploy a service on this node: from source (`repo[@rev]`, a URL, or a folder: fetched,
    /// built in a sandbox, versioned by commit) or a built component (`.wasm`/`.wat` file,
    /// whose `micro.toml` is found next to it or above it). Deploying a name that runs
    /// replaces it once the new version starts.
    Deploy {
        /// `someone/greeter@v1.2.0`, `https://host/repo.git@main`, `./folder`, or `file.wasm`.
        source: String,
        /// Poll the source for new commits this often and deploy them (e.g. `5m`).
        #[arg(long, value_parser = parse_duration, value_name = "INTERVAL")]
        follow: Option<Duration>,
        /// Deploy on this node instead (a PeerId); it must allow deploys from this one.
        #[arg(long, value_name = "PEER_ID")]
        on: Option<micro_overlay::PeerId>,
        /// The service's manifest.
        #[arg(long, value_name = "FILE")]
        manifest: Option<std::path::PathBuf>,
        /// The service's name (overrides the manifest's; needed without one).
        #[arg(long)]
        name: Option<String>,
        /// The version (overrides the manifest's).
        #[arg(long)]
        version: Option<String>,
    },
    /// The wasm services on this node: state, instances, calls, errors, memory, fuel.
    Status,
    /// Deploy the newest commit of what a service was deployed from, if it changed.
    Update {
        /// The service.
        name: String,
    },
    /// A wasm service's log (its own lines, its stdout/stderr, and what the node says).
    Logs {
        /// The service.
        name: String,
        /// Print the latest build log instead.
        #[arg(long)]
        build: bool,
        /// Keep printing new lines until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Lines of history to print first.
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: usize,
    },
    /// The token ledger: balances, history, transfers from this node's account.
    Ledger {
        /// What to do.
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// API tokens for the HTTP gateway: issue, refresh, list, revoke.
    Token {
        /// What to do.
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Reputation: the scores this node computes, or why one peer scores what it does.
    Reputation {
        /// A peer id; without one, the best scored peers.
        peer: Option<String>,
    },
    /// Stop a wasm service and withdraw it from the network (its stored data is kept).
    Kill {
        /// The service, optionally `name@version` to stop only that version.
        name: String,
    },
    /// Stop serving a service.
    Deregister {
        /// The service's name.
        name: String,
    },
    /// Call a service anywhere in the network.
    Call {
        /// The service, e.g. `greeter`, or one version of it, e.g. `greeter@1.2.0` or
        /// `greeter@9f3c2e1` (a commit, by at least seven hex digits).
        service: String,
        /// The endpoint, e.g. `Say.Hello`.
        endpoint: String,
        /// The request body (JSON unless --content-type says otherwise).
        #[arg(default_value = "{}")]
        body: String,
        /// Deadline for the call, retries included, e.g. `5s`.
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<Duration>,
        /// MIME type of the body.
        #[arg(long, default_value = "application/json")]
        content_type: String,
        /// Call this node's instance only (a PeerId).
        #[arg(long, value_name = "PEER_ID")]
        node: Option<micro_overlay::PeerId>,
    },
}

/// `events` commands.
/// `micro-node ledger …`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// This node's account (its identity key): works without a running node (creating the
    /// identity if the data dir has none), so a genesis file can name it before the first start.
    Account,
    /// An account's balance (this node's without one). Accounts are 64 hex digits or a peer id.
    Balance {
        /// The account.
        account: Option<String>,
    },
    /// An account's latest transfers, newest first, with their standing: final (acked by more
    /// than 2/3 of the reputation weight), pending, held or void.
    History {
        /// The account (this node's without one).
        account: Option<String>,
        /// Most transfers shown.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
    },
    /// Pay from this node's account.
    Transfer {
        /// The recipient: 64 hex digits or a peer id.
        to: String,
        /// Tokens to move.
        amount: u64,
        /// A note for the recipient.
        #[arg(long, default_value = "")]
        memo: String,
    },
    /// Metered calls: what this node owes the providers it called (settled every few
    /// seconds by transfers) and what callers owe it.
    Metering,
}

/// `micro-node token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token signed by this node and print it (shown once) with its id. Callers send
    /// it to the gateway as `Authorization: Bearer <token>`; this node's account pays for the
    /// calls it allows, up to its spend limit.
    Issue {
        /// Services it may call, comma-separated: names, or prefixes ending in `*`.
        #[arg(long, value_delimiter = ',', required = true, value_name = "NAMES")]
        services: Vec<String>,
        /// Endpoints it may call, comma-separated, e.g. `Say.*` (default: all of them).
        #[arg(long, value_delimiter = ',', value_name = "PATTERNS")]
        endpoints: Vec<String>,
        /// How long it works, e.g. `1h`, `24h` (default: the node's, 24h).
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        ttl: Option<Duration>,
        /// Most ledger tokens its calls may cost in all (default: no limit; 0 = free calls only).
        #[arg(long, value_name = "TOKENS")]
        spend_limit: Option<u64>,
    },
    /// Replace a token this node issued, even an expired one (up to 30 days after), by a new
    /// one with the same scopes and the spend left; the old one is revoked.
    Refresh {
        /// The token.
        token: String,
        /// The new token's lifetime (default: the old one's).
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        ttl: Option<Duration>,
    },
    /// The tokens this node issued: status, scopes, expiry, spend.
    List,
    /// Revoke a token this node issued: refused here at once, and by the nodes that trust
    /// this one as the signed revocation spreads.
    Revoke {
        /// The token's id (32 hex digits, from `token list`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Publish an event: stored durably on this node before the command returns, then
    /// delivered to every node carrying the topic.
    Publish {
        /// The topic, e.g. `payments`.
        topic: String,
        /// The event body.
        body: String,
        /// A header `key=value` (repeatable).
        #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// MIME type of the body.
        #[arg(long, default_value = "application/json")]
        content_type: String,
    },
    /// Print a topic's events for a consumer group, acknowledging each batch once printed
    /// (at-least-once): `offset seq publisher body` per line, --json one object per line.
    Consume {
        /// The topic.
        topic: String,
        /// The consumer group; it resumes after its last acknowledged event.
        #[arg(long)]
        group: String,
        /// Where a group new to the topic starts: earliest, latest, an offset, or @<unix-ms>.
        #[arg(long, default_value = "earliest", value_name = "POSITION")]
        from: String,
        /// Most events to print.
        #[arg(long)]
        max: Option<usize>,
        /// Keep waiting for new events instead of exiting once caught up.
        #[arg(long)]
        follow: bool,
    },
    /// The topics this node stores.
    Topics,
    /// One topic: offsets, counts, consumer groups and the peers carrying it.
    Info {
        /// The topic.
        topic: String,
    },
}

/// `peers` sub-views.
#[derive(Debug, Subcommand)]
pub enum PeersView {
    /// This node and its connections as a graph.
    Graph(GraphFormatArg),
}

/// `network` views.
#[derive(Debug, Subcommand)]
pub enum NetworkView {
    /// Every node this node knows, with role, addresses, last seen and RTT.
    Nodes,
    /// How each known node and service provider is reached: direct or dialled, hops, latency.
    Routes,
    /// Every service on the network: name, versions, nodes, endpoints.
    Services,
    /// Crawl the network over peer exchange (bounded) and show the graph.
    Graph {
        /// Output format.
        #[command(flatten)]
        format: GraphFormatArg,
        /// Farthest distance from this node to list.
        #[arg(long)]
        depth: Option<u32>,
        /// Most nodes to list.
        #[arg(long)]
        max_nodes: Option<usize>,
        /// Time budget for the crawl, e.g. `10s`.
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<Duration>,
    },
}

/// `--format` for graph views.
#[derive(Debug, Clone, Copy, Args)]
pub struct GraphFormatArg {
    /// `text` (tree and adjacency), `dot` (Graphviz) or `json`.
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

/// Graph output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// A tree from this node and an adjacency list.
    Text,
    /// Graphviz DOT.
    Dot,
    /// JSON.
    Json,
}

/// Parses `key=value`.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not key=value")),
    }
}

/// Parses `250ms`, `10s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 10s, 5m, 1h)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use ms, s, m or h)"
            ));
        }
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use proptest::prelude::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_runs_a_node_with_repeated_bootstraps() {
        let peer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
        let cli = Cli::try_parse_from([
            "micro-node",
            "--super",
            "--listen",
            "/ip4/0.0.0.0/tcp/4001",
            "--bootstrap",
            &format!("/ip4/127.0.0.1/tcp/4002/p2p/{peer}"),
            "--bootstrap",
            &format!("/ip4/127.0.0.1/udp/4003/quic-v1/p2p/{peer}"),
        ])
        .expect("valid");
        assert!(cli.command.is_none());
        assert!(cli.run.super_node);
        assert_eq!(cli.run.bootstrap.len(), 2);
    }

    #[test]
    fn bootstrap_without_peer_id_is_a_clear_error() {
        let err = Cli::try_parse_from(["micro-node", "--bootstrap", "/ip4/127.0.0.1/tcp/4001"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/p2p/"), "{err}");
    }

    #[test]
    fn query_commands_take_global_flags_anywhere() {
        let cli = Cli::try_parse_from([
            "micro-node",
            "network",
            "graph",
            "--json",
            "--depth",
            "2",
            "--timeout",
            "5s",
        ])
        .expect("valid");
        assert!(cli.json);
        match cli.command {
            Some(Command::Network {
                view: NetworkView::Graph { depth, timeout, .. },
            }) => {
                assert_eq!(depth, Some(2));
                assert_eq!(timeout, Some(Duration::from_secs(5)));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn run_flags_are_noticed_before_commands() {
        assert!(Cli::try_parse_from(["micro-node", "peers", "--super"]).is_err());
        let cli = Cli::try_parse_from(["micro-node", "--super", "peers"]).expect("parses");
        assert!(cli.run.any_given() && cli.command.is_some());
        let cli =
            Cli::try_parse_from(["micro-node", "--data-dir", "/tmp/x", "peers"]).expect("parses");
        assert!(!cli.run.any_given());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    proptest! {
        #[test]
        fn duration_parsing_never_panics(s in ".{0,40}") {
            let _ = parse_duration(&s);
        }
    }
}
