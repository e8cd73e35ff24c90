//! The webhook trust layer over HTTP: signatures, limits, storage before 2xx, duplicates.
use crate::helpers::*;
use crate::on_both_databases;
use serde_json::json;
use std::time::Duration;

on_both_databases!(
    a_valid_signature_credits_the_contract_once,
    any_v1_may_match_and_an_older_secret_still_verifies,
    unauthentic_deliveries_are_rejected_and_credit_nothing,
    stale_and_future_timestamps_are_rejected,
    a_body_over_the_limit_is_413_and_never_stored,
    twenty_concurrent_deliveries_of_one_event_credit_once,
    concurrent_deliveries_of_many_payments_each_credit_once,
    two_events_for_one_payment_credit_once,
    wrong_amount_or_currency_is_kept_as_a_failed_event,
    rate_card_payments_are_recorded_for_the_external_system,
    an_unroutable_event_is_a_dead_letter_with_its_reason,
    a_test_event_in_a_live_deployment_never_credits,
    a_database_outage_answers_503_and_the_retry_succeeds,
    an_outage_answers_every_delivery_within_the_database_timeout,
    the_raw_body_and_headers_are_kept_byte_for_byte,
    ready_only_while_the_database_takes_writes,
    a_flood_of_readiness_probes_checks_the_database_at_most_once_a_second,
    readiness_answers_promptly_when_the_database_does_not_answer,
);

async fn a_valid_signature_credits_the_contract_once(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    assert_eq!(t.available().await, 3);
    let event = new_event_id();
    let r = t.deliver(&paid(&event, &new_payment_id(), t.contract_id)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "processed");
    assert_eq!(t.available().await, 5);
    let s = t.event_status(&event).await;
    assert_eq!(s.status, "processed");
    assert!(s.outcome.unwrap().contains("credited 2 revisions"));
    let metrics = t.metrics().await;
    assert!(metrics.contains("# TYPE revision_store_ledger_credits_total counter"), "{metrics}");
    assert!(metrics.contains("revision_store_ledger_credits_total{path=\"webhook\"} 1"), "{metrics}");
    assert!(metrics.contains("revision_store_request_duration_seconds_count{route=\"webhook\"} 1"), "{metrics}");
    assert!(metrics.contains("revision_store_processing_lag_seconds 0"), "nothing waits: {metrics}");
    // Not for the public: without the token, or with another, there is nothing there.
    assert_eq!(get_with(&t, "/metrics", None).await.0, 404);
    assert_eq!(get_with(&t, "/metrics", Some("Bearer not-the-metrics-token")).await.0, 404);
}

