//! The Stripe simulator end to end: the app creates a PaymentIntent through async-stripe, a
//! "browser" confirms it with a test card, the simulator delivers signed webhooks, and the app
//! credits (or does not) exactly as it would with Stripe.
use crate::helpers::*;
use crate::on_both_databases;
use app::services::purchase::{start_purchase, PurchaseStarted};
use app::services::Services;
use app::stripe::simulator::{self, Faults, Simulator, WebhookConfig};
use app::stripe::{StripeApi, WebhookSecret};
use std::time::Duration;

on_both_databases!(
    a_4242_payment_is_delivered_signed_and_credited_once,
    declined_cards_fail_with_stripes_codes_and_credit_nothing,
    three_d_secure_can_fail_then_succeed,
    a_disputed_payment_is_credited_and_the_dispute_kept,
    a_canceled_payment_updates_the_purchase,
    deliveries_refused_with_503_are_retried_until_stored,
    without_stripe_keys_the_app_takes_payments_through_its_own_simulator,
    refunds_may_be_partial_and_never_exceed_the_charge,
    each_event_delivered_five_times_concurrently_credits_once,
    delayed_and_reordered_deliveries_still_credit_once,
    mis_signed_or_stale_deliveries_are_refused_and_credit_nothing,
    a_dropped_delivery_leaves_the_payment_uncredited_until_replayed,
    a_processing_payment_is_credited_only_once_it_succeeds,
);

struct Sim {
    base: String,
    sim: Simulator,
    svc: Services,
}

/// A simulator that delivers to `t`'s webhook, and services that call it.
async fn sim_for(t: &TestApp) -> Sim {
    let sim = Simulator::with_webhooks(WebhookConfig {
        url: format!("{}/webhooks/stripe", t.app.url()),
        secret: WebhookSecret::parse(SECRET).unwrap(),
        retry_base: Duration::from_millis(100),
        max_attempts: 8,
    });
    let (addr, _) = simulator::start("127.0.0.1:0".parse().unwrap(), sim.clone()).await.unwrap();
    let base = format!("http://{addr}");
    let mut svc = t.app.services.clone();
    svc.stripe = Some(StripeApi::new("sk_test_simulated", &base).unwrap());
    Sim { base, sim, svc }
}

impl Sim {
    /// What Stripe.js does in the browser: confirm with the publishable key and client secret.
    async fn confirm(&self, p: &PurchaseStarted, card: &str) -> Reply {
        post_form(
            &format!("{}/v1/payment_intents/{}/confirm", self.base, p.payment_intent_id),
            "pk_test_simulated",
            &[
                ("client_secret", &p.client_secret),
                ("payment_method_data[type]", "card"),
                ("payment_method_data[card][number]", card),
                ("return_url", "http://localhost/contracts/1"),
            ],
        )
        .await
    }

    async fn authenticate(&self, p: &PurchaseStarted, outcome: &str) -> Reply {
        post_form(
            &format!("{}/_simulator/payment_intents/{}/authenticate", self.base, p.payment_intent_id),
            "",
            &[("outcome", outcome)],
        )
        .await
    }

    async fn delivered(&self, event_type_count: usize) -> bool {
        let sim = self.sim.clone();
        eventually(Duration::from_secs(10), move || {
            let sim = sim.clone();
            async move { sim.deliveries().iter().filter(|d| d.status == Some(200)).count() >= event_type_count }
        })
        .await
    }
}

async fn purchase_status(t: &TestApp, p: &PurchaseStarted) -> String {
    app::store::purchases::find(t.store(), &p.payment_intent_id).await.unwrap().unwrap().status
}

async fn stored_types(t: &TestApp) -> Vec<String> {
    let mut types: Vec<String> =
        app::store::events::list(t.store(), None, 100).await.unwrap().into_iter().map(|e| e.event_type).collect();
    types.sort();
    types
}

async fn a_4242_payment_is_delivered_signed_and_credited_once(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let s = sim_for(&t).await;
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    // Typed with a full-width space (U+3000) among the digits: still the 4242 card.
    let r = s.confirm(&p, "4242 4242 4242 42\u{3000}42").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "succeeded");
    // payment_intent.created, charge.succeeded, payment_intent.succeeded
    assert!(s.delivered(3).await, "{:?}", s.sim.deliveries());
    assert_eq!(t.available().await, 5);
    assert_eq!(purchase_status(&t, &p).await, "succeeded");
    assert_eq!(stored_types(&t).await, ["charge.succeeded", "payment_intent.created", "payment_intent.succeeded"]);
    // Confirming again is refused as Stripe does, and nothing is credited twice.
    let again = s.confirm(&p, "4242424242424242").await;
    assert_eq!((again.status, again.body["error"]["code"].as_str()), (400, Some("payment_intent_unexpected_state")));
    assert_eq!(t.credit_rows().await, 1);
}

