//! Many deliveries of one event at the same moment (Stripe after a timeout; one delivery to each
//! of two instances behind a load balancer): intake's group-commit batches must not deadlock.
use crate::helpers::*;
use crate::on_both_databases;
use app::store::events::{store_batch, NewEvent, StoreJob, Stored};

on_both_databases!(batches_holding_the_same_events_in_opposite_orders_store_each_once_without_deadlock);

fn job(id: &str) -> StoreJob {
    let body = format!(
        r#"{{"id":"{id}","object":"event","type":"customer.created","livemode":false,"created":1,"data":{{"object":{{}}}}}}"#
    );
    let now = chrono::Utc::now();
    StoreJob {
        event: NewEvent {
            event_id: id.to_string(),
            event_type: "customer.created".into(),
            livemode: false,
            api_version: None,
            stripe_created: 1,
            payload_sha256: NewEvent::digest(body.as_bytes()),
            payload: body.into_bytes(),
            signature_header: "t=1,v1=00".into(),
            request_headers: "{}".into(),
            received_at: now,
        },
        credit: None,
        lease_until: now,
    }
}

async fn batches_holding_the_same_events_in_opposite_orders_store_each_once_without_deadlock(kind: DbKind) {
    let test_db = TestDb::new(kind).await;
    let db = app::store::Db::connect(&test_db.url, &Default::default()).await.unwrap();
    db.migrate().await.unwrap();
    // Before intake stored a batch in id order, PostgreSQL failed one of two such batches with
    // "deadlock detected" in nearly every round.
    for round in 0..10 {
        let jobs: Vec<StoreJob> = (0..64).map(|i| job(&format!("evt_round{round}_{i:03}"))).collect();
        let forward: Vec<&StoreJob> = jobs.iter().collect();
        let backward: Vec<&StoreJob> = jobs.iter().rev().collect();
        let (a, b) = tokio::join!(store_batch(&db, &forward), store_batch(&db, &backward));
        let (a, b) = (a.expect("first batch stored"), b.expect("second batch stored"));
        // Every event stored by exactly one of the two batches; the other saw a duplicate.
        for i in 0..64 {
            let (x, y) = (a[i], b[63 - i]);
            assert!((x == Stored::Duplicate) != (y == Stored::Duplicate), "round {round}, event {i}: {x:?} and {y:?}");
        }
    }
    db.close().await;
}
