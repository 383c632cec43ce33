//! Metered calls on real nodes: a newcomer calls a priced service from its free allowance,
//! gets 402 once it is used up and it has no tokens, receives a transfer, calls again and pays
//! through settlement: the provider's balance grows by exactly price × paid calls. Forged,
//! replayed and misdirected receipts are refused and cost the caller reputation.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use micro_node::RunningNode;
use micro_node::ledger::account_of;
use micro_node::ledger::micro_ledger::Tokens;
use micro_node::metering::CHARGED_HEADER;
use micro_node::metering::receipt::CallReceipt;
use micro_node::services::{Backend, ServeSpec};
use micro_overlay::rpc_proto::{RpcRequest, RpcResponse};
use micro_testkit::ledger::{Wallets, ledger_network_with};
use micro_testkit::{backend, eventually, init_tracing, json_call};

const PATIENCE: Duration = Duration::from_secs(60);
const PRICE: u64 = 5;
const FREE_CALLS: u32 = 3;

fn priced(url: String) -> ServeSpec {
    ServeSpec {
        name: "greeter".parse().expect("valid name"),
        version: "1.0.0".into(),
        older_versions: Vec::new(),
        backend: Backend::Http { url },
        endpoints: Vec::new(),
        metadata: Default::default(),
        price_per_call: PRICE,
    }
}

/// A call of `greeter` from `caller` straight to `provider` with `receipt`.
async fn raw_call(
    caller: &RunningNode,
    provider: &RunningNode,
    receipt: Vec<u8>,
) -> Result<RpcResponse> {
    let request = RpcRequest {
        id: format!("{:x}", rand::random::<u64>()),
        service: "greeter".into(),
        endpoint: "Say.Hello".into(),
        content_type: "application/json".into(),
        body: br#"{"name":"raw"}"#.to_vec(),
        timeout_ms: 10_000,
        receipt,
        ..Default::default()
    };
    Ok(caller
        .overlay()
        .rpc(
            provider.peer_id(),
            Vec::new(),
            request,
            Duration::from_secs(10),
        )
        .await?)
}

