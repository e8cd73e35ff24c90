//! The browser-facing rules, over HTTP against the real router in simulator mode: sessions,
//! sign-in throttling, who may see what, cross-site writes, revision requests with artwork,
//! and the return page's confirmation racing the webhook.
use crate::helpers::*;
use crate::on_both_databases;
use app::web::admin::contracts::{AdminContracts, LoadAdminContract};
use app::web::admin::events::{AdminEvent, AdminEvents};
use app::web::auth::{SignIn, SignOut};
use app::web::checkout::{BuyPack, ConfirmPayment};
use app::web::contracts::{LoadContract, MyContracts};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use leptos::server_fn::ServerFn;
use serde_json::Value;
use std::time::Duration;

on_both_databases!(
    sign_in_gives_a_fresh_http_only_session_and_sign_out_ends_it,
    sessions_are_written_only_when_they_change,
    failed_sign_ins_are_throttled,
    advertisers_reach_only_their_own_contracts_and_admins_everything,
    cross_site_writes_are_refused,
    revision_requests_take_artwork_and_stop_at_zero,
    the_return_page_credits_before_a_late_webhook_and_only_once,
    admins_sort_and_page_contracts_and_see_why_an_event_failed,
    admins_reconcile_from_their_pages_and_download_the_findings,
    admins_read_revenue_as_a_chart_a_table_and_a_csv,
    admins_see_every_payment_attempt_and_why_it_failed,
);

pub(crate) struct Site {
    pub(crate) app: server::Application,
    _db: TestDb,
    http: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: hyper::HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub(crate) fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
    /// The session cookie this answer sets: (`name=value`, the whole header).
    pub(crate) fn session_cookie(&self) -> Option<(String, String)> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
            c.starts_with("revision_store_session=").then(|| (c.split(';').next().unwrap().to_string(), c.to_string()))
        })
    }
}

pub(crate) const ANN: (&str, &str) = ("ann@web.test", "ann-password-long");
pub(crate) const BOB: (&str, &str) = ("bob@web.test", "bob-password-long");
pub(crate) const ADMIN: (&str, &str) = ("admin@web.test", "admin-password-long");

impl Site {
    pub(crate) async fn start(kind: DbKind) -> Self {
        Self::start_with(kind, |_| {}).await
    }

    pub(crate) async fn start_with(kind: DbKind, adjust: impl FnOnce(&mut server::config::Settings)) -> Self {
        let site = Self::start_on(TestDb::new(kind).await, adjust).await;
        site.seed().await;
        site
    }

    /// A process on `db` (a second one when `db` is another site's, shared).
    pub(crate) async fn start_on(db: TestDb, adjust: impl FnOnce(&mut server::config::Settings)) -> Self {
        let mut s = settings(&db.url);
        s.stripe.mode = Some(app::domain::deployment::DeploymentMode::Simulator);
        s.stripe.webhook_secrets.clear();
        s.artwork.data_dir = std::env::temp_dir().join(format!("revision-store-web-{}", unique()));
        adjust(&mut s);
        let app = server::Application::start(&s).await.unwrap();
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        Self { app, _db: db, http }
    }

    /// Ann and Bob, each with a contract, and an admin.
    pub(crate) async fn seed(&self) {
        let store = &self.app.services.db;
        use app::domain::users::Role;
        use app::services::accounts::create_user;
        use app::store::contracts::{create, NewContract};
        for (email, password) in [ANN, BOB] {
            let u = create_user(store, email, Role::Advertiser, password).await.unwrap();
            let publication = if email == ANN.0 { "Ann's Gazette" } else { "Bob's Weekly" };
            let c = NewContract { advertiser_id: u.id, publication, ad_size: "Half page", base_revisions: 3 };
            create(store, &c, chrono::Utc::now()).await.unwrap();
        }
        create_user(store, ADMIN.0, Role::Admin, ADMIN.1).await.unwrap();
    }

    pub(crate) fn db(&self) -> &TestDb {
        &self._db
    }

    /// Where this site's forms come from: `PUBLIC_URL` when set (the cross-site check then wants
    /// it), else the address it listens on.
    pub(crate) fn origin(&self) -> String {
        self.app.services.settings.web.public_origin.clone().unwrap_or_else(|| self.app.url())
    }

    pub(crate) async fn send(&self, req: hyper::http::request::Builder, body: impl Into<Bytes>) -> Answer {
        let res = self.http.request(req.body(Full::new(body.into())).unwrap());
        // A request the server never answers fails here, not at CI's time limit.
        let res = tokio::time::timeout(REQUEST_TIMEOUT, res).await.expect("the server answers").expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned();
        Answer { status, headers, body }
    }

    pub(crate) async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let mut req = hyper::Request::get(format!("{}{path}", self.app.url()));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        self.send(req, Bytes::new()).await
    }

    /// Calls a server function as the hydrated page does (form-encoded POST from this origin).
    pub(crate) async fn call<F: ServerFn>(&self, cookie: Option<&str>, fields: &[(&str, &str)]) -> Answer {
        self.call_with::<F>(cookie, &[], fields).await
    }

    pub(crate) async fn call_with<F: ServerFn>(
        &self,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let mut req = hyper::Request::post(format!("{}{}", self.app.url(), F::PATH))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", self.origin());
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req, body).await
    }

    /// Signs in; returns the session cookie (`name=value`).
    pub(crate) async fn sign_in(&self, (email, password): (&str, &str), cookie: Option<&str>) -> String {
        let a = self.call::<SignIn>(cookie, &[("email", email), ("password", password)]).await;
        assert!(a.status < 400, "sign-in failed: {} {}", a.status, a.body);
        a.session_cookie().expect("a session cookie").0
    }

    pub(crate) async fn contract_of(&self, email: &str) -> i64 {
        let user =
            app::store::users::find_by_email(&self.app.services.db, &app::domain::users::Email::parse(email).unwrap())
                .await
                .unwrap()
                .unwrap();
        app::store::contracts::list_for_advertiser(&self.app.services.db, user.id).await.unwrap()[0].id
    }

    pub(crate) async fn available(&self, contract_id: i64) -> i64 {
        app::store::ledger::balance(&self.app.services.db, contract_id).await.unwrap().unwrap().available()
    }

    pub(crate) async fn upload(
        &self,
        cookie: &str,
        contract_id: i64,
        origin: &str,
        notes: &str,
        file: Option<(&str, &[u8])>,
    ) -> Answer {
        let boundary = "----revision-store-test";
        let mut body =
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"notes\"\r\n\r\n{notes}\r\n").into_bytes();
        if let Some((name, bytes)) = file {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"artwork\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let req = hyper::Request::post(format!("{}/contracts/{contract_id}/revisions", self.app.url()))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .header("origin", origin)
            .header("cookie", cookie);
        self.send(req, body).await
    }
}

