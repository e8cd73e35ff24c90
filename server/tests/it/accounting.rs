//! Revision accounting on real rows: the formula, refusals at zero, and the race at the boundary.
use crate::helpers::*;
use crate::on_both_databases;
use app::store::ledger::{request_revision, RequestError};

on_both_databases!(
    available_is_base_plus_purchased_minus_requested,
    a_request_at_zero_available_is_refused,
    concurrent_requests_at_one_available_let_exactly_one_through,
);

async fn available_is_base_plus_purchased_minus_requested(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    for _ in 0..2 {
        t.deliver(&paid(&new_event_id(), &new_payment_id(), t.contract_id)).await;
    }
    for n in 0..3 {
        request_revision(t.store(), t.contract_id, t.advertiser_id, &format!("change {n}"), None, chrono::Utc::now())
            .await
            .unwrap();
    }
    let b = app::store::ledger::balance(t.store(), t.contract_id).await.unwrap().unwrap();
    assert_eq!((b.base, b.purchased, b.requested, b.available()), (3, 4, 3, 4));
    assert!(app::store::ledger::balance(t.store(), 424_242).await.unwrap().is_none());
}

async fn a_request_at_zero_available_is_refused(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    for _ in 0..3 {
        request_revision(t.store(), t.contract_id, t.advertiser_id, "", None, chrono::Utc::now()).await.unwrap();
    }
    match request_revision(t.store(), t.contract_id, t.advertiser_id, "one more", None, chrono::Utc::now()).await {
        Err(RequestError::NoRevisionsLeft(e)) => {
            assert_eq!(e.0.available(), 0);
            assert!(e.to_string().contains("buy a revision pack"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        request_revision(t.store(), 424_242, t.advertiser_id, "", None, chrono::Utc::now()).await,
        Err(RequestError::NotFound)
    ));
    assert_eq!(t.available().await, 0);
}

async fn concurrent_requests_at_one_available_let_exactly_one_through(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    assert_eq!(race_at_one(&t).await, 1);
    assert_eq!(t.available().await, 0);
}

/// Brings the contract to 1 available, then ten requests race for it: how many got through.
async fn race_at_one(t: &TestApp) -> usize {
    while t.available().await > 1 {
        request_revision(t.store(), t.contract_id, t.advertiser_id, "", None, chrono::Utc::now()).await.unwrap();
    }
    assert_eq!(t.available().await, 1);
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (db, c, u) = (t.store().clone(), t.contract_id, t.advertiser_id);
            tokio::spawn(
                async move { request_revision(&db, c, u, &format!("racer {i}"), None, chrono::Utc::now()).await },
            )
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(RequestError::NoRevisionsLeft(_)) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    ok
}

/// The check must not depend on the database's default isolation level: under REPEATABLE READ
/// a transaction's snapshot predates the lock it waited for, so a balance read after the lock
/// could miss the request that held it.
#[tokio::test]
async fn requests_hold_when_postgres_defaults_to_repeatable_read() {
    // In a startup `options` value a space is escaped with a backslash (%5C).
    for (level, shown_as) in [("repeatable%5C%20read", "repeatable read"), ("serializable", "serializable")] {
        let t = TestApp::spawn_with(DbKind::Postgres, |s| {
            let sep = if s.database.url.contains('?') { '&' } else { '?' };
            s.database.url = format!("{}{sep}options=-c%20default_transaction_isolation%3D{level}", s.database.url);
        })
        .await;
        let shown: String = match t.store() {
            app::store::Db::Postgres(pool) => {
                sqlx::query_scalar("SHOW default_transaction_isolation").fetch_one(pool).await.unwrap()
            }
            _ => unreachable!(),
        };
        assert_eq!(shown, shown_as);
        for round in 0..3 {
            // Each round adds a pack (2 more), then races for the last one.
            let body = paid(&new_event_id(), &new_payment_id(), t.contract_id);
            assert_eq!(t.deliver(&body).await.status, 200);
            assert_eq!(race_at_one(&t).await, 1, "{shown}, round {round}");
            assert_eq!(t.available().await, 0);
        }
    }
}
