//! `network graph`: a bounded breadth-first crawl of the network over peer exchange.
//!
//! Starting from this node's own connections, it asks each node found for its peers, up to a
//! depth, a node count and a deadline. Whatever stops it early, the result is returned with
//! `partial` set and the reasons listed, never as an error.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use crate::peer_exchange::PeerList;
use crate::{Overlay, OverlayError, Role};

/// Bounds of one crawl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawlLimits {
    /// Farthest distance from this node at which nodes are listed; nodes nearer than this
    /// are asked for their peers.
    pub max_depth: u32,
    /// Most nodes in the result, this node included.
    pub max_nodes: usize,
    /// Wall-clock budget for the whole crawl.
    pub timeout: Duration,
    /// Most peer-exchange requests in flight at once.
    pub concurrency: usize,
}

impl Default for CrawlLimits {
    fn default() -> Self {
        Self {
            max_depth: 6,
            max_nodes: 1000,
            timeout: Duration::from_secs(15),
            concurrency: 16,
        }
    }
}

/// Whether a node answered the crawl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrawlState {
    /// It listed its peers.
    Answered,
    /// It was asked and did not answer usefully.
    Failed,
    /// A limit stopped the crawl before asking it.
    NotAsked,
}

/// One node of the crawled graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    /// Its identity.
    pub peer_id: PeerId,
    /// Its role, as it (or whoever reported it) said.
    pub role: Option<Role>,
    /// Its addresses, as reported.
    pub addrs: Vec<Multiaddr>,
    /// Hops from the crawling node (0 for itself).
    pub depth: u32,
    /// Whether it answered.
    pub state: CrawlState,
    /// Why it did not answer, when it failed.
    pub error: Option<String>,
}

/// A connection between two nodes. Stored with `a < b`: connections have no direction here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GraphEdge {
    /// The smaller PeerId.
    pub a: PeerId,
    /// The larger PeerId.
    pub b: PeerId,
}

impl GraphEdge {
    /// The edge between `x` and `y`, whichever order they come in.
    pub fn new(x: PeerId, y: PeerId) -> Self {
        if x <= y {
            Self { a: x, b: y }
        } else {
            Self { a: y, b: x }
        }
    }
}

/// The result of a crawl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkGraph {
    /// The node that crawled.
    pub root: PeerId,
    /// Every node found, nearest first.
    pub nodes: Vec<GraphNode>,
    /// Every connection reported.
    pub edges: Vec<GraphEdge>,
    /// True when a limit or a silent node left the picture incomplete.
    pub partial: bool,
    /// Why it is partial, one line per cause.
    pub incomplete_because: Vec<String>,
    /// How long the crawl took.
    pub elapsed_ms: u64,
    /// The limits it ran under.
    pub limits: CrawlLimits,
}

struct Crawl {
    root: PeerId,
    limits: CrawlLimits,
    /// The root's connections before the crawl: connections the crawl itself opens to the
    /// root are not part of the network's shape and are left out.
    root_neighbours: HashSet<PeerId>,
    nodes: HashMap<PeerId, GraphNode>,
    edges: BTreeSet<GraphEdge>,
    queue: VecDeque<PeerId>,
    node_limit_hit: bool,
}

impl Crawl {
    fn absorb(&mut self, from: PeerId, list: &PeerList) {
        let depth = self.nodes.get(&from).map_or(0, |n| n.depth);
        for entry in &list.peers {
            let peer = entry.peer_id;
            if peer == from {
                continue;
            }
            if peer == self.root && !self.root_neighbours.contains(&from) {
                continue;
            }
            if !self.nodes.contains_key(&peer) {
                if self.nodes.len() >= self.limits.max_nodes {
                    self.node_limit_hit = true;
                    continue;
                }
                self.nodes.insert(
                    peer,
                    GraphNode {
                        peer_id: peer,
                        role: entry.role,
                        addrs: entry.addrs.clone(),
                        depth: depth + 1,
                        state: CrawlState::NotAsked,
                        error: None,
                    },
                );
                if depth + 1 < self.limits.max_depth {
                    self.queue.push_back(peer);
                }
            }
            self.edges.insert(GraphEdge::new(from, peer));
        }
    }

    fn answered(&mut self, peer: PeerId, list: &PeerList) {
        if let Some(node) = self.nodes.get_mut(&peer) {
            node.state = CrawlState::Answered;
            if list.role.is_some() {
                node.role = list.role;
            }
            if !list.listen_addrs.is_empty() {
                node.addrs = list.listen_addrs.clone();
            }
        }
        self.absorb(peer, list);
    }

    fn failed(&mut self, peer: PeerId, error: &OverlayError) {
        if let Some(node) = self.nodes.get_mut(&peer) {
            node.state = CrawlState::Failed;
            node.error = Some(error.to_string());
        }
    }