async fn any_v1_may_match_and_an_older_secret_still_verifies(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    // Two v1 values, only the second valid (as during a secret roll), plus a v0 to ignore.
    let body = paid(&new_event_id(), &new_payment_id(), t.contract_id);
    let ts = now();
    let header = format!(
        "t={ts},v1={},v1={},v0={}",
        v1(&body, "whsec_someone_else", ts),
        v1(&body, SECRET, ts),
        "ab".repeat(32)
    );
    let r = t.post("/webhooks/stripe", &[("stripe-signature", header)], body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The previous secret is still configured during rotation.
    let body = paid(&new_event_id(), &new_payment_id(), t.contract_id);
    let r = t.post("/webhooks/stripe", &[("stripe-signature", sign(&body, OLD_SECRET, now()))], body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(t.available().await, 7);
}

async fn unauthentic_deliveries_are_rejected_and_credit_nothing(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let event = new_event_id();
    let body = paid(&event, &new_payment_id(), t.contract_id);
    let tampered = body.replace("15000", "15001");
    // (request headers, body, the reason the answer must give)
    type Case<'a> = (Vec<(&'a str, String)>, String, &'a str);
    let cases: Vec<Case> = vec![
        (vec![("stripe-signature", sign(&body, SECRET, now()))], tampered, "no signature matched"),
        (vec![("stripe-signature", sign(&body, "whsec_wrong", now()))], body.clone(), "no signature matched"),
        (vec![], body.clone(), "missing Stripe-Signature header"),
        (vec![("stripe-signature", "garbage".into())], body.clone(), "malformed"),
        (vec![("stripe-signature", format!("t={},v1=nothex", now()))], body.clone(), "malformed"),
        (vec![("stripe-signature", format!("v1={}", v1(&body, SECRET, now())))], body.clone(), "malformed"),
    ];
    for (headers, payload, expected) in cases {
        let r = t.post("/webhooks/stripe", &headers, payload).await;
        assert_eq!(r.status, 400, "{headers:?}: {}", r.body);
        assert!(r.body["error"].as_str().unwrap().contains(expected), "{headers:?}: {}", r.body);
    }
    assert_eq!(t.available().await, 3);
    assert!(app::store::events::summary(t.store(), &event).await.unwrap().is_none(), "nothing unauthentic is stored");
    let metrics = t.metrics().await;
    assert!(metrics.contains("revision_store_webhook_rejected_total{reason=\"no_match\"} 2"), "{metrics}");
    assert!(metrics.contains("revision_store_webhook_rejected_total{reason=\"missing_header\"} 1"), "{metrics}");
    assert!(metrics.contains("revision_store_webhook_rejected_total{reason=\"malformed_header\"} 3"), "{metrics}");
}

async fn stale_and_future_timestamps_are_rejected(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    for skew in [-301, 301, -3600, 86_400] {
        let body = paid(&new_event_id(), &new_payment_id(), t.contract_id);
        let r = t.post("/webhooks/stripe", &[("stripe-signature", sign(&body, SECRET, now() + skew))], body).await;
        assert_eq!(r.status, 400, "skew {skew}");
        assert_eq!(r.body["error"], "timestamp outside tolerance");
    }
    // Just inside the tolerance is fine.
    let body = paid(&new_event_id(), &new_payment_id(), t.contract_id);
    let r = t.post("/webhooks/stripe", &[("stripe-signature", sign(&body, SECRET, now() - 290))], body).await;
    assert_eq!(r.status, 200);
    assert_eq!(t.available().await, 5);
}

async fn a_body_over_the_limit_is_413_and_never_stored(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let event = new_event_id();
    let padding = "x".repeat(server::routes::webhook::MAX_BODY);
    let body = pi_event(
        &event,
        "payment_intent.succeeded",
        &new_payment_id(),
        json!({"contractId": t.contract_id.to_string(), "pad": padding}),
        15_000,
        "usd",
    );
    let r = t.post("/webhooks/stripe", &[("stripe-signature", sign(&body, SECRET, now()))], body).await;
    assert_eq!(r.status, 413);
    assert!(app::store::events::summary(t.store(), &event).await.unwrap().is_none());
    assert_eq!(t.available().await, 3);
}

async fn twenty_concurrent_deliveries_of_one_event_credit_once(kind: DbKind) {
    let t = std::sync::Arc::new(TestApp::spawn(kind).await);
    let event = new_event_id();
    let body = paid(&event, &new_payment_id(), t.contract_id);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (t, body) = (t.clone(), body.clone());
            // Every retry carries a fresh signature, as Stripe's do.
            tokio::spawn(async move { t.deliver(&body).await })
        })
        .collect();
    let mut duplicates = 0;
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["duplicate"] == true {
            duplicates += 1;
        }
    }
    assert_eq!(duplicates, 19);
    assert_eq!(t.credit_rows().await, 1);
    assert_eq!(t.available().await, 5);
    let listed = app::store::events::list(t.store(), None, 100).await.unwrap();
    assert_eq!(listed.iter().filter(|e| e.event_id == event).count(), 1);
}

