//! The test harness: fresh databases, the app on port 0, an independent Stripe signer, and a
//! small HTTP client.
use app::domain::events::RetryPolicy;
use app::domain::users::Role;
use app::services::accounts::create_user;
use app::store::contracts::{self, NewContract};
use app::store::Db;
use app::stripe::WebhookSecret;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use server::config::Settings;
use server::Application;
use sha2::Sha256;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs each listed `async fn name(kind: DbKind)` of the enclosing module on both databases.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::DbKind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::DbKind::Postgres).await
                }
            )*
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

pub const SECRET: &str = "whsec_test_current";
/// How long a test waits for any answer from the app: a hang fails the test, not the CI run.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a test waits for something that should happen soon (a webhook delivered, a worker
/// sweep). Only a failing test waits this long; a passing one goes on as soon as the condition
/// holds, so the deadline is set for a loaded 2-core machine, not for a fast one.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// The test apps' database timeout (the wait for a connection, and SQLite's busy timeout).
/// Generous: on a loaded machine the writes queued behind SQLite's one writer (ten racers, each
/// with an fsync) can take more than a second, and a timeout there is a 503 the test did not ask
/// for.
pub const DB_TIMEOUT: Duration = Duration::from_secs(10);
/// The database timeout of tests that take the database down on purpose: how long each request
/// waits before it is answered 503, so short enough to keep those tests quick, and still well
/// over a second, so the writes before and after the outage never run into it.
pub const OUTAGE_DB_TIMEOUT: Duration = Duration::from_secs(2);
pub const OLD_SECRET: &str = "whsec_test_previous";
/// What the test apps' /metrics requires.
pub const METRICS_TOKEN: &str = "metrics-token-for-tests";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique suffix for ids and database names within this test process.
pub fn unique() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}x{n}", std::process::id())
}

/// A fresh, empty database of `kind`: a SQLite file in a temp folder, or a new PostgreSQL
/// database in the cluster named by TEST_POSTGRES_URL.
pub struct TestDb {
    pub kind: DbKind,
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Another handle on this database, for a second process; this one keeps it alive.
    pub fn shared(&self) -> Self {
        Self { kind: self.kind, url: self.url.clone(), pg_name: None, _dir: None }
    }

    pub async fn new(kind: DbKind) -> Self {
        match kind {
            DbKind::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite:{}", dir.path().join("test.db").display());
                Self { kind, url, pg_name: None, _dir: Some(dir) }
            }
            DbKind::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("rs_test_{}", unique());
                // One connection, not a pool: sqlx's pools start a reaper task that can spin
                // (`app::store::pool_rules`).
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to the test PostgreSQL");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
                let _ = conn.close().await;
                let url = with_database(&admin, &name);
                Self { kind, url, pg_name: Some(name), _dir: None }
            }
        }
    }

    /// Makes the database refuse writes until `restore` (a locked SQLite file; a PostgreSQL
    /// database that accepts no connections, its sessions terminated). Returns a guard.
    pub async fn make_unavailable(&self) -> Outage {
        match self.kind {
            DbKind::Sqlite => {
                use sqlx::Connection;
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.expect("open sqlite");
                sqlx::query("BEGIN EXCLUSIVE").execute(&mut conn).await.expect("lock sqlite");
                Outage::Sqlite(conn)
            }
            DbKind::Postgres => {
                let name = self.pg_name.clone().expect("pg");
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&postgres_admin_url()).await.expect("admin");
                sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
                    .bind(&name)
                    .execute(&mut admin)
                    .await
                    .unwrap();
                Outage::Postgres { admin, name }
            }
        }
    }
}

pub enum Outage {
    Sqlite(sqlx::SqliteConnection),
    Postgres { admin: sqlx::PgConnection, name: String },
}

impl Outage {
    pub async fn restore(self) {
        match self {
            Outage::Sqlite(mut conn) => {
                use sqlx::Connection;
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Outage::Postgres { mut admin, name } => {
                use sqlx::Connection;
                sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                let _ = admin.close().await;
            }
        }
    }
}

fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .expect("TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL")
}

