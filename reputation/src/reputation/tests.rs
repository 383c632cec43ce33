//! Tests of the assembled [`Reputation`]: persistence, reports, collapse, explanation.

use super::*;
use crate::rate_limit::{RateLimiter, RateLimiterConfig, Verdict};
use crate::report::ReportConfig;
use crate::test_support::{keypair, peer};
use crate::time::{DAY_MS, HOUR_MS};

struct Fixture {
    _dir: tempfile::TempDir,
    db: sled::Db,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::open(dir.path()).expect("sled opens");
    Fixture { _dir: dir, db }
}

fn open(f: &Fixture, n: u32) -> Reputation {
    Reputation::open(&f.db, Config::default(), peer(n)).expect("opens")
}

/// A peer this node has known for `days`, connected all along, that served `calls` calls.
fn befriend(rep: &mut Reputation, p: PeerId, calls: u64, days: u64) -> UnixMillis {
    rep.observe_connected(p, UnixMillis(0));
    let now = UnixMillis(days * DAY_MS);
    rep.observe_receipt(p, calls, now);
    now
}

#[test]
fn reopening_restores_observations_collapses_and_reports() {
    let f = fixture();
    let now = UnixMillis(8 * DAY_MS);
    {
        let mut rep = open(&f, 0);
        befriend(&mut rep, peer(1), 10, 8);
        rep.penalise(peer(1), Penalty::InvalidMessage, now)
            .expect("ok");
        rep.observe_disconnected(peer(1), now);
        rep.collapse(peer(2)).expect("collapse written");
        let report = TrustReport::sign(
            &keypair(3),
            now,
            vec![crate::TrustEntry {
                peer: peer(1),
                trust: crate::TrustWeight::ONE,
            }],
            &ReportConfig::default(),
        )
        .expect("valid");
        rep.accept_report(report, now).expect("accepted");
        // No checkpoint: dropping writes the changes.
    }
    let rep = open(&f, 0);
    let obs = rep.observations().get(&peer(1)).expect("restored");
    assert_eq!(obs.receipts, 10);
    assert_eq!(obs.invalid_messages, 1);
    assert_eq!(obs.connected_ms, 8 * DAY_MS);
    assert!(!obs.connected);
    assert!(rep.is_collapsed(&peer(2)));
    assert_eq!(rep.reports().len(), 1);
    assert_eq!(
        rep.reports().get(&peer(3)).map(|r| r.issued_at()),
        Some(now)
    );
}

#[test]
fn a_connection_open_at_a_crash_ends_at_the_last_checkpoint() {
    let f = fixture();
    {
        let mut rep = open(&f, 0);
        rep.observe_connected(peer(1), UnixMillis(0));
        rep.checkpoint(UnixMillis(HOUR_MS)).expect("checkpoint");
        rep.observe_receipt(peer(2), 1, UnixMillis(2 * HOUR_MS));
    }
    let rep = open(&f, 0);
    let obs = rep.observations().get(&peer(1)).expect("restored");
    assert!(!obs.connected);
    assert_eq!(obs.connected_ms_at(UnixMillis(10 * HOUR_MS)), HOUR_MS);
    assert!(rep.observations().get(&peer(2)).is_some());
}

#[test]
fn a_small_network_scores_through_reports() {
    // Super s(0) has served calls by a(1); a trusts b(2); b trusts nobody; x(3) is unknown.
    let f = fixture();
    let mut super_node = open(&f, 0);
    let now = befriend(&mut super_node, peer(1), 100, 8);
    let super_report = super_node.local_report(&keypair(0), now).expect("signs");
    assert_eq!(super_report.entries().len(), 1);

    let g = fixture();
    let mut a = open(&g, 1);
    befriend(&mut a, peer(2), 5, 8);
    let a_report = a.local_report(&keypair(1), now).expect("signs");

    // A third node, b, hears both reports over the wire.
    let h = fixture();
    let mut b = open(&h, 2);
    for report in [super_report, a_report] {
        let decoded =
            TrustReport::decode(&report.encode(), &ReportConfig::default()).expect("verifies");
        b.accept_report(decoded, now).expect("accepted");
    }
    let scores = b.recompute(&[peer(0)], now);
    let (ts, ta, tb) = (
        scores.score(&peer(0)),
        scores.score(&peer(1)),
        scores.score(&peer(2)),
    );
    assert!(ts > ta && ta > tb && tb > 0.0, "{ts} {ta} {tb}");
    assert_eq!(scores.score(&peer(3)), 0.0);
    assert!((ts + ta + tb - 1.0).abs() < 1e-9);
    assert!(ts >= 0.15);
    assert!(b.scores().weight(&peer(1)) > b.scores().weight(&peer(2)));

    let explanation = b.explain(&peer(2), now);
    assert_eq!(explanation.reported_by.len(), 1);
    assert_eq!(explanation.reported_by[0].issuer, peer(1));
    assert!(explanation.reported_by[0].contribution > 0.0);
    assert!(explanation.local.is_none());
    assert!(!explanation.allowance.newcomer);
    let text = explanation.to_string();
    assert!(text.contains("reported by 1 issuer"), "{text}");

    // Newcomers get the newcomer allowance; a known peer more.
    assert!(b.admission(&peer(3)).newcomer);
    assert!(b.admission(&peer(0)).free_calls_per_hour > b.admission(&peer(3)).free_calls_per_hour);
}

