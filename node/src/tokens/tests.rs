//! The token subsystem on a real (lone) overlay: the gateway's checks in order, spend,
//! refresh, revocation, trust, and revocation gossip.

use std::time::Duration;

use libp2p::gossipsub::MessageId;
use libp2p::identity::Keypair;
use micro_overlay::{GossipMessage, OverlayConfig, PeerId, Role};

use super::*;
use crate::reputation::{NodeReputation, ReputationConfig};

const HOUR: Duration = Duration::from_secs(3600);

struct Node {
    tokens: ApiTokens,
    reputation: NodeReputation,
    _dir: tempfile::TempDir,
}

async fn node(key: Keypair, trusted: &[PeerId]) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let config = OverlayConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        ..OverlayConfig::default()
    };
    let (overlay, _inbound, _task) = micro_overlay::spawn(key.clone(), config).unwrap();
    let reputation = NodeReputation::open(
        &db,
        overlay.clone(),
        key.clone(),
        Role::Peer,
        ReputationConfig::default(),
    )
    .unwrap();
    let tokens = ApiTokens::open(
        &db,
        overlay,
        key,
        reputation.clone(),
        TokensConfig::default(),
        trusted,
    )
    .unwrap();
    Node {
        tokens,
        reputation,
        _dir: dir,
    }
}

fn request(scopes: &[&str], ttl: Duration, spend_limit: Option<u64>) -> IssueRequest {
    IssueRequest {
        scopes: scopes.iter().map(|s| s.parse().unwrap()).collect(),
        ttl,
        spend_limit,
    }
}

#[tokio::test]
async fn the_gateway_checks_run_in_order() {
    let n = node(Keypair::generate_ed25519(), &[]).await;
    let t = &n.tokens;
    let now = now_ms();
    let issued = t
        .issue_at(request(&["greeter/Say.*"], HOUR, Some(10)), now)
        .await
        .unwrap();
    assert_eq!(issued.view.status, TokenStatus::Active);

    let status = |r: Result<ApiToken, Denied>| r.map(|_| 200).unwrap_or_else(|d| d.status());
    assert_eq!(status(t.verify_presented(None, now)), 401);
    assert_eq!(status(t.verify_presented(Some("  "), now)), 401);
    let forged = t.verify_presented(Some("mt1_abc.def"), now).unwrap_err();
    assert!(matches!(forged, Denied::Forged(_)), "{forged}");
    assert!(forged.to_string().contains("forged"));
    let token = t.verify_presented(Some(&issued.token), now).unwrap();

    // Scope: the token's own, then the config's deny rule at the same priority.
    let denied = t
        .admit(token.clone(), "counter", "Say.Hello", &[])
        .unwrap_err();
    assert_eq!(denied.status(), 403);
    let deny: Rule = "deny:greeter/Say.Secret".parse().unwrap();
    let denied = t
        .admit(
            token.clone(),
            "greeter",
            "Say.Secret",
            std::slice::from_ref(&deny),
        )
        .unwrap_err();
    assert_eq!(denied.status(), 403);

    // Spend: reserved before, settled after; over the limit is 402.
    let admitted = || t.admit(token.clone(), "greeter", "Say.Hello", &[]).unwrap();
    let grant = t.reserve(admitted(), 6).unwrap();
    t.settle(grant, Some(6));
    assert_eq!(t.spent(&token.id).unwrap(), 6);
    let over = t.reserve(admitted(), 5).unwrap_err();
    assert_eq!(over.status(), 402, "{over}");
    let grant = t.reserve(admitted(), 4).unwrap();
    t.settle(grant, None);
    assert_eq!(t.spent(&token.id).unwrap(), 6, "a failed call is refunded");
    let grant = t.reserve(admitted(), 4).unwrap();
    drop(grant);
    assert_eq!(
        t.spent(&token.id).unwrap(),
        6,
        "a cancelled call is refunded"
    );
    let grant = t.reserve(admitted(), 4).unwrap();
    t.settle(grant, Some(1));
    assert_eq!(t.spent(&token.id).unwrap(), 7, "charged the real price");
    assert_eq!(t.charge(&token.id, 3).unwrap(), 10);
    assert!(matches!(
        t.charge(&token.id, 1),
        Err(TokensError::SpendLimit { .. })
    ));

    // Revoked: refused before anything else is looked at.
    let view = t.revoke(&token.id).await.unwrap();
    assert_eq!(view.status, TokenStatus::Revoked);
    let revoked = t.verify_presented(Some(&issued.token), now).unwrap_err();
    assert!(matches!(revoked, Denied::Revoked(_)) && revoked.status() == 401);
    assert_eq!(t.list().unwrap()[0].status, TokenStatus::Revoked);
    assert!(matches!(
        t.revoke(&TokenId([0; 16])).await,
        Err(TokensError::Unknown(_))
    ));
}

