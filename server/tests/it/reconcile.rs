//! Reconciliation against the simulator, on both databases: what a lost webhook left out is
//! found and healed once, whatever races it.
use crate::helpers::*;
use crate::money_back::buy;
use crate::on_both_databases;
use app::services::purchase::start_purchase;
use app::services::reconcile::{self, Category, Options, ReconcileError};
use app::stripe::simulator::DisputeOutcome;
use app::stripe::simulator::Faults;
use serde_json::Value;
use std::time::Duration;

on_both_databases!(
    fifty_dropped_payments_are_credited_by_one_run_and_a_second_heals_nothing,
    a_run_racing_the_late_webhooks_still_credits_each_payment_once,
    a_credited_payment_stripe_does_not_know_is_an_alert_and_stays_credited,
    a_refund_whose_events_were_lost_is_booked_by_reconciliation,
    a_dry_run_heals_nothing,
    only_one_run_at_a_time,
    the_schedule_reconciles_unattended,
    a_purchase_left_open_long_ago_is_refreshed_from_stripe,
);

fn window() -> Options {
    let now = chrono::Utc::now();
    Options {
        from: now - chrono::Duration::hours(1),
        to: now + chrono::Duration::minutes(1),
        dry_run: false,
        started_by: "cli",
        rate: 100,
    }
}

/// Pays `n` packs while every webhook is dropped; returns their PaymentIntent ids.
async fn pay_with_webhooks_dropped(t: &TestApp, n: usize) -> Vec<String> {
    t.sim().set_faults(Faults { drop: true, ..Faults::default() }).unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let p = start_purchase(&t.app.services, t.advertiser_id, t.contract_id).await.unwrap();
        let r = post_form(
            &format!("{}/stripe-sim/v1/payment_intents/{}/confirm", t.app.url(), p.payment_intent_id),
            app::stripe::simulator::PUBLISHABLE_KEY,
            &[
                ("client_secret", &p.client_secret),
                ("payment_method_data[type]", "card"),
                ("payment_method_data[card][number]", "4242424242424242"),
            ],
        )
        .await;
        assert_eq!(r.body["status"], "succeeded");
        ids.push(p.payment_intent_id);
    }
    t.sim().set_faults(Faults::default()).unwrap();
    ids
}

async fn credits(t: &TestApp) -> Vec<app::store::ledger::LedgerCredit> {
    app::store::ledger::credits(t.store(), t.contract_id).await.unwrap()
}

async fn fifty_dropped_payments_are_credited_by_one_run_and_a_second_heals_nothing(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let ids = pay_with_webhooks_dropped(&t, 50).await;
    assert!(credits(&t).await.is_empty(), "nothing reached the webhook");
    let report = reconcile::run(&t.app.services, &window(), &|_| {}).await.unwrap();
    let c = credits(&t).await;
    assert_eq!(c.len(), 50);
    let mut credited: Vec<&str> = c.iter().map(|c| c.payment_id.as_str()).collect();
    credited.sort();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(credited, expected, "exactly the dropped payments");
    assert_eq!(t.available().await, 3 + 100);
    // Healed through the undelivered events themselves (Stripe still had them): each payment's
    // created, charge.succeeded and succeeded events, fetched, stored as api_fetch, processed.
    assert_eq!(report.count(Category::UndeliveredEvent, "healed"), 150, "{report:?}");
    assert_eq!(report.count(Category::PaidNotCredited, "healed"), 0, "{report:?}");
    assert!(report.api_calls >= 151, "{report:?}");
    let second = reconcile::run(&t.app.services, &window(), &|_| {}).await.unwrap();
    assert_eq!(second.total(), 0, "a second run heals nothing twice: {second:?}");
    assert_eq!(credits(&t).await.len(), 50);
    let runs = app::store::reconciliation::runs(t.store(), 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.status == "finished"));
}

async fn a_run_racing_the_late_webhooks_still_credits_each_payment_once(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let ids = pay_with_webhooks_dropped(&t, 20).await;
    // The dropped events, as Stripe holds them, delivered late while reconciliation runs.
    let key = app::stripe::simulator::SECRET_KEY;
    let listed = get_json(&format!("{}/stripe-sim/v1/events?limit=100&delivery_success=false", t.app.url()), key).await;
    let events: Vec<String> = listed["data"].as_array().unwrap().iter().map(Value::to_string).collect();
    assert_eq!(events.len(), 60, "created, charge.succeeded, succeeded for each");
    let late = async {
        futures_util::future::join_all(events.iter().map(|e| t.deliver(e))).await;
    };
    let opts = window();
    let run = reconcile::run(&t.app.services, &opts, &|_| {});
    let (_, report) = tokio::join!(late, run);
    report.unwrap();
    let c = credits(&t).await;
    assert_eq!(c.len(), 20, "one credit per payment");
    for id in &ids {
        assert_eq!(c.iter().filter(|c| &c.payment_id == id).count(), 1);
    }
    // And a payment whose events Stripe no longer has (or never made): credited from the
    // PaymentIntent itself, recorded as reconciliation's.
    let lost = pay_with_webhooks_dropped(&t, 1).await;
    t.sim().forget_events_of(&lost[0]);
    let report = reconcile::run(&t.app.services, &window(), &|_| {}).await.unwrap();
    assert_eq!(report.count(Category::PaidNotCredited, "healed"), 1, "{report:?}");
    let credit = app::store::ledger::credit_for_payment(t.store(), &lost[0]).await.unwrap().unwrap();
    assert_eq!(credit.credited_by.as_deref(), Some("reconciliation"));
    assert_eq!(credits(&t).await.len(), 21);
}

