//! API tokens across nodes: a token issued by node A opens node B's gateway (B trusts A and
//! requires tokens); A revokes it, the signed revocation spreads by gossip, and B's gateway
//! refuses it from then on.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use micro_node::RunningNode;
use micro_node::overlay::Role;
use micro_node::tokens::{IssueRequest, TOKENS_TOPIC};
use micro_testkit::{bootstrap_addr, eventually, init_tracing, node_config, overlay_config};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(30);

/// `POST /{path}` on `node`'s gateway with an optional bearer token: status and JSON body.
async fn call(node: &RunningNode, path: &str, token: Option<&str>) -> Result<(u16, Value)> {
    let addr = node.gateway_addr().context("the node runs a gateway")?;
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body("{}");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_at_the_issuer_closes_a_trusting_gateway() -> Result<()> {
    init_tracing();
    let (a_dir, b_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = RunningNode::start(node_config(
        a_dir.path(),
        overlay_config(Role::Super, vec![]),
    ))
    .await?;
    let mut b_config = node_config(
        b_dir.path(),
        overlay_config(Role::Peer, vec![bootstrap_addr(&a)]),
    );
    let gateway = b_config
        .gateway
        .as_mut()
        .context("test nodes run a gateway")?;
    gateway.require_token = true;
    gateway.trusted_issuers = vec![a.peer_id()];
    let b = RunningNode::start(b_config).await?;

    let issued = a
        .tokens()
        .issue(IssueRequest {
            scopes: vec!["node/Node.*".parse()?],
            ttl: Duration::from_secs(3600),
            spend_limit: None,
        })
        .await?;

    // B lets A's token through, and nothing without one.
    let (status, body) = call(&b, "/node/Node.Ping", None).await?;
    ensure!(status == 401, "no token: {status} {body}");
    let (status, body) = call(&b, "/node/Node.Ping", Some(&issued.token)).await?;
    ensure!(status == 200, "A's token at B: {status} {body}");
    // A token B issued itself works too; one from a node B does not trust would not.
    let own = b
        .tokens()
        .issue(IssueRequest {
            scopes: vec!["node".parse()?],
            ttl: Duration::from_secs(3600),
            spend_limit: None,
        })
        .await?;
    let (status, body) = call(&b, "/node/Node.Info", Some(&own.token)).await?;
    ensure!(status == 200, "B's own token: {status} {body}");

    // Revoked at A once B listens on the revocation topic; B refuses it once gossip arrives.
    eventually(
        "B subscribed to the token topic, seen from A",
        PATIENCE,
        || async { Ok(a.overlay().topic_peers(TOKENS_TOPIC).await? > 0) },
    )
    .await?;
    a.tokens().revoke(&issued.view.id).await?;
    eventually(
        "B's gateway refuses the revoked token",
        PATIENCE,
        || async {
            let (status, body) = call(&b, "/node/Node.Ping", Some(&issued.token)).await?;
            Ok(status == 401
                && body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("revoked")))
        },
    )
    .await?;
    ensure!(b.tokens().is_revoked(&issued.view.id)?);
    let (status, _) = call(&b, "/node/Node.Info", Some(&own.token)).await?;
    ensure!(status == 200, "B's own token is untouched: {status}");

    b.shutdown().await;
    a.shutdown().await;
    Ok(())
}
