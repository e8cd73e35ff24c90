//! Event search benchmark (BENCHMARKS.md): seeds a fresh database with N events about M
//! payments spread over a year (10 events a payment: its PaymentIntent, charge and refund
//! events and customer updates, every one naming the payment), credits the payments on 1,000
//! contracts of 100 advertisers and refunds 5 % of them, indexes it all, then measures search
//! pages (first, 1,000th, filtered, payload text), a streamed export of everything, and a year
//! of revenue. Run through `.ci/bench`, which also starts a throwaway PostgreSQL.

mod bench_support;
use app::domain::event_search::{Cursor, EventFilter, ExportFormat};
use app::domain::revenue::Period;
use app::services::event_search::{page, Export};
use app::store::events::{NewEvent, StoreJob};
use app::store::Db;
use chrono::{DateTime, Duration as Days, NaiveDate, Utc};
use clap::Parser;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Seed N events about M payments, then measure event search, export and revenue")]
struct Args {
    /// sqlite, postgres, or both
    #[arg(long, default_value = "both")]
    db: String,
    #[arg(long, env = "TEST_POSTGRES_URL")]
    postgres_url: Option<String>,
    #[arg(long, default_value_t = 1_000_000)]
    events: i64,
    #[arg(long, default_value_t = 100_000)]
    payments: i64,
    /// Runs per measured query (p50 and p95 are over these).
    #[arg(long, default_value_t = 50)]
    runs: usize,
}

const TYPES: [&str; 10] = [
    "payment_intent.created",
    "payment_intent.succeeded",
    "charge.succeeded",
    "charge.updated",
    "customer.updated",
    "customer.updated",
    "customer.updated",
    "customer.updated",
    "customer.updated",
    "customer.updated",
];
const YEAR_START: &str = "2025-01-01T00:00:00Z";

fn main() {
    let args = Args::parse();
    if args.payments <= 0 || args.events < args.payments {
        eprintln!("error: --payments must be positive and --events at least --payments");
        std::process::exit(2);
    }
    let dbs = bench_support::kinds(&args.db);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for db in dbs {
        rt.block_on(run(&args, db));
    }
}

/// Runs one statement on either database.
macro_rules! exec {
    ($db:expr, $sql:expr $(, $b:expr)* $(,)?) => {
        match $db {
            Db::Sqlite(s) => { sqlx::query($sql)$(.bind($b))*.execute(&s.writer).await.expect($sql); }
            Db::Postgres(p) => { sqlx::query($sql)$(.bind($b))*.execute(p).await.expect($sql); }
        }
    };
}

async fn run(args: &Args, kind: &str) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let url = bench_support::database(kind, args.postgres_url.as_deref(), "bench_search", tmp.path()).await;
    let cli = server::cli::Cli::parse_from(["bench", "--database-url", &url, "--bind", "127.0.0.1:0"]);
    let settings = cli.config.settings().expect("settings");
    let db = server::open_database(&settings).await.expect("database");
    let svc = server::services(&settings, db.clone(), app::domain::deployment::DeploymentMode::Test);
    println!("\n## {kind}: {} events about {} payments", args.events, args.payments);

    let t = Instant::now();
    seed(&db, args).await;
    let seeded = t.elapsed();
    let t = Instant::now();
    let indexed = bench_support::index_everything(&db).await;
    let indexing = t.elapsed();
    println!(
        "seeded in {:.1} s; indexed {indexed} events in {:.1} s ({:.0} events/s)",
        seeded.as_secs_f64(),
        indexing.as_secs_f64(),
        indexed as f64 / indexing.as_secs_f64()
    );
    if let Db::Postgres(p) = &db {
        sqlx::query("ANALYZE").execute(p).await.unwrap();
    }

    let all = EventFilter::default();
    queries(args, &db, &all).await;
    export(&db, &all).await;
    revenue(args, &svc).await;
    if let Db::Postgres(p) = &db {
        p.close().await;
    }
}