fn invalid_messages(provider: &RunningNode, caller: &RunningNode) -> u64 {
    provider
        .reputation()
        .explain(&caller.peer_id())
        .local
        .map_or(0, |l| l.observation.invalid_messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_pays_for_calls_past_its_free_allowance() -> Result<()> {
    init_tracing();
    let mut wallets = Wallets::new(1, 1_000_000);
    let (_dirs, nodes) = ledger_network_with(3, &wallets, |config| {
        // Everyone gets the same small free allowance, whatever its reputation.
        let admission = &mut config.reputation.model.admission;
        admission.newcomer_free_calls_per_hour = FREE_CALLS;
        admission.max_free_calls_per_hour = FREE_CALLS;
        admission.newcomer_calls_per_second = 1_000;
        admission.max_calls_per_second = 1_000;
        config.metering.settle_interval = Duration::from_millis(300);
    })
    .await?;
    let (treasury, provider, caller) = (&nodes[0], &nodes[1], &nodes[2]);
    let backend = backend::spawn("provider").await?;
    provider.services().serve(priced(backend.url())).await?;
    eventually("the caller sees the priced record", PATIENCE, || async {
        Ok(caller.services().network_services().iter().any(|s| {
            s.name.as_str() == "greeter" && s.providers.iter().any(|p| p.price_per_call == PRICE)
        }))
    })
    .await?;
    let provider_account = account_of(&provider.peer_id()).context("ed25519")?;
    let caller_account = account_of(&caller.peer_id()).context("ed25519")?;
    let call = || json_call("greeter", "Say.Hello", &serde_json::json!({"name": "n"}));

    // The free allowance: served, nothing charged.
    for i in 0..FREE_CALLS {
        let outcome = caller.services().call(call()).await;
        ensure!(outcome.is_ok(), "free call {i}: {outcome:?}");
    }
    // Past it, without tokens: 402, and nothing was billed.
    let refused = caller
        .services()
        .call(call())
        .await
        .expect_err("no tokens left");
    ensure!(refused.code == 402, "{refused:?}");
    ensure!(
        provider.metering().status().due.is_empty(),
        "nothing billed for free or refused calls"
    );

    // Tokens arrive; paid calls go through.
    let funding = wallets.pay(0, caller_account, 100, "welcome");
    treasury.ledger().submit(funding).await?;
    eventually("the provider sees the caller funded", PATIENCE, || async {
        Ok(provider.ledger().balance(&caller_account) == Tokens(100))
    })
    .await?;
    const PAID: u64 = 4;
    for i in 0..PAID {
        let outcome = caller.services().call(call()).await;
        ensure!(
            outcome.as_ref().is_ok_and(|o| o.charged == PRICE),
            "paid call {i}: {outcome:?}"
        );
    }
    eventually("settlement pays the provider", PATIENCE, || async {
        Ok(
            provider.ledger().balance(&provider_account) == Tokens(PRICE * PAID)
                && provider.ledger().balance(&caller_account) == Tokens(100 - PRICE * PAID),
        )
    })
    .await?;
    let served = provider
        .services()
        .local()
        .into_iter()
        .find(|s| s.spec.name.as_str() == "greeter")
        .context("served")?;
    ensure!(
        (
            served.free_calls,
            served.paid_calls,
            served.earned,
            served.refused
        ) == (u64::from(FREE_CALLS), PAID, PRICE * PAID, 1),
        "counters: {served:?}"
    );
    eventually("both books agree and are settled", PATIENCE, || async {
        let (due, owed) = (
            provider.metering().status().due,
            caller.metering().status().owed,
        );
        Ok(due.len() == 1
            && owed.len() == 1
            && due[0].charged == PRICE * PAID
            && due[0].paid == PRICE * PAID
            && owed[0].charged == PRICE * PAID
            && owed[0].paid == PRICE * PAID)
    })
    .await?;

    // Bad receipts: refused with a typed error, nothing billed, the caller penalised.
    let billed = provider.metering().status().due[0].charged;
    let penalties = invalid_messages(provider, caller);
    let forged = CallReceipt {
        caller: caller_account,
        provider: provider_account,
        seq: 1_000,
        price: PRICE,
        service: "greeter".into(),
    }
    .sign(
        &micro_overlay::Keypair::generate_ed25519(),
        &provider.ledger().network(),
    )
    .encode();
    let answer = raw_call(caller, provider, forged).await?;
    ensure!(
        answer.status == 400 && detail(&answer).contains("forged"),
        "{answer:?}"
    );
    let good = caller
        .metering()
        .receipt(&provider.peer_id(), "greeter", PRICE)
        .context("receipt")?;
    let first = raw_call(caller, provider, good.clone()).await?;
    ensure!(
        first.status == 200 && first.headers.get(CHARGED_HEADER).map(String::as_str) == Some("5"),
        "{first:?}"
    );
    let replayed = raw_call(caller, provider, good).await?;
    ensure!(
        replayed.status == 400 && detail(&replayed).contains("replayed"),
        "{replayed:?}"
    );
    let elsewhere = caller
        .metering()
        .receipt(&treasury.peer_id(), "greeter", PRICE)
        .context("receipt")?;
    let answer = raw_call(caller, provider, elsewhere).await?;
    ensure!(
        answer.status == 400 && detail(&answer).contains("another provider"),
        "{answer:?}"
    );
    ensure!(
        provider.metering().status().due[0].charged == billed + PRICE,
        "only the one good receipt was billed"
    );
    ensure!(
        invalid_messages(provider, caller) >= penalties + 3,
        "each bad receipt costs the caller reputation"
    );
    Ok(())
}

fn detail(response: &RpcResponse) -> String {
    response
        .error
        .as_ref()
        .map(|e| e.detail.clone())
        .unwrap_or_default()
}