#[tokio::test]
async fn expired_tokens_refresh_into_new_ones_with_the_spend_left() {
    let n = node(Keypair::generate_ed25519(), &[]).await;
    let t = &n.tokens;
    let start = now_ms();
    let second = Duration::from_secs(1);
    let old = t
        .issue_at(request(&["node"], second, Some(10)), start)
        .await
        .unwrap();
    t.charge(&old.view.id, 4).unwrap();
    let expired = t
        .verify_presented(Some(&old.token), start + 1000)
        .unwrap_err();
    assert!(matches!(expired, Denied::Expired { .. }) && expired.status() == 401);
    assert!(expired.to_string().contains("expired"));

    let new = t.refresh_at(&old.token, None, start + 2000).await.unwrap();
    assert_eq!(new.view.refreshed_from, Some(old.view.id));
    assert_eq!(new.view.spend_limit, Some(6));
    assert_eq!(
        new.view.expires_at_ms,
        start + 3000,
        "the old token's lifetime"
    );
    assert_eq!(new.view.scopes, old.view.scopes);
    t.verify_presented(Some(&new.token), start + 2500).unwrap();
    assert!(matches!(
        t.verify_presented(Some(&old.token), start + 2500),
        Err(Denied::Revoked(_))
    ));
    let again = t.refresh_at(&old.token, None, start + 2000).await;
    assert!(
        matches!(again, Err(TokensError::Revoked { replaced_by: Some(id), .. }) if id == new.view.id)
    );
    let listed = t.list().unwrap();
    assert!(
        listed
            .iter()
            .any(|v| v.id == old.view.id && v.status == TokenStatus::Refreshed)
    );

    // Too long after expiry.
    let window = TokensConfig::default().refresh_window;
    let late = start + 1000 + u64::try_from(window.as_millis()).unwrap() + 1;
    let too_old = t.refresh_at(&new.token, None, late + 2000).await;
    assert!(matches!(too_old, Err(TokensError::TooOld { .. })));
    assert_eq!(too_old.unwrap_err().status(), 410);

    // Bounds on what is asked.
    assert!(matches!(
        t.issue(request(&["node"], Duration::ZERO, None)).await,
        Err(TokensError::BadRequest(_))
    ));
    assert!(matches!(
        t.issue(request(&[], HOUR, None)).await,
        Err(TokensError::BadRequest(_))
    ));
    let services: Vec<String> = (0..9).map(|i| format!("s{i}")).collect();
    let endpoints: Vec<String> = (0..4).map(|i| format!("E{i}.*")).collect();
    assert!(IssueRequest::scopes_for(&services[..8], &endpoints).is_ok());
    assert!(IssueRequest::scopes_for(&services, &endpoints).is_err());
    assert!(IssueRequest::scopes_for(&[], &[]).is_err());
    assert!(IssueRequest::scopes_for(&["a b".to_owned()], &[]).is_err());
}

#[tokio::test]
async fn other_issuers_count_only_when_trusted() {
    let other_key = Keypair::generate_ed25519();
    let other = node(other_key.clone(), &[]).await;
    let issued = other
        .tokens
        .issue(request(&["greeter"], HOUR, None))
        .await
        .unwrap();
    let now = now_ms();

    let stranger = node(Keypair::generate_ed25519(), &[]).await;
    let refused = stranger
        .tokens
        .verify_presented(Some(&issued.token), now)
        .unwrap_err();
    assert!(matches!(refused, Denied::Untrusted { .. }) && refused.status() == 401);
    assert!(matches!(
        stranger.tokens.refresh(&issued.token, None).await,
        Err(TokensError::NotIssuedHere { .. })
    ));

    let friend = node(
        Keypair::generate_ed25519(),
        &[other_key.public().to_peer_id()],
    )
    .await;
    friend
        .tokens
        .verify_presented(Some(&issued.token), now)
        .unwrap();

    // The issuer's revocation arrives by gossip: the friend keeps it, the stranger does not.
    let revocation = Revocation {
        token_id: issued.view.id,
        issuer: other_key.public().to_peer_id(),
        revoked_at_ms: now,
        expires_at_ms: issued.view.expires_at_ms,
    }
    .sign(&other_key)
    .unwrap();
    let from = PeerId::random();
    let gossip = |data: Vec<u8>| GossipMessage {
        topic: TOKENS_TOPIC.to_owned(),
        propagation_source: from,
        id: MessageId::new(&data),
        data,
    };
    friend.tokens.on_gossip(gossip(revocation.clone())).await;
    stranger.tokens.on_gossip(gossip(revocation)).await;
    assert!(matches!(
        friend.tokens.verify_presented(Some(&issued.token), now),
        Err(Denied::Revoked(_))
    ));
    assert!(!stranger.tokens.is_revoked(&issued.view.id).unwrap());

    // Garbage on the topic costs the forwarder reputation.
    friend
        .tokens
        .on_gossip(gossip(b"not a revocation".to_vec()))
        .await;
    let local = friend.reputation.explain(&from).local;
    assert!(local.is_some_and(|l| l.penalty_points > 0.0));
}
