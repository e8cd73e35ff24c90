//! The webhook gateway's other senders (`/webhooks/{source}`), through the real router: each
//! kind verified by its own scheme (signed here independently, with hmac and base64), stored byte
//! for byte before the 2xx, once however many copies arrive at once, refused and stored nowhere
//! when forged or stale, 503 when the store cannot write; secrets rotated with an overlap.
use crate::helpers::*;
use crate::on_both_databases;
use app::senders::{Algorithm, Encoding, HmacConfig, Scheme};
use app::services::sources;
use app::store::gateway_events;
use base64::Engine;
use hmac::{Hmac, Mac};

on_both_databases!(
    each_kind_is_verified_stored_byte_for_byte_and_a_copy_stores_nothing,
    forged_stale_or_unkeyed_deliveries_are_refused_and_stored_nowhere,
    copies_of_one_event_arriving_at_once_store_one_row,
    a_rotated_secret_keeps_working_for_its_overlap_and_not_after,
    unknown_and_disabled_sources_are_not_found_and_stripe_keeps_its_route,
    a_store_that_cannot_write_answers_503_and_the_retry_is_stored,
    gateway_events_are_append_only_and_sealed_with_stripes,
    the_cli_adds_lists_rotates_and_disables_sources,
    admins_find_a_sources_events_read_them_as_received_and_export_them,
    paypal_deliveries_are_verified_with_the_certificate_they_name,
);

const SQUARE_KEY: &str = "square-signature-key-for-tests";
const SQUARE_URL: &str = "https://store.example/webhooks/square";
const GITHUB_SECRET: &str = "It's a Secret to Everybody";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn hmac256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// A Standard Webhooks delivery's headers: HMAC-SHA256 of `{id}.{t}.{body}` keyed by the
/// base64 after `whsec_`.
fn standard_headers(secret: &str, id: &str, t: i64, body: &str) -> Vec<(&'static str, String)> {
    let key = b64().decode(secret.trim_start_matches("whsec_")).unwrap();
    let sig = b64().encode(hmac256(&key, format!("{id}.{t}.{body}").as_bytes()));
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", t.to_string()),
        ("webhook-signature", format!("v1,{sig}")),
    ]
}

fn square_headers(body: &str) -> Vec<(&'static str, String)> {
    let sig = b64().encode(hmac256(SQUARE_KEY.as_bytes(), format!("{SQUARE_URL}{body}").as_bytes()));
    vec![("x-square-hmacsha256-signature", sig)]
}

fn github_headers(body: &str) -> Vec<(&'static str, String)> {
    vec![("x-hub-signature-256", format!("sha256={}", hex::encode(hmac256(GITHUB_SECRET.as_bytes(), body.as_bytes()))))]
}

/// Adds the three shared-secret sources; returns the Standard Webhooks secret made for it.
async fn add_sources(t: &TestApp) -> String {
    let db = t.store();
    let now = chrono::Utc::now();
    let made = sources::add(db, "billing", &Scheme::StandardWebhooks, None, now).await.unwrap().expect("a secret made");
    assert!(made.starts_with("whsec_"), "{made}");
    let square = Scheme::Square { notification_url: SQUARE_URL.into() };
    assert_eq!(sources::add(db, "square", &square, Some(SQUARE_KEY.into()), now).await.unwrap(), None);
    let github = Scheme::GenericHmac(HmacConfig {
        header: "x-hub-signature-256".into(),
        algorithm: Algorithm::Sha256,
        encoding: Encoding::Hex,
        prefix: Some("sha256=".into()),
        timestamp_header: None,
        id_pointer: "/delivery".into(),
        type_pointer: "/action".into(),
    });
    sources::add(db, "github", &github, Some(GITHUB_SECRET.into()), now).await.unwrap();
    made
}

fn square_body(id: &str) -> String {
    format!(
        r#"{{"merchant_id":"M1","type":"payment.updated","event_id":"{id}","created_at":"2026-12-05T10:00:00Z","data":{{"type":"payment","id":"p1"}}}}"#
    )
}

