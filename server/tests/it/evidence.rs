//! The evidence bundle of one payment, on both databases: every event delivered about it comes
//! back byte for byte with the digest recorded when it was stored (checked here with our own
//! SHA-256), a payload altered afterwards shows as changed, and the CLI writes the same bundle.
use crate::helpers::*;
use crate::on_both_databases;
use app::store::Db;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

on_both_databases!(
    a_payments_bundle_holds_every_event_byte_for_byte_with_its_digests,
    seals_name_the_first_hour_whose_events_changed,
);

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The bundle's files by path (the folder prefix removed).
fn files(tar_bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.insert(path.split_once('/').unwrap().1.to_string(), bytes);
    }
    out
}

async fn a_payments_bundle_holds_every_event_byte_for_byte_with_its_digests(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let pi = new_payment_id();
    let charge = format!("ch_{}", unique());
    let refund_id = format!("re_{}", unique());
    let mut bodies = vec![paid(&new_event_id(), &pi, t.contract_id)];
    let refund = json!({"id": refund_id, "object": "refund", "amount": 7500, "currency": "usd",
        "payment_intent": pi, "charge": charge, "status": "succeeded", "reason": null, "metadata": {}});
    bodies.push(
        json!({"id": new_event_id(), "object": "event", "api_version": "2026-09-30.endive", "created": now(),
            "livemode": false, "type": "refund.created", "data": {"object": refund}})
        .to_string(),
    );
    // An unrelated payment's event must not be in the bundle.
    let other = paid(&new_event_id(), &new_payment_id(), t.contract_id);
    for body in bodies.iter().chain([&other]) {
        assert_eq!(t.deliver(body).await.status, 200);
    }
    assert!(eventually(std::time::Duration::from_secs(10), || async { t.available().await == 6 }).await);

    let tar = app::services::evidence::bundle(&t.app.services, &pi).await.unwrap();
    let f = files(&tar);
    let events: Vec<&String> = f.keys().filter(|k| k.starts_with("events/") && !k.ends_with(".meta.json")).collect();
    assert_eq!(events.len(), 2, "{:?}", f.keys().collect::<Vec<_>>());
    for (i, body) in bodies.iter().enumerate() {
        let id = serde_json::from_str::<Value>(body).unwrap()["id"].as_str().unwrap().to_string();
        let name = format!("events/{:03}-{id}", i + 1);
        assert_eq!(f[&format!("{name}.json")], body.as_bytes(), "byte for byte");
        let meta: Value = serde_json::from_slice(&f[&format!("{name}.meta.json")]).unwrap();
        assert_eq!(meta["payload_sha256_recorded"], sha(body.as_bytes()));
        assert_eq!(meta["payload_sha256_now"], sha(body.as_bytes()));
        assert_eq!(meta["unchanged_since_stored"], true);
        assert_eq!(meta["verified_by"], "signature");
        assert!(meta["signature_header"].as_str().unwrap().starts_with("t="));
        assert_eq!(meta["processing"]["status"], "processed");
    }
    let payment: Value = serde_json::from_slice(&f["payment.json"]).unwrap();
    assert_eq!(payment["ledger_credit"]["payment_id"], pi.as_str());
    assert_eq!(payment["refunds"][0]["refund_id"], refund_id.as_str());
    assert_eq!(payment["revisions_taken_back"][0]["revoked"], 1);
    // SHA256SUMS covers every other file, in `sha256sum -c` form.
    let sums = String::from_utf8(f["SHA256SUMS"].clone()).unwrap();
    assert_eq!(sums.lines().count(), f.len() - 1);
    for line in sums.lines() {
        let (digest, path) = line.split_once("  ").unwrap();
        assert_eq!(digest, sha(&f[path]), "{path}");
    }

    // A database owner who turns the append-only trigger off and edits a payload is caught.
    let first_id = serde_json::from_str::<Value>(&bodies[0]).unwrap()["id"].as_str().unwrap().to_string();
    let forged = bodies[0].replace("15000", "1500");
    match t.store() {
        Db::Sqlite(s) => {
            sqlx::query("DROP TRIGGER stripe_events_no_update").execute(&s.writer).await.unwrap();
            sqlx::query("UPDATE stripe_events SET payload = $1 WHERE event_id = $2")
                .bind(forged.as_bytes())
                .bind(&first_id)
                .execute(&s.writer)
                .await
                .unwrap();
        }
        Db::Postgres(p) => {
            sqlx::query("ALTER TABLE stripe_events DISABLE TRIGGER stripe_events_append_only")
                .execute(p)
                .await
                .unwrap();
            sqlx::query("UPDATE stripe_events SET payload = $1 WHERE event_id = $2")
                .bind(forged.as_bytes())
                .bind(&first_id)
                .execute(p)
                .await
                .unwrap();
        }
    }
    let f = files(&app::services::evidence::bundle(&t.app.services, &pi).await.unwrap());
    let meta: Value = serde_json::from_slice(&f[&format!("events/001-{first_id}.meta.json")]).unwrap();
    assert_eq!(meta["unchanged_since_stored"], false);
    assert_eq!(meta["payload_sha256_recorded"], sha(bodies[0].as_bytes()));

    // The CLI writes the bundle; bad and unknown ids are refused with a reason.
    let url = t.db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle.tar");
    let pi2 = pi.clone();
    let (ok, listing, bad, unknown) = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| run_cli(&url, args, &[]);
        let o = run(&["evidence", "bundle", &pi2, "--out", out.to_str().unwrap()]);
        let listing = std::fs::read(&out).map(|b| files(&b).into_keys().collect::<Vec<_>>()).unwrap_or_default();
        let bad = run(&["evidence", "bundle", "ch_123"]);
        let unknown = run(&["evidence", "bundle", "pi_neverseen"]);
        (
            o.status.success(),
            listing,
            String::from_utf8_lossy(&bad.stderr).into_owned(),
            String::from_utf8_lossy(&unknown.stderr).into_owned(),
        )
    })
    .await
    .unwrap();
    assert!(ok);
    assert_eq!(listing, f.keys().cloned().collect::<Vec<_>>());
    assert!(bad.contains("not a PaymentIntent id"), "{bad}");
    assert!(unknown.contains("we hold nothing about pi_neverseen"), "{unknown}");
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc)
}

