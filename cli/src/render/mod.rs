//! Human output (tables, graph views) for the CLI.
//!
//! Every function returns the finished text, ending with a newline, and prints nothing:
//! the caller writes it out (`print!`). Text that came from other nodes is sanitized so it
//! cannot drive the terminal.

mod economy;
mod events;
mod format;
mod graph;
mod services;
mod table;
mod tokens;
mod wasm;

use micro_overlay::crawl::NetworkGraph;
use micro_overlay::{Direction, LocalInfo, NodeInfo, PeerConnection, Reach, Role, Route};

pub use economy::{balance, history, metering, reputation};
pub use events::{event_line, event_topic, event_topics};
pub use format::{ago, duration, short_peer};
pub use services::{local_services, network_services, service_routes};
pub use table::Table;
pub use tokens::{issued_token, tokens};
pub use wasm::{log_line, replaced_note, wasm_status};

use format::{addrs, role, rtt, sanitize, yes_no};

/// This node as a key/value block (peer id, role, agent, Kademlia mode, uptime, connected
/// peers, known nodes, joined, external addresses), then the `micro-node --bootstrap`
/// command line that joins another node to it, one per listen address.
pub fn id(info: &LocalInfo) -> String {
    let external = if info.external_addrs.is_empty() {
        "-".to_owned()
    } else {
        info.external_addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut kv = Table::new(Vec::<&str>::new());
    kv.push(["peer id:", &info.peer_id.to_base58()]);
    kv.push(["role:", &info.role.to_string()]);
    kv.push(["agent:", &info.agent]);
    kv.push(["kad mode:", &info.kad_mode]);
    kv.push(["uptime:", &duration(info.uptime_secs.saturating_mul(1000))]);
    kv.push(["connected peers:", &info.connected_peers.to_string()]);
    kv.push(["known nodes:", &info.known_nodes.to_string()]);
    kv.push(["joined:", yes_no(info.joined)]);
    kv.push(["external addrs:", &external]);

    let mut out = kv.to_string();
    out.push_str("\njoin this node with:\n");
    if info.listen_addrs.is_empty() {
        out.push_str("  (not listening on any address)\n");
    }
    for addr in &info.listen_addrs {
        // Listen addresses already end in /p2p/<id>; add it if one does not.
        let addr = addr.clone().with_p2p(info.peer_id).unwrap_or_else(|a| a);
        out.push_str(&format!(
            "  micro-node --bootstrap {}\n",
            sanitize(&addr.to_string())
        ));
    }
    out
}

/// `inbound` or `outbound`.
fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

/// The connected peers as a table: PEER, ROLE, DIRECTION, RTT, CONNECTED (for how long, as
/// of `now_unix_ms`), ADDRESS (the first remote address, `+N` when there are more). An
/// empty list is one line saying so.
pub fn peers(peers: &[PeerConnection], now_unix_ms: u64) -> String {
    if peers.is_empty() {
        return "no connected peers\n".to_owned();
    }
    let mut t = Table::new(["PEER", "ROLE", "DIRECTION", "RTT", "CONNECTED", "ADDRESS"]);
    for p in peers {
        t.push([
            short_peer(&p.peer_id),
            role(p.role),
            direction(p.direction).to_owned(),
            rtt(p.rtt_ms),
            duration(now_unix_ms.saturating_sub(p.connected_since_unix_ms)),
            addrs(&p.remote_addrs),
        ]);
    }
    t.to_string()
}

/// The peer book as a table: PEER, ROLE, CONNECTED, DHT (in the routing table), LAST SEEN
/// (relative to `now_unix_ms`), RTT, ADDRESSES (the first, `+N` when there are more);
/// then a summary line `N nodes (S super, P peer, U unknown)`. An empty book is one line
/// saying so.
pub fn nodes(nodes: &[NodeInfo], now_unix_ms: u64) -> String {
    if nodes.is_empty() {
        return "no known nodes\n".to_owned();
    }
    let mut t = Table::new([
        "PEER",
        "ROLE",
        "CONNECTED",
        "DHT",
        "LAST SEEN",
        "RTT",
        "ADDRESSES",
    ]);
    let (mut supers, mut plain, mut unknown) = (0usize, 0usize, 0usize);
    for n in nodes {
        match n.role {
            Some(Role::Super) => supers += 1,
            Some(Role::Peer) => plain += 1,
            None => unknown += 1,
        }
        t.push([
            short_peer(&n.peer_id),
            role(n.role),
            yes_no(n.connected).to_owned(),
            yes_no(n.in_routing_table).to_owned(),
            n.last_seen_unix_ms
                .map_or_else(|| "never".to_owned(), |at| ago(at, now_unix_ms)),
            rtt(n.rtt_ms),
            addrs(&n.addrs),
        ]);
    }
    let noun = if nodes.len() == 1 { "node" } else { "nodes" };
    format!(
        "{t}\n{} {noun} ({supers} super, {plain} peer, {unknown} unknown)\n",
        nodes.len()
    )
}

/// `direct`, `dial` or `unknown`.
fn reach(r: Reach) -> &'static str {
    match r {
        Reach::Direct => "direct",
        Reach::Dial => "dial",
        Reach::Unknown => "unknown",
    }
}