fn with_database(url: &str, db: &str) -> String {
    // postgres://user@host:port/dbname?params -> same with another dbname
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

pub fn settings(db_url: &str) -> Settings {
    // The flags' defaults (never the environment's), then what the tests need.
    let mut s = server::config::Config::defaults().settings().unwrap();
    s.database.url = db_url.to_string();
    s.database.max_connections = 8;
    s.database.timeout = DB_TIMEOUT;
    s.stripe.mode = Some(app::domain::deployment::DeploymentMode::Test);
    s.stripe.webhook_secrets = WebhookSecret::parse_list(&format!("{SECRET},{OLD_SECRET}")).unwrap();
    s.bind = "127.0.0.1:0".parse().unwrap();
    // Tests send everything from 127.0.0.1; the one that tests the cap per client sets it.
    s.connections.max_connections_per_client = None;
    s.reconcile.worker_interval = Duration::from_secs(3600);
    s.reconcile.interval = None;
    s.reconcile.rate = 100;
    s.artwork.data_dir = std::env::temp_dir().join("revision-store-tests");
    // Some tests race several requests of one advertiser; the test of the cap sets it.
    s.artwork.uploads_per_user = 16;
    s.web.api_rate_per_minute = std::num::NonZeroU32::new(600).unwrap();
    s.metrics.token_hash = Some(app::services::api_keys::hash(METRICS_TOKEN));
    s
}

/// A new advertiser (unique email) with one contract of 3 included revisions:
/// (advertiser id, contract id).
pub async fn advertiser_with_contract(db: &Db) -> (i64, i64) {
    let user =
        create_user(db, &format!("adv{}@example.com", unique()), Role::Advertiser, "a-long-password").await.unwrap();
    let contract = contracts::create(
        db,
        &NewContract { advertiser_id: user.id, publication: "Daily Planet", ad_size: "Half page", base_revisions: 3 },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    (user.id, contract.id)
}

/// The app on port 0 with a fresh database, an advertiser and one contract.
pub struct TestApp {
    pub db: TestDb,
    pub app: Application,
    pub contract_id: i64,
    pub advertiser_id: i64,
    http: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl TestApp {
    pub async fn spawn(kind: DbKind) -> Self {
        let db = TestDb::new(kind).await;
        let app = Application::start(&settings(&db.url)).await.expect("app starts");
        let (advertiser_id, contract_id) = advertiser_with_contract(&app.services.db).await;
        Self { db, app, contract_id, advertiser_id, http: client() }
    }

    /// The app in simulator mode (its Stripe is the in-process simulator, which delivers signed
    /// webhooks to it), with a fresh database, an advertiser and one contract.
    pub async fn spawn_simulated(kind: DbKind) -> Self {
        Self::spawn_with(kind, |s| s.stripe.mode = Some(app::domain::deployment::DeploymentMode::Simulator)).await
    }

    /// The app with settings changed by `change`.
    pub async fn spawn_with(kind: DbKind, change: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDb::new(kind).await;
        let mut s = settings(&db.url);
        change(&mut s);
        let app = Application::start(&s).await.expect("app starts");
        let (advertiser_id, contract_id) = advertiser_with_contract(&app.services.db).await;
        Self { db, app, contract_id, advertiser_id, http: client() }
    }

    /// The app with the short database timeout of outage tests (`OUTAGE_DB_TIMEOUT`).
    pub async fn spawn_for_outage(kind: DbKind) -> Self {
        Self::spawn_with(kind, |s| s.database.timeout = OUTAGE_DB_TIMEOUT).await
    }

    pub fn sim(&self) -> &app::stripe::simulator::Simulator {
        self.app.simulator.as_ref().expect("spawned in simulator mode")
    }

    pub async fn balance(&self) -> app::domain::RevisionBalance {
        app::store::ledger::balance(self.store(), self.contract_id).await.unwrap().unwrap()
    }

    /// Stops this instance and starts another on the same database (a restart).
    pub async fn restart(self) -> Self {
        let TestApp { db, app, contract_id, advertiser_id, http } = self;
        app.stop().await;
        let app = Application::start(&settings(&db.url)).await.expect("app restarts");
        Self { db, app, contract_id, advertiser_id, http }
    }

    pub fn store(&self) -> &Db {
        &self.app.services.db
    }

    /// Every pending event's lease runs out now, as if its holder had stopped long ago.
    pub async fn expire_leases(&self) {
        let sql = "UPDATE stripe_event_processing SET next_attempt_at = $1 WHERE status = 'pending'";
        let past = chrono::Utc::now() - chrono::Duration::minutes(1);
        match self.store() {
            Db::Sqlite(s) => sqlx::query(sql).bind(past).execute(&s.writer).await.map(|_| ()),
            Db::Postgres(p) => sqlx::query(sql).bind(past).execute(p).await.map(|_| ()),
        }
        .unwrap();
    }

    pub async fn post(&self, path: &str, headers: &[(&str, String)], body: impl Into<Bytes>) -> Reply {
        let mut req =
            hyper::Request::post(format!("{}{path}", self.app.url())).header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = self.http.request(req.body(Full::new(body.into())).unwrap());
        let res = tokio::time::timeout(REQUEST_TIMEOUT, res).await.expect("the server answers").expect("request");
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Reply { status, body }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let req = hyper::Request::get(format!("{}{path}", self.app.url())).body(Full::new(Bytes::new())).unwrap();
        let res = tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(req))
            .await
            .expect("the server answers")
            .expect("request");
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into())
    }

    /// GET /metrics with the token: its text.
    pub async fn metrics(&self) -> String {
        let (status, _, text) = get_with(self, "/metrics", Some(&format!("Bearer {METRICS_TOKEN}"))).await;
        assert_eq!(status, 200, "{text}");
        text
    }

    /// Delivers `body` signed with SECRET now, as Stripe would.
    pub async fn deliver(&self, body: &str) -> Reply {
        self.post("/webhooks/stripe", &[("stripe-signature", sign(body, SECRET, now()))], body.to_string()).await
    }

    pub async fn available(&self) -> i64 {
        app::store::ledger::balance(self.store(), self.contract_id).await.unwrap().unwrap().available()
    }

    pub async fn credit_rows(&self) -> usize {
        app::store::ledger::credits(self.store(), self.contract_id).await.unwrap().len()
    }

    pub async fn event_status(&self, event_id: &str) -> app::store::events::EventSummary {
        app::store::events::summary(self.store(), event_id).await.unwrap().expect("event stored")
    }

    pub fn services_with_retry(&self, retry: RetryPolicy) -> app::services::Services {
        let mut s = self.app.services.clone();
        s.retry = retry;
        s
    }
}

/// POSTs a form (Stripe's request encoding) to any URL with a bearer key.
pub async fn post_form(url: &str, key: &str, fields: &[(&str, &str)]) -> Reply {
    post_form_keyed(url, key, None, fields).await.0
}

/// `post_form` with an optional `Idempotency-Key`; also says whether the answer was a replay.
pub async fn post_form_keyed(
    url: &str,
    key: &str,
    idempotency_key: Option<&str>,
    fields: &[(&str, &str)],
) -> (Reply, bool) {
    let body = fields.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect::<Vec<_>>().join("&");
    let mut req = hyper::Request::post(url)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(k) = idempotency_key {
        req = req.header("idempotency-key", k);
    }
    let res = client().request(req.body(Full::new(Bytes::from(body))).unwrap()).await.expect("request");
    let status = res.status().as_u16();
    let replayed = res.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (Reply { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }, replayed)
}

pub async fn get_json(url: &str, key: &str) -> Value {
    let req = hyper::Request::get(url)
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = client().request(req).await.expect("request");
    serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap_or(Value::Null)
}

/// GETs any URL without a key: the status and the body as text.
pub async fn get_text(url: &str) -> (u16, String) {
    let res = client().request(hyper::Request::get(url).body(Full::new(Bytes::new())).unwrap()).await.expect("request");
    let status = res.status().as_u16();
    (status, String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned())
}

pub async fn post_json(url: &str, body: &str) -> Reply {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let res = client().request(req).await.expect("request");
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Reply { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs the `revision-store` binary on `db_url` with `env` added, free of the caller's Stripe
/// settings (so it never mistakes the test machine's environment for a deployment).
pub fn run_cli(db_url: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_revision-store"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .envs(env.iter().copied())
        .env_remove("STRIPE_SECRET_KEY")
        .env_remove("STRIPE_PUBLISHABLE_KEY")
        .env_remove("STRIPE_WEBHOOK_SECRET")
        .env_remove("STRIPE_SIMULATOR")
        .env_remove("SWITCH_MODE")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run revision-store")
}

/// GET `path` on `t` with an optional `Authorization` value: status, headers and body text.
pub async fn get_with(t: &TestApp, path: &str, auth: Option<&str>) -> (u16, hyper::HeaderMap, String) {
    let mut req = hyper::Request::get(format!("{}{path}", t.app.url()));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = tokio::time::timeout(REQUEST_TIMEOUT, t.http.request(req.body(Full::new(Bytes::new())).unwrap()))
        .await
        .expect("an answer in time")
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = String::from_utf8_lossy(&res.into_body().collect().await.unwrap().to_bytes()).into_owned();
    (status, headers, body)
}

/// Polls `check` every 25 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Stripe's scheme, written here independently of the code under test:
/// hex(HMAC-SHA256(secret, "{t}.{body}")).
pub fn v1(body: &str, secret: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn sign(body: &str, secret: &str, t: i64) -> String {
    format!("t={t},v1={}", v1(body, secret, t))
}

pub fn new_event_id() -> String {
    format!("evt_{}", unique())
}

pub fn new_payment_id() -> String {
    format!("pi_{}", unique())
}

/// A PaymentIntent event shaped like Stripe's (see shared/stripe/fixtures/event.json).
pub fn pi_event(
    event_id: &str,
    event_type: &str,
    payment_id: &str,
    metadata: Value,
    amount: i64,
    currency: &str,
) -> String {
    let status = match event_type {
        "payment_intent.succeeded" => "succeeded",
        "payment_intent.processing" => "processing",
        "payment_intent.canceled" => "canceled",
        _ => "requires_payment_method",
    };
    json!({
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": now(),
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": event_type,
        "data": {"object": {
            "id": payment_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": if status == "succeeded" { amount } else { 0 },
            "currency": currency,
            "livemode": false,
            "metadata": metadata,
            "status": status,
            "created": now(),
        }}
    })
    .to_string()
}

/// `payment_intent.succeeded` for a pack on `contract_id`.
pub fn paid(event_id: &str, payment_id: &str, contract_id: i64) -> String {
    pi_event(
        event_id,
        "payment_intent.succeeded",
        payment_id,
        json!({"contractId": contract_id.to_string()}),
        15_000,
        "usd",
    )
}

/// A bucket of its own on the test command's S3 server: (endpoint, bucket).
pub async fn new_bucket() -> (String, String) {
    let endpoint = std::env::var("TEST_S3_ENDPOINT").expect(
        "TEST_S3_ENDPOINT is not set: run the tests with `make test` (or .ci/with-s3), which starts an S3 test server",
    );
    let bucket = format!("artwork-{}", unique());
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let res = http
        .request(hyper::Request::put(format!("{endpoint}/{bucket}")).body(http_body_util::Full::default()).unwrap());
    let res = tokio::time::timeout(REQUEST_TIMEOUT, res).await.expect("the S3 server answers").expect("create bucket");
    assert!(res.status().is_success(), "creating bucket {bucket}: {}", res.status());
    (endpoint, bucket)
}

/// `revision-store serve` as its own OS process on `database_url`, in test mode with our
/// webhook secret (Stripe's API unreachable unless `env` names one; no reconciliation
/// schedule), with `env` added last so it can change any of that. Its stdout is read until it
/// prints its address, then drained; its log (stderr) is kept for [`ServeProcess::terminate`].
/// A full pipe would stall the server, so both are read as they are written.
pub struct ServeProcess {
    pub child: tokio::process::Child,
    pub base: String,
    log: tokio::task::JoinHandle<String>,
}

impl ServeProcess {
    pub async fn start(database_url: &str, data_dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt};
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_revision-store"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("DATA_DIR", data_dir)
            .env("STRIPE_SECRET_KEY", "sk_test_process")
            .env("STRIPE_PUBLISHABLE_KEY", "pk_test_process")
            .env("STRIPE_WEBHOOK_SECRET", SECRET)
            .env("STRIPE_API_BASE", "http://127.0.0.1:9/")
            .env("RECONCILE_INTERVAL_HOURS", "0")
            // Every test client is 127.0.0.1.
            .env("MAX_CONNECTIONS_PER_CLIENT", "0")
            .env("UPLOADS_PER_USER", "16")
            .env_remove("STRIPE_SIMULATOR")
            .env_remove("LOG_FORMAT")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines.next_line().await.unwrap().expect("the server prints its address");
            if let Some(u) = line.strip_prefix("Revision Store is running at ") {
                break u.to_string();
            }
        };
        // Keep reading what else it prints: a closed stdout would fail its next line.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let mut stderr = child.stderr.take().unwrap();
        let log = tokio::spawn(async move {
            let mut log = String::new();
            let _ = stderr.read_to_string(&mut log).await;
            log
        });
        Self { child, base, log }
    }

    /// Sends SIGTERM and waits for the exit: its status and everything it logged.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await.expect("exits").unwrap();
        (status, self.log.await.unwrap())
    }
}

/// A stand-in for Slack's incoming webhook: records every message, answers `status`.
pub struct SlackStandIn {
    pub url: String,
    pub messages: Arc<Mutex<Vec<Value>>>,
    pub status: Arc<AtomicU16>,
}

impl SlackStandIn {
    pub async fn start() -> Self {
        let messages: Arc<Mutex<Vec<Value>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (m, s) = (messages.clone(), status.clone());
        let app = axum::Router::new().route(
            "/services/T000/B000/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (m, s) = (m.clone(), s.clone());
                async move {
                    m.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    let code = axum::http::StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap();
                    (code, if code.is_success() { "ok" } else { "invalid_payload" })
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url: format!("http://{addr}/services/T000/B000/hook"), messages, status }
    }

    pub fn count(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    pub fn texts(&self) -> Vec<String> {
        self.messages.lock().unwrap().iter().map(|m| m["text"].as_str().unwrap_or_default().to_string()).collect()
    }

    pub fn config(&self, at: &str) -> app::services::slack::SlackConfig {
        app::services::slack::SlackConfig {
            webhook: Some(app::slack::WebhookUrl::parse(&self.url).unwrap()),
            summary_at: app::domain::slack::parse_time(at).unwrap(),
            signing_secret: None,
            askers: Default::default(),
        }
    }
}