/// Concurrent deliveries share commits (group commit); each still gets its own answer.
async fn concurrent_deliveries_of_many_payments_each_credit_once(kind: DbKind) {
    let t = std::sync::Arc::new(TestApp::spawn(kind).await);
    let bodies: Vec<String> = (0..40).map(|_| paid(&new_event_id(), &new_payment_id(), t.contract_id)).collect();
    // Each event twice, interleaved, all at once.
    let tasks: Vec<_> = bodies
        .iter()
        .chain(bodies.iter())
        .cloned()
        .map(|body| {
            let t = t.clone();
            tokio::spawn(async move { t.deliver(&body).await })
        })
        .collect();
    let (mut credited, mut duplicates) = (0, 0);
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["duplicate"] == true {
            duplicates += 1;
        } else {
            assert_eq!(r.body["status"], "processed");
            credited += 1;
        }
    }
    assert_eq!((credited, duplicates), (40, 40));
    assert_eq!(t.credit_rows().await, 40);
    assert_eq!(t.available().await, 3 + 80);
}

async fn two_events_for_one_payment_credit_once(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let payment = new_payment_id();
    let (first, second) = (new_event_id(), new_event_id());
    assert_eq!(t.deliver(&paid(&first, &payment, t.contract_id)).await.status, 200);
    assert_eq!(t.deliver(&paid(&second, &payment, t.contract_id)).await.status, 200);
    assert_eq!(t.credit_rows().await, 1);
    assert_eq!(t.available().await, 5);
    assert_eq!(t.event_status(&second).await.status, "processed");
    assert!(t.event_status(&second).await.outcome.unwrap().contains("already credited"));
}

async fn wrong_amount_or_currency_is_kept_as_a_failed_event(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let meta = json!({"contractId": t.contract_id.to_string()});
    for (amount, currency, reason) in [(14_999, "usd", "pack price"), (15_000, "eur", "currency")] {
        let event = new_event_id();
        let body = pi_event(&event, "payment_intent.succeeded", &new_payment_id(), meta.clone(), amount, currency);
        let r = t.deliver(&body).await;
        assert_eq!(r.status, 200, "stored and acknowledged: {}", r.body);
        let s = t.event_status(&event).await;
        assert_eq!(s.status, "failed");
        assert!(s.last_error.unwrap().contains(reason));
    }
    assert_eq!(t.available().await, 3);
}

async fn rate_card_payments_are_recorded_for_the_external_system(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let (event, payment) = (new_event_id(), new_payment_id());
    let meta = json!({"advertiserId": "adv-77", "sizeId": "full-page", "publicationId": "pub-4"});
    let r = t.deliver(&pi_event(&event, "payment_intent.succeeded", &payment, meta, 42_000, "usd")).await;
    assert_eq!(r.status, 200);
    let x = app::store::external_payments::find(t.store(), &payment).await.unwrap().expect("recorded");
    assert_eq!(
        (x.advertiser_ref.as_str(), x.size_ref.as_str(), x.publication_ref.as_str(), x.amount),
        ("adv-77", "full-page", "pub-4", 42_000)
    );
    assert_eq!(x.stripe_event_id, event);
    assert_eq!(t.event_status(&event).await.status, "processed");
    assert_eq!(t.available().await, 3, "a Rate Card payment credits no contract of ours");
}

async fn an_unroutable_event_is_a_dead_letter_with_its_reason(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let event = new_event_id();
    let r = t.deliver(&pi_event(&event, "payment_intent.succeeded", &new_payment_id(), json!({}), 15_000, "usd")).await;
    assert_eq!(r.status, 200, "kept and acknowledged, not bounced back to Stripe");
    let s = t.event_status(&event).await;
    assert_eq!(s.status, "failed");
    assert!(s.last_error.unwrap().contains("neither contractId nor the Rate Card keys"));
    let failed = app::store::events::list(t.store(), Some("failed"), 10).await.unwrap();
    assert!(failed.iter().any(|e| e.event_id == event));
}