/// The routing view as a table: PEER, ROLE, REACH, HOPS (`-` when unknown), VIA (the
/// neighbour it was learned from, `-` for direct neighbours), RTT. An empty list is one
/// line saying so.
pub fn routes(routes: &[Route]) -> String {
    if routes.is_empty() {
        return "no routes\n".to_owned();
    }
    let mut t = Table::new(["PEER", "ROLE", "REACH", "HOPS", "VIA", "RTT"]);
    for r in routes {
        t.push([
            short_peer(&r.peer_id),
            role(r.role),
            reach(r.reach).to_owned(),
            r.hops.map_or_else(|| "-".to_owned(), |h| h.to_string()),
            r.via.as_ref().map_or_else(|| "-".to_owned(), short_peer),
            rtt(r.rtt_ms),
        ]);
    }
    t.to_string()
}

/// The crawl as text: a breadth-first spanning tree from the root drawn with box
/// characters (each node once, as `shortpeer (role)` plus `[failed: …]` or `[not asked]`
/// when it did not answer), then the nodes the tree cannot reach as `(not connected to the
/// tree) …` lines, an `adjacency:` section with every node's neighbours, a footer
/// `N nodes, E edges, crawled in X ms`, and a `PARTIAL: …` line when the crawl was
/// incomplete.
pub fn graph_text(graph: &NetworkGraph) -> String {
    graph::to_text(graph)
}

/// The crawl as an undirected Graphviz graph, `graph micro { … }`. DOT node ids are the
/// full, quoted peer ids; labels are `short id\nrole`. Super nodes are double circles, the
/// root is bold (and a box unless it is a super node), nodes that did not answer are
/// dashed. A partial crawl says so, and why, in a `//` comment on the first line inside the
/// braces, so the output always starts with `graph`.
pub fn graph_dot(graph: &NetworkGraph) -> String {
    graph::to_dot(graph)
}

#[cfg(test)]
mod tests {
    use libp2p::{Multiaddr, PeerId};

    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn addr(s: &str) -> Multiaddr {
        s.parse().expect("multiaddr")
    }

    /// The character offset at which each line's cell starting with `cells[i]` begins.
    fn offsets(text: &str, cells: &[&str]) -> Vec<usize> {
        text.lines()
            .zip(cells)
            .map(|(l, c)| l[..l.find(c).expect("cell")].chars().count())
            .collect()
    }

    /// Character offsets where a cell starts: a non-space after two spaces (or at 0).
    fn column_starts(line: &str) -> Vec<usize> {
        let chars: Vec<char> = line.chars().collect();
        (0..chars.len())
            .filter(|&i| chars[i] != ' ' && (i == 0 || (i >= 2 && chars[i - 2..i] == [' ', ' '])))
            .collect()
    }

    #[test]
    fn id_block_and_join_lines() {
        let peer_id = PeerId::random();
        let listen = addr(&format!("/ip4/10.0.0.1/tcp/4001/p2p/{peer_id}"));
        let info = LocalInfo {
            peer_id,
            role: Role::Super,
            agent: "micro-node/0.1.0 (super)".into(),
            listen_addrs: vec![listen.clone(), addr("/ip4/10.0.0.1/udp/4001/quic-v1")],
            external_addrs: vec![],
            kad_mode: "server".into(),
            connected_peers: 3,
            known_nodes: 12,
            joined: true,
            joined_after_ms: Some(120),
            uptime_secs: 192,
            messages_received: 0,
            connections_trimmed: 0,
            routing_refreshes: 0,
            routing_requests: 0,
        };
        let out = id(&info);
        assert!(
            out.contains(&format!("peer id:          {peer_id}\n")),
            "{out}"
        );
        assert!(out.contains("role:             super\n"), "{out}");
        assert!(out.contains("uptime:           3m12s\n"));
        assert!(out.contains("connected peers:  3\n"));
        assert!(out.contains("known nodes:      12\n"));
        assert!(out.contains("joined:           yes\n"));
        assert!(out.contains("kad mode:         server\n"));
        let join: Vec<&str> = out
            .split("join this node with:\n")
            .nth(1)
            .expect("join section")
            .lines()
            .collect();
        assert_eq!(
            join,
            [
                format!("  micro-node --bootstrap {listen}"),
                format!("  micro-node --bootstrap /ip4/10.0.0.1/udp/4001/quic-v1/p2p/{peer_id}"),
            ]
        );
    }