/// Stores `body` as if it had been received at `when`.
async fn store_at(t: &TestApp, body: &str, when: &str) -> String {
    use app::store::events::{store, NewEvent, StoreJob};
    let id = serde_json::from_str::<Value>(body).unwrap()["id"].as_str().unwrap().to_string();
    let job = StoreJob {
        event: NewEvent {
            event_id: id.clone(),
            event_type: "payment_intent.succeeded".into(),
            livemode: false,
            api_version: None,
            stripe_created: now(),
            payload: body.as_bytes().to_vec(),
            payload_sha256: NewEvent::digest(body.as_bytes()),
            signature_header: "t=1,v1=00".into(),
            request_headers: "{}".into(),
            received_at: at(when),
        },
        credit: None,
        lease_until: at(when),
    };
    store(t.store(), &job).await.unwrap();
    id
}

async fn seals_name_the_first_hour_whose_events_changed(kind: DbKind) {
    use app::services::seals::{seal_closed, verify, Verdict};
    let t = TestApp::spawn(kind).await;
    let svc = &t.app.services;
    let pi = new_payment_id();
    let a = store_at(&t, &paid(&new_event_id(), &pi, t.contract_id), "2026-11-27T10:15:00.250Z").await;
    let b = store_at(&t, &paid(&new_event_id(), &new_payment_id(), t.contract_id), "2026-11-27T10:59:59.999Z").await;
    let c = store_at(&t, &paid(&new_event_id(), &new_payment_id(), t.contract_id), "2026-11-27T12:00:00Z").await;
    // Nothing before an hour has been closed for five minutes; two sealers at once seal each
    // hour once, the empty 11:00 hour included, and the chain holds.
    assert_eq!(seal_closed(svc, at("2026-11-27T11:04:59Z"), 100).await.unwrap(), 0);
    let (x, y) = tokio::join!(
        seal_closed(svc, at("2026-11-27T13:04:59Z"), 100),
        seal_closed(svc, at("2026-11-27T13:04:59Z"), 100)
    );
    assert_eq!(x.unwrap() + y.unwrap(), 2);
    assert_eq!(seal_closed(svc, at("2026-11-27T13:05:00Z"), 100).await.unwrap(), 1);
    let all = app::store::seals::since(t.store(), None).await.unwrap();
    assert_eq!(all.iter().map(|s| s.event_count).collect::<Vec<_>>(), vec![2, 0, 1]);
    assert_eq!(
        verify(t.store(), None).await.unwrap(),
        Verdict::Intact { seals: 3, from: Some(at("2026-11-27T10:00:00Z")), to: Some(at("2026-11-27T13:00:00Z")) }
    );
    // The bundle carries the seal of the event's hour.
    let f = files(&app::services::evidence::bundle(svc, &pi).await.unwrap());
    let meta: Value = serde_json::from_slice(&f[&format!("events/001-{a}.meta.json")]).unwrap();
    assert_eq!(meta["seal"]["chained"], all[0].chained.as_str());
    assert_eq!(meta["seal"]["event_count"], 2);

    // An event slipped into a sealed hour afterwards is named.
    let late = paid(&new_event_id(), &new_payment_id(), t.contract_id);
    store_at(&t, &late, "2026-11-27T11:30:00Z").await;
    let broken = verify(t.store(), None).await.unwrap();
    assert_eq!(
        broken,
        Verdict::Broken {
            period_start: at("2026-11-27T11:00:00Z"),
            problem: "1 event(s) added since it was sealed (0 sealed, 1 now)".into()
        }
    );
    // From 12:00 on all is well, until a payload there is edited behind the triggers' back.
    assert!(matches!(
        verify(t.store(), Some(at("2026-11-27T12:00:00Z"))).await.unwrap(),
        Verdict::Intact { seals: 1, .. }
    ));
    let edit = "UPDATE stripe_events SET payload = $1 WHERE event_id = $2";
    // Removing an event means removing what refers to it first: its processing row, and its
    // search row if the worker's first sweep (racing this test's start) indexed it.
    const TAMPERED: [&str; 3] = ["stripe_event_processing", "event_search", "stripe_events"];
    match t.store() {
        Db::Sqlite(s) => {
            sqlx::query("DROP TRIGGER stripe_events_no_update").execute(&s.writer).await.unwrap();
            sqlx::query("DROP TRIGGER stripe_events_no_delete").execute(&s.writer).await.unwrap();
            sqlx::query(edit).bind(b"{}".to_vec()).bind(&c).execute(&s.writer).await.unwrap();
            for table in TAMPERED {
                let sql = format!("DELETE FROM {table} WHERE event_id = $1");
                sqlx::query(&sql).bind(&b).execute(&s.writer).await.unwrap();
            }
        }
        Db::Postgres(p) => {
            sqlx::query("ALTER TABLE stripe_events DISABLE TRIGGER stripe_events_append_only")
                .execute(p)
                .await
                .unwrap();
            sqlx::query(edit).bind(b"{}".to_vec()).bind(&c).execute(p).await.unwrap();
            for table in TAMPERED {
                let sql = format!("DELETE FROM {table} WHERE event_id = $1");
                sqlx::query(&sql).bind(&b).execute(p).await.unwrap();
            }
        }
    }
    let Verdict::Broken { period_start, problem } = verify(t.store(), Some(at("2026-11-27T12:00:00Z"))).await.unwrap()
    else {
        panic!("an edit went unnoticed")
    };
    assert_eq!(period_start, at("2026-11-27T12:00:00Z"));
    assert!(problem.contains("altered"), "{problem}");
    let Verdict::Broken { period_start, problem } = verify(t.store(), None).await.unwrap() else { panic!() };
    assert_eq!(period_start, at("2026-11-27T10:00:00Z"));
    assert!(problem.contains("1 event(s) removed"), "{problem}");

    // The CLI says the same and fails.
    let url = t.db.url.clone();
    let o = tokio::task::spawn_blocking(move || run_cli(&url, &["evidence", "verify"], &[])).await.unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the hour from 2026-11-27 10:00 UTC does not match its seal: 1 event(s) removed"), "{err}");
}
