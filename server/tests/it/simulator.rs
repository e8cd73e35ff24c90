//! The Stripe simulator end to end: the app creates a PaymentIntent through async-stripe, a
//! "browser" confirms it with a test card, the simulator delivers signed webhooks, and the app
//! credits (or does not) exactly as it would with Stripe.
use crate::helpers::*;
use crate::on_both_databases;
use app::domain::deployment::DeploymentMode;
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
    the_chosen_simulator_takes_payments_and_the_database_remembers_it,
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
        eventually(PATIENCE, move || {
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
    let events = app::store::events::list(t.store(), Some("processed"), 100).await.unwrap();
    let dispute = events.iter().find(|e| e.event_type == "charge.dispute.created").expect("the dispute is processed");
    assert!(dispute.outcome.as_deref().unwrap_or_default().contains("held while the dispute is open"), "{dispute:?}");
    // The disputed pack's revisions are held: 5 available, 3 may be used.
    let b = app::store::ledger::balance(t.store(), t.contract_id).await.unwrap().unwrap();
    assert_eq!((b.available(), b.held(), b.spendable()), (5, 2, 3));
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
    assert!(eventually(PATIENCE, || async { purchase_status(&t, &p).await == "canceled" }).await);
    assert_eq!(s.confirm(&p, "4242424242424242").await.status, 400, "a canceled PaymentIntent cannot be confirmed");
}

async fn deliveries_refused_with_503_are_retried_until_stored(kind: DbKind) {
    let t = TestApp::spawn_for_outage(kind).await;
    let s = sim_for(&t).await;
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    assert!(s.delivered(1).await);
    let outage = t.db.make_unavailable().await;
    assert_eq!(s.confirm(&p, "4242424242424242").await.body["status"], "succeeded");
    let sim = s.sim.clone();
    assert!(
        eventually(PATIENCE, move || {
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
    assert!(eventually(PATIENCE, || async { t.credit_rows().await == 1 }).await);
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
    assert!(eventually(PATIENCE, || async { !seen.lock().unwrap().is_empty() }).await);
    let (header, body) = seen.lock().unwrap()[0].clone();
    let t: i64 = header.split(',').find_map(|p| p.strip_prefix("t=")).unwrap().parse().unwrap();
    assert!((now() - t).abs() < 10);
    assert_eq!(header, format!("t={t},v1={}", v1(&body, "whsec_independent", t)));
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((event["type"].as_str(), event["livemode"].as_bool()), (Some("payment_intent.created"), Some(false)));
    assert_eq!(event["api_version"], "2026-09-30.endive", "the version async-stripe pins");
}

async fn the_chosen_simulator_takes_payments_and_the_database_remembers_it(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let mut s = settings(&db.url);
    s.stripe.mode = Some(DeploymentMode::Simulator);
    s.stripe.webhook_secrets.clear();
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
        eventually(PATIENCE, || {
            let db = db_handle.clone();
            async move { app::store::ledger::balance(&db, contract_id).await.unwrap().unwrap().available() == 5 }
        })
        .await,
        "the simulator's signed webhook reached the app and credited the pack"
    );
    let page = hyper_get(&app.url()).await;
    assert!(page.contains("Simulated payments — no money moves"), "{page}");
    app.stop().await;

    // The database remembers the simulator: starting it with a live key is refused, so test
    // cards can never have credited what a live deployment then serves...
    let mut live = settings(&db.url);
    live.stripe.mode = Some(DeploymentMode::Live);
    let e = server::Application::start(&live).await.err().unwrap();
    assert!(e.contains("served with the built-in Stripe simulator") && e.contains("--switch-mode"), "{e}");
    // ...unless the move is deliberate; then it is recorded, and the database is live from now on.
    live.stripe.switch_mode = true;
    let app = server::Application::start(&live).await.unwrap();
    assert_eq!(app.mode, DeploymentMode::Live);
    app.stop().await;
    live.stripe.switch_mode = false;
    server::Application::start(&live).await.unwrap().stop().await;
    let e = server::Application::start(&s).await.err().unwrap();
    assert!(e.contains("served with Stripe in live mode"), "back to the simulator is refused too: {e}");
    let (seq, mode) =
        app::store::deployment::current(&app::store::Db::connect(&db.url, &Default::default()).await.unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!((seq, mode), (2, DeploymentMode::Live), "the history: simulator, then live");
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
    // Each event takes the faults set when it is emitted. payment_intent.created (the purchase)
    // waits 4 s plus its 900 ms hold-back; the confirm's events 2 s (charge.succeeded 300 ms
    // more). So succeeded overtakes created unless the confirm comes nearly 3 s after the
    // purchase, and nothing can arrive in the 2 s after the confirm: margins a loaded machine
    // does not eat, where the hold-back alone (900 ms) was one it could.
    let faults = |delay_ms| Faults { delay_ms, out_of_order: true, copies: 2, ..Faults::default() };
    s.sim.set_faults(faults(4_000)).unwrap();
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    s.sim.set_faults(faults(2_000)).unwrap();
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
    let at = |t: &str| arrived.iter().position(|a| a == t).unwrap_or_else(|| panic!("{t} never answered: {arrived:?}"));
    assert!(at("payment_intent.succeeded") < at("payment_intent.created"), "{arrived:?}");
}

async fn a_processing_payment_is_credited_only_once_it_succeeds(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let s = sim_for(&t).await;
    // The simulator settles a processing payment by itself this long after the confirm (nothing
    // can hold it there), so the app's in-between state must be read within it: 4 s for two
    // webhooks leaves a loaded machine room, and the check below says if it did not.
    s.sim.set_faults(Faults { processing_ms: 4_000, ..Faults::default() }).unwrap();
    let p = start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    let r = s.confirm(&p, "4242424242424242").await;
    assert_eq!(r.body["status"], "processing", "{}", r.body);
    // payment_intent.created, payment_intent.processing: stored, and nothing credited for them.
    assert!(s.delivered(2).await, "{:?}", s.sim.deliveries());
    let (status, available) = (purchase_status(&t, &p).await, t.available().await);
    // Read before the payment settled, or those reads prove nothing: Stripe still says so after.
    let at_stripe =
        get_json(&format!("{}/v1/payment_intents/{}", s.base, p.payment_intent_id), "sk_test_simulated").await;
    assert_eq!(at_stripe["status"], "processing", "it settled before the app's state was read");
    assert_eq!(status, "processing");
    assert_eq!(available, 3);
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
            eventually(PATIENCE, move || {
                let sim = sim.clone();
                async move { sim.deliveries().iter().filter(|d| d.status == Some(400)).count() >= 2 }
            })
            .await
        );
        let metrics = t.metrics().await;
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
    let dropped = s.sim.undelivered_event_ids();
    assert_eq!(dropped.len(), 3, "created, charge.succeeded, succeeded");
    // Proof the simulator had its chance to deliver them: a later event, without the fault, is
    // delivered and answered. A delivery starts the moment its event is emitted, so these,
    // emitted earlier, would have been answered by then had they not been dropped.
    s.sim.set_faults(Faults::default()).unwrap();
    start_purchase(&s.svc, t.advertiser_id, t.contract_id).await.unwrap();
    let later_answered = || s.sim.deliveries().iter().any(|d| d.status == Some(200) && !dropped.contains(&d.event_id));
    assert!(
        eventually(PATIENCE, || async { later_answered() }).await,
        "the later purchase's payment_intent.created: {:?}",
        s.sim.deliveries()
    );
    let log = s.sim.deliveries();
    assert!(log.iter().all(|d| !dropped.contains(&d.event_id)), "a dropped event was delivered: {log:?}");
    assert_eq!(s.sim.undelivered_event_ids(), dropped);
    assert_eq!(t.available().await, 3);
    // Stripe still has the event: the Events API is how it is recovered.
    let r =
        crate::helpers::get_json(&format!("{}/v1/events?type=payment_intent.succeeded", s.base), "sk_test_simulated")
            .await;
    assert_eq!(r["data"][0]["data"]["object"]["id"], p.payment_intent_id.as_str());
    // The replay: reconciliation fetches the undelivered events with our key and processes
    // them as the webhook would; the pack is credited once, and a second run credits nothing.
    let now = chrono::Utc::now();
    let opts = app::services::reconcile::Options {
        from: now - chrono::Duration::hours(1),
        to: now + chrono::Duration::minutes(1),
        dry_run: false,
        started_by: "cli",
        rate: 100,
    };
    app::services::reconcile::run(&s.svc, &opts, &|_| {}).await.unwrap();
    assert_eq!(t.available().await, 5);
    app::services::reconcile::run(&s.svc, &opts, &|_| {}).await.unwrap();
    assert_eq!(t.available().await, 5);
    assert_eq!(t.credit_rows().await, 1);
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

// ---------------------------------------------------------------------------------------------
// Refunds, disputes and reconciliation: the simulator alone, with an endpoint that takes every
// delivery (no app database needed).

const SK: &str = "sk_test_simulated";

/// A simulator on port 0 delivering to a receiver that answers `status` to everything.
async fn standalone(status: u16) -> (Simulator, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let code = axum::http::StatusCode::from_u16(status).unwrap();
    let receiver = axum::Router::new().route("/hook", axum::routing::post(move || async move { (code, "answer") }));
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let sim = Simulator::with_webhooks(WebhookConfig {
        url: hook,
        secret: WebhookSecret::parse("whsec_standalone").unwrap(),
        retry_base: Duration::from_millis(20),
        max_attempts: 2,
    });
    let (addr, _) = simulator::start("127.0.0.1:0".parse().unwrap(), sim.clone()).await.unwrap();
    (sim, format!("http://{addr}"))
}

/// A PaymentIntent of 150.00 USD confirmed with a test PaymentMethod; its id.
async fn paid_with(base: &str, payment_method: &str) -> String {
    let pi = post_form(&format!("{base}/v1/payment_intents"), SK, &[("amount", "15000"), ("currency", "usd")]).await;
    let id = pi.body["id"].as_str().unwrap().to_string();
    let r =
        post_form(&format!("{base}/v1/payment_intents/{id}/confirm"), SK, &[("payment_method", payment_method)]).await;
    assert_eq!(r.body["status"], "succeeded", "{}", r.body);
    id
}

async fn refund(base: &str, fields: &[(&str, &str)]) -> Reply {
    post_form(&format!("{base}/v1/refunds"), SK, fields).await
}

async fn get(base: &str, path_and_query: &str) -> serde_json::Value {
    get_json(&format!("{base}{path_and_query}"), SK).await
}

/// The `type`s of a list of events, in the list's order.
fn types_of(list: &serde_json::Value) -> Vec<String> {
    list["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect()
}

fn ids_of(list: &serde_json::Value) -> Vec<String> {
    list["data"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_refund_is_stripes_object_and_emits_refund_created_and_charge_refunded_with_cumulative_amounts() {
    let (sim, base) = standalone(200).await;
    let pi = paid_with(&base, "pm_card_visa").await;
    let charge_id = sim.charge_id(&pi).expect("a succeeded payment has a charge");
    assert!(charge_id.starts_with("ch_"), "{charge_id}");
    let (first, _) = post_form_keyed(
        &format!("{base}/v1/refunds"),
        SK,
        Some("refund-part"),
        &[
            ("payment_intent", &pi),
            ("amount", "5000"),
            ("reason", "requested_by_customer"),
            ("metadata[ticket]", "T-1"),
        ],
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let r = &first.body;
    assert!(r["id"].as_str().unwrap().starts_with("re_"), "{r}");
    assert_eq!(
        (r["object"].as_str(), r["amount"].as_i64(), r["charge"].as_str(), r["payment_intent"].as_str()),
        (Some("refund"), Some(5000), Some(charge_id.as_str()), Some(pi.as_str()))
    );
    assert_eq!((r["currency"].as_str(), r["status"].as_str()), (Some("usd"), Some("succeeded")));
    assert_eq!((r["reason"].as_str(), r["metadata"]["ticket"].as_str()), (Some("requested_by_customer"), Some("T-1")));
    assert!(r["balance_transaction"].is_null() && r["failure_reason"].is_null() && r["created"].is_i64(), "{r}");
    // By charge this time, for what remains.
    let rest = refund(&base, &[("charge", &charge_id)]).await;
    assert_eq!((rest.status, rest.body["amount"].as_i64()), (200, Some(10_000)), "{}", rest.body);

    let charge = get(&base, &format!("/v1/charges/{charge_id}")).await;
    assert_eq!(
        (charge["amount"].as_i64(), charge["amount_captured"].as_i64(), charge["amount_refunded"].as_i64()),
        (Some(15_000), Some(15_000), Some(15_000))
    );
    assert_eq!((charge["refunded"].as_bool(), charge["disputed"].as_bool()), (Some(true), Some(false)));
    assert_eq!((charge["payment_intent"].as_str(), charge["livemode"].as_bool()), (Some(pi.as_str()), Some(false)));
    assert!(charge.get("refunds").is_none(), "no refunds list on a charge since 2022-11-15: {charge}");
    let charges = get(&base, &format!("/v1/charges?payment_intent={pi}")).await;
    assert_eq!(ids_of(&charges), std::slice::from_ref(&charge_id));

    let events = get(&base, "/v1/events?types[]=refund.created&types[]=charge.refunded").await;
    assert_eq!(types_of(&events), ["charge.refunded", "refund.created", "charge.refunded", "refund.created"]);
    let refunded: Vec<i64> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["data"]["object"]["amount_refunded"].as_i64())
        .collect();
    assert_eq!(refunded, [15_000, 5_000], "charge.refunded carries the cumulative amount, newest first");
    let oldest = &events["data"][3];
    assert_eq!(oldest["data"]["object"]["id"], first.body["id"]);
    assert_eq!(oldest["api_version"], simulator::API_VERSION);
    assert!(oldest["request"]["id"].as_str().unwrap().starts_with("req_"), "{oldest}");
    assert_eq!(oldest["request"]["idempotency_key"], "refund-part");

    let listed = get(&base, &format!("/v1/refunds?payment_intent={pi}")).await;
    assert_eq!(ids_of(&listed), [rest.body["id"].as_str().unwrap(), first.body["id"].as_str().unwrap()]);
    assert_eq!(get(&base, &format!("/v1/refunds?charge={charge_id}&limit=1")).await["has_more"], true);
    let one = get(&base, &format!("/v1/refunds/{}", first.body["id"].as_str().unwrap())).await;
    assert_eq!(one, first.body);
}

#[tokio::test]
async fn the_5126_cards_refund_succeeds_then_fails_and_gives_the_amount_back() {
    let (sim, base) = standalone(200).await;
    // The charge is read between the refund and its failure: 3 s leaves a loaded machine room.
    sim.set_faults(Faults { refund_failure_ms: 3_000, ..Faults::default() }).unwrap();
    let pi = paid_with(&base, "pm_card_refundFail").await;
    let r = refund(&base, &[("payment_intent", &pi), ("amount", "4000")]).await;
    assert_eq!(r.body["status"], "succeeded", "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let charge_id = sim.charge_id(&pi).unwrap();
    assert_eq!(get(&base, &format!("/v1/charges/{charge_id}")).await["amount_refunded"], 4000);
    let url = format!("/v1/refunds/{id}");
    assert!(
        eventually(PATIENCE, || async { get(&base, &url).await["status"] == "failed" }).await,
        "the refund failed later"
    );
    let failed = get(&base, &url).await;
    assert_eq!(failed["failure_reason"], "expired_or_canceled_card");
    assert_eq!(get(&base, &format!("/v1/charges/{charge_id}")).await["amount_refunded"], 0, "the amount is back");
    let events = get(&base, "/v1/events?type=refund.*").await;
    assert_eq!(types_of(&events), ["refund.failed", "refund.updated", "refund.created"]);
    for e in &events["data"].as_array().unwrap()[..2] {
        assert_eq!(
            (e["data"]["object"]["id"].as_str(), e["data"]["object"]["status"].as_str()),
            (Some(id.as_str()), Some("failed"))
        );
        assert!(e["request"]["id"].is_null(), "Stripe failed it, no request of ours: {e}");
    }
    assert_eq!(events["data"][1]["data"]["previous_attributes"]["status"], "succeeded");
    // What failed can be refunded again, in full.
    let again = refund(&base, &[("payment_intent", &pi)]).await;
    assert_eq!(again.body["amount"], 15_000, "{}", again.body);
}

#[tokio::test]
async fn refunds_are_refused_with_stripes_codes_and_params() {
    let (sim, base) = standalone(200).await;
    let pi = paid_with(&base, "pm_card_visa").await;
    let code_and_param = |r: &Reply| {
        (
            r.status,
            r.body["error"]["code"].as_str().map(str::to_string),
            r.body["error"]["param"].as_str().map(str::to_string),
        )
    };
    let s = |v: &str| Some(v.to_string());
    assert_eq!(code_and_param(&refund(&base, &[]).await), (400, s("parameter_missing"), s("payment_intent")));
    assert_eq!(
        code_and_param(&refund(&base, &[("payment_intent", "pi_nope")]).await),
        (404, s("resource_missing"), s("payment_intent"))
    );
    assert_eq!(
        code_and_param(&refund(&base, &[("charge", "ch_nope")]).await),
        (404, s("resource_missing"), s("charge"))
    );
    let too_much = refund(&base, &[("payment_intent", &pi), ("amount", "15001")]).await;
    assert_eq!(code_and_param(&too_much), (400, s("amount_too_large"), s("amount")));
    assert_eq!(
        code_and_param(&refund(&base, &[("payment_intent", &pi), ("amount", "0")]).await),
        (400, s("parameter_invalid_integer"), s("amount"))
    );
    assert_eq!(
        code_and_param(&refund(&base, &[("payment_intent", &pi), ("amount", "ten")]).await),
        (400, s("parameter_invalid_integer"), s("amount"))
    );
    let bad_reason = refund(&base, &[("payment_intent", &pi), ("reason", "changed_my_mind")]).await;
    assert_eq!((bad_reason.status, bad_reason.body["error"]["param"].as_str()), (400, Some("reason")));
    assert_eq!(bad_reason.body["error"]["type"], "invalid_request_error");
    assert_eq!(refund(&base, &[("payment_intent", &pi)]).await.status, 200);
    let again = refund(&base, &[("payment_intent", &pi), ("amount", "1")]).await;
    assert_eq!(code_and_param(&again), (400, s("charge_already_refunded"), None));
    // A charge with an open dispute cannot be refunded; nor once the dispute is lost.
    let disputed = paid_with(&base, "pm_card_visa").await;
    let du = sim.open_dispute(&disputed).unwrap();
    assert_eq!(
        code_and_param(&refund(&base, &[("payment_intent", &disputed)]).await),
        (400, s("charge_disputed"), None)
    );
    sim.close_dispute(&du, simulator::DisputeOutcome::Lost).unwrap();
    assert_eq!(
        code_and_param(&refund(&base, &[("payment_intent", &disputed)]).await),
        (400, s("charge_disputed"), None)
    );
    assert_eq!(get(&base, &format!("/v1/refunds?payment_intent={disputed}")).await["data"], serde_json::json!([]));
}

#[tokio::test]
async fn disputes_open_and_close_won_or_lost_with_their_events() {
    let (sim, base) = standalone(200).await;
    // Opened over HTTP, with a reason and an amount, and won.
    let won_pi = paid_with(&base, "pm_card_visa").await;
    let opened = post_form(
        &format!("{base}/_simulator/payment_intents/{won_pi}/dispute"),
        "",
        &[("reason", "product_not_received"), ("amount", "9000")],
    )
    .await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let d = &opened.body;
    let won = d["id"].as_str().unwrap().to_string();
    assert!(won.starts_with("du_"), "{won}");
    assert_eq!(
        (d["object"].as_str(), d["status"].as_str(), d["reason"].as_str()),
        (Some("dispute"), Some("needs_response"), Some("product_not_received"))
    );
    assert_eq!((d["amount"].as_i64(), d["payment_intent"].as_str()), (Some(9000), Some(won_pi.as_str())));
    assert_eq!(d["charge"].as_str(), sim.charge_id(&won_pi).as_deref());
    assert_eq!((d["is_charge_refundable"].as_bool(), d["livemode"].as_bool()), (Some(false), Some(false)));
    assert!(d["evidence"].is_object() && d["balance_transactions"] == serde_json::json!([]), "{d}");
    let charge = get(&base, &format!("/v1/charges/{}", d["charge"].as_str().unwrap())).await;
    assert_eq!(charge["disputed"], true);
    let again = post_form(&format!("{base}/_simulator/payment_intents/{won_pi}/dispute"), "", &[]).await;
    assert_eq!((again.status, again.body["error"]["code"].as_str()), (400, Some("charge_disputed")));

    let evidence = post_form(
        &format!("{base}/_simulator/disputes/{won}/submit_evidence"),
        "",
        &[("evidence[uncategorized_text]", "Delivered on the 3rd, signed for.")],
    )
    .await;
    assert_eq!(evidence.body["status"], "under_review", "{}", evidence.body);
    assert_eq!(evidence.body["evidence"]["uncategorized_text"], "Delivered on the 3rd, signed for.");
    let closed = post_form(&format!("{base}/_simulator/disputes/{won}/close"), "", &[("outcome", "won")]).await;
    assert_eq!(
        (closed.body["status"].as_str(), closed.body["is_charge_refundable"].as_bool()),
        (Some("won"), Some(true))
    );
    let twice = post_form(&format!("{base}/_simulator/disputes/{won}/close"), "", &[("outcome", "lost")]).await;
    assert_eq!(twice.status, 400, "a closed dispute stays closed");
    let bad = post_form(&format!("{base}/_simulator/disputes/{won}/close"), "", &[("outcome", "maybe")]).await;
    assert_eq!(bad.body["error"]["param"], "outcome");
    let events = get(&base, "/v1/events?type=charge.dispute.*").await;
    assert_eq!(
        types_of(&events),
        [
            "charge.dispute.funds_reinstated",
            "charge.dispute.closed",
            "charge.dispute.updated",
            "charge.dispute.funds_withdrawn",
            "charge.dispute.created"
        ]
    );
    assert_eq!(events["data"][2]["data"]["previous_attributes"]["status"], "needs_response");
    assert!(events["data"].as_array().unwrap().iter().all(|e| e["data"]["object"]["id"] == won.as_str()));

    // Opened and lost through the Rust API.
    let lost_pi = paid_with(&base, "pm_card_visa").await;
    let lost = sim.open_dispute(&lost_pi).unwrap();
    sim.close_dispute(&lost, simulator::DisputeOutcome::Lost).unwrap();
    assert!(sim.close_dispute(&lost, simulator::DisputeOutcome::Won).is_err());
    assert!(sim.open_dispute("pi_nope").unwrap_err().contains("resource_missing"));
    let dispute = get(&base, &format!("/v1/disputes/{lost}")).await;
    assert_eq!((dispute["status"].as_str(), dispute["amount"].as_i64()), (Some("lost"), Some(15_000)));
    let lost_events = get(&base, "/v1/events?type=charge.dispute.*&limit=3").await;
    assert_eq!(
        types_of(&lost_events),
        ["charge.dispute.closed", "charge.dispute.funds_withdrawn", "charge.dispute.created"]
    );

    // The 0259 card's dispute opens by itself, a moment after the payment.
    let card_pi = paid_with(&base, "pm_card_createDispute").await;
    let by_card = format!("/v1/disputes?payment_intent={card_pi}");
    assert!(
        eventually(PATIENCE, || async { get(&base, &by_card).await["data"][0]["status"] == "needs_response" }).await
    );
    assert!(get(&base, &by_card).await["data"][0]["id"].as_str().unwrap().starts_with("du_"));
    assert_eq!(ids_of(&get(&base, &format!("/v1/disputes?payment_intent={won_pi}")).await), std::slice::from_ref(&won));
    assert_eq!(ids_of(&get(&base, "/v1/disputes?limit=2").await).len(), 2);
    let all = get(&base, "/v1/disputes").await;
    assert_eq!(ids_of(&all)[1..], [lost.clone(), won.clone()]);

    // An early fraud warning on a charge.
    let charge_id = sim.charge_id(&lost_pi).unwrap();
    let efw = post_form(&format!("{base}/_simulator/charges/{charge_id}/early_fraud_warning"), "", &[]).await;
    assert!(efw.body["id"].as_str().unwrap().starts_with("issfr_"), "{}", efw.body);
    assert_eq!(
        (efw.body["object"].as_str(), efw.body["fraud_type"].as_str()),
        (Some("radar.early_fraud_warning"), Some("made_with_stolen_card"))
    );
    assert_eq!(efw.body["payment_intent"], lost_pi.as_str());
    let warned = get(&base, "/v1/events?type=radar.early_fraud_warning.created").await;
    assert_eq!(warned["data"][0]["data"]["object"]["id"], efw.body["id"]);
}

#[tokio::test]
async fn events_are_listed_newest_first_with_stripes_filters_and_both_cursors() {
    let (_sim, base) = standalone(200).await;
    let from = now();
    let pi = paid_with(&base, "pm_card_visa").await;
    refund(&base, &[("payment_intent", &pi), ("amount", "100")]).await;
    let all = get(&base, "/v1/events").await;
    let expected =
        ["charge.refunded", "refund.created", "payment_intent.succeeded", "charge.succeeded", "payment_intent.created"];
    assert_eq!(types_of(&all), expected);
    // Exact type, a wildcard, and up to 20 exact types in either array encoding.
    assert_eq!(types_of(&get(&base, "/v1/events?type=charge.succeeded").await), ["charge.succeeded"]);
    assert_eq!(types_of(&get(&base, "/v1/events?type=charge.*").await), ["charge.refunded", "charge.succeeded"]);
    assert_eq!(types_of(&get(&base, "/v1/events?type=*.created").await), ["refund.created", "payment_intent.created"]);
    let two = "/v1/events?types[0]=payment_intent.created&types[1]=refund.created";
    assert_eq!(types_of(&get(&base, two).await), ["refund.created", "payment_intent.created"]);
    let many: String = (0..21).map(|n| format!("&types[]=t{n}")).collect();
    assert_eq!(get(&base, &format!("/v1/events?limit=3{many}")).await["error"]["param"], "types");
    let both = get(&base, "/v1/events?type=charge.*&types[]=refund.created").await;
    assert_eq!(both["error"]["code"], "parameters_exclusive");
    // Created: a range holding everything, one before it, the exact second.
    let to = now();
    assert_eq!(types_of(&get(&base, &format!("/v1/events?created[gte]={from}&created[lte]={to}")).await).len(), 5);
    assert!(types_of(&get(&base, &format!("/v1/events?created[lt]={from}")).await).is_empty());
    let created = all["data"][0]["created"].as_i64().unwrap();
    assert!(types_of(&get(&base, &format!("/v1/events?created={created}")).await).contains(&"charge.refunded".into()));
    assert_eq!(get(&base, "/v1/events?created[gt]=soon").await["error"]["code"], "parameter_invalid_integer");
    // Pages forward with starting_after, and back with ending_before.
    let ids = ids_of(&all);
    let page1 = get(&base, "/v1/events?limit=2").await;
    assert_eq!((ids_of(&page1), page1["has_more"].as_bool()), (ids[..2].to_vec(), Some(true)));
    let page2 = get(&base, &format!("/v1/events?limit=2&starting_after={}", ids[1])).await;
    assert_eq!((ids_of(&page2), page2["has_more"].as_bool()), (ids[2..4].to_vec(), Some(true)));
    let page3 = get(&base, &format!("/v1/events?limit=2&starting_after={}", ids[3])).await;
    assert_eq!((ids_of(&page3), page3["has_more"].as_bool()), (ids[4..].to_vec(), Some(false)));
    let back = get(&base, &format!("/v1/events?limit=2&ending_before={}", ids[4])).await;
    assert_eq!((ids_of(&back), back["has_more"].as_bool()), (ids[2..4].to_vec(), Some(true)));
    let first = get(&base, &format!("/v1/events?limit=5&ending_before={}", ids[1])).await;
    assert_eq!((ids_of(&first), first["has_more"].as_bool()), (ids[..1].to_vec(), Some(false)));
    let cursors = get(&base, &format!("/v1/events?starting_after={}&ending_before={}", ids[1], ids[3])).await;
    assert_eq!(cursors["error"]["code"], "parameters_exclusive");
    assert_eq!(get(&base, "/v1/events?starting_after=evt_nope").await["error"]["code"], "resource_missing");
    for limit in ["0", "101"] {
        assert_eq!(get(&base, &format!("/v1/events?limit={limit}")).await["error"]["param"], "limit");
    }
}

#[tokio::test]
async fn delivery_success_tells_delivered_events_from_dropped_or_failed_ones() {
    let (sim, base) = standalone(200).await;
    let delivered =
        post_form(&format!("{base}/v1/payment_intents"), SK, &[("amount", "5000"), ("currency", "usd")]).await;
    let sim2 = sim.clone();
    assert!(
        eventually(PATIENCE, || {
            let sim = sim2.clone();
            async move { sim.undelivered_event_ids().is_empty() }
        })
        .await
    );
    sim.set_faults(Faults { drop: true, ..Faults::default() }).unwrap();
    let dropped =
        post_form(&format!("{base}/v1/payment_intents"), SK, &[("amount", "6000"), ("currency", "usd")]).await;
    let object_ids = |list: &serde_json::Value| -> Vec<String> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["data"]["object"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let ok = get(&base, "/v1/events?delivery_success=true").await;
    assert_eq!(object_ids(&ok), [delivered.body["id"].as_str().unwrap()]);
    assert_eq!(ok["data"][0]["pending_webhooks"], 0);
    let pending = get(&base, "/v1/events?delivery_success=false").await;
    assert_eq!(object_ids(&pending), [dropped.body["id"].as_str().unwrap()]);
    assert_eq!(pending["data"][0]["pending_webhooks"], 1);
    assert_eq!(sim.undelivered_event_ids(), ids_of(&pending));
    assert_eq!(get(&base, "/v1/events?delivery_success=maybe").await["error"]["param"], "delivery_success");

    // An endpoint that refuses every attempt: the event stays pending once they run out.
    let (failing, failing_base) = standalone(500).await;
    post_form(&format!("{failing_base}/v1/payment_intents"), SK, &[("amount", "5000"), ("currency", "usd")]).await;
    let f = failing.clone();
    assert!(
        eventually(PATIENCE, || {
            let f = f.clone();
            async move { f.deliveries().iter().filter(|d| d.status == Some(500)).count() >= 2 }
        })
        .await
    );
    let still = get(&failing_base, "/v1/events?delivery_success=false").await;
    assert_eq!(
        (types_of(&still), still["data"][0]["pending_webhooks"].as_i64()),
        (vec!["payment_intent.created".to_string()], Some(1))
    );
    assert_eq!(failing.undelivered_event_ids().len(), 1);
}

#[tokio::test]
async fn payment_intents_list_by_created_range_with_their_latest_charge_expanded() {
    let (sim, base) = standalone(200).await;
    let from = now();
    let paid = paid_with(&base, "pm_card_visa").await;
    let open = post_form(&format!("{base}/v1/payment_intents"), SK, &[("amount", "5000"), ("currency", "usd")]).await;
    let to = now();
    let range = format!("created[gte]={from}&created[lte]={to}");
    for expand in ["expand[]=data.latest_charge", "expand[0]=data.latest_charge"] {
        let list = get(&base, &format!("/v1/payment_intents?{range}&{expand}")).await;
        assert_eq!(ids_of(&list), [open.body["id"].as_str().unwrap(), paid.as_str()]);
        assert!(list["data"][0]["latest_charge"].is_null());
        let charge = &list["data"][1]["latest_charge"];
        assert_eq!(
            (charge["object"].as_str(), charge["id"].as_str()),
            (Some("charge"), sim.charge_id(&paid).as_deref())
        );
        assert_eq!(charge["amount"], 15_000);
    }
    let plain = get(&base, &format!("/v1/payment_intents?{range}")).await;
    assert_eq!(plain["data"][1]["latest_charge"].as_str(), sim.charge_id(&paid).as_deref(), "an id unless expanded");
    let one = get(&base, &format!("/v1/payment_intents/{paid}?expand[]=latest_charge")).await;
    assert_eq!(one["latest_charge"]["payment_intent"], paid.as_str());
    let unknown = get(&base, &format!("/v1/payment_intents/{paid}?expand[]=customer")).await;
    assert_eq!(unknown["error"]["param"], "expand");
    assert!(ids_of(&get(&base, &format!("/v1/payment_intents?created[gt]={to}")).await).is_empty());
}

/// async-stripe, the client the app uses, reads what the simulator writes.
#[tokio::test]
async fn async_stripe_creates_and_lists_refunds_and_reads_charges_disputes_and_events() {
    use stripe_core::charge::RetrieveCharge;
    use stripe_core::dispute::ListDispute;
    use stripe_core::event::ListEvent;
    use stripe_core::refund::{CreateRefund, CreateRefundReason, ListRefund};
    let (sim, base) = standalone(200).await;
    let client = ::stripe::ClientBuilder::new(SK).url(format!("{base}/")).build().unwrap();
    let pi = paid_with(&base, "pm_card_visa").await;
    let created = CreateRefund::new()
        .payment_intent(pi.clone())
        .amount(2500)
        .reason(CreateRefundReason::Duplicate)
        .metadata([("ticket".to_string(), "T-2".to_string())])
        .send(&client)
        .await
        .unwrap();
    assert_eq!((created.amount, created.status.as_deref()), (2500, Some("succeeded")));
    let refunds = ListRefund::new().payment_intent(pi.clone()).limit(10).send(&client).await.unwrap();
    assert_eq!(refunds.data.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [created.id.as_str()]);
    let charge = RetrieveCharge::new(sim.charge_id(&pi).unwrap().as_str()).send(&client).await.unwrap();
    assert_eq!((charge.amount_refunded, charge.refunded, charge.disputed), (2500, false, false));
    let du = sim.open_dispute(&pi).unwrap();
    let disputes = ListDispute::new().payment_intent(pi.clone()).send(&client).await.unwrap();
    assert_eq!(disputes.data[0].id.as_str(), du);
    assert_eq!(disputes.data[0].amount, 12_500, "what was not refunded");
    let events = ListEvent::new()
        .types(vec!["refund.created".to_string(), "charge.dispute.created".to_string()])
        .send(&client)
        .await
        .unwrap();
    let kinds: Vec<&str> = events.data.iter().map(|e| e.type_.as_str()).collect();
    assert_eq!(kinds, ["charge.dispute.created", "refund.created"]);
    assert_eq!(events.data[1].api_version.as_deref(), Some(simulator::API_VERSION));
}
