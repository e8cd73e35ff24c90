//! Revenue on both databases: the report over a fixture of packs, Rate Card payments, refunds
//! and disputes across a UTC day boundary, with test-mode, owner and unmatched money kept out;
//! the totals-only API (keys, 401/400/429, no customer data); and the CLI.
use crate::helpers::*;
use crate::on_both_databases;
use app::domain::revenue::{Class, Period, Source};
use app::store::Db;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

on_both_databases!(
    revenue_counts_every_movement_on_its_utc_day_and_keeps_tests_apart,
    the_api_answers_totals_only_to_a_live_key,
    the_api_limits_each_key_and_refuses_bad_ranges,
    the_cli_prints_revenue_and_manages_api_keys,
);

/// Runs one fixture statement on either database.
macro_rules! exec {
    ($db:expr, $sql:expr $(, $b:expr)* $(,)?) => {
        match $db {
            Db::Sqlite(s) => { sqlx::query($sql)$(.bind($b))*.execute(&s.writer).await.unwrap(); }
            Db::Postgres(p) => { sqlx::query($sql)$(.bind($b))*.execute(p).await.unwrap(); }
        }
    };
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn credit(db: &Db, contract_id: i64, payment_id: &str, amount: i64, livemode: bool, when: &str) {
    exec!(
        db,
        "INSERT INTO contract_revisions (contract_id, payment_id, revisions, amount, currency, livemode, created_at, credited_by) \
         VALUES ($1, $2, 2, $3, 'usd', $4, $5, 'webhook')",
        contract_id,
        payment_id,
        amount,
        livemode,
        at(when)
    );
}

async fn rate_card(db: &Db, payment_id: &str, amount: i64, when: &str) {
    let event_id = new_event_id();
    exec!(
        db,
        "INSERT INTO stripe_events (event_id, event_type, livemode, stripe_created, payload, signature_header, \
         request_headers, received_at) VALUES ($1, 'payment_intent.succeeded', FALSE, 0, $2, 't=0,v1=x', '{}', $3)",
        &event_id,
        b"{}".to_vec(),
        at(when)
    );
    exec!(
        db,
        "INSERT INTO external_payments (payment_id, advertiser_ref, size_ref, publication_ref, amount, currency, \
         livemode, stripe_event_id, created_at) VALUES ($1, 'adv-9', 'size-2', 'pub-3', $2, 'usd', FALSE, $3, $4)",
        payment_id,
        amount,
        &event_id,
        at(when)
    );
}

async fn refund(db: &Db, payment_id: &str, amount: i64, status: &str, when: &str) {
    exec!(
        db,
        "INSERT INTO payment_refunds (refund_id, payment_id, amount, currency, status, livemode, first_seen, updated_at) \
         VALUES ($1, $2, $3, 'usd', $4, FALSE, $5, $5)",
        format!("re_{}", unique()),
        payment_id,
        amount,
        status,
        at(when)
    );
}

async fn dispute(db: &Db, payment_id: &str, amount: i64, status: &str, when: &str) {
    exec!(
        db,
        "INSERT INTO payment_disputes (dispute_id, payment_id, amount, currency, status, is_open, livemode, first_seen, updated_at) \
         VALUES ($1, $2, $3, 'usd', $4, $5, FALSE, $6, $6)",
        format!("du_{}", unique()),
        payment_id,
        amount,
        status,
        status == "needs_response",
        at(when)
    );
}

const OWNER_EMAIL: &str = "owner@revenue.test";

/// The fixture, on 2026-03-10 and 2026-03-11 (UTC), in a test-mode deployment:
/// - counted: pack A at 23:59:59 on the 10th, pack B at 00:00:00 on the 11th, a Rate Card
///   payment on the 11th, a refund of A (succeeded) and a lost dispute of the Rate Card payment
///   on the 11th;
/// - not counted: a failed and a pending refund, an open dispute, a live-mode pack, the owner's
///   packs (by email and by contract id), a refund of a payment we never recorded.
///
async fn fixture(kind: DbKind) -> TestApp {
    let t = TestApp::spawn_with(kind, |s| {
        s.owners.emails = vec![OWNER_EMAIL.to_string()];
        s.owners.contract_ids = vec![3];
    })
    .await;
    let db = t.store().clone();
    // Contract 1 is the app's advertiser's; 2 belongs to the owner by email; 3 is the owner's
    // by id (REVENUE_OWNER_CONTRACTS=3).
    let owner =
        app::services::accounts::create_user(&db, OWNER_EMAIL, app::domain::users::Role::Advertiser, "owner-password")
            .await
            .unwrap();
    let c = |advertiser_id| app::store::contracts::NewContract {
        advertiser_id,
        publication: "Owner's Own",
        ad_size: "Full page",
        base_revisions: 3,
    };
    let by_email = app::store::contracts::create(&db, &c(owner.id), Utc::now()).await.unwrap().id;
    let by_id = app::store::contracts::create(&db, &c(t.advertiser_id), Utc::now()).await.unwrap().id;
    assert_eq!((t.contract_id, by_email, by_id), (1, 2, 3), "the fixture's contract ids");
    let (a, b, rc) = (new_payment_id(), new_payment_id(), new_payment_id());
    credit(&db, t.contract_id, &a, 15_000, false, "2026-03-10T23:59:59Z").await;
    credit(&db, t.contract_id, &b, 15_000, false, "2026-03-11T00:00:00Z").await;
    rate_card(&db, &rc, 9_900, "2026-03-11T12:00:00Z").await;
    refund(&db, &a, 7_500, "succeeded", "2026-03-11T08:00:00Z").await;
    refund(&db, &a, 7_500, "failed", "2026-03-11T09:00:00Z").await;
    refund(&db, &b, 7_500, "pending", "2026-03-11T09:00:00Z").await;
    dispute(&db, &rc, 9_900, "lost", "2026-03-11T20:00:00Z").await;
    dispute(&db, &b, 15_000, "needs_response", "2026-03-11T21:00:00Z").await;
    credit(&db, t.contract_id, &new_payment_id(), 15_000, true, "2026-03-11T10:00:00Z").await;
    credit(&db, by_email, &new_payment_id(), 15_000, false, "2026-03-11T10:00:00Z").await;
    credit(&db, by_id, &new_payment_id(), 15_000, false, "2026-03-10T10:00:00Z").await;
    refund(&db, &new_payment_id(), 500, "succeeded", "2026-03-11T10:00:00Z").await;
    // Outside the range on either side: never in it.
    credit(&db, t.contract_id, &new_payment_id(), 15_000, false, "2026-03-09T23:59:59Z").await;
    credit(&db, t.contract_id, &new_payment_id(), 15_000, false, "2026-03-12T00:00:00Z").await;
    t
}

async fn revenue_counts_every_movement_on_its_utc_day_and_keeps_tests_apart(kind: DbKind) {
    let t = fixture(kind).await;
    let svc = &t.app.services;
    let r = app::services::revenue::report(svc, day("2026-03-10"), day("2026-03-11"), Period::Day).await.unwrap();
    let days: Vec<_> = r.series("usd", None).map(|l| (l.label.as_str(), l.figures.clone())).collect();
    assert_eq!(days.len(), 2);
    assert_eq!((days[0].0, days[0].1.gross, days[0].1.net(), days[0].1.payments), ("2026-03-10", 15_000, 15_000, 1));
    let d11 = &days[1].1;
    assert_eq!(
        (days[1].0, d11.gross, d11.refunds, d11.disputes_lost, d11.net(), d11.payments),
        ("2026-03-11", 24_900, 7_500, 9_900, 7_500, 2)
    );
    let total = |s: Option<Source>| r.totals.iter().find(|l| l.source == s).unwrap().figures.clone();
    assert_eq!((total(None).gross, total(None).net(), total(None).payments), (39_900, 22_500, 3));
    assert_eq!((total(Some(Source::Pack)).gross, total(Some(Source::Pack)).refunds), (30_000, 7_500));
    assert_eq!((total(Some(Source::RateCard)).gross, total(Some(Source::RateCard)).disputes_lost), (9_900, 9_900));
    let apart: Vec<_> =
        r.excluded.iter().map(|e| (e.class, e.figures.gross, e.figures.payments, e.figures.refunds)).collect();
    assert_eq!(
        apart,
        vec![(Class::OtherMode, 15_000, 1, 0), (Class::Owner, 30_000, 2, 0), (Class::Unmatched, 0, 0, 500)]
    );
    // By month, the two days are one line with the same totals.
    let m = app::services::revenue::report(svc, day("2026-03-01"), day("2026-03-31"), Period::Month).await.unwrap();
    let march: Vec<_> = m.series("usd", None).collect();
    assert_eq!(march.len(), 1);
    assert_eq!((march[0].label.as_str(), march[0].figures.net()), ("2026-03", 22_500 + 30_000));
    // A live deployment counts the live pack and nothing in test mode.
    let mut live = svc.clone();
    live.mode = app::domain::events::StripeMode::Live;
    let l = app::services::revenue::report(&live, day("2026-03-10"), day("2026-03-11"), Period::Day).await.unwrap();
    let lt = l.totals.iter().find(|x| x.source.is_none()).unwrap();
    assert_eq!((lt.figures.gross, lt.figures.payments), (15_000, 1));
    let coverage = app::services::revenue::coverage(svc, day("2026-03-10"), day("2026-03-11")).await.unwrap();
    assert_eq!(coverage.run_id, None);
    assert!(coverage.sentence().contains("No reconciliation has finished yet"));
}

fn keys_of(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                out.insert(k.clone());
                keys_of(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| keys_of(x, out)),
        _ => {}
    }
}

