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
    for _ in 0..2 {
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
    assert_eq!(ok, 1);
    assert_eq!(t.available().await, 0);
}
