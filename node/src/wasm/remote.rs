//! Deploying on another node: `deploy … --on <peer>` asks that node, over the `node`
//! service's `Node.Deploy` endpoint, to deploy a source. Only nodes that list the caller in
//! their configuration accept (none by default). A build takes longer than one RPC may, so the
//! answer is a job id, and `Node.DeployStatus` reports how the job ended.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use micro_overlay::PeerId;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{SourceDeployed, Wasm, WasmError, lock};
use crate::api::SourceDeployBody;
use crate::registry::ServiceName;
use crate::services::CallRequest;
use crate::source::{Phase, Progress};

/// Remote jobs remembered (the oldest finished ones are forgotten first).
const MAX_JOBS: usize = 64;
/// How often the caller asks how its job is going.
const POLL: Duration = Duration::from_millis(500);
/// The longest a remote deploy is waited for.
const REMOTE_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// How a remote deploy job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Still fetching or building.
    Running,
    /// Deployed.
    Done(SourceDeployed),
    /// Failed: code and detail.
    Failed {
        /// HTTP-style status.
        code: u16,
        /// Why.
        detail: String,
    },
}

/// `Node.DeployStatus`'s body.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobQuery {
    job: String,
}

/// The remote jobs of a node.
#[derive(Debug, Default)]
pub(super) struct Jobs(VecDeque<(String, JobState)>);

impl Jobs {
    fn set(&mut self, id: &str, state: JobState) {
        if let Some(entry) = self.0.iter_mut().find(|(j, _)| j == id) {
            entry.1 = state;
            return;
        }
        if self.0.len() >= MAX_JOBS {
            let finished = self
                .0
                .iter()
                .position(|(_, s)| *s != JobState::Running)
                .unwrap_or(0);
            self.0.remove(finished);
        }
        self.0.push_back((id.to_owned(), state));
    }

    fn get(&self, id: &str) -> Option<JobState> {
        self.0.iter().find(|(j, _)| j == id).map(|(_, s)| s.clone())
    }
}

fn service_error(code: u16, detail: String) -> WasmError {
    WasmError::Remote { code, detail }
}

impl Wasm {
    /// Answers `Node.Deploy` from `caller`: 403 unless this node's configuration lists it;
    /// else starts the deploy and answers the job id.
    pub(crate) fn accept_remote(
        &self,
        caller: PeerId,
        body: &[u8],
    ) -> Result<String, (u16, String)> {
        if !self.0.builder.config().remote_deployers.contains(&caller) {
            warn!(%caller, "remote deploy refused: caller not allowed");
            return Err((
                403,
                format!("this node does not take deploys from {caller} (see --allow-deploy-from)"),
            ));
        }
        let body: SourceDeployBody =
            serde_json::from_slice(body).map_err(|e| (400, format!("deploy request: {e}")))?;
        let job = format!("{:016x}", rand::random::<u64>());
        lock(&self.0.jobs).set(&job, JobState::Running);
        info!(%caller, source = %body.source, %job, "remote deploy accepted");
        let wasm = self.clone();
        let id = job.clone();
        tokio::spawn(async move {
            let (tx, mut rx) = mpsc::channel(64);
            tokio::spawn(async move { while rx.recv().await.is_some() {} });
            let follow = body.follow_secs.map(Duration::from_secs);
            let state = match wasm.deploy_source(&body.source, follow, &tx).await {
                Ok(done) => JobState::Done(done),
                Err(e) => JobState::Failed {
                    code: crate::control::status_code_of(&e),
                    detail: e.to_string(),
                },
            };
            lock(&wasm.0.jobs).set(&id, state);
        });
        Ok(job)
    }

    /// Answers `Node.DeployStatus`.
    pub(crate) fn remote_job(&self, body: &[u8]) -> Result<JobState, (u16, String)> {
        let query: JobQuery =
            serde_json::from_slice(body).map_err(|e| (400, format!("status request: {e}")))?;
        lock(&self.0.jobs)
            .get(&query.job)
            .ok_or_else(|| (404, format!("no deploy job `{}` on this node", query.job)))
    }

    /// Asks `peer` to deploy `source` and waits until it has (or failed).
    pub async fn deploy_on(
        &self,
        peer: PeerId,
        source: &str,
        follow: Option<Duration>,
        progress: &mpsc::Sender<Progress>,
    ) -> Result<SourceDeployed, WasmError> {
        let call = |endpoint: &str, body: Vec<u8>| {
            let services = self.0.services.clone();
            let endpoint = endpoint.to_owned();
            async move {
                let request = CallRequest {
                    version: None,
                    service: crate::services::BUILTIN_SERVICE
                        .parse::<ServiceName>()
                        .expect("the built-in name is valid"),
                    endpoint: endpoint.parse().expect("built-in endpoint names are valid"),
                    body,
                    content_type: "application/json".to_owned(),
                    headers: BTreeMap::new(),
                    timeout_ms: Some(20_000),
                    node: Some(peer),
                };
                services
                    .call(request)
                    .await
                    .map_err(|e| service_error(e.code, e.detail))
            }
        };
        let _ = progress
            .send(Progress::Phase(
                Phase::Fetch,
                format!("asking {peer} to deploy {source}"),
            ))
            .await;
        let body = SourceDeployBody {
            source: source.to_owned(),
            follow_secs: follow.map(|f| f.as_secs()),
            on: None,
        };
        let accepted = call("Node.Deploy", serde_json::to_vec(&body).unwrap_or_default()).await?;
        let job: JobQuery = serde_json::from_slice(&accepted.body)
            .map_err(|e| service_error(502, format!("{peer} answered Node.Deploy with {e}")))?;
        let _ = progress
            .send(Progress::Phase(
                Phase::Build,
                format!("{peer} is building (job {})", job.job),
            ))
            .await;
        let deadline = tokio::time::Instant::now() + REMOTE_DEADLINE;
        loop {
            tokio::time::sleep(POLL).await;
            let status = call(
                "Node.DeployStatus",
                serde_json::to_vec(&job).unwrap_or_default(),
            )
            .await?;
            let state: JobState = serde_json::from_slice(&status.body).map_err(|e| {
                service_error(502, format!("{peer} answered Node.DeployStatus with {e}"))
            })?;
            match state {
                JobState::Running if tokio::time::Instant::now() < deadline => continue,
                JobState::Running => {
                    return Err(service_error(
                        408,
                        format!("{peer} did not finish within {REMOTE_DEADLINE:?}"),
                    ));
                }
                JobState::Done(done) => return Ok(done),
                JobState::Failed { code, detail } => {
                    return Err(service_error(code, format!("on {peer}: {detail}")));
                }
            }
        }
    }
}

/// The JSON of a job id, as `Node.Deploy` answers it.
pub(crate) fn job_body(job: &str) -> Vec<u8> {
    serde_json::to_vec(&JobQuery {
        job: job.to_owned(),
    })
    .unwrap_or_default()
}