/// The search's pages: unfiltered, deep, and by each kind of filter.
async fn queries(args: &Args, db: &Db, all: &EventFilter) {
    println!("\n| query | rows | p50 ms | p95 ms |\n|---|---|---|---|");
    measure(args, "first page (50, no filter)", || page(db, all, None, 50)).await;
    // The 1,000th page's position, found by walking the pages as a reader would.
    let t = Instant::now();
    let mut cursor: Option<Cursor> = None;
    for _ in 0..999 {
        cursor = page(db, all, cursor.as_ref(), 50).await.unwrap().next;
    }
    let walk = t.elapsed();
    let c = cursor.expect("1,000 pages");
    measure(args, "1,000th page (50, no filter)", || page(db, all, Some(&c), 50)).await;
    let filter = |pairs: &[(&str, &str)]| {
        EventFilter::parse(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)).expect("a filter")
    };
    let pi = format!("pi_bench{:08}", args.payments / 2);
    let by_pi = filter(&[("payment", &pi)]);
    measure(args, "a PaymentIntent's events", || page(db, &by_pi, None, 50)).await;
    let by_email = filter(&[("email", "advertiser42@bench.example")]);
    measure(args, "an advertiser's events (email)", || page(db, &by_email, None, 50)).await;
    let by_type = filter(&[("type", "charge."), ("min", "150"), ("max", "150"), ("currency", "usd"), ("mode", "test")]);
    measure(args, "type prefix + amount + mode", || page(db, &by_type, None, 50)).await;
    let by_month = filter(&[("from", "2025-06-01"), ("to", "2025-06-30"), ("status", "processed")]);
    measure(args, "a month, processed", || page(db, &by_month, None, 50)).await;
    let text_pi = filter(&[("q", &pi)]);
    measure(args, "payload text: a PaymentIntent id", || page(db, &text_pi, None, 50)).await;
    let text_rare = filter(&[("q", "fraudulent")]);
    measure(args, "payload text: a word in 1 % of events", || page(db, &text_rare, None, 50)).await;
    let text_name = filter(&[("q", "Customer 4242")]);
    measure(args, "payload text: a two-word phrase", || page(db, &text_name, None, 50)).await;
    println!(
        "(walking pages 1 to 999 to find the 1,000th: {:.2} s, {:.1} ms a page)",
        walk.as_secs_f64(),
        walk.as_secs_f64() * 1000.0 / 999.0
    );
}

/// Everything exported as NDJSON (into a sink, the resident set sampled) and as CSV.
async fn export(db: &Db, all: &EventFilter) {
    // Export everything as NDJSON, a page at a time, into a sink; sample the resident set.
    let rss_before = rss_kib();
    let peak = Arc::new(AtomicU64::new(rss_before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let t = Instant::now();
    let mut export = Export::start(db.clone(), all.clone(), ExportFormat::Ndjson).await.unwrap();
    let (mut bytes, mut rows, mut at_100k) = (0usize, 0usize, 0u64);
    while let Some(chunk) = export.next_chunk().await.unwrap() {
        bytes += chunk.len();
        rows += chunk.matches('\n').count();
        if rows == 100_000 {
            at_100k = rss_kib();
        }
    }
    let took = t.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    println!(
        "\nexport (NDJSON, all): {rows} rows, {:.0} MB in {:.1} s = {:.0} rows/s; resident set {} MiB before, {} MiB after 100,000 rows, {} MiB at most",
        bytes as f64 / 1e6,
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64(),
        rss_before / 1024,
        at_100k / 1024,
        peak.load(Ordering::Relaxed) / 1024
    );
    let t = Instant::now();
    let mut export = Export::start(db.clone(), all.clone(), ExportFormat::Csv).await.unwrap();
    let mut csv_rows = 0usize;
    while let Some(chunk) = export.next_chunk().await.unwrap() {
        csv_rows += chunk.matches("\r\n").count();
    }
    println!("export (CSV, all): {} rows in {:.1} s", csv_rows - 1, t.elapsed().as_secs_f64());
}

/// The revenue report over a year, by day and by month.
async fn revenue(args: &Args, svc: &app::services::Services) {
    println!("\n| revenue | p50 ms | p95 ms |\n|---|---|---|");
    let (from, to) = (NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(), NaiveDate::from_ymd_opt(2025, 12, 31).unwrap());
    for period in [Period::Day, Period::Month] {
        let mut times = Vec::new();
        for _ in 0..args.runs {
            let t = Instant::now();
            let r = app::services::revenue::report(svc, from, to, period).await.unwrap();
            times.push(t.elapsed());
            assert!(!r.lines.is_empty());
        }
        let (p50, p95) = percentiles(&mut times);
        println!("| a year by {} | {p50:.1} | {p95:.1} |", period.as_str());
    }
}

async fn measure<F, Fut>(args: &Args, name: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = app::store::StoreResult<app::services::event_search::Page>>,
{
    let mut times = Vec::with_capacity(args.runs);
    let mut rows = 0;
    for _ in 0..args.runs {
        let t = Instant::now();
        rows = f().await.expect("search").hits.len();
        times.push(t.elapsed());
    }
    let (p50, p95) = percentiles(&mut times);
    println!("| {name} | {rows} | {p50:.1} | {p95:.1} |");
}

fn percentiles(times: &mut [Duration]) -> (f64, f64) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1)].as_secs_f64() * 1000.0;
    (at(0.50), at(0.95))
}