    fn finish(self, started: Instant, timed_out: bool) -> NetworkGraph {
        let mut reasons = Vec::new();
        if timed_out {
            reasons.push(format!("time limit of {:?} reached", self.limits.timeout));
        }
        if self.node_limit_hit {
            reasons.push(format!("node limit of {} reached", self.limits.max_nodes));
        }
        let failed = self
            .nodes
            .values()
            .filter(|n| n.state == CrawlState::Failed)
            .count();
        if failed > 0 {
            reasons.push(format!("{failed} node(s) did not answer"));
        }
        let beyond_depth = self
            .nodes
            .values()
            .filter(|n| n.state == CrawlState::NotAsked && n.depth >= self.limits.max_depth)
            .count();
        if beyond_depth > 0 {
            reasons.push(format!(
                "{beyond_depth} node(s) at depth {} were not asked (depth limit)",
                self.limits.max_depth
            ));
        }
        let mut nodes: Vec<GraphNode> = self.nodes.into_values().collect();
        nodes.sort_by_key(|n| (n.depth, n.peer_id));
        NetworkGraph {
            root: self.root,
            nodes,
            edges: self.edges.into_iter().collect(),
            partial: !reasons.is_empty(),
            incomplete_because: reasons,
            elapsed_ms: started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
            limits: self.limits,
        }
    }
}

/// This node and its direct connections as a graph (`peers graph`): no request leaves the
/// node.
pub async fn local_view(overlay: &Overlay) -> Result<NetworkGraph, OverlayError> {
    let started = Instant::now();
    let root = overlay.local_peer_id();
    let local = overlay.ask_peers(root, Vec::new()).await?;
    let mut nodes = vec![GraphNode {
        peer_id: root,
        role: local.role,
        addrs: local.listen_addrs.clone(),
        depth: 0,
        state: CrawlState::Answered,
        error: None,
    }];
    let mut edges = Vec::with_capacity(local.peers.len());
    for entry in &local.peers {
        nodes.push(GraphNode {
            peer_id: entry.peer_id,
            role: entry.role,
            addrs: entry.addrs.clone(),
            depth: 1,
            state: CrawlState::NotAsked,
            error: None,
        });
        edges.push(GraphEdge::new(root, entry.peer_id));
    }
    edges.sort();
    Ok(NetworkGraph {
        root,
        nodes,
        edges,
        partial: local.truncated,
        incomplete_because: if local.truncated {
            vec!["more connections than one reply holds".to_owned()]
        } else {
            Vec::new()
        },
        elapsed_ms: started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
        limits: CrawlLimits {
            max_depth: 1,
            ..CrawlLimits::default()
        },
    })
}

/// Crawls the network from this node within `limits`.
///
/// Fails only if the local overlay has stopped; everything the network does wrong shows up
/// as failed nodes and a partial result.
pub async fn crawl(overlay: &Overlay, limits: CrawlLimits) -> Result<NetworkGraph, OverlayError> {
    let started = Instant::now();
    let deadline = started + limits.timeout;
    let root = overlay.local_peer_id();
    let local = overlay.ask_peers(root, Vec::new()).await?;
    let mut crawl = Crawl {
        root,
        limits,
        root_neighbours: local.peers.iter().map(|p| p.peer_id).collect(),
        nodes: HashMap::new(),
        edges: BTreeSet::new(),
        queue: VecDeque::new(),
        node_limit_hit: false,
    };
    crawl.nodes.insert(
        root,
        GraphNode {
            peer_id: root,
            role: local.role,
            addrs: local.listen_addrs.clone(),
            depth: 0,
            state: CrawlState::Answered,
            error: None,
        },
    );
    crawl.absorb(root, &local);

    let mut in_flight = JoinSet::new();
    let mut timed_out = false;
    loop {
        while in_flight.len() < limits.concurrency.max(1) {
            let Some(peer) = crawl.queue.pop_front() else {
                break;
            };
            let addrs = crawl
                .nodes
                .get(&peer)
                .map(|n| n.addrs.clone())
                .unwrap_or_default();
            let overlay = overlay.clone();
            in_flight.spawn(async move { (peer, overlay.ask_peers(peer, addrs).await) });
        }
        let next = match timeout_at(deadline, in_flight.join_next()).await {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(_) => {
                timed_out = true;
                in_flight.abort_all();
                break;
            }
        };
        match next {
            Ok((peer, Ok(list))) => crawl.answered(peer, &list),
            Ok((peer, Err(e))) => crawl.failed(peer, &e),
            Err(join_error) => tracing::warn!(%join_error, "crawl task ended abnormally"),
        }
    }
    Ok(crawl.finish(started, timed_out))
}
