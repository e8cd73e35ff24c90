//! Event search and export on both databases: every filter against a fixture of events that
//! went through real processing, keyset pages while events keep arriving, exports equal to the
//! search (API, admin route, CLI), and the events API's keys and scopes.
use crate::helpers::*;
use crate::on_both_databases;
use app::domain::event_search::{Cursor, EventFilter, Hit};
use app::services::api_keys::Scope;
use app::services::event_search::page;
use app::store::events::{NewEvent, StoreJob};
use app::store::Db;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

on_both_databases!(
    every_filter_finds_exactly_its_events,
    keyset_pages_neither_repeat_nor_skip_while_events_arrive,
    exports_hold_exactly_the_searchs_rows,
    the_events_api_needs_an_events_key_and_explains_bad_filters,
    the_workers_sweep_finds_late_events_and_late_contracts,
);

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn event(id: &str, event_type: &str, livemode: bool, object: Value) -> String {
    json!({"id": id, "object": "event", "api_version": "2026-09-30.endive", "created": 1_772_000_000,
        "livemode": livemode, "type": event_type, "data": {"object": object}})
    .to_string()
}

fn intent(pi: &str, contract: i64, amount: i64, currency: &str) -> Value {
    json!({"id": pi, "object": "payment_intent", "amount": amount, "amount_received": amount,
        "currency": currency, "status": "succeeded", "metadata": {"contractId": contract.to_string()}})
}

/// Stores `body` as received at `when`, as intake would (pending, due at once).
async fn store_at(db: &Db, body: &str, when: DateTime<Utc>) -> String {
    let job = job(body, when);
    app::store::events::store(db, &job).await.unwrap();
    job.event.event_id
}

fn job(body: &str, when: DateTime<Utc>) -> StoreJob {
    let v: Value = serde_json::from_str(body).unwrap();
    StoreJob {
        event: NewEvent {
            event_id: v["id"].as_str().unwrap().to_string(),
            event_type: v["type"].as_str().unwrap().to_string(),
            livemode: v["livemode"].as_bool().unwrap(),
            api_version: v["api_version"].as_str().map(String::from),
            stripe_created: v["created"].as_i64().unwrap(),
            payload: body.as_bytes().to_vec(),
            signature_header: "t=1,v1=00".into(),
            request_headers: "{}".into(),
            received_at: when,
            payload_sha256: NewEvent::digest(body.as_bytes()),
        },
        credit: None,
        lease_until: when,
    }
}

struct Fixture {
    t: TestApp,
    ids: Vec<String>,
    pi_a: String,
    bob_contract: i64,
    bob_email: String,
}