async fn a_test_event_in_a_live_deployment_never_credits(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let mut settings = settings(&db.url);
    settings.stripe.mode = Some(app::domain::deployment::DeploymentMode::Live);
    let app = server::Application::start(&settings).await.unwrap();
    let (_, contract_id) = advertiser_with_contract(&app.services.db).await;
    let event = new_event_id();
    let body = paid(&event, &new_payment_id(), contract_id);
    let intake = app::services::intake::receive(
        &app.services,
        app::services::intake::Delivery {
            body: body.as_bytes(),
            signature: Some(&sign(&body, SECRET, now())),
            headers_json: "{}".into(),
        },
        chrono::Utc::now(),
    )
    .await;
    assert!(matches!(intake, app::services::intake::Intake::Stored { .. }), "{intake:?}");
    let s = app::store::events::summary(&app.services.db, &event).await.unwrap().unwrap();
    assert_eq!(s.status, "ignored");
    assert!(s.last_error.unwrap().contains("never credited"));
    assert_eq!(app::store::ledger::balance(&app.services.db, contract_id).await.unwrap().unwrap().available(), 3);
    app.stop().await;
}

/// While the database is down every delivery is answered 503 within the database timeout, also
/// those queued behind a batch that is itself waiting out that timeout (they used to wait for
/// it and then for their own: about twice as long, past some senders' patience).
async fn an_outage_answers_every_delivery_within_the_database_timeout(kind: DbKind) {
    // Long enough that "about the timeout" and "about twice the timeout" lie seconds apart, so
    // the bound below leaves a loaded machine two seconds of room and still catches the double
    // wait (where a batch waits out the whole timeout, 7.5 s at least for the last one sent).
    let timeout = Duration::from_secs(4);
    let t = TestApp::spawn_with(kind, |s| s.database.timeout = timeout).await;
    let outage = t.db.make_unavailable().await;
    let started = std::time::Instant::now();
    let answers = futures_util::future::join_all((0..6).map(|i| {
        let body = paid(&new_event_id(), &new_payment_id(), t.contract_id);
        let t = &t;
        async move {
            // Staggered over the first half second, so some arrive while the first batch is
            // already waiting out its 4 s.
            tokio::time::sleep(Duration::from_millis(100 * i)).await;
            let sent = std::time::Instant::now();
            let r = t.deliver(&body).await;
            (r.status, sent.elapsed())
        }
    }))
    .await;
    outage.restore().await;
    for (status, took) in &answers {
        assert_eq!(*status, 503, "{answers:?}");
        assert!(*took < timeout + Duration::from_secs(2), "answered after {took:?}: {answers:?}");
    }
    assert!(started.elapsed() < timeout * 3);
}

