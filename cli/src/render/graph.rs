//! Views of a crawled [`NetworkGraph`]: a text tree for the terminal and Graphviz DOT.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;

use libp2p::PeerId;
use micro_overlay::Role;
use micro_overlay::crawl::{CrawlState, GraphEdge, GraphNode, NetworkGraph};

use super::format::{role, sanitize, short_peer};

/// The graph reshaped for drawing: every node once in a stable order, every edge once.
struct View<'a> {
    root: PeerId,
    /// Root first, then the crawl's nodes in their order (nearest first), then any node
    /// that only appears in an edge.
    order: Vec<PeerId>,
    info: HashMap<PeerId, &'a GraphNode>,
    /// Distinct edges without self-loops, in `GraphEdge` order.
    edges: Vec<GraphEdge>,
    /// Neighbours of each node, in `order`.
    adjacent: HashMap<PeerId, Vec<PeerId>>,
}

impl<'a> View<'a> {
    fn new(graph: &'a NetworkGraph) -> Self {
        let mut order = vec![graph.root];
        let mut index = HashMap::from([(graph.root, 0usize)]);
        let mut add = |p: PeerId, order: &mut Vec<PeerId>| {
            index.entry(p).or_insert_with(|| {
                order.push(p);
                order.len() - 1
            });
        };
        for n in &graph.nodes {
            add(n.peer_id, &mut order);
        }
        let edges: BTreeSet<GraphEdge> = graph
            .edges
            .iter()
            .filter(|e| e.a != e.b)
            .map(|e| GraphEdge::new(e.a, e.b))
            .collect();
        for e in &edges {
            add(e.a, &mut order);
            add(e.b, &mut order);
        }
        let mut adjacent: HashMap<PeerId, Vec<PeerId>> = HashMap::new();
        for e in &edges {
            adjacent.entry(e.a).or_default().push(e.b);
            adjacent.entry(e.b).or_default().push(e.a);
        }
        for list in adjacent.values_mut() {
            list.sort_by_key(|p| index.get(p).copied().unwrap_or(usize::MAX));
        }
        let mut info = HashMap::new();
        for n in &graph.nodes {
            info.entry(n.peer_id).or_insert(n);
        }
        Self {
            root: graph.root,
            order,
            info,
            edges: edges.into_iter().collect(),
            adjacent,
        }
    }

    fn neighbours(&self, p: &PeerId) -> &[PeerId] {
        self.adjacent.get(p).map_or(&[], Vec::as_slice)
    }

    fn role(&self, p: &PeerId) -> Option<Role> {
        self.info.get(p).and_then(|n| n.role)
    }

    /// Whether the node was asked and answered. The root, and nodes known only from edges,
    /// are taken as answered: there is nothing to flag about them.
    fn answered(&self, p: &PeerId) -> bool {
        *p == self.root
            || self
                .info
                .get(p)
                .is_none_or(|n| n.state == CrawlState::Answered)
    }

    /// `shortpeer (role)`, then `[failed: why]` or `[not asked]` unless it answered.
    fn label(&self, p: &PeerId) -> String {
        let mut out = format!("{} ({})", short_peer(p), role(self.role(p)));
        if let Some(n) = self.info.get(p).filter(|_| !self.answered(p)) {
            match (n.state, &n.error) {
                (CrawlState::Failed, Some(e)) => {
                    let _ = write!(out, " [failed: {}]", sanitize(e));
                }
                (CrawlState::Failed, None) => out.push_str(" [failed]"),
                (CrawlState::NotAsked, _) => out.push_str(" [not asked]"),
                (CrawlState::Answered, _) => {}
            }
        }
        out
    }

    /// A breadth-first spanning tree from the root: each reached node's children, in
    /// discovery order.
    fn spanning_tree(&self) -> HashMap<PeerId, Vec<PeerId>> {
        let mut children: HashMap<PeerId, Vec<PeerId>> = HashMap::new();
        let mut seen = BTreeSet::from([self.root]);
        let mut queue = VecDeque::from([self.root]);
        while let Some(p) = queue.pop_front() {
            for &q in self.neighbours(&p) {
                if seen.insert(q) {
                    children.entry(p).or_default().push(q);
                    queue.push_back(q);
                }
            }
        }
        children
    }
}