async fn declined_cards_fail_with_stripes_codes_and_credit_nothing(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let s = sim_for(&t).await;
    for (card, decline_code) in [("4000000000000002", "generic_decline"), ("4000000000009995", "insufficient_funds")] {
        let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
        let r = s.confirm(&p, card).await;
        assert_eq!(r.status, 402, "{}", r.body);
        assert_eq!(r.body["error"]["type"], "card_error");
        assert_eq!(r.body["error"]["code"], "card_declined");
        assert_eq!(r.body["error"]["decline_code"], decline_code);
        assert_eq!(r.body["error"]["payment_intent"]["status"], "requires_payment_method");
    }
    let bad = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    assert_eq!(s.confirm(&bad, "4242424242424241").await.body["error"]["code"], "incorrect_number");
    // 3 created + 2 payment_failed
    assert!(s.delivered(5).await, "{:?}", s.sim.deliveries());
    assert_eq!(t.available().await, 3);
    let types = stored_types(&t).await;
    assert_eq!(types.iter().filter(|t| *t == "payment_intent.payment_failed").count(), 2);
}

async fn three_d_secure_can_fail_then_succeed(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let s = sim_for(&t).await;
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    let r = s.confirm(&p, "4000002500003155").await;
    assert_eq!(r.body["status"], "requires_action", "{}", r.body);
    assert_eq!(r.body["next_action"]["type"], "use_stripe_sdk");
    let failed = s.authenticate(&p, "fail").await;
    assert_eq!(failed.body["status"], "requires_payment_method");
    assert_eq!(failed.body["last_payment_error"]["code"], "payment_intent_authentication_failure");
    // The customer tries again and completes the challenge.
    assert_eq!(s.confirm(&p, "4000002500003155").await.body["status"], "requires_action");
    let done = s.authenticate(&p, "complete").await;
    assert_eq!(done.body["status"], "succeeded", "{}", done.body);
    // created, requires_action ×2, payment_failed, charge.succeeded, succeeded
    assert!(s.delivered(6).await, "{:?}", s.sim.deliveries());
    assert_eq!(t.available().await, 5);
    assert_eq!(purchase_status(&t, &p).await, "succeeded");
}

async fn a_disputed_payment_is_credited_and_the_dispute_kept(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let s = sim_for(&t).await;
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    assert_eq!(s.confirm(&p, "4000000000000259").await.body["status"], "succeeded");
    // created, charge.succeeded, succeeded, then charge.dispute.created and .funds_withdrawn
    assert!(s.delivered(5).await, "{:?}", s.sim.deliveries());
    assert_eq!(t.available().await, 5);
    // The dispute came later, on its own: after the payment's success was delivered.
    let log = s.sim.deliveries();
    let first = |t: &str| log.iter().find(|d| d.event_type == t).map(|d| d.at).unwrap();
    assert!(
        first("charge.dispute.created") - first("payment_intent.succeeded") >= chrono::Duration::milliseconds(500),
        "{log:?}"
    );
    let disputes = app::store::events::list(t.store(), Some("ignored"), 100).await.unwrap();
    assert!(disputes.iter().any(|e| e.event_type == "charge.dispute.created"), "the dispute is kept as evidence");
}

async fn a_canceled_payment_updates_the_purchase(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let s = sim_for(&t).await;
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    let r =
        post_form(&format!("{}/v1/payment_intents/{}/cancel", s.base, p.payment_intent_id), "sk_test_simulated", &[])
            .await;
    assert_eq!(r.body["status"], "canceled");
    assert!(s.delivered(2).await);
    assert!(eventually(Duration::from_secs(5), || async { purchase_status(&t, &p).await == "canceled" }).await);
    assert_eq!(s.confirm(&p, "4242424242424242").await.status, 400, "a canceled PaymentIntent cannot be confirmed");
}