async fn a_database_outage_answers_503_and_the_retry_succeeds(kind: DbKind) {
    let t = TestApp::spawn_for_outage(kind).await;
    let event = new_event_id();
    let body = paid(&event, &new_payment_id(), t.contract_id);
    let outage = t.db.make_unavailable().await;
    let r = t.deliver(&body).await;
    assert_eq!(r.status, 503, "never 2xx for an event we do not hold: {}", r.body);
    outage.restore().await;
    // Stripe retries with a fresh signature.
    let r = t.deliver(&body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(t.event_status(&event).await.status, "processed");
    assert_eq!(t.available().await, 5);
}

async fn the_raw_body_and_headers_are_kept_byte_for_byte(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let event = new_event_id();
    // Odd spacing and key order: re-serialising would change these bytes.
    let body = paid(&event, &new_payment_id(), t.contract_id).replacen('{', "{  ", 1) + "\n";
    let signature = sign(&body, SECRET, now());
    let r = t
        .post(
            "/webhooks/stripe",
            &[
                ("stripe-signature", signature.clone()),
                ("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)".into()),
            ],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ev = app::store::events::evidence(t.store(), &event).await.unwrap().unwrap();
    assert_eq!(ev.payload, body.as_bytes());
    assert_eq!(ev.signature_header, signature);
    assert!(ev.request_headers.contains("Stripe/1.0"));
    // The evidence cannot be edited or deleted, even by a direct statement.
    let tampering = match t.store() {
        app::store::Db::Sqlite(s) => {
            sqlx::query("UPDATE stripe_events SET payload = x'00'").execute(&s.writer).await.err()
        }
        app::store::Db::Postgres(p) => sqlx::query("DELETE FROM stripe_events").execute(p).await.err(),
    };
    assert!(tampering.expect("refused").to_string().contains("append-only"));
}

/// `/healthz` says the process is alive; `/readyz` says whether it can work: during a database
/// outage a load balancer must see 503 there (every webhook would get 503), then 200 again.
async fn ready_only_while_the_database_takes_writes(kind: DbKind) {
    let t = TestApp::spawn_for_outage(kind).await;
    assert_eq!(t.get("/readyz").await, (200, "ready".to_string()));
    let outage = t.db.make_unavailable().await;
    // The last answer stands for up to a second (`server::routes::health`), then the outage shows.
    let last = std::sync::Mutex::new((0, String::new()));
    eventually(PATIENCE, || async {
        let answer = t.get("/readyz").await;
        let status = answer.0;
        *last.lock().unwrap() = answer;
        status == 503
    })
    .await;
    let (status, why) = last.into_inner().unwrap();
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("database unavailable"), "{why}");
    // Our words, never the driver's (which can name hosts, users, files).
    assert!(why == "database unavailable" || why == "database unavailable: no answer within 1 s", "{why}");
    assert_eq!(t.get("/healthz").await.0, 200, "alive all the same");
    outage.restore().await;
    assert!(eventually(PATIENCE, || async { t.get("/readyz").await.0 == 200 }).await, "ready again after the outage");
}

/// A figure at /metrics, if it is there.
fn figure(metrics: &str, name: &str) -> Option<u64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A load balancer (or anyone) asking `/readyz` as fast as it can: every probe is answered,
/// and the database, whose check takes SQLite's write lock, is asked at most once a second.
async fn a_flood_of_readiness_probes_checks_the_database_at_most_once_a_second(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let started = std::time::Instant::now();
    let answers = futures_util::future::join_all((0..200).map(|_| t.get("/readyz"))).await;
    let seconds = started.elapsed().as_secs();
    for a in &answers {
        assert_eq!(a, &(200, "ready".to_string()));
    }
    let metrics = t.metrics().await;
    assert_eq!(figure(&metrics, "revision_store_readiness_probes_total"), Some(200), "{metrics}");
    let checks = figure(&metrics, "revision_store_readiness_checks_total").expect("checks are counted");
    assert!(checks >= 1 && checks <= seconds + 1, "{checks} checks in {seconds} whole seconds");
}

/// What keeps `/readyz`'s check from answering: SQLite's write lock held by another process,
/// or on PostgreSQL a lock on the table the check reads (a query that never returns, as with a
/// server that stopped mid-connection).
async fn hold_what_readiness_needs(t: &TestApp) -> Box<dyn std::any::Any + Send> {
    match t.db.kind {
        DbKind::Sqlite => Box::new(t.db.make_unavailable().await),
        DbKind::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&t.db.url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
            sqlx::query("LOCK TABLE _sqlx_migrations IN ACCESS EXCLUSIVE MODE").execute(&mut conn).await.unwrap();
            Box::new(conn)
        }
    }
}

/// A database that does not answer at all: `/readyz` still answers, 503 within about a second
/// (a load balancer's probe would otherwise time out instead of reading 503), whatever the
/// database timeout. Here that timeout is longer than the test waits for any answer.
async fn readiness_answers_promptly_when_the_database_does_not_answer(kind: DbKind) {
    let t = TestApp::spawn_with(kind, |s| s.database.timeout = Duration::from_secs(120)).await;
    let held = hold_what_readiness_needs(&t).await;
    let (status, why) = t.get("/readyz").await;
    assert_eq!((status, why.as_str()), (503, "database unavailable: no answer within 1 s"));
    assert_eq!(t.get("/healthz").await.0, 200, "alive all the same");
    match held.downcast::<Outage>() {
        Ok(outage) => outage.restore().await,
        Err(conn) => {
            use sqlx::Connection;
            let conn = conn.downcast::<sqlx::PgConnection>().unwrap();
            conn.close().await.unwrap();
        }
    }
    assert!(eventually(PATIENCE, || async { t.get("/readyz").await.0 == 200 }).await, "ready again");
}
