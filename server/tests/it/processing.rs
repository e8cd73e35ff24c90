//! Processing after storage: retries, dead letters, recovery after a crash, replays, races.
use crate::helpers::*;
use crate::on_both_databases;
use app::domain::events::RetryPolicy;
use app::services::processing::{process_stored, run_due, Processed};
use app::store::events::{self, NewEvent};
use serde_json::json;

on_both_databases!(
    an_unknown_contract_is_retried_then_dead_lettered,
    a_contract_created_before_the_retry_is_credited,
    an_event_stored_before_a_crash_is_processed_once_after_restart,
    concurrent_processors_finish_an_event_exactly_once,
    replay_is_safe_and_credits_nothing_twice,
    failures_and_cancellations_update_our_purchase,
    a_poisoned_event_is_dead_lettered_after_a_few_attempts_and_never_stops_the_others,
);

/// Runs one statement on either database.
async fn exec(db: &app::store::Db, sql: &str) {
    match db {
        app::store::Db::Sqlite(s) => sqlx::raw_sql(sql).execute(&s.writer).await.map(|_| ()),
        app::store::Db::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn a_poisoned_event_is_dead_lettered_after_a_few_attempts_and_never_stops_the_others(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    // A row the database refuses for one payment only (a trigger standing in for a bad row or
    // a bug): processing that event fails every time, and not because the database is down.
    let poisoned = new_payment_id();
    exec(
        t.store(),
        &match kind {
            DbKind::Sqlite => format!(
                "CREATE TRIGGER poison BEFORE INSERT ON contract_revisions WHEN NEW.payment_id = '{poisoned}' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
            ),
            DbKind::Postgres => format!(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.payment_id = '{poisoned}' THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; END $$; \
                 CREATE TRIGGER poison BEFORE INSERT ON contract_revisions FOR EACH ROW EXECUTE FUNCTION poison()"
            ),
        },
    )
    .await;
    let (bad, good) = (new_event_id(), new_event_id());
    store_only(&t, &paid(&bad, &poisoned, t.contract_id), &bad).await;
    store_only(&t, &paid(&good, &new_payment_id(), t.contract_id), &good).await;

    // One sweep: the poisoned event fails and the other is credited all the same.
    run_due(&t.app.services, true).await.expect("the sweep goes on past one bad event");
    assert_eq!(t.event_status(&good).await.status, "processed");
    assert_eq!(t.available().await, 5);
    let s = t.event_status(&bad).await;
    assert_eq!((s.status.as_str(), s.attempts), ("pending", 1));
    assert!(s.last_error.as_deref().unwrap_or_default().contains("poisoned row"), "{s:?}");
    assert!(s.next_attempt_at > chrono::Utc::now(), "retried later, not at once");

    // Made due again and again: after the bound it is a dead letter with its error, not retried
    // every lease for ever.
    let max = app::services::processing::PROCESSING_ERROR_RETRY.max_attempts;
    for _ in 1..max {
        exec(
            t.store(),
            &format!(
                "UPDATE stripe_event_processing SET next_attempt_at = '2000-01-01T00:00:00Z' WHERE event_id = '{bad}'"
            ),
        )
        .await;
        run_due(&t.app.services, false).await.unwrap();
    }
    let s = t.event_status(&bad).await;
    assert_eq!((s.status.as_str(), s.attempts), ("failed", max), "{s:?}");
    let why = s.last_error.unwrap_or_default();
    assert!(why.contains("poisoned row") && why.contains(&format!("gave up after {max} attempts")), "{why}");
    let metrics = t.metrics().await;
    assert!(metrics.contains("revision_store_events_dead_lettered_total 1"), "{metrics}");
    assert_eq!(t.available().await, 5);
}

async fn an_unknown_contract_is_retried_then_dead_lettered(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let event = new_event_id();
    let r = t.deliver(&paid(&event, &new_payment_id(), 999_999)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "retry_scheduled");
    let s = t.event_status(&event).await;
    assert_eq!((s.status.as_str(), s.attempts), ("pending", 1));
    assert_eq!(s.last_error.as_deref(), Some("unknown contract 999999"));
    assert!(s.next_attempt_at > chrono::Utc::now());

    let svc = t.services_with_retry(RetryPolicy { first_delay_secs: 1, max_delay_secs: 1, max_attempts: 3 });
    let p = process_stored(&svc, &event, chrono::Utc::now()).await.unwrap();
    assert!(matches!(p, Processed::RetryScheduled { .. }), "{p:?}");
    let p = process_stored(&svc, &event, chrono::Utc::now()).await.unwrap();
    assert!(matches!(p, Processed::Finished { status: "failed", .. }), "{p:?}");
    let s = t.event_status(&event).await;
    assert_eq!((s.status.as_str(), s.attempts), ("failed", 3));
    assert_eq!(s.last_error.as_deref(), Some("unknown contract 999999; gave up after 3 attempts"));
    // Finished events are left alone by later processing.
    assert_eq!(process_stored(&svc, &event, chrono::Utc::now()).await.unwrap(), Processed::AlreadyFinished);
}

async fn a_contract_created_before_the_retry_is_credited(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let event = new_event_id();
    let missing_id = t.contract_id + 1;
    assert_eq!(t.deliver(&paid(&event, &new_payment_id(), missing_id)).await.body["status"], "retry_scheduled");
    let c = app::store::contracts::create(
        t.store(),
        &app::store::contracts::NewContract {
            advertiser_id: t.advertiser_id,
            publication: "Late",
            ad_size: "Strip",
            base_revisions: 3,
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(c.id, missing_id);
    // The worker claims it once the retry is due.
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    let claimed = events::claim_due(t.store(), later, later + chrono::Duration::seconds(30), 10, false).await.unwrap();
    assert_eq!(claimed, vec![event.clone()]);
    let p = process_stored(&t.app.services, &event, chrono::Utc::now()).await.unwrap();
    assert!(matches!(p, Processed::Finished { status: "processed", .. }), "{p:?}");
    assert_eq!(app::store::ledger::balance(t.store(), c.id).await.unwrap().unwrap().available(), 5);
}

/// Stores an event the way intake does, then "crashes" before processing it.
async fn store_only(t: &TestApp, body: &str, event_id: &str) {
    let job = events::StoreJob {
        event: NewEvent {
            event_id: event_id.to_string(),
            event_type: "payment_intent.succeeded".into(),
            livemode: false,
            api_version: Some("2024-06-20".into()),
            stripe_created: now(),
            payload: body.as_bytes().to_vec(),
            payload_sha256: NewEvent::digest(body.as_bytes()),
            signature_header: "t=1,v1=00".into(),
            request_headers: "{}".into(),
            received_at: chrono::Utc::now(),
        },
        credit: None,
        lease_until: chrono::Utc::now() + chrono::Duration::seconds(30),
    };
    assert_eq!(events::store(t.store(), &job).await.unwrap(), events::Stored::Pending);
}

async fn an_event_stored_before_a_crash_is_processed_once_after_restart(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let event = new_event_id();
    store_only(&t, &paid(&event, &new_payment_id(), t.contract_id), &event).await;
    assert_eq!(t.event_status(&event).await.status, "pending");
    assert_eq!(t.available().await, 3);
    // A redelivery meanwhile is a duplicate and does not process it.
    assert_eq!(t.deliver(&paid(&event, &new_payment_id(), t.contract_id)).await.body["duplicate"], true);

    let t = t.restart().await;
    if kind == DbKind::Postgres {
        // Another process may hold that lease and be processing the event right now: start-up
        // leaves it alone; when the lease has run out, a worker's sweep takes it.
        let s = t.event_status(&event).await;
        assert_eq!((s.status.as_str(), s.attempts), ("pending", 0), "a fresh lease is not taken at start-up");
        t.expire_leases().await;
        run_due(&t.app.services, false).await.unwrap();
        // This sweep, or the worker's first one racing it, finishes the event.
        assert!(eventually(PATIENCE, || async { t.event_status(&event).await.status == "processed" }).await);
    }
    let s = t.event_status(&event).await;
    assert_eq!((s.status.as_str(), s.attempts), ("processed", 1));
    assert_eq!(t.available().await, 5);

    let t = t.restart().await;
    assert_eq!(t.available().await, 5, "exactly once, however many restarts");
    assert_eq!(t.credit_rows().await, 1);
}

async fn concurrent_processors_finish_an_event_exactly_once(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let event = new_event_id();
    store_only(&t, &paid(&event, &new_payment_id(), t.contract_id), &event).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (svc, event) = (t.app.services.clone(), event.clone());
            tokio::spawn(async move { process_stored(&svc, &event, chrono::Utc::now()).await.unwrap() })
        })
        .collect();
    let mut finished = 0;
    for task in tasks {
        match task.await.unwrap() {
            Processed::Finished { status: "processed", .. } => finished += 1,
            Processed::AlreadyFinished => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(finished, 1);
    let s = t.event_status(&event).await;
    assert_eq!((s.status.as_str(), s.attempts), ("processed", 1));
    assert_eq!(t.credit_rows().await, 1);
    // Workers sweeping at the same time find nothing left to do.
    assert_eq!(run_due(&t.app.services, true).await.unwrap(), 0);
}

async fn replay_is_safe_and_credits_nothing_twice(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let event = new_event_id();
    t.deliver(&paid(&event, &new_payment_id(), t.contract_id)).await;
    assert!(events::reset_for_replay(t.store(), &event, chrono::Utc::now()).await.unwrap());
    let p = process_stored(&t.app.services, &event, chrono::Utc::now()).await.unwrap();
    match p {
        Processed::Finished { status: "processed", detail } => assert!(detail.contains("already credited"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(t.available().await, 5);
    assert!(!events::reset_for_replay(t.store(), "evt_missing", chrono::Utc::now()).await.unwrap());
}

async fn failures_and_cancellations_update_our_purchase(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let payment = new_payment_id();
    let now = chrono::Utc::now();
    app::store::purchases::record(
        t.store(),
        &app::store::purchases::Purchase {
            payment_intent_id: payment.clone(),
            contract_id: t.contract_id,
            created_by: t.advertiser_id,
            amount: 15_000,
            currency: "usd".into(),
            revisions: 2,
            status: "requires_payment_method".into(),
            idempotency_key: format!("k-{payment}"),
            livemode: false,
            created_at: now,
            updated_at: now,
        },
    )
    .await
    .unwrap();
    let meta = json!({"contractId": t.contract_id.to_string()});
    t.deliver(&pi_event(&new_event_id(), "payment_intent.payment_failed", &payment, meta.clone(), 15_000, "usd")).await;
    assert_eq!(
        app::store::purchases::find(t.store(), &payment).await.unwrap().unwrap().status,
        "requires_payment_method"
    );
    t.deliver(&pi_event(&new_event_id(), "payment_intent.processing", &payment, meta.clone(), 15_000, "usd")).await;
    assert_eq!(app::store::purchases::find(t.store(), &payment).await.unwrap().unwrap().status, "processing");
    t.deliver(&paid(&new_event_id(), &payment, t.contract_id)).await;
    assert_eq!(app::store::purchases::find(t.store(), &payment).await.unwrap().unwrap().status, "succeeded");
    // Out of order: a late `canceled` must not move a succeeded purchase backwards.
    t.deliver(&pi_event(&new_event_id(), "payment_intent.canceled", &payment, meta, 15_000, "usd")).await;
    assert_eq!(app::store::purchases::find(t.store(), &payment).await.unwrap().unwrap().status, "succeeded");
    assert_eq!(t.available().await, 5);
}