async fn deliveries_refused_with_503_are_retried_until_stored(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let s = sim_for(&t).await;
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    assert!(s.delivered(1).await);
    let outage = t.db.make_unavailable().await;
    assert_eq!(s.confirm(&p, "4242424242424242").await.body["status"], "succeeded");
    let sim = s.sim.clone();
    assert!(
        eventually(Duration::from_secs(10), move || {
            let sim = sim.clone();
            // Refused twice for one event, so it is delivered on its third attempt at least.
            async move { sim.deliveries().iter().any(|d| d.status == Some(503) && d.attempt >= 2) }
        })
        .await,
        "the app refused while its database was down: {:?}",
        s.sim.deliveries()
    );
    outage.restore().await;
    assert!(s.delivered(3).await, "{:?}", s.sim.deliveries());
    assert!(eventually(Duration::from_secs(5), || async { t.credit_rows().await == 1 }).await);
    assert_eq!(t.available().await, 5);
    // The log keeps what the app answered, and the waits between attempts of one event at
    // least double (retry_base 100 ms: 100, 200, 400 ms, ...).
    let log = s.sim.deliveries();
    let refused = log.iter().find(|d| d.status == Some(503)).unwrap();
    assert!(refused.answer.as_deref().is_some_and(|a| !a.is_empty()), "{refused:?}");
    let retried = log.iter().find(|d| d.attempt >= 3).expect("an event delivered on its third attempt");
    let attempts: Vec<_> = log.iter().filter(|d| d.event_id == retried.event_id).collect();
    for pair in attempts.windows(2) {
        let gap = (pair[1].at - pair[0].at).num_milliseconds();
        let scheduled = 100 * 2i64.pow(pair[0].attempt - 1);
        assert!(
            gap >= scheduled,
            "attempt {} came {gap} ms after the one before, under {scheduled} ms",
            pair[1].attempt
        );
    }
}

/// The simulator's signature, checked by the independent HMAC in helpers.
#[tokio::test]
async fn simulator_webhooks_verify_under_an_independent_implementation() {
    use axum::extract::State;
    use axum::http::HeaderMap;
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;
    let seen: Seen = Default::default();
    let receiver = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(|State(seen): State<Seen>, headers: HeaderMap, body: String| async move {
                let sig = headers.get("stripe-signature").unwrap().to_str().unwrap().to_string();
                seen.lock().unwrap().push((sig, body));
                "ok"
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let sim = Simulator::with_webhooks(WebhookConfig {
        url: hook,
        secret: WebhookSecret::parse("whsec_independent").unwrap(),
        retry_base: Duration::from_millis(50),
        max_attempts: 3,
    });
    let (addr, _) = simulator::start("127.0.0.1:0".parse().unwrap(), sim).await.unwrap();
    let api = StripeApi::new("sk_test_x", &format!("http://{addr}")).unwrap();
    api.create_pack_payment(1, &app::domain::PackTerms::standard(), "k").await.unwrap();
    assert!(eventually(Duration::from_secs(5), || async { !seen.lock().unwrap().is_empty() }).await);
    let (header, body) = seen.lock().unwrap()[0].clone();
    let t: i64 = header.split(',').find_map(|p| p.strip_prefix("t=")).unwrap().parse().unwrap();
    assert!((now() - t).abs() < 10);
    assert_eq!(header, format!("t={t},v1={}", v1(&body, "whsec_independent", t)));
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((event["type"].as_str(), event["livemode"].as_bool()), (Some("payment_intent.created"), Some(false)));
    assert_eq!(event["api_version"], "2026-09-30.endive", "the version async-stripe pins");
}

async fn without_stripe_keys_the_app_takes_payments_through_its_own_simulator(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let mut s = settings(&db.url);
    s.simulator = true;
    s.webhook_secrets.clear();
    let app = server::Application::start(&s).await.unwrap();
    assert!(app.services.simulated);
    let (user_id, contract_id) = advertiser_with_contract(&app.services.db).await;
    let p = start_purchase(&app.services, user_id, contract_id).await.unwrap();
    // The browser reaches the simulator on the app's own origin.
    let r = post_form(
        &format!("{}{}/v1/payment_intents/{}/confirm", app.url(), simulator::MOUNT, p.payment_intent_id),
        simulator::PUBLISHABLE_KEY,
        &[("client_secret", &p.client_secret), ("payment_method_data[card][number]", "4242424242424242")],
    )
    .await;
    assert_eq!(r.body["status"], "succeeded", "{}", r.body);
    let db_handle = app.services.db.clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            let db = db_handle.clone();
            async move { app::store::ledger::balance(&db, contract_id).await.unwrap().unwrap().available() == 5 }
        })
        .await,
        "the simulator's signed webhook reached the app and credited the pack"
    );
    let page = hyper_get(&app.url()).await;
    assert!(page.contains("Simulated payments — no money moves"), "{page}");
    app.stop().await;

    let mut live = settings(&db.url);
    live.simulator = true;
    live.mode = app::domain::events::StripeMode::Live;
    assert!(server::Application::start(&live).await.err().unwrap().contains("test mode only"));
}