async fn a_credited_payment_stripe_does_not_know_is_an_alert_and_stays_credited(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let ghost = new_payment_id();
    assert_eq!(t.deliver(&paid(&new_event_id(), &ghost, t.contract_id)).await.status, 200);
    assert_eq!(t.available().await, 5);
    let report = reconcile::run(&t.app.services, &window(), &|_| {}).await.unwrap();
    assert_eq!(report.count(Category::CreditedNotPaid, "open"), 1, "{report:?}");
    assert_eq!(t.available().await, 5, "never removed automatically");
    let findings = app::store::reconciliation::findings(t.store(), report.run_id).await.unwrap();
    assert_eq!(findings[0].payment_id.as_deref(), Some(ghost.as_str()));
    assert!(findings[0].evidence.contains("resource_missing"));
    assert_eq!(app::store::reconciliation::open_findings(t.store()).await.unwrap(), 1, "the admin banner's count");
    let metrics = t.metrics().await;
    assert!(
        metrics
            .contains("revision_store_reconciliation_findings_total{category=\"credited_not_paid\",state=\"open\"} 1"),
        "{metrics}"
    );
}

async fn a_refund_whose_events_were_lost_is_booked_by_reconciliation(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let pi = buy(&t, "4242424242424242").await;
    let dispute_pi = buy(&t, "4242424242424242").await;
    t.sim().set_faults(Faults { drop: true, ..Faults::default() }).unwrap();
    let stripe = t.app.services.stripe.as_ref().unwrap();
    stripe.create_refund(&pi, 7_500, None, &[], "k-lost-refund").await.unwrap();
    let dispute = t.sim().open_dispute(&dispute_pi).unwrap();
    t.sim().close_dispute(&dispute, DisputeOutcome::Lost).unwrap();
    t.sim().set_faults(Faults::default()).unwrap();
    // Stripe no longer offers the events: only the objects tell.
    t.sim().forget_events_of(&pi);
    t.sim().forget_events_of(&dispute_pi);
    assert_eq!(t.balance().await.revoked, 0);
    let report = reconcile::run(&t.app.services, &window(), &|_| {}).await.unwrap();
    assert_eq!(report.count(Category::RefundNotBooked, "healed"), 1, "{report:?}");
    assert_eq!(report.count(Category::DisputeNotBooked, "healed"), 1, "{report:?}");
    let b = t.balance().await;
    assert_eq!((b.revoked, b.available()), (3, 4), "one revision refunded, a pack lost in dispute");
    let again = reconcile::run(&t.app.services, &window(), &|_| {}).await.unwrap();
    assert_eq!(again.total(), 0, "{again:?}");
    assert_eq!(t.balance().await.revoked, 3);
}

async fn a_dry_run_heals_nothing(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    pay_with_webhooks_dropped(&t, 2).await;
    let report = reconcile::run(&t.app.services, &Options { dry_run: true, ..window() }, &|_| {}).await.unwrap();
    assert_eq!(report.count(Category::UndeliveredEvent, "would_heal"), 6, "{report:?}");
    assert!(credits(&t).await.is_empty());
    let report = reconcile::run(&t.app.services, &window(), &|_| {}).await.unwrap();
    assert_eq!(report.count(Category::UndeliveredEvent, "healed"), 6);
    assert_eq!(credits(&t).await.len(), 2);
}