/// Seven events over a week of March 2026, processed for real: a credited pack (pi_a), a dispute
/// and a refund of it, a payment at the wrong price and one in the wrong currency on Bob's
/// contract, a live-mode payment (ignored by this test deployment), and a customer event whose
/// description is the only place a phrase appears.
async fn fixture(kind: DbKind) -> Fixture {
    let t = TestApp::spawn(kind).await;
    let db = t.store().clone();
    let bob_email = format!("bob{}@example.com", unique());
    let bob =
        app::services::accounts::create_user(&db, &bob_email, app::domain::users::Role::Advertiser, "a-long-password")
            .await
            .unwrap();
    let bob_contract = app::store::contracts::create(
        &db,
        &app::store::contracts::NewContract {
            advertiser_id: bob.id,
            publication: "Gazette",
            ad_size: "Full page",
            base_revisions: 3,
        },
        Utc::now(),
    )
    .await
    .unwrap()
    .id;
    let (pi_a, pi_b, pi_c, pi_d) = (new_payment_id(), new_payment_id(), new_payment_id(), new_payment_id());
    let c = t.contract_id;
    let u = unique();
    let bodies = [
        event(&format!("evt_a1{u}"), "payment_intent.succeeded", false, intent(&pi_a, c, 15_000, "usd")),
        event(
            &format!("evt_a2{u}"),
            "charge.dispute.created",
            false,
            json!({"id": format!("du_{u}"), "object": "dispute", "amount": 15_000, "currency": "usd",
                "charge": format!("ch_{u}"), "payment_intent": pi_a, "status": "needs_response", "reason": "fraudulent"}),
        ),
        event(
            &format!("evt_a3{u}"),
            "refund.created",
            false,
            json!({"id": format!("re_{u}"), "object": "refund", "amount": 7_500, "currency": "usd",
                "charge": format!("ch_{u}"), "payment_intent": pi_a, "status": "succeeded", "reason": null, "metadata": {}}),
        ),
        event(&format!("evt_b1{u}"), "payment_intent.succeeded", false, intent(&pi_b, bob_contract, 100, "usd")),
        event(&format!("evt_b2{u}"), "payment_intent.succeeded", false, intent(&pi_c, bob_contract, 15_000, "eur")),
        event(&format!("evt_l{u}"), "payment_intent.succeeded", true, intent(&pi_d, c, 15_000, "usd")),
        event(
            &format!("evt_x{u}"),
            "customer.created",
            false,
            json!({"id": format!("cus_{u}"), "object": "customer", "description": "Gift for Marge Simpson, \"=1+1\""}),
        ),
    ];
    let mut ids = Vec::new();
    for (day, body) in bodies.iter().enumerate() {
        ids.push(store_at(&db, body, at(&format!("2026-03-0{}T10:00:00Z", day + 1))).await);
    }
    app::services::processing::run_due(&t.app.services, true).await.unwrap();
    Fixture { t, ids, pi_a, bob_contract, bob_email }
}

async fn found(db: &Db, pairs: &[(&str, &str)]) -> Vec<String> {
    let f = EventFilter::parse(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)).unwrap();
    page(db, &f, None, 100).await.unwrap().hits.into_iter().map(|h| h.event_id).collect()
}

async fn every_filter_finds_exactly_its_events(kind: DbKind) {
    let fx = fixture(kind).await;
    let db = fx.t.store();
    let id = |i: usize| fx.ids[i].clone();
    let ids = |is: &[usize]| is.iter().map(|&i| id(i)).collect::<Vec<_>>();
    // Everything, newest first.
    assert_eq!(found(db, &[]).await, ids(&[6, 5, 4, 3, 2, 1, 0]));
    // The facts the index read: amounts, currency, the payment and the contract.
    let all = page(db, &EventFilter::default(), None, 100).await.unwrap();
    assert_eq!(all.unindexed, 0);
    let refund = all.hits.iter().find(|h| h.event_id == id(2)).unwrap();
    assert_eq!(
        (refund.payment_intent.as_deref(), refund.amount, refund.currency.as_deref(), refund.contract_id),
        (Some(fx.pi_a.as_str()), Some(7_500), Some("usd"), Some(fx.t.contract_id)),
        "a refund names only the payment; its contract comes from the credit"
    );
    // Received range: `to` is an inclusive day; times are taken as given.
    assert_eq!(found(db, &[("from", "2026-03-02"), ("to", "2026-03-03")]).await, ids(&[2, 1]));
    assert_eq!(found(db, &[("from", "2026-03-06T10:00:00Z")]).await, ids(&[6, 5]));
    assert_eq!(found(db, &[("to", "2026-03-01T10:00:00Z")]).await, Vec::<String>::new(), "`to` as a time is excluded");
    // Type prefix, and an exact type.
    assert_eq!(found(db, &[("type", "charge.dispute.")]).await, ids(&[1]));
    assert_eq!(found(db, &[("type", "payment_intent.succeeded")]).await, ids(&[5, 4, 3, 0]));
    // Status: what processing did with each.
    let mut by_status: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for i in (0..7).rev() {
        by_status.entry(fx.t.event_status(&id(i)).await.status).or_default().push(id(i));
    }
    assert_eq!(by_status["failed"], ids(&[4, 3]), "wrong price and wrong currency fail");
    assert!(by_status["processed"].contains(&id(0)));
    for (status, expected) in &by_status {
        assert_eq!(&found(db, &[("status", status)]).await, expected, "{status}");
    }
    // Amounts (major units of the currency, inclusive).
    assert_eq!(found(db, &[("min", "150"), ("max", "150"), ("currency", "usd")]).await, ids(&[5, 1, 0]));
    assert_eq!(found(db, &[("min", "150"), ("currency", "eur")]).await, ids(&[4]));
    assert_eq!(found(db, &[("max", "75.00"), ("currency", "usd")]).await, ids(&[3, 2]));
    assert_eq!(found(db, &[("currency", "EUR")]).await, ids(&[4]));
    // Mode.
    assert_eq!(found(db, &[("mode", "live")]).await, ids(&[5]));
    assert_eq!(found(db, &[("mode", "test")]).await.len(), 6);
    // The payment, the contract, the advertiser.
    assert_eq!(found(db, &[("payment", &fx.pi_a)]).await, ids(&[2, 1, 0]));
    assert_eq!(found(db, &[("contract", &fx.t.contract_id.to_string())]).await, ids(&[5, 2, 1, 0]));
    assert_eq!(found(db, &[("contract", &fx.bob_contract.to_string())]).await, ids(&[4, 3]));
    assert_eq!(found(db, &[("email", &fx.bob_email.to_uppercase())]).await, ids(&[4, 3]));
    assert_eq!(found(db, &[("email", "nobody@example.com")]).await, Vec::<String>::new());
    // Text inside the payload: a phrase, any case; an id; words out of order are not the phrase.
    assert_eq!(found(db, &[("q", "marge simpson")]).await, ids(&[6]));
    assert_eq!(found(db, &[("q", "simpson marge")]).await, Vec::<String>::new());
    assert_eq!(found(db, &[("q", &fx.pi_a)]).await, ids(&[2, 1, 0]));
    assert_eq!(found(db, &[("q", "fraudulent")]).await, ids(&[1]));
    // Filters combine.
    assert_eq!(found(db, &[("payment", &fx.pi_a), ("type", "refund."), ("status", "processed")]).await, ids(&[2]));
    assert_eq!(found(db, &[("email", &fx.bob_email), ("currency", "usd")]).await, ids(&[3]));
}