async fn the_api_answers_totals_only_to_a_live_key(kind: DbKind) {
    let t = fixture(kind).await;
    let db = t.store();
    let (id, key) =
        app::services::api_keys::create(db, "dashboard", app::services::api_keys::Scope::Revenue, Utc::now())
            .await
            .unwrap();
    let bearer = format!("Bearer {key}");
    let path = "/api/v1/revenue?from=2026-03-10&to=2026-03-11&by=day";
    let (status, headers, body) = get_with(&t, path, Some(&bearer)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let v: Value = serde_json::from_str(&body).unwrap();
    let usd = &v["currencies"][0];
    assert_eq!(usd["currency"], "usd");
    assert_eq!(usd["total"]["gross"], 39_900);
    assert_eq!(usd["total"]["net"], 22_500);
    assert_eq!(usd["packs"]["refunds"], 7_500);
    assert_eq!(usd["rate_card"]["disputes_lost"], 9_900);
    assert_eq!(usd["periods"][1]["period"], "2026-03-11");
    assert_eq!(usd["periods"][1]["net"], 7_500);
    // Totals only: every key is one of these, and nothing in the text names a customer, a
    // contract, a payment, a refund, a dispute or an event.
    let mut keys = std::collections::BTreeSet::new();
    keys_of(&v, &mut keys);
    let allowed = [
        "from",
        "to",
        "mode",
        "period",
        "currencies",
        "currency",
        "total",
        "packs",
        "rate_card",
        "periods",
        "gross",
        "refunds",
        "disputes_lost",
        "net",
        "payments",
        "excluded",
        "reason",
    ];
    assert!(keys.iter().all(|k| allowed.contains(&k.as_str())), "unexpected keys: {keys:?}");
    for needle in ["@", "pi_", "re_", "du_", "evt_", "Owner's Own", "Daily Planet", "adv-9", "pub-3", "contract"] {
        assert!(!body.contains(needle), "`{needle}` leaked: {body}");
    }
    // The key was marked used.
    let listed = app::store::api_keys::list(db).await.unwrap();
    assert!(listed.iter().any(|k| k.id == id && k.last_used_at.is_some()));
    assert!(listed.iter().all(|k| k.prefix.len() == 12), "only a prefix of each key is kept");

    // One answer for a missing, malformed, unknown or revoked key.
    let unknown = format!("Bearer {}", app::services::api_keys::generate());
    let (_, _, first) = get_with(&t, path, None).await;
    for auth in [None, Some("Bearer nope"), Some(format!("Basic {key}").as_str()), Some(unknown.as_str())] {
        let (status, headers, body) = get_with(&t, path, auth).await;
        assert_eq!(status, 401, "{auth:?}");
        assert!(headers.contains_key("www-authenticate"));
        assert_eq!(body, first);
    }
    assert!(app::store::api_keys::revoke(db, id, Utc::now()).await.unwrap());
    let (status, _, body) = get_with(&t, path, Some(&bearer)).await;
    assert_eq!((status, body), (401, first));
    assert!(!app::store::api_keys::revoke(db, id, Utc::now()).await.unwrap(), "revoked once");
}

async fn the_api_limits_each_key_and_refuses_bad_ranges(kind: DbKind) {
    let t = TestApp::spawn_with(kind, |s| s.web.api_rate_per_minute = std::num::NonZeroU32::new(3).unwrap()).await;
    let db = t.store();
    let (_, a) =
        app::services::api_keys::create(db, "a", app::services::api_keys::Scope::Revenue, Utc::now()).await.unwrap();
    let (_, b) =
        app::services::api_keys::create(db, "b", app::services::api_keys::Scope::Revenue, Utc::now()).await.unwrap();
    let (a, b) = (format!("Bearer {a}"), format!("Bearer {b}"));
    let bad = [
        ("/api/v1/revenue?from=2026-03-10", "to is required"),
        ("/api/v1/revenue?from=2026-02-30&to=2026-03-01", "from: `2026-02-30` is not a date"),
        ("/api/v1/revenue?from=2025-01-01&to=2026-01-02", "at most 366"),
        ("/api/v1/revenue?from=2026-03-02&to=2026-03-01", "before"),
    ];
    for (path, why) in bad.iter().take(3) {
        let (status, _, body) = get_with(&t, path, Some(&a)).await;
        assert_eq!(status, 400, "{path}");
        assert!(body.contains(why), "{path}: {body}");
    }
    // The fourth request of key a within the minute is refused with a time to come back;
    // key b is not affected.
    let (status, headers, _) = get_with(&t, bad[3].0, Some(&a)).await;
    assert_eq!(status, 429);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (status, _, body) = get_with(&t, bad[3].0, Some(&b)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("before"));
    let (status, _, body) = get_with(&t, "/api/v1/revenue?from=2026-03-01&to=2026-03-01", Some(&b)).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["currencies"], serde_json::json!([]));
    assert!(v.get("period").is_some_and(Value::is_null), "no periods unless asked: {v}");
}