    #[test]
    fn peers_table() {
        assert_eq!(peers(&[], NOW), "no connected peers\n");
        let (p1, p2) = (PeerId::random(), PeerId::random());
        let list = [
            PeerConnection {
                peer_id: p1,
                role: Some(Role::Super),
                agent: None,
                remote_addrs: vec![addr("/ip4/10.0.0.1/tcp/4001")],
                direction: Direction::Outbound,
                connected_since_unix_ms: NOW - 192_000,
                rtt_ms: Some(0.42),
            },
            PeerConnection {
                peer_id: p2,
                role: None,
                agent: None,
                remote_addrs: vec![addr("/ip4/10.0.0.2/tcp/5"), addr("/ip4/10.0.0.3/tcp/6")],
                direction: Direction::Inbound,
                connected_since_unix_ms: NOW - 850,
                rtt_ms: None,
            },
        ];
        let out = peers(&list, NOW);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("PEER "));
        assert!(lines[1].starts_with(&short_peer(&p1)));
        for c in [
            "super",
            "outbound",
            "0.42 ms",
            "3m12s",
            "/ip4/10.0.0.1/tcp/4001",
        ] {
            assert!(lines[1].contains(c), "{c}: {out}");
        }
        for c in ["unknown", "inbound", "850ms", "/ip4/10.0.0.2/tcp/5 +1"] {
            assert!(lines[2].contains(c), "{c}: {out}");
        }
        let o = offsets(&out, &["DIRECTION", "outbound", "inbound"]);
        assert!(o.iter().all(|&x| x == o[0]), "{out}");
        let o = offsets(&out, &["ADDRESS", "/ip4/10.0.0.1", "/ip4/10.0.0.2"]);
        assert!(o.iter().all(|&x| x == o[0]), "{out}");
    }

    fn node_info(role: Option<Role>, connected: bool, seen: Option<u64>) -> NodeInfo {
        NodeInfo {
            peer_id: PeerId::random(),
            role,
            agent: None,
            addrs: vec![],
            connected,
            in_routing_table: connected,
            last_seen_unix_ms: seen,
            rtt_ms: None,
            learned_from: None,
        }
    }

    #[test]
    fn nodes_table_and_summary() {
        assert_eq!(nodes(&[], NOW), "no known nodes\n");
        let list = [
            node_info(Some(Role::Super), true, Some(NOW - 12_000)),
            node_info(Some(Role::Peer), false, None),
            node_info(Some(Role::Peer), false, Some(NOW - 3_600_000)),
            node_info(None, false, None),
        ];
        let out = nodes(&list, NOW);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 7, "{out}");
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "PEER",
                "ROLE",
                "CONNECTED",
                "DHT",
                "LAST",
                "SEEN",
                "RTT",
                "ADDRESSES"
            ]
        );
        assert!(lines[1].contains("12s ago") && lines[1].contains("yes"));
        assert!(lines[2].contains("never") && !lines[2].contains("yes"));
        assert!(lines[3].contains("1h00m ago"));
        assert_eq!(lines[5], "");
        assert_eq!(lines[6], "4 nodes (1 super, 2 peer, 1 unknown)");
        let o = offsets(
            &out,
            &["LAST SEEN", "12s ago", "never", "1h00m ago", "never"],
        );
        assert!(o.iter().all(|&x| x == o[0]), "{out}");
        let one = nodes(&list[..1], NOW);
        assert!(
            one.ends_with("\n1 node (1 super, 0 peer, 0 unknown)\n"),
            "{one}"
        );
    }

    #[test]
    fn routes_table() {
        assert_eq!(routes(&[]), "no routes\n");
        let (near, far) = (PeerId::random(), PeerId::random());
        let list = [
            Route {
                peer_id: near,
                role: Some(Role::Super),
                reach: Reach::Direct,
                hops: Some(1),
                via: None,
                rtt_ms: Some(1.5),
            },
            Route {
                peer_id: far,
                role: None,
                reach: Reach::Unknown,
                hops: None,
                via: Some(near),
                rtt_ms: None,
            },
        ];
        let out = routes(&list);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                short_peer(&near).as_str(),
                "super",
                "direct",
                "1",
                "-",
                "1.50",
                "ms"
            ]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            [
                short_peer(&far).as_str(),
                "unknown",
                "unknown",
                "-",
                &short_peer(&near),
                "-"
            ]
        );
        let starts: Vec<Vec<usize>> = out.lines().map(column_starts).collect();
        assert_eq!(starts[0].len(), 6, "{out}");
        assert!(starts.iter().all(|s| *s == starts[0]), "{out}");
    }
}