async fn sign_in_gives_a_fresh_http_only_session_and_sign_out_ends_it(kind: DbKind) {
    let site = Site::start(kind).await;
    let a = site.call::<SignIn>(None, &[("email", ANN.0), ("password", ANN.1)]).await;
    let (first, header) = a.session_cookie().expect("a session cookie");
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax"), "{header}");
    assert!(!header.contains("Secure"), "plain http without SECURE_COOKIES: {header}");
    let mine = site.call::<MyContracts>(Some(&first), &[]).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_eq!(mine.json()[0]["publication"], "Ann's Gazette");

    // Signing in again cycles the id: the old id is worthless afterwards (no fixation).
    let second = site.sign_in(ANN, Some(&first)).await;
    assert_ne!(first, second);
    assert_eq!(site.call::<MyContracts>(Some(&first), &[]).await.status, 401);
    assert_eq!(site.call::<MyContracts>(Some(&second), &[]).await.status, 200);

    // Pages: signed out, a data page sends you to sign in and back.
    let page = site.get("/contracts", None).await;
    assert_eq!((page.status, page.location()), (303, "/login?next=/contracts"));
    // The login form carries `next` in its HTML, so it works before (or without) the wasm.
    let login = site.get("/login?next=/contracts/7", None).await;
    assert!(login.body.contains(r#"name="next" value="/contracts/7""#), "{}", login.body);
    assert_eq!(site.get("/contracts", Some(&second)).await.status, 200);

    site.call::<SignOut>(Some(&second), &[]).await;
    assert_eq!(site.call::<MyContracts>(Some(&second), &[]).await.status, 401);
    assert_eq!(site.get("/contracts", Some(&second)).await.status, 303);
    site.app.stop().await;

    let secure = Site::start_with(kind, |s| s.web.secure_cookies = true).await;
    let a = secure.call::<SignIn>(None, &[("email", ANN.0), ("password", ANN.1)]).await;
    assert!(a.session_cookie().unwrap().1.contains("Secure"));
    secure.app.stop().await;
}

/// Every session row: (id, data, expires_at as text).
async fn session_rows(db: &app::store::Db) -> Vec<(String, String, String)> {
    let sql = "SELECT id, data, CAST(expires_at AS TEXT) FROM sessions ORDER BY id";
    match db {
        app::store::Db::Sqlite(s) => sqlx::query_as(sql).fetch_all(&s.writer).await.unwrap(),
        app::store::Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
    }
}

async fn sessions_are_written_only_when_they_change(kind: DbKind) {
    let site = Site::start(kind).await;
    let db = site.app.services.db.clone();
    let ann = site.sign_in(ANN, None).await;
    let before = session_rows(&db).await;
    assert_eq!(before.len(), 1);
    // Reading pages, calling a read-only server function, loading assets: no write at all.
    for path in ["/contracts", "/", "/pkg/revision-store.css", "/favicon.svg"] {
        site.get(path, Some(&ann)).await;
        site.get(path, None).await;
    }
    assert_eq!(site.call::<MyContracts>(Some(&ann), &[]).await.status, 200);
    assert_eq!(session_rows(&db).await, before, "nothing changed, nothing written");

    // An hour after its last mark, a page view marks it again, which extends its expiry.
    // (Edited as text: the record's id is a 128-bit number a JSON value would round.)
    let (id, data, _) = before[0].clone();
    let record: serde_json::Value = serde_json::from_str(&data).unwrap();
    let marked = record["data"]["touched_at"].as_i64().expect("marked at sign-in");
    let aged = data.replace(&format!("\"touched_at\":{marked}"), &format!("\"touched_at\":{}", marked - 3600));
    assert_ne!(aged, data);
    let record = aged;
    let sql = "UPDATE sessions SET data = $1 WHERE id = $2";
    match &db {
        app::store::Db::Sqlite(s) => {
            sqlx::query(sql).bind(&record).bind(&id).execute(&s.writer).await.unwrap().rows_affected()
        }
        app::store::Db::Postgres(p) => {
            sqlx::query(sql).bind(&record).bind(&id).execute(p).await.unwrap().rows_affected()
        }
    };
    assert_eq!(site.get("/contracts", Some(&ann)).await.status, 200);
    let after = session_rows(&db).await;
    let record: serde_json::Value = serde_json::from_str(&after[0].1).unwrap();
    assert!(record["data"]["touched_at"].as_i64().unwrap() >= marked, "marked now: {record}");
    assert!(after[0].2 >= before[0].2, "the expiry moved on: {:?} -> {:?}", before[0].2, after[0].2);
    site.app.stop().await;
}

async fn failed_sign_ins_are_throttled(kind: DbKind) {
    // Behind a proxy (CLIENT_IP_HEADER), so the test can speak from several addresses.
    let proxied = |s: &mut server::config::Settings| s.web.client_ip_header = Some("x-forwarded-for".into());
    let site = Site::start_with(kind, proxied).await;
    let from = |client: &'static str| [("x-forwarded-for", client)];
    let attacker = from("198.51.100.66");
    // Ten guesses at once: the check and the count are one step, so only five get to try (four
    // free, then the delays start).
    let fields = [("email", BOB.0), ("password", "wrong-password-x")];
    let answers =
        futures_util::future::join_all((0..10).map(|_| site.call_with::<SignIn>(None, &attacker, &fields))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5, "{statuses:?}");
    assert!(answers.iter().any(|a| a.body.contains("do not match")));
    // From the attacker's address even the right password waits: the guesser cannot tell.
    let right = [("email", BOB.0), ("password", BOB.1)];
    let a = site.call_with::<SignIn>(None, &attacker, &right).await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(a.body.contains("TooManyAttempts"), "{}", a.body);
    // Bob, from his own address, signs in at once: the attacker slowed only themselves.
    let a = site.call_with::<SignIn>(None, &from("203.0.113.20"), &right).await;
    assert!(a.status < 400, "{}: {}", a.status, a.body);
    // An unknown email answers exactly like a wrong password.
    let unknown = [("email", "nobody@web.test"), ("password", "whatever-password")];
    assert_eq!(site.call_with::<SignIn>(None, &from("203.0.113.21"), &unknown).await.status, 422);

    // The counters are in the database: a second process refuses the attacker too. (On SQLite
    // they are written from memory within a second: wait for the pair's and the address's.)
    let db = site.app.services.db.clone();
    let written = eventually(Duration::from_secs(10), || {
        let db = db.clone();
        async move { crate::sessions::counters_with_at_least(&db, 5).await >= 2 }
    });
    assert!(written.await, "the attacker's counts are stored");
    let second = Site::start_on(site._db.shared(), proxied).await;
    let a = second.call_with::<SignIn>(None, &attacker, &right).await;
    assert_eq!(a.status, 429, "the other process knows: {}", a.body);
    second.app.stop().await;

    // The per-address limit (30) counts each client across emails, by the address the proxy
    // appended last; what the client itself claims comes first and is ignored.
    for i in 0..30 {
        let email = format!("guess{i}@web.test");
        let fields = [("email", email.as_str()), ("password", "wrong-password-x")];
        let a = site.call_with::<SignIn>(None, &from("1.2.3.4, 203.0.113.7"), &fields).await;
        assert_eq!(a.status, 422, "attempt {i}: {}", a.body);
    }
    let fields = [("email", ANN.0), ("password", ANN.1)];
    assert_eq!(site.call_with::<SignIn>(None, &from("1.2.3.4, 203.0.113.7"), &fields).await.status, 429);
    assert!(site.call_with::<SignIn>(None, &from("203.0.113.8"), &fields).await.status < 400);
    site.app.stop().await;
}

async fn advertisers_reach_only_their_own_contracts_and_admins_everything(kind: DbKind) {
    let site = Site::start(kind).await;
    let anns = site.contract_of(ANN.0).await.to_string();
    let bob = site.sign_in(BOB, None).await;
    let ann = site.sign_in(ANN, None).await;

    // Bob asks for Ann's contract every way there is: not found, no data.
    let a = site.call::<LoadContract>(Some(&bob), &[("contract_id", &anns)]).await;
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(!a.body.contains("Ann"), "{}", a.body);
    let page = site.get(&format!("/contracts/{anns}"), Some(&bob)).await;
    assert_eq!(page.status, 404);
    assert!(
        page.body.contains("Not found")
            && !page.body.contains("Ann&#x27;s Gazette")
            && !page.body.contains("Ann's Gazette")
    );
    assert_eq!(site.call::<BuyPack>(Some(&bob), &[("contract_id", &anns)]).await.status, 404);
    // Ann's own contract works, and buying starts a PaymentIntent for it.
    assert_eq!(site.call::<LoadContract>(Some(&ann), &[("contract_id", &anns)]).await.status, 200);
    let bought = site.call::<BuyPack>(Some(&ann), &[("contract_id", &anns)]).await;
    assert_eq!(bought.status, 200, "{}", bought.body);
    let pi = bought.json()["payment_intent_id"].as_str().unwrap().to_string();
    assert_eq!(bought.json()["price"], "$150.00");
    // ...whose confirmation Bob cannot ask for.
    assert_eq!(site.call::<ConfirmPayment>(Some(&bob), &[("payment_intent_id", &pi)]).await.status, 404);

    // Admin functions and pages need the admin role.
    let fields = [("search", ""), ("sort", "Id"), ("page", "1")];
    assert_eq!(site.call::<AdminContracts>(Some(&bob), &fields).await.status, 403);
    assert_eq!(site.call::<AdminContracts>(None, &fields).await.status, 401);
    assert_eq!(site.get("/admin", Some(&bob)).await.status, 403);
    let admin = site.sign_in(ADMIN, None).await;
    let all = site.call::<AdminContracts>(Some(&admin), &fields).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.json()["total"], 2);
    let found = site.call::<AdminContracts>(Some(&admin), &[("search", "BOB'S"), ("sort", "Id"), ("page", "1")]).await;
    assert_eq!(found.json()["rows"].as_array().unwrap().len(), 1);
    assert_eq!(found.json()["rows"][0]["publication"], "Bob's Weekly");
    // LIKE wildcards in a search are literal.
    let none = site.call::<AdminContracts>(Some(&admin), &[("search", "%"), ("sort", "Id"), ("page", "1")]).await;
    assert_eq!(none.json()["total"], 0);
    // Advertiser pages are for advertisers.
    assert_eq!(site.call::<MyContracts>(Some(&admin), &[]).await.status, 403);

    // The money trail: Ann pays, the webhook credits, the admin sees the credit, the events
    // behind it and their raw payloads.
    let sim = format!("{}{}", site.app.url(), app::stripe::simulator::MOUNT);
    let secret = bought.json()["client_secret"].as_str().unwrap().to_string();
    let paid = post_form(
        &format!("{sim}/v1/payment_intents/{pi}/confirm"),
        app::stripe::simulator::PUBLISHABLE_KEY,
        &[("client_secret", &secret), ("payment_method", "pm_card_visa")],
    )
    .await;
    assert_eq!(paid.body["status"], "succeeded");
    let contract: i64 = anns.parse().unwrap();
    assert!(eventually(std::time::Duration::from_secs(10), || async { site.available(contract).await == 5 }).await);
    let trail = site.call::<LoadAdminContract>(Some(&admin), &[("contract_id", &anns)]).await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    let trail = trail.json();
    let event_id = trail["credits"][0]["event_id"].as_str().expect("credited by a webhook").to_string();
    let events = trail["attempts"][0]["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["event_type"] == "payment_intent.succeeded" && e["event_id"] == event_id.as_str()));
    assert!(events.iter().any(|e| e["event_type"] == "charge.succeeded"), "{events:?}");
    let raw = site.call::<AdminEvent>(Some(&admin), &[("event_id", &event_id)]).await.json();
    assert!(raw["payload"].as_str().unwrap().contains(&pi));
    assert_eq!(raw["line"]["status"], "processed");
    assert_eq!(site.call::<AdminEvent>(Some(&ann), &[("event_id", &event_id)]).await.status, 403);
    assert_eq!(site.call::<AdminEvent>(Some(&admin), &[("event_id", "evt_nope")]).await.status, 404);
    site.app.stop().await;
}

async fn cross_site_writes_are_refused(kind: DbKind) {
    let site = Site::start(kind).await;
    let ann = site.sign_in(ANN, None).await;
    let contract = site.contract_of(ANN.0).await;
    let path = format!("{}{}", site.app.url(), <SignIn as ServerFn>::PATH);
    let evil = |req: hyper::http::request::Builder| {
        req.header("content-type", "application/x-www-form-urlencoded").header("cookie", ann.as_str())
    };
    let a = site
        .send(evil(hyper::Request::post(&path).header("origin", "http://evil.example")), "email=a%40b.c&password=x")
        .await;
    assert_eq!(a.status, 403);
    let a = site.send(evil(hyper::Request::post(&path).header("sec-fetch-site", "cross-site")), "email=a").await;
    assert_eq!(a.status, 403);
    let a = site.upload(&ann, contract, "http://evil.example", "forged", None).await;
    assert_eq!(a.status, 403);
    assert_eq!(site.available(contract).await, 3, "nothing was consumed");
    // The webhook is not a browser route: Stripe sends no Origin and it has its own check.
    let hook = site
        .send(
            hyper::Request::post(format!("{}/webhooks/stripe", site.app.url())).header("origin", "http://evil.example"),
            "{}",
        )
        .await;
    assert_eq!(hook.status, 400, "refused by the signature check, not the origin check: {}", hook.body);
    site.app.stop().await;
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

async fn revision_requests_take_artwork_and_stop_at_zero(kind: DbKind) {
    let site = Site::start(kind).await;
    let ann = site.sign_in(ANN, None).await;
    let bob = site.sign_in(BOB, None).await;
    let contract = site.contract_of(ANN.0).await;
    let origin = site.origin();

    let a = site.upload(&ann, contract, &origin, "Bigger logo, please", Some(("../../logo.png", PNG))).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let requests = app::store::ledger::requests(&site.app.services.db, contract).await.unwrap();
    let r = &requests[0];
    assert_eq!(
        (r.artwork_name.as_deref(), r.artwork_type.as_deref(), r.artwork_size),
        (Some("logo.png"), Some("image/png"), Some(PNG.len() as i64))
    );
    let stored = site.app.artwork.local_root().expect("a local folder").join(r.artwork_path.as_deref().unwrap());
    assert_eq!(std::fs::read(&stored).unwrap(), PNG, "kept under the data directory by a server-chosen name");
    assert!(!r.artwork_path.as_deref().unwrap().contains("logo"));

    // The owner and admins can open it (the sniffed type, shown inline, nothing to run) and
    // download it; anyone else gets the answer for what does not exist.
    let url = format!("/contracts/{contract}/revisions/{}/artwork", r.id);
    let opened = site.get(&url, Some(&ann)).await;
    assert_eq!(opened.status, 200);
    assert_eq!(opened.headers["content-type"], "image/png");
    assert_eq!(opened.headers["content-disposition"], "inline; filename=\"logo.png\"; filename*=UTF-8''logo.png");
    assert_eq!(opened.headers["x-content-type-options"], "nosniff");
    assert!(opened.headers["content-security-policy"].to_str().unwrap().contains("sandbox"));
    assert_eq!(opened.headers["content-length"], PNG.len().to_string().as_str());
    assert_eq!(opened.body, String::from_utf8_lossy(PNG), "the bytes uploaded");
    let saved = site.get(&format!("{url}?download=1"), Some(&ann)).await;
    assert!(saved.headers["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    let admin = site.sign_in(ADMIN, None).await;
    assert_eq!(site.get(&url, Some(&admin)).await.status, 200, "admins see every contract's artwork");
    assert_eq!(site.get(&url, Some(&bob)).await.status, 404, "not Bob's contract");
    assert_eq!(site.get(&url, None).await.status, 404, "signed out");
    let other = format!("/contracts/{contract}/revisions/{}/artwork", r.id + 1000);
    assert_eq!(site.get(&other, Some(&ann)).await.status, 404, "no such request");

    // Refused uploads say why and consume nothing.
    let svg = site.upload(&ann, contract, &origin, "svg", Some(("logo.png", b"<svg onload=alert(1)>"))).await;
    assert_eq!(svg.status, 422);
    assert!(svg.body.contains("not accepted"), "{}", svg.body);
    let empty = site.upload(&ann, contract, &origin, "   ", None).await;
    assert_eq!(empty.status, 422);
    // Too large: one byte over the limit (refused by the size check), and far over it (the body
    // limit stops the upload while it streams in).
    for size in [app::domain::artwork::MAX_ARTWORK_BYTES + 1, server::routes::revisions::MAX_BODY + 1024 * 1024] {
        let mut big = PNG.to_vec();
        big.resize(size, 0);
        let r = site.upload(&ann, contract, &origin, "big", Some(("big.png", &big))).await;
        assert_eq!(r.status, 422, "{size} bytes: {}", r.body);
        // Part of the body may be unread: the connection must not carry another request.
        assert_eq!(r.headers["connection"], "close", "{size} bytes");
        assert!(r.body.contains("The artwork file is too large."), "{size} bytes: {}", r.body);
    }
    assert_eq!(site.available(contract).await, 2);
    // The page shows our words for a problem code, and nothing a crafted link says.
    let page = site.get(&format!("/contracts/{contract}?error=file-type"), Some(&ann)).await;
    assert!(page.body.contains("That file type is not accepted."), "{}", page.body);
    let page = site.get(&format!("/contracts/{contract}?error=You%20were%20charged%20twice"), Some(&ann)).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("charged twice"));
    // Bob cannot spend Ann's revisions.
    assert_eq!(site.upload(&bob, contract, &origin, "mine now", None).await.status, 404);

    // Browsers get redirected back with the message.
    let req = hyper::Request::post(format!("{}/contracts/{contract}/revisions", site.app.url()))
        .header("content-type", "multipart/form-data; boundary=x")
        .header("accept", "text/html")
        .header("origin", origin.as_str())
        .header("cookie", ann.as_str());
    let redirected =
        site.send(req, "--x\r\nContent-Disposition: form-data; name=\"notes\"\r\n\r\nok\r\n--x--\r\n").await;
    assert_eq!(
        (redirected.status, redirected.location()),
        (303, format!("/contracts/{contract}?requested=1").as_str())
    );

    // Down to zero, concurrently: exactly the available credits are used, the rest refused.
    let tries = futures_util::future::join_all((0..4).map(|i| {
        let (site, ann, origin) = (&site, &ann, &origin);
        async move { site.upload(ann, contract, origin, &format!("racer {i}"), None).await.status }
    }))
    .await;
    assert_eq!(tries.iter().filter(|s| **s == 201).count(), 1, "{tries:?}");
    assert_eq!(tries.iter().filter(|s| **s == 409).count(), 3, "{tries:?}");
    assert_eq!(site.available(contract).await, 0);
    let refused = site.upload(&ann, contract, &origin, "one more", Some(("art.png", PNG))).await;
    assert_eq!(refused.status, 409);
    assert!(refused.body.contains("buy a revision pack"), "{}", refused.body);
    // Refused uploads, too large ones included, are gone before their answers.
    let listing =
        std::fs::read_dir(stored.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>();
    assert_eq!(listing.len(), 1, "only the first request's artwork stays: {listing:?}");
    site.app.stop().await;
}

async fn the_return_page_credits_before_a_late_webhook_and_only_once(kind: DbKind) {
    let site = Site::start(kind).await;
    let ann = site.sign_in(ANN, None).await;
    let contract = site.contract_of(ANN.0).await;
    let sim = format!("{}{}", site.app.url(), app::stripe::simulator::MOUNT);
    let faults = post_json(&format!("{sim}/_simulator/faults"), r#"{"delay_ms": 3000}"#).await;
    assert_eq!(faults.status, 200);

    let b = site.call::<BuyPack>(Some(&ann), &[("contract_id", &contract.to_string())]).await.json();
    let (pi, secret) =
        (b["payment_intent_id"].as_str().unwrap().to_string(), b["client_secret"].as_str().unwrap().to_string());
    // Not paid (the modal only asks after a confirm, so this means it did not go through).
    let unpaid = site.call::<ConfirmPayment>(Some(&ann), &[("payment_intent_id", &pi)]).await.json();
    assert!(unpaid["Failed"].is_object(), "{unpaid}");
    assert_eq!(site.available(contract).await, 3);
    // Declined: failed, with a message, nothing credited.
    let declined = post_form(
        &format!("{sim}/v1/payment_intents/{pi}/confirm"),
        app::stripe::simulator::PUBLISHABLE_KEY,
        &[("client_secret", &secret), ("payment_method", "pm_card_chargeDeclined")],
    )
    .await;
    assert_eq!(declined.status, 402);
    let failed = site.call::<ConfirmPayment>(Some(&ann), &[("payment_intent_id", &pi)]).await.json();
    assert!(failed["Failed"]["message"].as_str().unwrap().contains("nothing was charged"), "{failed}");

    // Paid (the browser confirms with the publishable key); the webhooks are 3 s away.
    let paid = post_form(
        &format!("{sim}/v1/payment_intents/{pi}/confirm"),
        app::stripe::simulator::PUBLISHABLE_KEY,
        &[("client_secret", &secret), ("payment_method", "pm_card_visa")],
    )
    .await;
    assert_eq!(paid.body["status"], "succeeded", "{}", paid.body);
    // Five tabs confirm at once: one credit.
    let fields = [("payment_intent_id", pi.as_str())];
    let answers =
        futures_util::future::join_all((0..5).map(|_| site.call::<ConfirmPayment>(Some(&ann), &fields))).await;
    for a in &answers {
        assert_eq!(a.json(), serde_json::json!({"Credited": {"available": 5, "added": 2}}), "{}", a.body);
    }
    let credit = app::store::ledger::credit_for_payment(&site.app.services.db, &pi).await.unwrap().unwrap();
    assert_eq!(credit.stripe_event_id, None, "credited by the confirmation, not a webhook");
    let metrics = site.app.services.stats.render();
    assert!(metrics.contains("revision_store_ledger_credits_total{path=\"return_page\"} 1"), "counted: {metrics}");
    let delivered = get_json(&format!("{sim}/_simulator/deliveries"), "").await;
    assert_eq!(delivered.as_array().map(Vec::len), Some(0), "no webhook has arrived yet: {delivered}");
    assert_eq!(site.available(contract).await, 5);

    // Then the late webhook arrives: acknowledged, kept, and it credits nothing more.
    let succeeded = || async {
        let log = get_json(&format!("{sim}/_simulator/deliveries"), "").await;
        log.as_array().unwrap().iter().find_map(|d| {
            (d["event_type"] == "payment_intent.succeeded" && d["status"] == 200)
                .then(|| d["event_id"].as_str().unwrap().to_string())
        })
    };
    assert!(eventually(std::time::Duration::from_secs(20), || async { succeeded().await.is_some() }).await);
    let event = app::store::events::summary(&site.app.services.db, &succeeded().await.unwrap()).await.unwrap().unwrap();
    assert_eq!(event.status, "processed");
    assert!(event.outcome.as_deref().unwrap_or_default().contains("already credited"), "{event:?}");
    assert_eq!(site.available(contract).await, 5);
    site.app.stop().await;
}

async fn admins_sort_and_page_contracts_and_see_why_an_event_failed(kind: DbKind) {
    let site =
        Site::start_with(kind, |s| s.stripe.webhook_secrets = vec![app::stripe::WebhookSecret::parse(SECRET).unwrap()])
            .await;
    let store = &site.app.services.db;
    let admin = site.sign_in(ADMIN, None).await;
    // 30 more contracts for Bob, created in reverse order of their names, and one for Aaron,
    // created last (33 in all, two pages of 25); one revision used on Ann's. Each order then
    // differs from the order of creation (ids).
    let bob_id = app::store::users::find_by_email(store, &app::domain::users::Email::parse(BOB.0).unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    for i in 0..30 {
        let publication = format!("Weekly {:02}", 29 - i);
        let c = app::store::contracts::NewContract {
            advertiser_id: bob_id,
            publication: &publication,
            ad_size: "Quarter page",
            base_revisions: 3,
        };
        app::store::contracts::create(store, &c, chrono::Utc::now()).await.unwrap();
    }
    let aaron = app::services::accounts::create_user(
        store,
        "aaron@web.test",
        app::domain::users::Role::Advertiser,
        "aaron-password-long",
    )
    .await
    .unwrap();
    let c = app::store::contracts::NewContract {
        advertiser_id: aaron.id,
        publication: "Zeta Monthly",
        ad_size: "Full page",
        base_revisions: 3,
    };
    app::store::contracts::create(store, &c, chrono::Utc::now()).await.unwrap();
    let anns = site.contract_of(ANN.0).await;
    let ann = site.sign_in(ANN, None).await;
    assert_eq!(site.upload(&ann, anns, &site.origin(), "one", None).await.status, 201);

    let list = |sort: &'static str, page: &'static str| {
        let (site, admin) = (&site, &admin);
        async move {
            let r = site.call::<AdminContracts>(Some(admin), &[("search", ""), ("sort", sort), ("page", page)]).await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()
        }
    };
    let first = list("Id", "1").await;
    assert_eq!((first["total"].as_i64(), first["pages"].as_i64()), (Some(33), Some(2)));
    assert_eq!(first["rows"].as_array().unwrap().len(), 25);
    let second = list("Id", "2").await;
    assert_eq!(second["rows"].as_array().unwrap().len(), 8, "the rest on page 2");
    let ids = |v: &serde_json::Value| {
        v["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>()
    };
    let mut all = ids(&first);
    all.extend(ids(&second));
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!((all.len(), sorted), (33, all.clone()), "ascending ids, none repeated across pages");
    // Fewest available first puts Ann's (2 left) on top; most available first puts it last.
    assert_eq!(list("AvailableAsc", "1").await["rows"][0]["id"].as_i64(), Some(anns));
    assert_eq!(list("AvailableDesc", "2").await["rows"][7]["id"].as_i64(), Some(anns));
    let by_publication = list("Publication", "1").await;
    assert_eq!(by_publication["rows"][0]["publication"], "Ann's Gazette");
    assert_eq!(by_publication["rows"][2]["publication"], "Weekly 00");
    let by_advertiser = list("Advertiser", "1").await;
    assert_eq!(by_advertiser["rows"][0]["advertiser_email"], "aaron@web.test");
    assert_eq!(by_advertiser["rows"][1]["advertiser_email"], ANN.0);

    // An event that could not be applied is listed as failed, with its reason.
    let event = new_event_id();
    let body = pi_event(
        &event,
        "payment_intent.succeeded",
        &new_payment_id(),
        serde_json::json!({"contractId": anns.to_string()}),
        1,
        "usd",
    );
    let req = hyper::Request::post(format!("{}/webhooks/stripe", site.app.url()))
        .header("stripe-signature", sign(&body, SECRET, now()))
        .header("content-type", "application/json");
    assert_eq!(site.send(req, body).await.status, 200);
    let failed = site.call::<AdminEvents>(Some(&admin), &[("query", "status=failed")]).await;
    assert_eq!(failed.status, 200, "{}", failed.body);
    let results = failed.json();
    let rows = results["hits"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0]["event_id"].as_str(), rows[0]["status"].as_str()), (Some(event.as_str()), Some("failed")));
    assert!(rows[0]["note"].as_str().unwrap().contains("pack price"), "{rows:?}");
    let bad = site.call::<AdminEvents>(Some(&admin), &[("query", "status=lost")]).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("status: `lost` is not one of"), "{}", bad.body);
    let page = site.get("/admin/events?status=failed", Some(&admin)).await;
    assert!(page.body.contains(&event) && page.body.contains("pack price"), "{}", page.body);
    // Simulator mode says so on every page, not only the home page.
    for path in ["/admin/events?status=failed".to_string(), "/admin".into(), format!("/admin/contracts/{anns}")] {
        let page = site.get(&path, Some(&admin)).await;
        assert!(page.body.contains("Simulated payments — no money moves"), "{path}: {}", page.body);
    }
    let page = site.get(&format!("/contracts/{anns}"), Some(&ann)).await;
    assert!(page.body.contains("Simulated payments — no money moves"), "{}", page.body);
    assert_eq!(site.call::<AdminEvents>(Some(&ann), &[("query", "")]).await.status, 403);
    // The page's exports answer an admin only.
    let csv = site.get("/admin/events.csv?status=failed", Some(&admin)).await;
    assert!(csv.body.starts_with("received_at,event_id,") && csv.body.contains(&event), "{}", csv.body);
    assert_eq!(site.get("/admin/events.ndjson", Some(&ann)).await.status, 403);
    site.app.stop().await;
}

async fn admins_reconcile_from_their_pages_and_download_the_findings(kind: DbKind) {
    let site = Site::start(kind).await;
    let store = &site.app.services.db;
    let anns = site.contract_of(ANN.0).await;
    // A credit Stripe has never heard of (a payment made up): reconciliation must raise it.
    let ghost = new_payment_id();
    let credit = app::domain::events::Credit {
        contract_id: anns,
        payment_id: ghost.clone(),
        revisions: 2,
        amount: app::domain::Money::new(15_000, app::domain::Currency::parse("usd").unwrap()),
        livemode: false,
    };
    let now = chrono::Utc::now();
    app::services::fulfil::fulfil(store, &credit, app::services::fulfil::Evidence::Confirmed, now).await.unwrap();
    let admin = site.sign_in(ADMIN, None).await;
    let ann = site.sign_in(ANN, None).await;
    let post = |path: &str, cookie: &str| {
        hyper::Request::post(format!("{}{path}", site.app.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", site.origin())
            .header("cookie", cookie.to_string())
    };
    // Advertisers can neither start a run nor refund.
    assert_eq!(site.send(post("/admin/reconciliation/run", &ann), Bytes::new()).await.status, 403);
    let refund = format!("payment={ghost}&revisions=all&reason=duplicate&attempt=abc123");
    assert_eq!(site.send(post(&format!("/admin/contracts/{anns}/refund"), &ann), refund.clone()).await.status, 403);
    assert_eq!(site.available(anns).await, 5);
    // The admin starts one; it runs in the background.
    let started = site.send(post("/admin/reconciliation/run", &admin), Bytes::new()).await;
    assert_eq!((started.status, started.location()), (303, "/admin/reconciliation"));
    let finished = eventually(Duration::from_secs(20), || async {
        app::store::reconciliation::runs(store, 1).await.unwrap().first().is_some_and(|r| r.status == "finished")
    })
    .await;
    assert!(finished);
    let run = app::store::reconciliation::runs(store, 1).await.unwrap().remove(0);
    assert_eq!(run.started_by, "admin");
    let page = site.get("/admin/reconciliation", Some(&admin)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("1 credited not paid open"), "{}", page.body);
    assert!(page.body.contains("Reconciliation left 1 finding open"), "the banner: {}", page.body);
    assert!(page.body.contains("Reconciliation started"), "the one-time message: {}", page.body);
    let again = site.get("/admin/reconciliation", Some(&admin)).await;
    assert!(!again.body.contains("Reconciliation started"), "shown once");
    let detail = site.get(&format!("/admin/reconciliation/{}", run.id), Some(&admin)).await;
    assert!(detail.body.contains(&ghost) && detail.body.contains("does not know it"), "{}", detail.body);
    // The banner is on every admin page.
    assert!(site.get("/admin", Some(&admin)).await.body.contains("data-testid=\"findings-banner\""));
    let csv = site.get(&format!("/admin/reconciliation/{}/findings.csv", run.id), Some(&admin)).await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let mut lines = csv.body.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("run,finding,category,state,payment_id,object_id,contract_id,found_at,detail,evidence")
    );
    let row = lines.next().unwrap();
    assert!(row.contains(&format!(",credited_not_paid,open,{ghost},,{anns},")), "{row}");
    assert_eq!(site.get(&format!("/admin/reconciliation/{}/findings.csv", run.id), Some(&ann)).await.status, 403);
    assert_eq!(site.get("/admin/reconciliation", Some(&ann)).await.status, 403);
    // Nothing was taken away: an alert only.
    assert_eq!(site.available(anns).await, 5);
    // A refund form edited to name a payment of another contract is refused.
    let bobs = site.contract_of(BOB.0).await;
    let other = site.send(post(&format!("/admin/contracts/{bobs}/refund"), &admin), refund).await;
    assert_eq!(other.status, 404);
}

async fn admins_read_revenue_as_a_chart_a_table_and_a_csv(kind: DbKind) {
    // (and download a pack's evidence bundle)
    let site = Site::start(kind).await;
    let store = &site.app.services.db;
    let anns = site.contract_of(ANN.0).await;
    let credit = app::domain::events::Credit {
        contract_id: anns,
        payment_id: new_payment_id(),
        revisions: 2,
        amount: app::domain::Money::new(15_000, app::domain::Currency::parse("usd").unwrap()),
        livemode: false,
    };
    let now = chrono::Utc::now();
    app::services::fulfil::fulfil(store, &credit, app::services::fulfil::Evidence::Confirmed, now).await.unwrap();
    let today = now.date_naive();
    let admin = site.sign_in(ADMIN, None).await;
    let ann = site.sign_in(ANN, None).await;

    let page = site.get("/admin/revenue", Some(&admin)).await;
    assert_eq!(page.status, 200);
    // Thirty days by default, one bar and one row each; today's carries the pack.
    assert_eq!(page.body.matches("<rect class=\"bar").count(), 30, "{}", page.body);
    let bar = format!("data-period=\"{today}\" data-net=\"15000\"><title>{today}: net $150.00</title>");
    assert!(page.body.contains(&bar), "{}", page.body);
    // The table's cell for today holds the same number as the bar.
    let row = page.body.split(&format!("<tr data-period=\"{today}\">")).nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(row.contains("data-net=\"15000\"") && row.contains("$150.00"), "{row}");
    assert!(page.body.contains("role=\"img\""));
    assert!(page.body.contains("No reconciliation has finished yet"));
    assert!(page.body.contains("href=\"/admin/revenue\""), "in the admin menu");

    let by_month = site.get(&format!("/admin/revenue?from={today}&to={today}&by=month"), Some(&admin)).await;
    assert_eq!(by_month.body.matches("<rect class=\"bar").count(), 1);
    let bad = site.get("/admin/revenue?from=2026-02-30", Some(&admin)).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("from: `2026-02-30` is not a date"), "{}", bad.body);

    let csv = site.get(&format!("/admin/revenue.csv?from={today}&to={today}"), Some(&admin)).await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let rows: Vec<&str> = csv.body.split("\r\n").collect();
    assert_eq!(rows[0], "period,currency,source,gross,refunds,disputes_lost,net,payments");
    assert!(rows.contains(&format!("{today},usd,pack,150.00,0.00,0.00,150.00,1").as_str()), "{rows:?}");
    assert!(rows.contains(&format!("{today},usd,all,150.00,0.00,0.00,150.00,1").as_str()), "{rows:?}");
    assert!(rows.contains(&"total,usd,all,150.00,0.00,0.00,150.00,1"), "{rows:?}");
    assert_eq!(site.get("/admin/revenue.csv?to=nope", Some(&admin)).await.status, 400);

    // The pack's evidence bundle, from its row on the admin contract page.
    let contract_page = site.get(&format!("/admin/contracts/{anns}"), Some(&admin)).await;
    let bundle_link = format!("/admin/payments/{}/evidence.tar", credit.payment_id);
    assert!(contract_page.body.contains(&bundle_link), "{}", contract_page.body);
    let bundle = site.get(&bundle_link, Some(&admin)).await;
    assert_eq!(bundle.status, 200);
    assert_eq!(bundle.headers["content-type"], "application/x-tar");
    assert!(bundle.body.contains("payment.json") && bundle.body.contains("SHA256SUMS"));
    assert_eq!(site.get(&bundle_link, Some(&ann)).await.status, 403);
    assert_eq!(site.get("/admin/payments/ch_1/evidence.tar", Some(&admin)).await.status, 400);
    assert_eq!(site.get("/admin/payments/pi_unknown/evidence.tar", Some(&admin)).await.status, 404);

    assert_eq!(site.get("/admin/revenue", Some(&ann)).await.status, 403);
    assert_eq!(site.get("/admin/revenue.csv", Some(&ann)).await.status, 403);
    assert_eq!(site.get("/admin/revenue.csv", None).await.status, 401);
}

/// Pages send a Content-Security-Policy naming their own inline scripts' nonce and, outside the
/// simulator, Stripe's hosts; every other response is inert; HSTS only over https.
#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let sim = TestApp::spawn_simulated(DbKind::Sqlite).await;
    let (status, headers, page) = get_with(&sim, "/", None).await;
    assert_eq!(status, 200);
    let csp = headers["content-security-policy"].to_str().unwrap().to_string();
    let nonce = csp.split("'nonce-").nth(1).and_then(|r| r.split('\'').next()).expect("a nonce in the policy");
    assert!(nonce.len() >= 16, "{csp}");
    let scripts: Vec<&str> = page.split("<script").skip(1).collect();
    assert!(!scripts.is_empty(), "the page has inline scripts");
    for s in &scripts {
        assert!(s.starts_with(&format!(" nonce=\"{nonce}\"")) || s.contains(&format!("nonce=\"{nonce}\"")), "{s}");
    }
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("stripe.com"), "{csp}");
    let (_, again, _) = get_with(&sim, "/", None).await;
    assert_ne!(again["content-security-policy"], headers["content-security-policy"], "a fresh nonce per response");
    for path in ["/", "/healthz", "/api/v1/revenue", "/pkg/nothing.js"] {
        let (_, h, _) = get_with(&sim, path, None).await;
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin", "{path}");
        assert!(!h.contains_key("strict-transport-security"), "plain http: no HSTS ({path})");
    }
    let (_, h, _) = get_with(&sim, "/api/v1/revenue", None).await;
    assert_eq!(h["content-security-policy"], app::web::security::INERT_POLICY);

    // With Stripe (not the simulator) and behind https: Stripe's hosts, and HSTS.
    let live = TestApp::spawn_with(DbKind::Sqlite, |s| s.web.secure_cookies = true).await;
    let (_, h, _) = get_with(&live, "/login", None).await;
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self' 'nonce-") && csp.contains("https://js.stripe.com"), "{csp}");
    assert!(csp.contains("https://hooks.stripe.com"), "3-D Secure frames: {csp}");
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
}

/// Behind a reverse proxy that rewrites Host, forms still work when PUBLIC_URL names the
/// address users reach; and then only that origin may post.
#[tokio::test]
async fn behind_a_proxy_forms_are_checked_against_the_public_url() {
    let t = TestApp::spawn_with(DbKind::Sqlite, |s| s.web.public_origin = Some("https://shop.example".into())).await;
    app::services::accounts::create_user(
        &t.app.services.db,
        "proxy@example.com",
        app::domain::users::Role::Advertiser,
        "a-long-password",
    )
    .await
    .unwrap();
    let http: Client<_, Full<Bytes>> = Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let sign_in = |origin: &str| {
        hyper::Request::post(format!("{}{}", t.app.url(), <SignIn as ServerFn>::PATH))
            .header("host", "10.0.0.5:3000") // what the proxy forwarded to
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from("email=proxy%40example.com&password=a-long-password")))
            .unwrap()
    };
    let ok = http.request(sign_in("https://shop.example")).await.unwrap();
    assert!(ok.status().is_success() || ok.status().is_redirection(), "{}", ok.status());
    assert!(ok.headers().contains_key("set-cookie"), "signed in");
    for other in ["http://10.0.0.5:3000", "https://evil.example"] {
        let refused = http.request(sign_in(other)).await.unwrap();
        assert_eq!(refused.status(), 403, "{other}");
    }
}

/// One client looping on the server functions that call Stripe is slowed down (429 with the
/// seconds to wait, and words the purchase dialog shows); other users are not. Only calls that
/// reach Stripe spend the budget: a confirmation our own ledger answers is never refused.
#[tokio::test]
async fn server_functions_that_call_stripe_are_limited_per_client() {
    let site = Site::start(DbKind::Sqlite).await;
    let ann = site.sign_in(ANN, None).await;
    let bob = site.sign_in(BOB, None).await;
    let fields = [("payment_intent_id", "pi_not_ours")];
    // Answered from our own records (no such purchase): never a call to Stripe, never limited.
    for i in 0..20 {
        assert_eq!(site.call::<ConfirmPayment>(Some(&ann), &fields).await.status, 404, "call {i} of the burst");
    }
    // Each purchase started is a call to Stripe: a burst of twenty, then one more a second
    // (GCRA), so a loop of purchases meets a refusal after at most 20 + one a second.
    let contract = site.contract_of(ANN.0).await.to_string();
    let started = std::time::Instant::now();
    let mut started_purchases = Vec::new();
    let mut buy = None;
    for _ in 0..100 {
        let b = site.call::<BuyPack>(Some(&ann), &[("contract_id", &contract)]).await;
        if b.status != 200 {
            buy = Some(b);
            break;
        }
        started_purchases.push(b.json()["payment_intent_id"].as_str().unwrap().to_string());
    }
    let buy = buy.expect("a loop of purchases is refused");
    let refills = started.elapsed().as_secs() as usize;
    assert_eq!(buy.status, 429, "one budget for both functions: {}", buy.body);
    assert!(buy.body.contains("SlowDown"), "{}", buy.body);
    assert!(
        started_purchases.len() >= 20 && started_purchases.len() <= 20 + refills + 1,
        "{}",
        started_purchases.len()
    );
    // The dialog shows the error's words: what happened and when to try again.
    let shown = serde_json::from_str::<app::web::error::AppError>(&buy.body).unwrap().to_string();
    assert!(shown.starts_with("Too many purchases were tried in a short time. Please try again in "), "{shown}");
    assert!(shown.ends_with(" seconds."), "{shown}");
    // Spent: still answered from our records without asking Stripe.
    assert_eq!(site.call::<ConfirmPayment>(Some(&ann), &fields).await.status, 404, "no Stripe call, no refusal");
    // A confirmation that must ask Stripe (the payment is not in the ledger) spends it too.
    let pending = [("payment_intent_id", started_purchases[0].as_str())];
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(site.call::<ConfirmPayment>(Some(&ann), &pending).await.status);
    }
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429) && statuses.contains(&429), "{statuses:?}");
    let bobs = site.contract_of(BOB.0).await.to_string();
    assert_eq!(site.call::<BuyPack>(Some(&bob), &[("contract_id", &bobs)]).await.status, 200, "Bob has his own budget");
    site.app.stop().await;
}