/// This process's resident set, KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// 100 advertisers with 10 contracts each; per payment a credit (5 % refunded) and
/// `events / payments` events spread over 2025, stored as intake stores them and then marked
/// processed in bulk.
async fn seed(db: &Db, args: &Args) {
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339(YEAR_START).unwrap().with_timezone(&Utc);
    let now = Utc::now();
    for a in 0..100i64 {
        exec!(
            db,
            "INSERT INTO users (email, role, password_hash, created_at) VALUES ($1, 'advertiser', '$argon2id$bench', $2)",
            format!("advertiser{a}@bench.example"),
            now
        );
    }
    let first_user: i64 = match db {
        Db::Sqlite(s) => sqlx::query_scalar("SELECT MIN(id) FROM users").fetch_one(&s.writer).await.unwrap(),
        Db::Postgres(p) => sqlx::query_scalar("SELECT MIN(id) FROM users").fetch_one(p).await.unwrap(),
    };
    for c in 0..1_000i64 {
        exec!(
            db,
            "INSERT INTO contracts (advertiser_id, publication, ad_size, base_revisions, created_at) VALUES ($1, 'Bench Daily', 'Half page', 3, $2)",
            first_user + c % 100,
            now
        );
    }
    let first_contract: i64 = match db {
        Db::Sqlite(s) => sqlx::query_scalar("SELECT MIN(id) FROM contracts").fetch_one(&s.writer).await.unwrap(),
        Db::Postgres(p) => sqlx::query_scalar("SELECT MIN(id) FROM contracts").fetch_one(p).await.unwrap(),
    };
    let per_payment = args.events / args.payments;
    let span = Days::days(365).num_seconds() / args.payments;
    let mut jobs: Vec<StoreJob> = Vec::with_capacity(1_000);
    let mut credits: Vec<(i64, String, DateTime<Utc>)> = Vec::with_capacity(1_000);
    let mut n = 0i64;
    for p in 0..args.payments {
        let pi = format!("pi_bench{p:08}");
        let contract = first_contract + p % 1_000;
        let paid_at = start + Days::seconds(p * span);
        let events = per_payment + i64::from(p < args.events % args.payments);
        for e in 0..events {
            n += 1;
            jobs.push(event_job(p, e, n, &pi, contract, paid_at, now));
        }
        credits.push((contract, pi, paid_at));
        if jobs.len() >= 1_000 {
            app::store::events::store_batch(db, &jobs.iter().collect::<Vec<_>>()).await.expect("store");
            jobs.clear();
            write_credits(db, &credits).await;
            credits.clear();
        }
    }
    if !jobs.is_empty() {
        app::store::events::store_batch(db, &jobs.iter().collect::<Vec<_>>()).await.expect("store");
    }
    write_credits(db, &credits).await;
    exec!(
        db,
        "UPDATE stripe_event_processing SET status = 'processed', attempts = 1, processed_at = $1, outcome = 'seeded'",
        now
    );
}