async fn hyper_get(url: &str) -> String {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let res = client.request(hyper::Request::get(url).body(Default::default()).unwrap()).await.unwrap();
    String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned()
}

async fn refunds_may_be_partial_and_never_exceed_the_charge(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let s = sim_for(&t).await;
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    let refund = |fields: Vec<(&'static str, String)>| {
        let url = format!("{}/v1/refunds", s.base);
        async move {
            let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(&url, "sk_test_simulated", &f).await
        }
    };
    let early = refund(vec![("payment_intent", p.payment_intent_id.clone())]).await;
    assert_eq!((early.status, early.body["error"]["code"].as_str()), (400, Some("charge_not_refundable")));
    assert_eq!(s.confirm(&p, "4242424242424242").await.body["status"], "succeeded");
    let part = refund(vec![("payment_intent", p.payment_intent_id.clone()), ("amount", "5000".into())]).await;
    assert_eq!(
        (part.status, part.body["amount"].as_i64(), part.body["status"].as_str()),
        (200, Some(5000), Some("succeeded"))
    );
    let too_much = refund(vec![("payment_intent", p.payment_intent_id.clone()), ("amount", "10001".into())]).await;
    assert_eq!(too_much.body["error"]["code"], "amount_too_large");
    let rest = refund(vec![("payment_intent", p.payment_intent_id.clone())]).await;
    assert_eq!(rest.body["amount"], 10_000, "the default is what remains");
    let again = refund(vec![("payment_intent", p.payment_intent_id.clone())]).await;
    assert_eq!(again.body["error"]["code"], "charge_already_refunded");
    // created, charge.succeeded, succeeded, (refund.created, charge.refunded) ×2: all delivered
    // and kept.
    assert!(s.delivered(7).await, "{:?}", s.sim.deliveries());
    let refunds = app::store::events::list(t.store(), None, 100).await.unwrap();
    assert_eq!(refunds.iter().filter(|e| e.event_type == "charge.refunded").count(), 2);
}

async fn each_event_delivered_five_times_concurrently_credits_once(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let s = sim_for(&t).await;
    s.sim.set_faults(Faults { copies: 5, ..Faults::default() }).unwrap();
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    assert_eq!(s.confirm(&p, "4242424242424242").await.body["status"], "succeeded");
    assert!(s.delivered(15).await, "3 events × 5 copies: {:?}", s.sim.deliveries());
    assert_eq!(t.credit_rows().await, 1);
    assert_eq!(t.available().await, 5);
}

async fn delayed_and_reordered_deliveries_still_credit_once(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let s = sim_for(&t).await;
    s.sim.set_faults(Faults { delay_ms: 1000, out_of_order: true, copies: 2, ..Faults::default() }).unwrap();
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    assert_eq!(s.confirm(&p, "4242424242424242").await.body["status"], "succeeded");
    assert_eq!(t.available().await, 3, "nothing arrives before the delay");
    assert!(s.delivered(6).await, "{:?}", s.sim.deliveries());
    assert_eq!(t.available().await, 5);
    assert_eq!(purchase_status(&t, &p).await, "succeeded", "a late created event does not rewind it");
    // They did arrive out of order: each step's first answered delivery, in arrival order.
    let mut arrived: Vec<String> = Vec::new();
    for d in s.sim.deliveries() {
        if d.status == Some(200) && !arrived.contains(&d.event_type) {
            arrived.push(d.event_type);
        }
    }
    // (created is held back 900 ms and was emitted just before the confirm, succeeded not at
    // all: a margin of most of a second, so the check does not hang on how fast the app answers.)
    let at = |t: &str| arrived.iter().position(|a| a == t).unwrap_or_else(|| panic!("{t} never answered: {arrived:?}"));
    assert!(at("payment_intent.succeeded") < at("payment_intent.created"), "{arrived:?}");
}

