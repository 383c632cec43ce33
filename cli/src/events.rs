//! `micro-node events ...`: publish, consume (printing and acknowledging), topics, info.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use micro_node::api::{AckBody, ConsumeBody, ConsumeReply, EventTopicView, PublishBody};
use micro_node::events::{EventPublished, TopicInfo};

use crate::args::EventsCommand;
use crate::client::Client;
use crate::query::{QUICK, print_json, print_text};
use crate::render;

/// Most events asked for per consume request (the node caps it as well).
const BATCH: usize = 500;

/// How long one `--follow` request waits for new events (the node's upper bound).
const FOLLOW_WAIT: Duration = Duration::from_secs(30);

/// Budget for a DHT lookup the node may do on the way (unknown topic, topic info).
const LOOKUP: Duration = Duration::from_secs(15);

/// Runs one `events` command against the node behind `client`.
pub async fn run(client: &Client, command: EventsCommand, json: bool) -> Result<()> {
    match command {
        EventsCommand::Publish {
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
            let published: EventPublished = client.post("/events/publish", &request, QUICK).await?;
            if json {
                print_json(&published)
            } else {
                print_text(format!(
                    "published seq {} at offset {} (id {}, delivered to {} peer{})\n",
                    published.seq,
                    published.offset,
                    published.id,
                    published.delivered_to,
                    if published.delivered_to == 1 { "" } else { "s" }
                ))
            }
        }
        EventsCommand::Consume {
            topic,
            group,
            from,
            max,
            follow,
        } => consume(client, topic, group, from, max, follow, json).await,
        EventsCommand::Topics => {
            let topics: Vec<TopicInfo> = client.get("/events/topics", &[], QUICK).await?;
            if json {
                print_json(&topics)
            } else {
                print_text(render::event_topics(&topics))
            }
        }
        EventsCommand::Info { topic } => {
            let view: EventTopicView = client
                .get(&format!("/events/topics/{topic}"), &[], LOOKUP)
                .await?;
            if json {
                print_json(&view)
            } else {
                print_text(render::event_topic(&view))
            }
        }
    }
}

/// Reads batches, prints each event, then acknowledges the batch; until `max` events were
/// printed, or (without `follow`) a request finds nothing new.
async fn consume(
    client: &Client,
    topic: String,
    group: String,
    from: String,
    max: Option<usize>,
    follow: bool,
    json: bool,
) -> Result<()> {
    let mut left = max.unwrap_or(usize::MAX);
    let wait = if follow { FOLLOW_WAIT } else { Duration::ZERO };
    let mut stdout = std::io::stdout();
    while left > 0 {
        let request = ConsumeBody {
            topic: topic.clone(),
            group: group.clone(),
            from: Some(from.clone()),
            max: Some(left.min(BATCH)),
            wait_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
        };
        let reply: ConsumeReply = client
            .post("/events/consume", &request, LOOKUP + wait)
            .await?;
        if reply.events.is_empty() {
            if follow {
                continue;
            }
            break;
        }
        for event in &reply.events {
            if json {
                writeln!(stdout, "{}", serde_json::to_string(event)?)?;
            } else {
                write!(stdout, "{}", render::event_line(event))?;
            }
        }
        // Printed (and flushed, also into a pipe) before acknowledging: at-least-once.
        stdout.flush()?;
        left = left.saturating_sub(reply.events.len());
        let ack = AckBody {
            topic: topic.clone(),
            group: group.clone(),
            next_offset: reply.next_offset,
        };
        let _: AckBody = client.post("/events/ack", &ack, QUICK).await?;
    }
    Ok(())
}