async fn each_kind_is_verified_stored_byte_for_byte_and_a_copy_stores_nothing(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let secret = add_sources(&t).await;
    // Odd spacing and key order on purpose: what is stored is what was sent, not a re-serialisation.
    let sw_body = r#"{"type": "invoice.paid",  "data":{"amount":1500}}"#;
    let sq_body = square_body("sq-evt-1");
    let gh_body = r#"{"delivery":"gh-1","action":"opened","number":7}"#;
    let cases = [
        (
            "billing",
            standard_headers(&secret, "msg_1", now(), sw_body),
            sw_body.to_string(),
            "msg_1",
            Some("invoice.paid"),
        ),
        ("square", square_headers(&sq_body), sq_body.clone(), "sq-evt-1", Some("payment.updated")),
        ("github", github_headers(gh_body), gh_body.to_string(), "gh-1", Some("opened")),
    ];
    for (source, headers, body, id, event_type) in cases {
        let first = t.post(&format!("/webhooks/{source}"), &headers, body.clone()).await;
        assert_eq!(first.status, 200, "{source}: {:?}", first.body);
        assert_eq!(first.body["event_id"], id, "{source}");
        assert!(first.body.get("duplicate").is_none(), "{source}: {:?}", first.body);
        let again = t.post(&format!("/webhooks/{source}"), &headers, body.clone()).await;
        assert_eq!((again.status, &again.body["duplicate"]), (200, &serde_json::json!(true)), "{source}");
        let stored = gateway_events::get(t.store(), source, id).await.unwrap().expect("stored");
        assert_eq!(stored.payload, body.as_bytes(), "{source}: byte for byte");
        assert_eq!(stored.event_type.as_deref(), event_type, "{source}");
        let kept: serde_json::Value = serde_json::from_str(&stored.headers).unwrap();
        let (signature_header, _) = &headers[headers.len() - 1];
        assert!(kept.get(*signature_header).is_some(), "{source}: the signature is kept as evidence: {kept}");
        assert_eq!(gateway_events::count(t.store(), source).await.unwrap(), 1, "{source}: one row");
    }
    let metrics = t.metrics().await;
    assert!(
        metrics.contains(r#"revision_store_gateway_deliveries_total{source="square",outcome="duplicate"} 1"#),
        "{metrics}"
    );
}

async fn forged_stale_or_unkeyed_deliveries_are_refused_and_stored_nowhere(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let secret = add_sources(&t).await;
    let body = r#"{"type":"invoice.paid"}"#;
    let other = "whsec_".to_string() + &b64().encode([7u8; 24]);
    let refused = [
        ("billing", standard_headers(&other, "msg_forged", now(), body), body.to_string(), "no signature matched"),
        ("billing", standard_headers(&secret, "msg_old", now() - 600, body), body.to_string(), "timestamp"),
        ("billing", vec![], body.to_string(), "missing header"),
        ("square", square_headers(&square_body("sq-2")), square_body("sq-3"), "no signature matched"),
        // Signed, but with no event id to key it by: a replay could not be told from a new event.
        ("github", github_headers(r#"{"action":"opened"}"#), r#"{"action":"opened"}"#.to_string(), "not an event"),
    ];
    for (source, headers, sent, why) in refused {
        let reply = t.post(&format!("/webhooks/{source}"), &headers, sent).await;
        assert_eq!(reply.status, 400, "{source}: {:?}", reply.body);
        assert!(reply.body["error"].as_str().unwrap().contains(why), "{source}: {:?}", reply.body);
    }
    for source in ["billing", "square", "github"] {
        assert_eq!(gateway_events::count(t.store(), source).await.unwrap(), 0, "{source} stored nothing");
    }
    let metrics = t.metrics().await;
    assert!(metrics.contains(r#"source="billing",outcome="refused_no_match"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"source="billing",outcome="refused_outside_tolerance"} 1"#), "{metrics}");
}

async fn copies_of_one_event_arriving_at_once_store_one_row(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    add_sources(&t).await;
    let body = square_body("sq-storm");
    let headers = square_headers(&body);
    let replies =
        futures_util::future::join_all((0..16).map(|_| t.post("/webhooks/square", &headers, body.clone()))).await;
    assert!(replies.iter().all(|r| r.status == 200), "every copy answered 200");
    let stored = replies.iter().filter(|r| r.body.get("duplicate").is_none()).count();
    assert_eq!(stored, 1, "one copy stored, the others told it is a duplicate");
    assert_eq!(gateway_events::count(t.store(), "square").await.unwrap(), 1);
    // Out of order, with copies between: each event stored once, whatever came first.
    for n in [3, 1, 3, 5, 2, 1, 4, 5, 2] {
        let body = square_body(&format!("sq-order-{n}"));
        assert_eq!(t.post("/webhooks/square", &square_headers(&body), body.clone()).await.status, 200);
    }
    assert_eq!(gateway_events::count(t.store(), "square").await.unwrap(), 1 + 5);
}

async fn a_rotated_secret_keeps_working_for_its_overlap_and_not_after(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let old = add_sources(&t).await;
    let db = t.store();
    let body = r#"{"type":"a"}"#;
    let new = sources::rotate(db, "billing", None, chrono::Duration::hours(1), chrono::Utc::now())
        .await
        .unwrap()
        .expect("a new secret made");
    assert_ne!(new, old);
    for (i, secret) in [&old, &new].into_iter().enumerate() {
        let reply =
            t.post("/webhooks/billing", &standard_headers(secret, &format!("msg_r{i}"), now(), body), body).await;
        assert_eq!(reply.status, 200, "during the overlap, secret {i}: {:?}", reply.body);
    }
    // No overlap: the secret before is refused at once, the new one works.
    let newest =
        sources::rotate(db, "billing", None, chrono::Duration::zero(), chrono::Utc::now()).await.unwrap().unwrap();
    let stale = t.post("/webhooks/billing", &standard_headers(&new, "msg_r2", now(), body), body).await;
    assert_eq!(stale.status, 400, "{:?}", stale.body);
    let fresh = t.post("/webhooks/billing", &standard_headers(&newest, "msg_r3", now(), body), body).await;
    assert_eq!(fresh.status, 200, "{:?}", fresh.body);
    let week_and_a_bit = chrono::Duration::hours(24 * 7 + 1);
    assert!(matches!(
        sources::rotate(db, "billing", None, week_and_a_bit, chrono::Utc::now()).await,
        Err(sources::SourceError::Overlap)
    ));
}

async fn unknown_and_disabled_sources_are_not_found_and_stripe_keeps_its_route(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    add_sources(&t).await;
    let body = square_body("sq-off");
    assert_eq!(t.post("/webhooks/nobody", &square_headers(&body), body.clone()).await.status, 404);
    assert_eq!(t.post("/webhooks/Not%20A%20Name", &[], body.clone()).await.status, 404);
    sources::set_enabled(t.store(), "square", false, chrono::Utc::now()).await.unwrap();
    assert_eq!(t.post("/webhooks/square", &square_headers(&body), body.clone()).await.status, 404);
    assert_eq!(gateway_events::count(t.store(), "square").await.unwrap(), 0, "a disabled source stores nothing");
    sources::set_enabled(t.store(), "square", true, chrono::Utc::now()).await.unwrap();
    assert_eq!(t.post("/webhooks/square", &square_headers(&body), body.clone()).await.status, 200);
    // Stripe's route is its own, and no source may take its name.
    let stripe = t.deliver(&paid(&new_event_id(), &new_payment_id(), t.contract_id)).await;
    assert_eq!(stripe.status, 200, "{:?}", stripe.body);
    let taken = sources::add(t.store(), "stripe", &Scheme::StandardWebhooks, None, chrono::Utc::now()).await;
    assert!(matches!(taken, Err(sources::SourceError::InvalidName(_))), "{taken:?}");
    let twice = sources::add(t.store(), "square", &Scheme::StandardWebhooks, None, chrono::Utc::now()).await;
    assert!(matches!(twice, Err(sources::SourceError::Exists(_))), "{twice:?}");
}

async fn a_store_that_cannot_write_answers_503_and_the_retry_is_stored(kind: DbKind) {
    let t = TestApp::spawn_for_outage(kind).await;
    add_sources(&t).await;
    let body = square_body("sq-outage");
    let outage = t.db.make_unavailable().await;
    let refused = t.post("/webhooks/square", &square_headers(&body), body.clone()).await;
    assert_eq!(refused.status, 503, "never a 2xx for an event we do not hold: {:?}", refused.body);
    outage.restore().await;
    let stored = eventually(PATIENCE, || async {
        t.post("/webhooks/square", &square_headers(&body), body.clone()).await.status == 200
    })
    .await;
    assert!(stored, "the sender's retry is stored");
    // The 503 is counted for the alert on deliveries that could not be stored, as Stripe's are.
    let since = chrono::Utc::now() - chrono::Duration::minutes(10);
    let counted = eventually(PATIENCE, || async {
        let _ = app::services::alerts::gather_faults(&t.app.services, chrono::Utc::now()).await;
        let faults = app::store::webhook_faults::since(t.store(), since).await.unwrap();
        faults.iter().any(|(kind, n)| kind == "store_unavailable" && *n >= 1)
    })
    .await;
    assert!(counted, "the gateway's 503 reaches the alert rules");
    assert_eq!(gateway_events::count(t.store(), "square").await.unwrap(), 1);
}

async fn gateway_events_are_append_only_and_sealed_with_stripes(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    add_sources(&t).await;
    let body = square_body("sq-sealed");
    assert_eq!(t.post("/webhooks/square", &square_headers(&body), body.clone()).await.status, 200);
    assert_eq!(t.deliver(&paid(&new_event_id(), &new_payment_id(), t.contract_id)).await.status, 200);
    let refused = match t.store() {
        app::store::Db::Sqlite(s) => {
            sqlx::query("UPDATE gateway_events SET event_type = 'x'").execute(&s.writer).await.err()
        }
        app::store::Db::Postgres(p) => sqlx::query("DELETE FROM gateway_events").execute(p).await.err(),
    };
    assert!(refused.is_some(), "the triggers refuse changes to the evidence");
    let stored = gateway_events::get(t.store(), "square", "sq-sealed").await.unwrap().unwrap();
    let start = app::services::seals::period_start(stored.received_at);
    let end = start + app::services::seals::period();
    let (count, _) = app::services::seals::digest_of(t.store(), start, end).await.unwrap();
    assert!(count >= 2, "the hour's seal covers the gateway's event and Stripe's: {count}");
}

async fn the_cli_adds_lists_rotates_and_disables_sources(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let url = t.db.url.clone();
    let ok = |args: &[&str]| {
        let out = run_cli(&url, args, &[]);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let added = ok(&["sources", "add", "billing", "--kind", "standard-webhooks"]);
    assert!(added.contains("/webhooks/billing") && added.contains("whsec_"), "{added}");
    ok(&["sources", "add", "sq", "--kind", "square", "--notification-url", SQUARE_URL, "--secret", SQUARE_KEY]);
    let refused = run_cli(&url, &["sources", "add", "sq2", "--kind", "square", "--secret", "k"], &[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--notification-url"), "a clear error");
    ok(&["sources", "rotate", "sq", "--secret", "the-next-key", "--overlap-hours", "2"]);
    ok(&["sources", "disable", "billing"]);
    let listed = ok(&["sources", "list"]);
    let line =
        |name: &str| listed.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{listed}")).to_string();
    assert!(line("billing").contains("disabled"), "{listed}");
    assert!(line("sq ").contains("enabled") && line("sq ").contains("2 active secret(s)"), "{listed}");
    let bundle = run_cli(&url, &["evidence", "source", "sq", "--from", "2026-01-01", "--out", "-"], &[]);
    assert!(bundle.status.success(), "{}", String::from_utf8_lossy(&bundle.stderr));
    let names: Vec<String> = tar::Archive::new(bundle.stdout.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("/SHA256SUMS")) && names.iter().any(|n| n.ends_with("/README.txt")),
        "{names:?}"
    );
    let unknown = run_cli(&url, &["evidence", "source", "nobody", "--out", "-"], &[]);
    assert!(!unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("nothing about nobody"));
}

/// An admin sees the sources, finds a source's events on the Events page and in its exports (the
/// `source` filter), and reads one as received with its headers and signature check; an
/// advertiser sees none of it. The CLI searches the same way.
async fn admins_find_a_sources_events_read_them_as_received_and_export_them(kind: DbKind) {
    use crate::web::{Site, ADMIN, BOB};
    let site = Site::start(kind).await;
    let db = &site.app.services.db;
    let square = Scheme::Square { notification_url: SQUARE_URL.into() };
    sources::add(db, "square", &square, Some(SQUARE_KEY.into()), chrono::Utc::now()).await.unwrap();
    let body = square_body("sq-found");
    let mut req =
        hyper::Request::post(format!("{}/webhooks/square", site.app.url())).header("content-type", "application/json");
    for (k, v) in square_headers(&body) {
        req = req.header(k, v);
    }
    assert_eq!(site.send(req, body.clone()).await.status, 200);
    let bob = site.sign_in(BOB, None).await;
    assert_eq!(site.get("/admin/sources", Some(&bob)).await.status, 403);
    let admin = site.sign_in(ADMIN, None).await;
    let list = site.get("/admin/sources", Some(&admin)).await;
    assert!(list.status == 200 && list.body.contains("/webhooks/square"), "{}", list.body);
    let found = site.get("/admin/events?source=square&type=payment.", Some(&admin)).await;
    assert!(
        found.body.contains("sq-found") && found.body.contains("/admin/sources/square/events/sq-found"),
        "{}",
        found.body
    );
    let refused = site.get("/admin/events?source=square&contract=3", Some(&admin)).await;
    assert!(
        refused.body.contains("only Stripe"),
        "a Stripe-only filter is refused, not silently empty: {}",
        refused.body
    );
    let event = site.get("/admin/sources/square/events/sq-found", Some(&admin)).await;
    assert_eq!(event.status, 200);
    for shown in ["x-square-hmacsha256-signature", "square", "payment.updated", "merchant_id"] {
        assert!(event.body.contains(shown), "{shown}: {}", event.body);
    }
    assert_eq!(site.get("/admin/sources/square/events/nope", Some(&admin)).await.status, 404);
    let csv = site.get("/admin/events.csv?source=square", Some(&admin)).await;
    assert!(
        csv.body.lines().nth(1).is_some_and(|l| l.contains(",sq-found,") && l.ends_with(",square")),
        "{}",
        csv.body
    );
    let stripe_only = site.get("/admin/events.csv", Some(&admin)).await;
    assert!(!stripe_only.body.contains("sq-found"), "without a source the search is Stripe's");
    // The source's evidence: its event byte for byte, with what we knew of it, and sums.
    let tar_answer = site.get("/admin/sources/square/evidence.tar", Some(&admin)).await;
    assert_eq!(tar_answer.status, 200);
    let mut files = std::collections::HashMap::new();
    let mut archive = tar::Archive::new(tar_answer.body.as_bytes());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        files.insert(path.rsplit_once('/').map(|(_, f)| f.to_string()).unwrap_or(path), bytes);
    }
    let (payload_name, _) =
        files.iter().find(|(_, b)| b.as_slice() == body.as_bytes()).expect("the payload as received");
    let meta: serde_json::Value = serde_json::from_slice(&files[&payload_name.replace(".json", ".meta.json")]).unwrap();
    assert_eq!((meta["event_id"].as_str(), meta["unchanged_since_stored"].as_bool()), (Some("sq-found"), Some(true)));
    assert!(String::from_utf8_lossy(&files["SHA256SUMS"]).contains(payload_name.as_str()));
    assert_eq!(site.get("/admin/sources/nobody/evidence.tar", Some(&admin)).await.status, 404);
    let out = run_cli(&site.db().url, &["events", "search", "--source", "square", "--format", "ndjson"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains(r#""source":"square""#) && text.contains("sq-found"), "{text}");
}

/// A key and self-signed certificate made by `openssl` (independent of the code under test), in
/// a temporary folder, and the PEM certificate's bytes.
fn paypal_key_and_cert() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=paypal-test"])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .output()
        .expect("openssl runs");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let cert = std::fs::read(dir.path().join("cert.pem")).unwrap();
    (dir, cert)
}

/// PayPal's signature of `transmission_id|time|webhook_id|crc32(body)`, SHA256withRSA, base64.
fn paypal_signature(dir: &std::path::Path, id: &str, time: &str, webhook_id: &str, body: &str) -> String {
    let crc = crc32(body.as_bytes());
    let message = dir.join("message");
    std::fs::write(&message, format!("{id}|{time}|{webhook_id}|{crc}")).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("key.pem"))
        .arg(&message)
        .output()
        .expect("openssl signs");
    assert!(out.status.success());
    b64().encode(out.stdout)
}

/// CRC-32 (IEEE), bit by bit: the checksum PayPal's message carries as an unsigned decimal.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// PayPal end to end: the certificate served by a real HTTP server (allowed by its origin, as a
/// test source says), fetched once for several deliveries; a forged signature, a certificate
/// URL on another host (never fetched) and a copy are each handled as they must be.
async fn paypal_deliveries_are_verified_with_the_certificate_they_name(kind: DbKind) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let t = TestApp::spawn(kind).await;
    let (dir, cert) = paypal_key_and_cert();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let certs = axum::Router::new().route(
        "/v1/notifications/certs/CERT-1",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let cert = cert.clone();
            async move { cert }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, certs).await.unwrap() });
    let scheme = Scheme::PayPal { webhook_id: "WH-TEST-1".into(), cert_hosts: vec![origin.clone()] };
    sources::add(t.store(), "paypal", &scheme, None, chrono::Utc::now()).await.unwrap();
    let headers = |id: &str, body: &str, cert_url: &str, webhook_id: &str| {
        let time = chrono::Utc::now().to_rfc3339();
        vec![
            ("paypal-transmission-id", id.to_string()),
            ("paypal-transmission-time", time.clone()),
            ("paypal-transmission-sig", paypal_signature(dir.path(), id, &time, webhook_id, body)),
            ("paypal-cert-url", cert_url.to_string()),
            ("paypal-auth-algo", "SHA256withRSA".to_string()),
        ]
    };
    let cert_url = format!("{origin}/v1/notifications/certs/CERT-1");
    for n in 1..=3 {
        let body = format!(
            r#"{{"id":"WH-EVT-{n}","event_type":"PAYMENT.CAPTURE.COMPLETED","create_time":"2026-12-05T10:00:00Z"}}"#
        );
        let reply =
            t.post("/webhooks/paypal", &headers(&format!("tx-{n}"), &body, &cert_url, "WH-TEST-1"), body.clone()).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let again =
            t.post("/webhooks/paypal", &headers(&format!("tx-{n}b"), &body, &cert_url, "WH-TEST-1"), body).await;
        assert_eq!(again.body["duplicate"], true, "PayPal's retry of the same event id stores nothing");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the certificate is fetched once and kept while in date");
    let body = r#"{"id":"WH-EVT-9","event_type":"PAYMENT.CAPTURE.COMPLETED"}"#;
    // Signed for another webhook id: the message differs, so the signature does not match.
    let forged = t.post("/webhooks/paypal", &headers("tx-9", body, &cert_url, "WH-OTHER"), body).await;
    assert_eq!((forged.status, forged.body["error"].as_str()), (400, Some("no signature matched")));
    let elsewhere =
        t.post("/webhooks/paypal", &headers("tx-10", body, "https://evil.example/cert.pem", "WH-TEST-1"), body).await;
    assert_eq!(elsewhere.status, 400);
    assert!(elsewhere.body["error"].as_str().unwrap().contains("not trusted"), "{:?}", elsewhere.body);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(gateway_events::count(t.store(), "paypal").await.unwrap(), 3);
    let stored = gateway_events::get(t.store(), "paypal", "WH-EVT-2").await.unwrap().unwrap();
    assert_eq!(stored.event_type.as_deref(), Some("PAYMENT.CAPTURE.COMPLETED"));
    assert!(stored.verification.contains("paypal"), "{}", stored.verification);
}