/// Stores `n` payment events received `start`, `start + 1 s`, ... in one commit.
async fn burst(db: &Db, contract: i64, start: DateTime<Utc>, n: i64) -> Vec<String> {
    let jobs: Vec<StoreJob> = (0..n)
        .map(|i| {
            let body = event(
                &new_event_id(),
                "payment_intent.succeeded",
                false,
                intent(&new_payment_id(), contract, 15_000, "usd"),
            );
            job(&body, start + Duration::seconds(i))
        })
        .collect();
    app::store::events::store_batch(db, &jobs.iter().collect::<Vec<_>>()).await.unwrap();
    jobs.into_iter().map(|j| j.event.event_id).collect()
}

async fn keyset_pages_neither_repeat_nor_skip_while_events_arrive(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let db = t.store();
    let start = Utc::now() - Duration::minutes(5);
    let first = burst(db, t.contract_id, start, 25).await;
    let f = EventFilter::default();
    let p1 = page(db, &f, None, 10).await.unwrap();
    assert_eq!(p1.hits.len(), 10);
    // Meanwhile: five newer events, and one received between page 1's rows and the rest (a
    // delivery committed late); the pages after page 1 must hold the older one, never the newer.
    let newer = burst(db, t.contract_id, start + Duration::seconds(100), 5).await;
    let late_body = event(
        &new_event_id(),
        "payment_intent.succeeded",
        false,
        intent(&new_payment_id(), t.contract_id, 15_000, "usd"),
    );
    let late = store_at(db, &late_body, start + Duration::milliseconds(7_500)).await;
    let mut seen: Vec<String> = p1.hits.iter().map(|h| h.event_id.clone()).collect();
    let mut next = p1.next.clone();
    let mut pages = 1;
    while let Some(cursor) = next {
        // The cursor survives its text form, as a link carries it.
        let cursor = Cursor::decode(&cursor.encode()).unwrap();
        let p = page(db, &f, Some(&cursor), 10).await.unwrap();
        seen.extend(p.hits.iter().map(|h| h.event_id.clone()));
        next = p.next;
        pages += 1;
    }
    assert_eq!(pages, 3);
    let mut expected: Vec<String> = first.iter().rev().cloned().collect();
    let at_late = expected.iter().position(|id| id == &first[7]).unwrap();
    expected.insert(at_late, late);
    assert_eq!(seen, expected, "each older event once, newest first; none of the newer");
    assert!(newer.iter().all(|n| !seen.contains(n)));
    // A fresh first page starts with the newest.
    let again = page(db, &f, None, 5).await.unwrap();
    assert_eq!(
        again.hits.iter().map(|h| h.event_id.clone()).collect::<Vec<_>>(),
        newer.iter().rev().cloned().collect::<Vec<_>>()
    );
    // The rows left exactly fill a page: that page is the last and says so; one fewer leaves one.
    let last = page(db, &f, Some(&again.hits[4].cursor()), 26).await.unwrap();
    assert_eq!((last.hits.len(), last.next), (26, None));
    let almost = page(db, &f, Some(&again.hits[4].cursor()), 25).await.unwrap();
    assert_eq!(almost.hits.len(), 25);
    assert_eq!(almost.next, Some(almost.hits[24].cursor()));
}