async fn a_processing_payment_is_credited_only_once_it_succeeds(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let s = sim_for(&t).await;
    s.sim.set_faults(Faults { processing_ms: 1500, ..Faults::default() }).unwrap();
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    let r = s.confirm(&p, "4242424242424242").await;
    assert_eq!(r.body["status"], "processing", "{}", r.body);
    // payment_intent.created, payment_intent.processing: stored, and nothing credited for them.
    assert!(s.delivered(2).await, "{:?}", s.sim.deliveries());
    assert_eq!(purchase_status(&t, &p).await, "processing");
    assert_eq!(t.available().await, 3);
    // Then it settles: charge.succeeded and payment_intent.succeeded, and the credit.
    assert!(s.delivered(4).await, "{:?}", s.sim.deliveries());
    assert_eq!(t.available().await, 5);
    assert_eq!(purchase_status(&t, &p).await, "succeeded");
    assert_eq!(
        stored_types(&t).await,
        ["charge.succeeded", "payment_intent.created", "payment_intent.processing", "payment_intent.succeeded"]
    );
}

async fn mis_signed_or_stale_deliveries_are_refused_and_credit_nothing(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    for (faults, reason) in [
        (Faults { wrong_secret: true, ..Faults::default() }, "no_match"),
        (Faults { stale_timestamp: true, ..Faults::default() }, "outside_tolerance"),
    ] {
        let s = sim_for(&t).await;
        s.sim.set_faults(faults).unwrap();
        start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
        let sim = s.sim.clone();
        assert!(
            eventually(Duration::from_secs(5), move || {
                let sim = sim.clone();
                async move { sim.deliveries().iter().filter(|d| d.status == Some(400)).count() >= 2 }
            })
            .await
        );
        let (_, metrics) = t.get("/metrics").await;
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(&format!("revision_store_webhook_rejected_total{{reason=\"{reason}\"}}"))
                    && !l.ends_with(" 0")),
            "{metrics}"
        );
    }
    assert!(app::store::events::list(t.store(), None, 10).await.unwrap().is_empty(), "nothing unauthentic is stored");
}

async fn a_dropped_delivery_leaves_the_payment_uncredited_until_replayed(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let s = sim_for(&t).await;
    s.sim.set_faults(Faults { drop: true, ..Faults::default() }).unwrap();
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    assert_eq!(s.confirm(&p, "4242424242424242").await.body["status"], "succeeded");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.sim.deliveries().is_empty());
    assert_eq!(t.available().await, 3);
    // Stripe still has the event: the Events API is how it is recovered.
    let r =
        crate::helpers::get_json(&format!("{}/v1/events?type=payment_intent.succeeded", s.base), "sk_test_simulated")
            .await;
    assert_eq!(r["data"][0]["data"]["object"]["id"], p.payment_intent_id.as_str());
}

#[tokio::test]
async fn api_faults_answer_500_and_429_with_stripes_error_shape() {
    let sim = Simulator::default();
    let (addr, _) = simulator::start("127.0.0.1:0".parse().unwrap(), sim.clone()).await.unwrap();
    let api = StripeApi::new("sk_test_x", &format!("http://{addr}")).unwrap();
    let terms = app::domain::PackTerms::standard();
    sim.set_faults(Faults { api_error_status: Some(500), api_error_count: 1, ..Faults::default() }).unwrap();
    assert!(matches!(
        api.create_pack_payment(1, &terms, "a").await,
        Err(app::stripe::StripeApiError::Api { status: 500, .. })
    ));
    sim.set_faults(Faults { api_error_status: Some(429), api_error_count: 1, ..Faults::default() }).unwrap();
    match api.create_pack_payment(1, &terms, "b").await {
        Err(app::stripe::StripeApiError::Api { status: 429, code, .. }) => {
            assert_eq!(code.as_deref(), Some("rate_limit"))
        }
        other => panic!("{other:?}"),
    }
    assert!(api.create_pack_payment(1, &terms, "c").await.is_ok(), "the fault is spent");
    // The control endpoint validates what it is given.
    let bad = post_json(&format!("http://{addr}/_simulator/faults"), r#"{"api_error_status": 404}"#).await;
    assert_eq!(bad.status, 400);
    let ok = post_json(&format!("http://{addr}/_simulator/faults"), r#"{"copies": 3}"#).await;
    assert_eq!((ok.status, ok.body["copies"].as_u64()), (200, Some(3)));
    assert_eq!(sim.faults().copies, 3);
}