async fn the_cli_prints_revenue_and_manages_api_keys(kind: DbKind) {
    let t = fixture(kind).await;
    let url = t.db.url.clone();
    let run = move |args: &[&str]| {
        let o = run_cli(&url, args, &[("REVENUE_OWNER_EMAILS", OWNER_EMAIL), ("REVENUE_OWNER_CONTRACTS", "3")]);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    tokio::task::spawn_blocking(move || {
        let (ok, out, err) = run(&["revenue", "--from", "2026-03-10", "--to", "2026-03-11"]);
        assert!(ok, "{err}");
        assert!(out.contains("Revenue 2026-03-10 to 2026-03-11 by day (test mode, UTC)"), "{out}");
        let day11 = out.lines().find(|l| l.starts_with("2026-03-11")).unwrap();
        assert!(day11.contains("$249.00") && day11.contains("$75.00") && day11.contains("$99.00"), "{day11}");
        let total = out.lines().find(|l| l.starts_with("total")).unwrap();
        assert!(total.contains("$399.00") && total.contains("$225.00"), "{total}");
        assert!(out.contains("the owner's own test payments"), "{out}");
        assert!(out.contains("No reconciliation has finished yet"), "{out}");

        let (ok, out, err) = run(&["revenue", "--from", "2026-03-10", "--to", "2026-03-11", "--by", "week", "--json"]);
        assert!(ok, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["period"], "week");
        assert_eq!(v["currencies"][0]["periods"][0]["period"], "2026-W11");
        assert_eq!(v["currencies"][0]["total"]["net"], 22_500);

        let (ok, _, err) = run(&["revenue", "--from", "2026-03-12", "--to", "2026-03-11"]);
        assert!(!ok && err.contains("before"), "{err}");
        let (ok, _, err) = run(&["revenue", "--by", "year"]);
        assert!(!ok && err.contains("not a period"), "{err}");

        let (ok, out, err) = run(&["api-key", "create", "--name", "finance dashboard"]);
        assert!(ok, "{err}");
        let key =
            out.lines().find_map(|l| l.strip_prefix("Key (shown once; only its hash is kept): ")).unwrap().to_string();
        assert!(key.starts_with("rsk_") && key.len() == 68, "{key}");
        let (_, list, _) = run(&["api-key", "list"]);
        assert!(list.contains("finance dashboard") && list.contains(&key[..12]) && !list.contains(&key), "{list}");
        assert!(list.contains("last used never"), "{list}");
        let id = list.split_whitespace().next().unwrap().to_string();
        let (ok, out, _) = run(&["api-key", "revoke", &id]);
        assert!(ok && out.contains("Revoked"), "{out}");
        let (ok, _, err) = run(&["api-key", "revoke", &id]);
        assert!(!ok && err.contains("no live API key"), "{err}");
        assert!(run(&["api-key", "list"]).1.contains("REVOKED"));
        let (ok, _, err) = run(&["api-key", "create", "--name", "  "]);
        assert!(!ok && err.contains("1 to 100 characters"), "{err}");
    })
    .await
    .unwrap();
}
