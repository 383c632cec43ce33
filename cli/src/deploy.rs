//! `deploy SOURCE` and `update`: a deploy from source, shown as it runs.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use micro_node::api::{ApiError, DeployEvent, SourceDeployBody};
use micro_node::source::Progress;

use crate::client::Client;
use crate::query::{print_json, print_text};
use crate::render;

/// Renders a deploy's NDJSON stream: a spinner per phase on stderr (plain lines when stderr
/// is not a terminal), the outcome on stdout.
struct DeployView {
    bar: indicatif::ProgressBar,
    json: bool,
    phase_started: std::time::Instant,
    outcome: Option<std::result::Result<DeployEvent, ApiError>>,
}

impl DeployView {
    fn new(json: bool) -> Self {
        let bar = if json {
            indicatif::ProgressBar::hidden()
        } else {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        };
        Self {
            bar,
            json,
            phase_started: std::time::Instant::now(),
            outcome: None,
        }
    }

    fn on_line(&mut self, line: &str) -> Result<()> {
        let event: DeployEvent = serde_json::from_str(line)?;
        match event {
            DeployEvent::Progress(Progress::Phase(phase, detail)) => {
                let label = format!("{phase:?}").to_lowercase();
                if self.bar.is_hidden() && !self.json {
                    eprintln!("{label}: {detail}");
                } else {
                    self.bar.set_prefix(label);
                    self.bar.set_message(detail);
                }
                self.phase_started = std::time::Instant::now();
            }
            DeployEvent::Progress(Progress::Line(text)) => self.bar.set_message(text),
            DeployEvent::Error(e) => self.outcome = Some(Err(e)),
            other => self.outcome = Some(Ok(other)),
        }
        Ok(())
    }

    fn finish(self) -> Result<DeployEvent> {
        self.bar.finish_and_clear();
        match self.outcome {
            Some(Ok(event)) => Ok(event),
            Some(Err(e)) => bail!("{}", e.detail),
            None => bail!("the node ended the deploy without an outcome"),
        }
    }
}

fn print_deployed(event: DeployEvent, json: bool) -> Result<()> {
    if json {
        return print_json(&event);
    }
    match event {
        DeployEvent::Done(done) => {
            let phases = done
                .timings
                .iter()
                .map(|(phase, ms)| format!("{} {ms} ms", format!("{phase:?}").to_lowercase()))
                .collect::<Vec<_>>()
                .join(", ");
            let replaced = render::replaced_note(&done.deployed);
            print_text(format!(
                "deployed {} {} (commit {}{}{replaced})\n  {phases}\ncall it with: micro-node call {} <Endpoint> '{{}}'\n",
                done.deployed.name,
                done.deployed.version,
                done.commit,
                if done.cached { ", build cached" } else { "" },
                done.deployed.name,
            ))
        }
        DeployEvent::UpToDate { commit } => print_text(format!("up to date at {commit}\n")),
        DeployEvent::Progress(_) | DeployEvent::Error(_) => Ok(()),
    }
}

/// `micro-node deploy SOURCE [--follow INTERVAL]`.
pub async fn deploy_source(
    client: &Client,
    source: &str,
    follow: Option<Duration>,
    on: Option<micro_overlay::PeerId>,
    json: bool,
) -> Result<()> {
    // A folder is read by the node: send its absolute path.
    let source = match std::path::Path::new(source) {
        p if p.is_dir() => p
            .canonicalize()
            .with_context(|| format!("cannot read {}", p.display()))?
            .to_string_lossy()
            .into_owned(),
        _ => source.to_owned(),
    };
    let body = SourceDeployBody {
        source,
        follow_secs: follow.map(|f| f.as_secs().max(1)),
        on,
    };
    let mut view = DeployView::new(json);
    client
        .post_stream_lines("/sources", &body, |line| view.on_line(line))
        .await?;
    print_deployed(view.finish()?, json)
}

/// `micro-node update NAME`.
pub async fn update(client: &Client, name: &str, json: bool) -> Result<()> {
    let mut view = DeployView::new(json);
    client
        .post_stream_lines(&format!("/deployments/{name}/update"), &(), |line| {
            view.on_line(line)
        })
        .await?;
    print_deployed(view.finish()?, json)
}
