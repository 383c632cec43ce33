//! The four cases, run in this order on one published greeter:
//!
//! 1. [`cold`]: a node on a fresh data dir (empty build cache, cargo target dir and
//!    compiled-code cache) deploys `greeter.git@main`. The last cold node is kept: it is the
//!    [`Site`] of the cases after it.
//! 2. [`warm`]: the same node deploys the same source again: the build cache has the
//!    component, and the running version is replaced.
//! 3. [`restart`]: the node shuts down and a new one starts on the same data dir, which
//!    restores the greeter from its deployment record.
//! 4. [`incremental`]: a new commit that changes only `micro.toml` is pushed to `main` and
//!    deployed: a build-cache miss, but cargo's target dir for the repository is reused.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use micro_node::RunningNode;
use tempfile::TempDir;

use super::{FIRST_GREETING, Published, Sample, deploy_and_call, first_answer, ms, start_node};

/// A node and the data dir it runs on (which outlives it).
pub struct Site {
    /// The node.
    pub node: RunningNode,
    /// Its data dir.
    pub dir: TempDir,
}

/// What [`cold`] measured.
pub struct Cold {
    /// One sample per run.
    pub samples: Vec<Sample>,
    /// `RunningNode::start` on the empty data dir of each run (not part of the samples).
    pub empty_start_ms: Vec<f64>,
    /// The last run's node, for the warm cases.
    pub site: Site,
}

/// `runs` cold deploys, each by a new node on a new data dir (at least one).
pub async fn cold(published: &Published, runs: usize) -> Result<Cold> {
    let mut samples = Vec::new();
    let mut empty_start_ms = Vec::new();
    let mut site = None;
    for _ in 0..runs.max(1) {
        if let Some(Site { node, .. }) = site.take() {
            node.shutdown().await;
        }
        let dir = tempfile::tempdir().context("creating a data dir")?;
        let started = Instant::now();
        let node = start_node(dir.path()).await?;
        empty_start_ms.push(ms(started.elapsed()));
        let sample = deploy_and_call(&node, &published.source(), FIRST_GREETING).await?;
        ensure!(
            sample.cached == Some(false),
            "a fresh node built the greeter from the build cache"
        );
        samples.push(sample);
        site = Some(Site { node, dir });
    }
    Ok(Cold {
        samples,
        empty_start_ms,
        site: site.context("at least one cold run")?,
    })
}

/// `runs` deploys of the same source again on `site`'s node, which already runs it.
pub async fn warm(site: &Site, published: &Published, runs: usize) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for _ in 0..runs {
        let sample = deploy_and_call(&site.node, &published.source(), FIRST_GREETING).await?;
        ensure!(
            sample.cached == Some(true),
            "the same commit was built again instead of coming from the build cache"
        );
        ensure!(
            sample.replaced.is_some(),
            "the deploy did not replace the running greeter"
        );
        samples.push(sample);
    }
    Ok(samples)
}

/// `runs` restarts: `site`'s node shuts down and a new one starts on the same data dir; each
/// sample runs from `RunningNode::start` to the restored greeter's first answer. Returns the
/// last node.
pub async fn restart(site: Site, runs: usize) -> Result<(Vec<Sample>, Site)> {
    let Site { mut node, dir } = site;
    let mut samples = Vec::new();
    for _ in 0..runs {
        node.shutdown().await;
        let started = Instant::now();
        node = start_node(dir.path()).await?;
        let start_ms = ms(started.elapsed());
        let failed_calls = first_answer(&node, FIRST_GREETING).await?;
        let total_ms = ms(started.elapsed());
        samples.push(Sample {
            start_ms: Some(start_ms),
            rest_ms: total_ms - start_ms,
            total_ms,
            failed_calls,
            ..Sample::default()
        });
    }
    Ok((samples, Site { node, dir }))
}

/// `runs` new commits on `main`, each changing the greeting in `micro.toml` only, each
/// deployed on `site`'s node and checked by its new greeting.
pub async fn incremental(site: &Site, published: &Published, runs: usize) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for run in 1..=runs {
        let greeting = format!("Hi {run}");
        published.commit_greeting(&greeting).await?;
        let sample = deploy_and_call(&site.node, &published.source(), &greeting).await?;
        ensure!(
            sample.cached == Some(false),
            "a new commit came from the build cache"
        );
        samples.push(sample);
    }
    Ok(samples)
}