/// Event `e` of payment `p` (the `n`th stored), as intake stores it.
fn event_job(p: i64, e: i64, n: i64, pi: &str, contract: i64, paid_at: DateTime<Utc>, now: DateTime<Utc>) -> StoreJob {
    let ty = TYPES[(e as usize) % TYPES.len()];
    let object = match ty.split('.').next().unwrap() {
        "payment_intent" => serde_json::json!({"id": pi, "object": "payment_intent", "amount": 15000,
            "amount_received": 15000, "currency": "usd", "status": "succeeded",
            "metadata": {"contractId": contract.to_string()}}),
        "charge" => serde_json::json!({"id": format!("ch_bench{p:08}"), "object": "charge", "amount": 15000,
            "amount_refunded": 0, "currency": "usd", "payment_intent": pi, "refunded": false, "disputed": false,
            "outcome": {"type": "authorized", "risk_level": if n % 100 == 0 { "fraudulent" } else { "normal" }}}),
        _ => serde_json::json!({"id": format!("cus_bench{:06}", p % 100_000), "object": "customer",
            "name": format!("Customer {}", p % 10_000), "description": format!("paid with {pi}"),
            "metadata": {"note": if n % 100 == 0 { "fraudulent" } else { "regular" }}}),
    };
    let event_id = format!("evt_bench{n:09}");
    let body = serde_json::json!({"id": event_id, "object": "event", "api_version": "2026-09-30.endive",
        "created": paid_at.timestamp() + e, "livemode": false, "type": ty, "data": {"object": object}})
    .to_string();
    let received_at = paid_at + Days::seconds(e);
    StoreJob {
        event: NewEvent {
            event_id,
            event_type: ty.to_string(),
            livemode: false,
            api_version: Some("2026-09-30.endive".into()),
            stripe_created: paid_at.timestamp() + e,
            payload_sha256: NewEvent::digest(body.as_bytes()),
            payload: body.into_bytes(),
            signature_header: "t=1,v1=bench".into(),
            request_headers: "{}".into(),
            received_at,
        },
        credit: None,
        lease_until: now + Days::days(3650),
    }
}

async fn write_credits(db: &Db, credits: &[(i64, String, DateTime<Utc>)]) {
    if credits.is_empty() {
        return;
    }
    let mut values = String::new();
    for (i, _) in credits.iter().enumerate() {
        if i > 0 {
            values.push(',');
        }
        values.push_str(&format!(
            "(${}, ${}, 2, 15000, 'usd', FALSE, ${}, 'webhook')",
            i * 3 + 1,
            i * 3 + 2,
            i * 3 + 3
        ));
    }
    let sql = format!(
        "INSERT INTO contract_revisions (contract_id, payment_id, revisions, amount, currency, livemode, created_at, credited_by) VALUES {values}"
    );
    macro_rules! bind_all {
        ($q:expr) => {{
            let mut q = $q;
            for (c, pi, at) in credits {
                q = q.bind(*c).bind(pi.as_str()).bind(*at);
            }
            q
        }};
    }
    match db {
        Db::Sqlite(s) => {
            bind_all!(sqlx::query(&sql)).execute(&s.writer).await.expect("credits");
        }
        Db::Postgres(p) => {
            bind_all!(sqlx::query(&sql)).execute(p).await.expect("credits");
        }
    }
    for (_, pi, at) in credits.iter().filter(|(_, pi, _)| pi.ends_with('0') && pi.as_bytes()[pi.len() - 2] % 2 == 0) {
        exec!(
            db,
            "INSERT INTO payment_refunds (refund_id, payment_id, amount, currency, status, livemode, first_seen, updated_at) \
             VALUES ($1, $2, 7500, 'usd', 'succeeded', FALSE, $3, $3)",
            pi.replace("pi_", "re_"),
            pi.as_str(),
            *at + Days::days(3)
        );
    }
}