/// The pending modal polls `confirm_payment` until the credit shows; once the ledger holds the
/// payment, each poll is answered from it. Those answers cost Stripe nothing, so they spend
/// nothing: a run of purchases with their polls is never refused for the polls (`make bench`
/// stopped at its 15th purchase when they did).
#[tokio::test]
async fn polls_answered_from_our_ledger_spend_no_stripe_budget() {
    let site = Site::start(DbKind::Sqlite).await;
    let ann = site.sign_in(ANN, None).await;
    let contract = site.contract_of(ANN.0).await;
    let sim = format!("{}{}", site.app.url(), app::stripe::simulator::MOUNT);
    let b = site.call::<BuyPack>(Some(&ann), &[("contract_id", &contract.to_string())]).await.json();
    let (pi, secret) = (b["payment_intent_id"].as_str().unwrap(), b["client_secret"].as_str().unwrap());
    let paid = post_form(
        &format!("{sim}/v1/payment_intents/{pi}/confirm"),
        app::stripe::simulator::PUBLISHABLE_KEY,
        &[("client_secret", secret), ("payment_method", "pm_card_visa")],
    )
    .await;
    assert_eq!(paid.body["status"], "succeeded", "{}", paid.body);
    let credited = eventually(PATIENCE, || async {
        app::store::ledger::credit_for_payment(&site.app.services.db, pi).await.unwrap().is_some()
    })
    .await;
    assert!(credited, "the webhook credits");
    // Twice the burst in polls, all answered from the ledger.
    for i in 0..40 {
        let a = site.call::<ConfirmPayment>(Some(&ann), &[("payment_intent_id", pi)]).await;
        assert_eq!(a.json(), serde_json::json!({"Credited": {"available": 5, "added": 2}}), "poll {i}: {}", a.body);
    }
    let next = site.call::<BuyPack>(Some(&ann), &[("contract_id", &contract.to_string())]).await;
    assert_eq!(next.status, 200, "the next purchase starts: {}", next.body);
    site.app.stop().await;
}

