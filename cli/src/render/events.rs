//! Views of event streams: consumed events, topics, one topic.

use micro_node::api::{ConsumedEvent, EventTopicView};
use micro_node::events::TopicInfo;

use super::Table;
use super::format::{sanitize, short_peer};

/// One consumed event on one line: `offset seq publisher-short body` (body sanitized, so it
/// cannot drive the terminal or break the line).
pub fn event_line(event: &ConsumedEvent) -> String {
    format!(
        "{} {} {} {}\n",
        event.offset,
        event.seq,
        short_peer(&event.publisher),
        sanitize(&event.body)
    )
}

fn offsets(info: &TopicInfo) -> String {
    match info.first_offset {
        Some(first) => format!("{first}..{}", info.next_offset),
        None => format!("-..{}", info.next_offset),
    }
}

/// The topics of a node: TOPIC, EVENTS, BYTES, OFFSETS, PUBLISHERS, GROUPS.
pub fn event_topics(topics: &[TopicInfo]) -> String {
    let mut t = Table::new([
        "TOPIC",
        "EVENTS",
        "BYTES",
        "OFFSETS",
        "PUBLISHERS",
        "GROUPS",
    ]);
    for info in topics {
        t.push([
            info.topic.to_string(),
            info.events.to_string(),
            info.bytes.to_string(),
            offsets(info),
            info.publishers.to_string(),
            info.groups.len().to_string(),
        ]);
    }
    t.to_string()
}

/// One topic as a key/value block, then its consumer groups and the peers carrying it.
pub fn event_topic(view: &EventTopicView) -> String {
    let info = &view.info;
    let mut kv = Table::new(Vec::<&str>::new());
    kv.push(["topic:", info.topic.as_str()]);
    kv.push(["events:", &info.events.to_string()]);
    kv.push(["bytes:", &info.bytes.to_string()]);
    kv.push(["offsets:", &offsets(info)]);
    kv.push(["publishers:", &info.publishers.to_string()]);
    kv.push(["gossip peers:", &view.gossip_peers.to_string()]);
    kv.push(["carried by:", &view.providers.len().to_string()]);
    let mut out = kv.to_string();
    if !info.groups.is_empty() {
        let mut groups = Table::new(["GROUP", "NEXT OFFSET", "LAG"]);
        for (group, position) in &info.groups {
            groups.push([
                group.as_str().to_owned(),
                position.to_string(),
                info.next_offset.saturating_sub(*position).to_string(),
            ]);
        }
        out.push('\n');
        out.push_str(&groups.to_string());
    }
    if !view.providers.is_empty() {
        let mut peers = Table::new(["CARRIED BY"]);
        for peer in &view.providers {
            peers.push([peer.to_base58()]);
        }
        out.push('\n');
        out.push_str(&peers.to_string());
    }
    out
}