/// "1 node" / "3 nodes".
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The text view; see [`super::graph_text`].
pub(super) fn to_text(graph: &NetworkGraph) -> String {
    let view = View::new(graph);
    let children = view.spanning_tree();
    let mut out = String::new();

    let mut drawn = BTreeSet::from([view.root]);
    let _ = writeln!(out, "{}", view.label(&view.root));
    // Depth-first walk of the tree, explicit stack: (node, prefix, last among siblings).
    let mut stack: Vec<(PeerId, String, bool)> = Vec::new();
    let push_children = |stack: &mut Vec<_>, p: &PeerId, prefix: &str| {
        let kids = children.get(p).map_or(&[][..], Vec::as_slice);
        for (i, &k) in kids.iter().enumerate().rev() {
            stack.push((k, prefix.to_owned(), i + 1 == kids.len()));
        }
    };
    push_children(&mut stack, &view.root, "");
    while let Some((p, prefix, last)) = stack.pop() {
        drawn.insert(p);
        let branch = if last { "└── " } else { "├── " };
        let _ = writeln!(out, "{prefix}{branch}{}", view.label(&p));
        let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
        push_children(&mut stack, &p, &child_prefix);
    }
    for p in view.order.iter().filter(|p| !drawn.contains(p)) {
        let _ = writeln!(out, "(not connected to the tree) {}", view.label(p));
    }

    out.push_str("\nadjacency:\n");
    for p in &view.order {
        let list = view.neighbours(p);
        let names = if list.is_empty() {
            "(none)".to_owned()
        } else {
            list.iter().map(short_peer).collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(out, "  {}: {names}", short_peer(p));
    }

    let _ = writeln!(
        out,
        "\n{}, {}, crawled in {} ms",
        count(view.order.len(), "node"),
        count(view.edges.len(), "edge"),
        graph.elapsed_ms
    );
    if graph.partial {
        let _ = writeln!(out, "PARTIAL: {}", reasons(graph));
    }
    out
}

/// Why the crawl is partial, on one line.
fn reasons(graph: &NetworkGraph) -> String {
    if graph.incomplete_because.is_empty() {
        "no reason given".to_owned()
    } else {
        sanitize(&graph.incomplete_because.join("; "))
    }
}

/// `s` as the inside of a DOT double-quoted string: backslashes and quotes escaped, line
/// breaks as `\n`, other control characters written out.
fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push_str(&sanitize(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out
}

/// The DOT view; see [`super::graph_dot`].
pub(super) fn to_dot(graph: &NetworkGraph) -> String {
    let view = View::new(graph);
    let mut out = String::from("graph micro {\n");
    if graph.partial {
        let _ = writeln!(out, "  // partial crawl: {}", reasons(graph));
    }
    out.push_str("  node [fontname=\"monospace\"];\n");
    for p in &view.order {
        let role_name = role(view.role(p));
        let mut attrs = vec![format!(
            "label=\"{}\\n{}\"",
            dot_escape(&short_peer(p)),
            dot_escape(&role_name)
        )];
        let is_root = *p == view.root;
        if view.role(p) == Some(Role::Super) {
            attrs.push("shape=doublecircle".to_owned());
        } else if is_root {
            attrs.push("shape=box".to_owned());
        }
        let mut style = Vec::new();
        if is_root {
            style.push("bold");
        }
        if !view.answered(p) {
            style.push("dashed");
        }
        if !style.is_empty() {
            attrs.push(format!("style=\"{}\"", style.join(",")));
        }
        if let Some(e) = view.info.get(p).and_then(|n| n.error.as_deref()) {
            attrs.push(format!("tooltip=\"{}\"", dot_escape(e)));
        }
        let _ = writeln!(
            out,
            "  \"{}\" [{}];",
            dot_escape(&p.to_base58()),
            attrs.join(", ")
        );
    }
    for e in &view.edges {
        let _ = writeln!(
            out,
            "  \"{}\" -- \"{}\";",
            dot_escape(&e.a.to_base58()),
            dot_escape(&e.b.to_base58())
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use micro_overlay::crawl::CrawlLimits;

    use super::*;

    fn node(peer_id: PeerId, role: Option<Role>, depth: u32, state: CrawlState) -> GraphNode {
        GraphNode {
            peer_id,
            role,
            addrs: vec![],
            depth,
            state,
            error: (state == CrawlState::Failed).then(|| "timed \"out\"\nafter 5s".to_owned()),
        }
    }

    /// root — a, root — b, a — b (a cycle), b — c. `c` did not answer.
    fn sample(partial: bool) -> (NetworkGraph, [PeerId; 4]) {
        let ids = [
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
        ];
        let [root, a, b, c] = ids;
        let graph = NetworkGraph {
            root,
            nodes: vec![
                node(root, Some(Role::Peer), 0, CrawlState::Answered),
                node(a, Some(Role::Super), 1, CrawlState::Answered),
                node(b, Some(Role::Peer), 1, CrawlState::Answered),
                node(c, None, 2, CrawlState::Failed),
            ],
            edges: vec![
                GraphEdge::new(root, a),
                GraphEdge::new(root, b),
                GraphEdge::new(a, b),
                GraphEdge::new(b, c),
                GraphEdge::new(c, b),
            ],
            partial,
            incomplete_because: if partial {
                vec![
                    "1 node(s) did not answer".into(),
                    "time limit reached".into(),
                ]
            } else {
                vec![]
            },
            elapsed_ms: 42,
            limits: CrawlLimits {
                max_depth: 6,
                max_nodes: 100,
                timeout: Duration::from_secs(5),
                concurrency: 4,
            },
        };
        (graph, ids)
    }

    fn tree_part(text: &str) -> &str {
        text.split("\nadjacency:\n").next().expect("tree")
    }

    #[test]
    fn tree_has_every_node_once() {
        let (graph, ids) = sample(false);
        let text = to_text(&graph);
        let tree = tree_part(&text);
        for p in &ids {
            assert_eq!(tree.matches(&short_peer(p)).count(), 1, "{p}\n{text}");
        }
        assert_eq!(tree.lines().count(), 4, "{text}");
        assert!(!tree.contains("not connected"));
        let lines: Vec<&str> = tree.lines().collect();
        let [root, a, b, c] = ids;
        assert_eq!(lines[0], format!("{} (peer)", short_peer(&root)));
        assert_eq!(lines[1], format!("├── {} (super)", short_peer(&a)));
        assert_eq!(lines[2], format!("└── {} (peer)", short_peer(&b)));
        assert!(
            lines[3].starts_with(&format!("    └── {} (unknown) [failed: ", short_peer(&c))),
            "{text}"
        );
        // The error's line break is escaped, not printed.
        assert!(lines[3].ends_with("after 5s]"), "{text}");
    }

    #[test]
    fn adjacency_and_footer() {
        let (graph, [root, a, b, c]) = sample(false);
        let text = to_text(&graph);
        let adjacency = text.split("\nadjacency:\n").nth(1).expect("adjacency");
        let expect_b = format!(
            "  {}: {}, {}, {}",
            short_peer(&b),
            short_peer(&root),
            short_peer(&a),
            short_peer(&c)
        );
        assert!(adjacency.lines().any(|l| l == expect_b), "{text}");
        assert!(
            text.contains("\n4 nodes, 4 edges, crawled in 42 ms\n"),
            "{text}"
        );
        assert!(!text.contains("PARTIAL"));
    }

    #[test]
    fn partial_line_iff_partial() {
        let (graph, _) = sample(true);
        let text = to_text(&graph);
        let partial: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("PARTIAL: "))
            .collect();
        assert_eq!(
            partial,
            ["PARTIAL: 1 node(s) did not answer; time limit reached"]
        );
        let (graph, _) = sample(false);
        assert!(!to_text(&graph).contains("PARTIAL"));
    }

    #[test]
    fn unreachable_nodes_listed_under_tree() {
        let (mut graph, [_, _, _, c]) = sample(false);
        let lone = PeerId::random();
        graph
            .nodes
            .push(node(lone, Some(Role::Peer), 3, CrawlState::NotAsked));
        graph.edges.retain(|e| e.a != c && e.b != c);
        let text = to_text(&graph);
        let tree = tree_part(&text);
        for p in [c, lone] {
            let line = tree
                .lines()
                .find(|l| l.contains(&short_peer(&p)))
                .expect("listed");
            assert!(line.starts_with("(not connected to the tree) "), "{text}");
            assert_eq!(tree.matches(&short_peer(&p)).count(), 1);
        }
        assert!(tree.contains(&format!("{} (peer) [not asked]", short_peer(&lone))));
        assert!(text.contains(&format!("  {}: (none)", short_peer(&lone))));
        assert!(text.contains("5 nodes, 3 edges"), "{text}");
    }

    #[test]
    fn dot_is_structurally_sound() {
        let (graph, [root, a, _, c]) = sample(true);
        let dot = to_dot(&graph);
        assert!(dot.starts_with("graph micro {\n"), "{dot}");
        assert!(dot.trim_end().ends_with('}'));
        assert_eq!(dot.matches('{').count(), dot.matches('}').count());
        let edges: Vec<&str> = dot.lines().filter(|l| l.contains("--")).collect();
        assert_eq!(edges.len(), 4, "{dot}");
        for l in &edges {
            assert!(l.trim_start().starts_with('"') && l.ends_with("\";"), "{l}");
        }
        let line_of = |p: &PeerId| {
            dot.lines()
                .find(|l| l.trim_start().starts_with(&format!("\"{p}\" [")))
                .expect("node statement")
                .to_owned()
        };
        assert!(line_of(&a).contains("shape=doublecircle"), "{dot}");
        assert!(line_of(&a).contains(&format!("label=\"{}\\nsuper\"", short_peer(&a))));
        let root_line = line_of(&root);
        assert!(root_line.contains("shape=box") && root_line.contains("bold"));
        let c_line = line_of(&c);
        assert!(c_line.contains("dashed"), "{dot}");
        // The error's quotes are escaped and its line break kept out of the output.
        assert!(
            c_line.contains(r#"tooltip="timed \"out\"\nafter 5s""#),
            "{dot}"
        );
        // Every quote outside an escape is paired, on every line.
        for l in dot.lines() {
            let unescaped = l.replace("\\\\", "").replace("\\\"", "");
            assert_eq!(unescaped.matches('"').count() % 2, 0, "{l}");
        }
        let comment = dot.lines().nth(1).expect("comment");
        assert!(
            comment
                .trim_start()
                .starts_with("// partial crawl: 1 node(s)")
        );
        let (whole, _) = sample(false);
        assert!(!to_dot(&whole).contains("//"));
    }

    #[test]
    fn dot_escape_quotes_and_backslashes() {
        assert_eq!(dot_escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(dot_escape("x\ny\x1b"), "x\\ny\\u{1b}");
    }
}