async fn admins_see_every_payment_attempt_and_why_it_failed(kind: DbKind) {
    let site = Site::start(kind).await;
    let ann = site.sign_in(ANN, None).await;
    let admin = site.sign_in(ADMIN, None).await;
    let contract = site.contract_of(ANN.0).await.to_string();
    let sim = format!("{}{}", site.app.url(), app::stripe::simulator::MOUNT);
    let mut attempts = Vec::new();
    for (card, status) in [("pm_card_chargeDeclined", 402), ("pm_card_visa", 200)] {
        let b = site.call::<BuyPack>(Some(&ann), &[("contract_id", &contract)]).await.json();
        let (pi, secret) = (b["payment_intent_id"].as_str().unwrap().to_string(), b["client_secret"].as_str().unwrap());
        let r = post_form(
            &format!("{sim}/v1/payment_intents/{pi}/confirm"),
            app::stripe::simulator::PUBLISHABLE_KEY,
            &[("client_secret", secret), ("payment_method", card)],
        )
        .await;
        assert_eq!(r.status, status, "{}", r.body);
        attempts.push(pi);
    }
    let (declined, paid) = (&attempts[0], &attempts[1]);
    // Once Stripe's events are in, the admin's contract page lists both, newest first, and says
    // why the first one failed.
    let page = || async {
        site.call::<LoadAdminContract>(Some(&admin), &[("contract_id", &contract)]).await.json()["attempts"].clone()
    };
    let settled = eventually(REQUEST_TIMEOUT, || async {
        let a = page().await;
        a[0]["credited"] == true && a[1]["failure"].is_string()
    })
    .await;
    let a = page().await;
    assert!(settled, "{a}");
    assert_eq!(
        (a[0]["payment_intent_id"].as_str(), a[1]["payment_intent_id"].as_str()),
        (Some(paid.as_str()), Some(declined.as_str()))
    );
    assert_eq!(a[0]["failure"], serde_json::Value::Null, "paid: nothing to explain");
    let why = a[1]["failure"].as_str().unwrap();
    assert!(why.contains("Your card was declined.") && why.contains("card_declined"), "{why}");
    assert_eq!(a[1]["status"], "requires_payment_method");
    assert!(
        a[1]["events"].as_array().unwrap().iter().any(|e| e["event_type"] == "payment_intent.payment_failed"),
        "{a}"
    );
    // The page says it in words.
    let html = site.get(&format!("/admin/contracts/{contract}"), Some(&admin)).await.body;
    let failure = html.split(r#"data-testid="attempt-failure""#).nth(1).expect("the failure is shown");
    assert!(failure.contains("Your card was declined. (card_declined, generic_decline)"), "{html}");
    site.app.stop().await;
}

/// An upload refused part-way (here at the body limit, with 16 MiB still to come) is answered,
/// not reset: the server reads and drops the rest before it closes the connection, so the
/// client, still sending, reads the 422 and its message rather than a broken pipe. Several
/// rounds, because without the drain a reset only sometimes beats the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_refused_while_it_streams_in_is_answered_not_reset() {
    let site = Site::start(DbKind::Sqlite).await;
    let ann = site.sign_in(ANN, None).await;
    let contract = site.contract_of(ANN.0).await;
    let origin = site.origin();
    let mut big = PNG.to_vec();
    big.resize(server::routes::revisions::MAX_BODY + 16 * 1024 * 1024, 0);
    for round in 0..6 {
        let r = site.upload(&ann, contract, &origin, "big", Some(("big.png", &big))).await;
        assert_eq!(r.status, 422, "round {round}: {}", r.body);
        assert!(r.body.contains("The artwork file is too large."), "round {round}: {}", r.body);
        assert_eq!(r.headers["connection"], "close", "round {round}");
    }
    assert_eq!(site.available(contract).await, 3, "nothing was consumed");
    site.app.stop().await;
}