async fn only_one_run_at_a_time(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    pay_with_webhooks_dropped(&t, 3).await;
    // A slow pace (2 calls/s, a dozen calls) keeps the first run going while the others try to
    // start, from this process and from a second one on the same database.
    let slow = Options { rate: 2, ..window() };
    let other = TestApp::spawn_with(kind, |s| {
        s.database.url = t.db.url.clone();
        s.stripe.mode = Some(t.app.mode); // the database refuses a process in another mode
    })
    .await;
    let mut other_svc = other.app.services.clone();
    other_svc.stripe = t.app.services.stripe.clone();
    let started = || async {
        app::store::reconciliation::runs(t.store(), 1).await.unwrap().first().is_some_and(|r| r.status == "running")
    };
    let (a, b, c) = tokio::join!(
        reconcile::run(&t.app.services, &slow, &|_| {}),
        async {
            assert!(eventually(PATIENCE, started).await);
            reconcile::run(&t.app.services, &window(), &|_| {}).await
        },
        async {
            assert!(eventually(PATIENCE, started).await);
            reconcile::run(&other_svc, &window(), &|_| {}).await
        },
    );
    a.unwrap();
    assert!(matches!(b, Err(ReconcileError::AlreadyRunning)), "{b:?}");
    assert!(matches!(c, Err(ReconcileError::AlreadyRunning)), "{c:?}");
    assert_eq!(credits(&t).await.len(), 3);
}

async fn the_schedule_reconciles_unattended(kind: DbKind) {
    // The schedule on, no run before: the worker starts one by itself and records it as the
    // schedule's; the next look (every 12 sweeps) finds it done within the interval.
    let t = TestApp::spawn_with(kind, |s| {
        s.stripe.mode = Some(app::domain::deployment::DeploymentMode::Simulator);
        s.reconcile.interval = Some(Duration::from_secs(3600));
        s.reconcile.worker_interval = Duration::from_millis(20);
    })
    .await;
    let runs = || async { app::store::reconciliation::runs(t.store(), 5).await.unwrap() };
    let ran = eventually(PATIENCE, || async {
        runs().await.iter().any(|r| r.started_by == "schedule" && r.status == "finished")
    })
    .await;
    assert!(ran, "{:?}", runs().await);
    // Two more looks of the worker after it finished (24 sweeps, counted, not timed: a loaded
    // machine may take far longer than 24 × 20 ms for them): still one run.
    worker_sweeps(&t, 2 * 12).await;
    assert_eq!(runs().await.len(), 1, "one run per interval: {:?}", runs().await);
}

/// Returns once the worker has begun `n` more sweeps. Each sweep indexes for search the events
/// stored before it, so an event stored and then seen indexed marks one sweep; the next event,
/// stored after that, can only be indexed by a later one.
async fn worker_sweeps(t: &TestApp, n: usize) {
    for sweep in 1..=n {
        let event = pi_event(
            &new_event_id(),
            "payment_intent.created",
            &new_payment_id(),
            serde_json::json!({}),
            15_000,
            "usd",
        );
        assert_eq!(t.deliver(&event).await.status, 200);
        let indexed =
            eventually(PATIENCE, || async { app::store::event_search::unindexed(t.store()).await.unwrap() == 0 }).await;
        assert!(indexed, "the worker's sweep {sweep} of {n} never indexed the event stored before it");
    }
}

async fn a_purchase_left_open_long_ago_is_refreshed_from_stripe(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let p = start_purchase(&t.app.services, t.advertiser_id, t.contract_id).await.unwrap();
    // Canceled at Stripe while every event was lost; our purchase still says it waits for a card.
    t.sim().set_faults(Faults { drop: true, ..Faults::default() }).unwrap();
    let url = format!("{}/stripe-sim/v1/payment_intents/{}/cancel", t.app.url(), p.payment_intent_id);
    assert_eq!(post_form(&url, app::stripe::simulator::SECRET_KEY, &[]).await.body["status"], "canceled");
    t.sim().set_faults(Faults::default()).unwrap();
    t.sim().forget_events_of(&p.payment_intent_id);
    let status =
        || async { app::store::purchases::find(t.store(), &p.payment_intent_id).await.unwrap().unwrap().status };
    assert_eq!(status().await, "requires_payment_method");
    // Fresh, it is left alone (the buyer may still be typing their card).
    let report = reconcile::run(&t.app.services, &window(), &|_| {}).await.unwrap();
    assert_eq!(report.count(Category::StalePurchase, "healed"), 0, "{report:?}");
    // Two hours on, it is asked about and refreshed.
    let two_hours_ago = chrono::Utc::now() - chrono::Duration::hours(2);
    let sql = "UPDATE purchases SET created_at = $1 WHERE payment_intent_id = $2";
    match t.store() {
        app::store::Db::Sqlite(s) => {
            sqlx::query(sql).bind(two_hours_ago).bind(&p.payment_intent_id).execute(&s.writer).await.unwrap();
        }
        app::store::Db::Postgres(pg) => {
            sqlx::query(sql).bind(two_hours_ago).bind(&p.payment_intent_id).execute(pg).await.unwrap();
        }
    }
    let report = reconcile::run(&t.app.services, &window(), &|_| {}).await.unwrap();
    assert_eq!(report.count(Category::StalePurchase, "healed"), 1, "{report:?}");
    assert_eq!(status().await, "canceled");
    assert_eq!(t.available().await, 3, "nothing credited");
}