#[test]
fn collapse_zeroes_the_peer_and_refuses_its_reports() {
    let f = fixture();
    let mut rep = open(&f, 0);
    let now = befriend(&mut rep, peer(1), 10, 8);
    befriend(&mut rep, peer(2), 10, 8);
    let report = TrustReport::sign(
        &keypair(1),
        now,
        vec![crate::TrustEntry {
            peer: peer(2),
            trust: crate::TrustWeight::ONE,
        }],
        &ReportConfig::default(),
    )
    .expect("valid");
    rep.accept_report(report.clone(), now).expect("accepted");
    assert!(rep.recompute(&[peer(0)], now).score(&peer(1)) > 0.0);

    rep.penalise(peer(1), Penalty::Equivocation, now)
        .expect("collapse written");
    assert!(rep.is_collapsed(&peer(1)));
    assert!(!rep.collapse(peer(1)).expect("idempotent"));
    assert!(rep.reports().get(&peer(1)).is_none());
    let err = rep.accept_report(report, now.plus(1)).unwrap_err();
    assert!(matches!(err, ReportError::CollapsedIssuer { .. }));
    let scores = rep.recompute(&[peer(0), peer(1)], now);
    assert_eq!(scores.score(&peer(1)), 0.0);
    assert!(!scores.is_pre_trusted(&peer(1)));
    assert!(scores.score(&peer(2)) > 0.0);
    assert_eq!(rep.app_specific_score(&peer(1), now), -1_000.0);
    assert_eq!(rep.admission(&peer(1)).max_calls_per_second, 0);
    // Observations of a collapsed peer are forgotten and no longer recorded, and we never
    // collapse ourselves.
    assert!(rep.observations().get(&peer(1)).is_none());
    rep.observe_receipt(peer(1), 100, now);
    assert!(rep.observations().get(&peer(1)).is_none());
    assert!(!rep.collapse(peer(0)).expect("refused"));
}

#[test]
fn reports_must_be_ours_to_sign_and_ours_are_not_taken_back() {
    let f = fixture();
    let mut rep = open(&f, 0);
    let err = rep.local_report(&keypair(5), UnixMillis(1)).unwrap_err();
    assert!(matches!(err, ReportError::IssuerMismatch { .. }));
    let own = rep.local_report(&keypair(0), UnixMillis(1)).expect("signs");
    assert!(own.entries().is_empty());
    let err = rep.accept_report(own, UnixMillis(2)).unwrap_err();
    assert!(matches!(err, ReportError::Stale { .. }));
    // Publishing twice in the same millisecond is fine.
    rep.local_report(&keypair(0), UnixMillis(1))
        .expect("signs again");
}

#[test]
fn without_supers_the_node_seeds_itself_from_live_trust() {
    let f = fixture();
    let mut rep = open(&f, 0);
    let now = befriend(&mut rep, peer(1), 10, 8);
    let scores = rep.recompute(&[], now);
    assert!(scores.is_pre_trusted(&peer(0)));
    assert!(scores.score(&peer(1)) > 0.0);
    assert_eq!(scores.rank(&peer(0)), Some(1));
}

#[test]
fn first_hand_penalties_show_in_the_gossipsub_score_at_once() {
    let f = fixture();
    let mut rep = open(&f, 0);
    let now = befriend(&mut rep, peer(1), 10, 8);
    rep.recompute(&[peer(0)], now);
    let before = rep.app_specific_score(&peer(1), now);
    assert!(before > 0.0);
    rep.penalise(peer(1), Penalty::ForgedRecord, now)
        .expect("ok");
    let after = rep.app_specific_score(&peer(1), now);
    assert!(after < before - 9.0, "{before} -> {after}");
    assert_eq!(rep.app_specific_score(&peer(7), now), 0.0);
    let explanation = rep.explain(&peer(1), now);
    let local = explanation.local.expect("observed");
    assert_eq!(local.observation.forged_records, 1);
    assert!((local.penalty_points - 1.0).abs() < 1e-9);
}

#[test]
fn allowance_feeds_the_rate_limiter() {
    let f = fixture();
    let rep = open(&f, 0);
    let mut limiter = RateLimiter::new(RateLimiterConfig::default(), UnixMillis(0));
    let allowance = rep.admission(&peer(9));
    let verdicts: Vec<Verdict> = (0..11)
        .map(|_| limiter.check(peer(9), &allowance, false, UnixMillis(0)))
        .collect();
    assert!(verdicts[..10].iter().all(|v| *v == Verdict::Free));
    assert!(matches!(verdicts[10], Verdict::TooManyRequests { .. }));
}

#[test]
fn super_nodes_are_never_evicted_from_a_full_table() {
    let f = fixture();
    let mut config = Config::default();
    config.observations.max_peers = 2;
    config.observations.protect_top = 0;
    let mut rep = Reputation::open(&f.db, config, peer(0)).expect("opens");
    let (super_node, other) = (peer(1), peer(2));
    let now = befriend(&mut rep, super_node, 0, 8);
    befriend(&mut rep, other, 1_000, 8);
    // The super node is the least trusted here: without protection it would go first.
    rep.penalise(super_node, Penalty::InvalidMessage, now)
        .expect("ok");
    rep.recompute(&[super_node], now);
    rep.observe_connected(peer(3), now);
    assert!(rep.observations().get(&super_node).is_some());
    assert!(rep.observations().get(&other).is_none());
    assert!(rep.observations().get(&peer(3)).is_some());
}