fn csv_ids(csv: &str) -> Vec<String> {
    let mut lines = csv.split("\r\n");
    assert_eq!(
        lines.next().unwrap(),
        "received_at,event_id,type,mode,status,payment_intent,amount,currency,contract_id,note,source"
    );
    lines.filter(|l| !l.is_empty()).map(|l| l.split(',').nth(1).unwrap().to_string()).collect()
}

fn ndjson_hits(text: &str) -> Vec<Hit> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn exports_hold_exactly_the_searchs_rows(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let db = t.store();
    // More than one export page (1,000 rows), so the stream is read in several queries, and
    // more events holding one phrase than a text search fetches and sorts (2,000).
    let start = Utc::now() - Duration::minutes(9);
    let ids = burst(db, t.contract_id, start, 2_103).await;
    let odd = event(&new_event_id(), "customer.created", false, json!({"id": "cus_1", "object": "customer"}));
    let odd = store_at(db, &odd, start + Duration::seconds(3_000)).await;
    // Indexed as the worker would (a search catches up one batch of 500 itself).
    while app::store::event_search::index_pending(db, 1_000).await.unwrap() > 0 {}
    let (_, key) = app::services::api_keys::create(db, "exports", Scope::Events, Utc::now()).await.unwrap();
    let auth = format!("Bearer {key}");
    // Page through the search as a client would.
    let mut searched: Vec<Hit> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/api/v1/events?limit=500&after={a}"),
            None => "/api/v1/events?limit=500".to_string(),
        };
        let (status, _, body) = get_with(&t, &path, Some(&auth)).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        searched.extend(serde_json::from_value::<Vec<Hit>>(v["events"].clone()).unwrap());
        match v["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(searched.len(), 2_104);
    assert_eq!(searched[0].event_id, odd);
    assert_eq!(searched.last().unwrap().event_id, ids[0]);
    let searched_ids: Vec<String> = searched.iter().map(|h| h.event_id.clone()).collect();
    // NDJSON from the API: the same rows, field for field.
    let (status, headers, body) = get_with(&t, "/api/v1/events/export?format=ndjson", Some(&auth)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/x-ndjson");
    assert_eq!(headers["x-unindexed-events"], "0", "the file holds every stored event");
    assert_eq!(ndjson_hits(&body), searched);
    // CSV: the same ids in the same order (cells' quoting and formula escapes: the unit tests).
    let (status, headers, csv) = get_with(&t, "/api/v1/events/export", Some(&auth)).await;
    assert_eq!(status, 200);
    assert!(headers["content-disposition"].to_str().unwrap().ends_with(".csv\""));
    let first_row = csv.split("\r\n").nth(1).unwrap();
    assert!(
        first_row.starts_with(&format!(
            "{},{odd},customer.created,test,",
            searched[0].received_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        )),
        "{first_row}"
    );
    assert_eq!(csv_ids(&csv), searched_ids);
    // A phrase in every payment event (over 2,000: found by walking the newest-first index)
    // pages and exports the same rows as the search without it, less the customer event; a
    // phrase in one event (fetched by the text index) finds that one.
    let mut by_text: Vec<Hit> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = format!(
            "/api/v1/events?limit=500&q=payment_intent{}",
            after.as_ref().map(|a| format!("&after={a}")).unwrap_or_default()
        );
        let (status, _, body) = get_with(&t, &path, Some(&auth)).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        by_text.extend(serde_json::from_value::<Vec<Hit>>(v["events"].clone()).unwrap());
        match v["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(by_text, searched[1..].to_vec());
    let (_, _, text_export) = get_with(&t, "/api/v1/events/export?format=ndjson&q=payment_intent", Some(&auth)).await;
    assert_eq!(ndjson_hits(&text_export), by_text);
    let one_pi = searched[100].payment_intent.clone().unwrap();
    let (_, _, one) = get_with(&t, &format!("/api/v1/events?q={one_pi}"), Some(&auth)).await;
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(serde_json::from_value::<Vec<Hit>>(one["events"].clone()).unwrap(), vec![searched[100].clone()]);
    // A filtered export equals the filtered search.
    let pi = &searched[10].payment_intent.clone().unwrap();
    let (_, _, one) = get_with(&t, &format!("/api/v1/events/export?format=ndjson&payment={pi}"), Some(&auth)).await;
    assert_eq!(ndjson_hits(&one), vec![searched[10].clone()]);
    // The CLI writes the same file.
    let out = tempfile::NamedTempFile::new().unwrap();
    let r = run_cli(&t.db.url, &["events", "search", "--format", "ndjson", "--out", out.path().to_str().unwrap()], &[]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(ndjson_hits(&std::fs::read_to_string(out.path()).unwrap()), searched);
    let r = run_cli(&t.db.url, &["events", "search", "--payment", pi, "--format", "json"], &[]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["events"][0]["event_id"], searched[10].event_id.as_str());
    let r = run_cli(&t.db.url, &["events", "search", "--limit", "2"], &[]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success() && text.contains(&odd) && text.contains("More: add --after "), "{text}");
    let r = run_cli(&t.db.url, &["events", "search", "--status", "lost"], &[]);
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("status: `lost` is not one of"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

async fn the_events_api_needs_an_events_key_and_explains_bad_filters(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let db = t.store();
    burst(db, t.contract_id, Utc::now() - Duration::minutes(1), 3).await;
    let (_, revenue) = app::services::api_keys::create(db, "wall screen", Scope::Revenue, Utc::now()).await.unwrap();
    let (events_id, events) = app::services::api_keys::create(db, "auditor", Scope::Events, Utc::now()).await.unwrap();
    let (revenue, events) = (format!("Bearer {revenue}"), format!("Bearer {events}"));
    for path in ["/api/v1/events", "/api/v1/events/export"] {
        let (status, _, _) = get_with(&t, path, None).await;
        assert_eq!(status, 401, "{path}");
        let (status, _, body) = get_with(&t, path, Some(&revenue)).await;
        assert_eq!(status, 403, "a totals-only key never reads events: {path}");
        assert!(body.contains("--scope events"), "{body}");
        assert!(!body.contains("evt_"), "{body}");
    }
    // An events key reads revenue too.
    let (status, _, _) = get_with(&t, "/api/v1/revenue?from=2026-03-01&to=2026-03-02", Some(&events)).await;
    assert_eq!(status, 200);
    let (status, _, body) = get_with(&t, "/api/v1/events?limit=2", Some(&events)).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 2);
    assert!(v["next"].is_string());
    for (query, says) in [
        ("status=lost", "status:"),
        ("from=yesterday", "from:"),
        ("min=abc&currency=usd", "min:"),
        ("min=5", "needs a currency"),
        ("limit=100000", "limit:"),
        ("after=garbage", "after:"),
        ("payment=pi_1%27%20OR%201%3D1", "payment:"),
    ] {
        let (status, _, body) = get_with(&t, &format!("/api/v1/events?{query}"), Some(&events)).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(says), "{query}: {body}");
    }
    let (status, _, body) = get_with(&t, "/api/v1/events/export?format=xlsx", Some(&events)).await;
    assert_eq!((status, body.contains("format:")), (400, true), "{body}");
    // Revoked: 401 like any unknown key.
    assert!(app::store::api_keys::revoke(db, events_id, Utc::now()).await.unwrap());
    let (status, _, _) = get_with(&t, "/api/v1/events", Some(&events)).await;
    assert_eq!(status, 401);
    // The admin's export routes answer only an admin.
    let (status, _) = t.get("/admin/events.csv").await;
    assert_eq!(status, 401);
}

/// What the regular look-back cannot see (an event received long before the newest indexed
/// one) and contracts learned after their events were indexed: the worker's sweep finds both.
async fn the_workers_sweep_finds_late_events_and_late_contracts(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let db = t.store();
    let now = Utc::now();
    burst(db, t.contract_id, now - Duration::minutes(1), 3).await;
    assert_eq!(page(db, &EventFilter::default(), None, 50).await.unwrap().hits.len(), 3);
    // Stored now, received an hour ago (a delivery committed very late, a restored backup).
    let pi = new_payment_id();
    let u = unique();
    let refund = event(
        &format!("evt_late{u}"),
        "refund.created",
        false,
        json!({"id": format!("re_{u}"), "object": "refund", "amount": 7_500, "currency": "usd",
            "charge": format!("ch_{u}"), "payment_intent": pi, "status": "succeeded", "reason": null, "metadata": {}}),
    );
    // A new event not indexed yet is the regular look-back's: with everything before the
    // look-back indexed, the sweep counts, finds nothing missed and leaves it (a search's
    // catch-up below indexes it).
    let recent = event(&new_event_id(), "payment_intent.processing", false, json!({"id": new_payment_id()}));
    store_at(db, &recent, now).await;
    assert_eq!(app::store::event_search::index_missed(db, 100).await.unwrap(), 0, "nothing missed");
    let late = store_at(db, &refund, now - Duration::hours(1)).await;
    let by_pi = EventFilter { payment_intent: Some(pi.clone()), ..EventFilter::default() };
    assert!(page(db, &by_pi, None, 50).await.unwrap().hits.is_empty(), "outside the look-back");
    assert_eq!(app::store::event_search::index_missed(db, 100).await.unwrap(), 1, "the late one");
    assert_eq!(app::store::event_search::index_missed(db, 100).await.unwrap(), 0, "once");
    let hits = page(db, &by_pi, None, 50).await.unwrap().hits;
    assert_eq!(
        hits.iter().map(|h| (h.event_id.clone(), h.contract_id)).collect::<Vec<_>>(),
        vec![(late.clone(), None)]
    );
    // The refund came before its payment's credit; once the credit is known, so is the contract.
    let credit = app::domain::events::Credit {
        contract_id: t.contract_id,
        payment_id: pi.clone(),
        revisions: 2,
        amount: app::domain::Money::new(15_000, app::domain::Currency::parse("usd").unwrap()),
        livemode: false,
    };
    app::services::fulfil::fulfil(db, &credit, app::services::fulfil::Evidence::Confirmed, Utc::now()).await.unwrap();
    assert_eq!(app::store::event_search::fill_contracts(db, now - Duration::days(1)).await.unwrap(), 1);
    let by_contract = EventFilter { contract_id: Some(t.contract_id), ..EventFilter::default() };
    assert!(page(db, &by_contract, None, 50).await.unwrap().hits.iter().any(|h| h.event_id == late));
    assert_eq!(app::store::event_search::fill_contracts(db, now - Duration::days(1)).await.unwrap(), 0, "once");
}
