//! Admin pages at a publisher's scale (BENCHMARKS.md, issue 11 section 4). Seeds a fresh
//! PostgreSQL database (the production database) with `--contracts` contracts of 10 each per
//! advertiser; per contract 1 to 10 credited packs, each with its PaymentIntent's purchase row
//! and four events (`payment_intent.created`, `payment_intent.succeeded`, `charge.succeeded`,
//! `charge.updated`), and 0 to 9 revision requests: at 100,000 contracts that is 550,000
//! credits, 450,000 requests and 2,200,000 events. The rows are written by set statements
//! (`generate_series`), the search index by the indexer itself (`index_pending`, the code the
//! worker runs). Then it serves the real router on port 0 and measures, over HTTP with signed-in
//! sessions: the admin balances page (a search, sorted by available, page 400), an admin
//! contract page (its ledger and each purchase's events), and an advertiser's contract page at
//! 50 requests in flight (`--advertiser-only`: that page alone). `--seed-only` stops after seeding
//! and prints the database URL.

mod bench_support;
use clap::Parser;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Seed a publisher-sized database, then measure the admin pages over HTTP")]
struct Args {
    #[arg(long, env = "TEST_POSTGRES_URL")]
    postgres_url: Option<String>,
    #[arg(long, default_value_t = 100_000)]
    contracts: i64,
    /// Requests per measured page (p50 and p95 are over these).
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Seed, print the database URL and stop (the database is kept).
    #[arg(long)]
    seed_only: bool,
    /// Measure a database an earlier `--seed-only` run seeded (its URL) instead of seeding.
    #[arg(long)]
    seeded: Option<String>,
    /// Measure the advertiser's contract page only (alone and at 50 in flight).
    #[arg(long)]
    advertiser_only: bool,
}

const PASSWORD: &str = "scale-bench-password";
const PUBLICATIONS: &str = "ARRAY['Daily Planet','Gotham Gazette','Metro Weekly','Harbor Herald','Valley Voice',\
                            'City Chronicle','Coastal Courier','Summit Standard']";

fn main() {
    let args = Args::parse();
    if args.contracts < 10 {
        eprintln!("error: --contracts must be at least 10");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(run(&args));
}

async fn run(args: &Args) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let url = match &args.seeded {
        Some(url) => url.clone(),
        None => bench_support::database("postgres", args.postgres_url.as_deref(), "bench_admin", tmp.path()).await,
    };
    let cli = server::cli::Cli::parse_from(["bench", "--database-url", &url, "--bind", "127.0.0.1:0"]);
    let mut settings = cli.config.settings().expect("settings");
    settings.stripe.mode = Some(app::domain::deployment::DeploymentMode::Test);
    settings.artwork.data_dir = tmp.path().to_path_buf();
    settings.reconcile.worker_interval = Duration::from_secs(3600);
    settings.reconcile.interval = None;
    let db = server::open_database(&settings).await.expect("database");
    let app::store::Db::Postgres(pg) = &db else { unreachable!("a PostgreSQL URL") };
    println!("\n## {} contracts on PostgreSQL", args.contracts);

    let (admin, advertiser) = logins(args, &db, pg).await;
    let count = |table: &str| {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        async move { sqlx::query_scalar::<_, i64>(&sql).fetch_one(pg).await.unwrap() }
    };
    println!(
        "{} contracts, {} credits, {} requests, {} events",
        count("contracts").await,
        count("contract_revisions").await,
        count("revision_requests").await,
        count("stripe_events").await,
    );
    if args.seed_only {
        println!("database: {url}");
        return;
    }

    let app = server::Application::start(&settings).await.expect("app starts");
    let base = app.url();
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let admin_cookie = sign_in(&http, &base, &admin).await;
    let advertiser_cookie = sign_in(&http, &base, &advertiser.0).await;

    measure_pages(args, pg, &http, &base, &admin_cookie, &advertiser_cookie, &advertiser.1).await;
    app.shut_down().await;
}

/// The logins to measure with: the seeded database's, or those of the data set seeded (and
/// indexed) now.
async fn logins(args: &Args, db: &app::store::Db, pg: &sqlx::PgPool) -> (String, (String, Vec<i64>)) {
    match &args.seeded {
        Some(_) => seeded_logins(pg).await,
        None => {
            let t = Instant::now();
            let logins = seed(db, pg, args.contracts).await;
            let seeded = t.elapsed();
            let t = Instant::now();
            let indexed = bench_support::index_everything(db).await;
            let indexing = t.elapsed();
            // The seed moves every kept balance about ten times within seconds (one trigger
            // update per ledger row, in a handful of statements), leaving nine dead versions of
            // each row and of its `available` index entry: ten times the table a live database
            // has, where autovacuum runs between a contract's purchases months apart and its
            // space is reused. Compacted here so the pages measure the live shape; BENCHMARKS.md
            // gives the figure on the bloated table too.
            sqlx::query("VACUUM FULL contract_balances").execute(pg).await.unwrap();
            sqlx::query("VACUUM ANALYZE").execute(pg).await.unwrap();
            println!(
                "seeded in {:.0} s; indexed {indexed} events in {:.0} s",
                seeded.as_secs_f64(),
                indexing.as_secs_f64()
            );
            logins
        }
    }
}

/// Every page measured: the admin's (unless `--advertiser-only`), then the advertiser's.
async fn measure_pages(
    args: &Args,
    pg: &sqlx::PgPool,
    http: &Http,
    base: &str,
    admin_cookie: &str,
    advertiser_cookie: &str,
    contracts: &[i64],
) {
    println!("\n| page | requests in flight | p50 ms | p95 ms |\n|---|---:|---:|---:|");
    if !args.advertiser_only {
        let balances = "/admin?q=daily&sort=available&page=400".to_string();
        measure(
            pg,
            http,
            base,
            admin_cookie,
            "admin balances: search, sort by available, page 400",
            &[balances],
            1,
            args.runs,
        )
        .await;
        let unfiltered = "/admin?sort=available&page=400".to_string();
        measure(
            pg,
            http,
            base,
            admin_cookie,
            "admin balances: sort by available, page 400",
            &[unfiltered],
            1,
            args.runs,
        )
        .await;
        let first_contract: i64 = sqlx::query_scalar("SELECT MIN(id) FROM contracts").fetch_one(pg).await.unwrap();
        // Spread over the table: contracts with 1 to 10 packs.
        let ledgers: Vec<String> =
            (0..50).map(|i| format!("/admin/contracts/{}", first_contract + (i * 7919) % args.contracts)).collect();
        measure(pg, http, base, admin_cookie, "admin contract page (ledger and events)", &ledgers, 1, args.runs).await;
    }
    let own: Vec<String> = contracts.iter().map(|id| format!("/contracts/{id}")).collect();
    measure(pg, http, base, advertiser_cookie, "advertiser contract page", &own, 1, args.runs).await;
    measure(pg, http, base, advertiser_cookie, "advertiser contract page", &own, 50, args.runs.max(1000)).await;
}

/// Times `runs` GETs of `paths` (in turn) with `in_flight` at a time; prints p50 and p95.
#[allow(clippy::too_many_arguments)]
async fn measure(
    pg: &sqlx::PgPool,
    http: &Http,
    base: &str,
    cookie: &str,
    name: &str,
    paths: &[String],
    in_flight: usize,
    runs: usize,
) {
    quiet(pg).await;
    // Warm: the first requests compile plans and fill caches.
    for p in paths.iter().take(5) {
        get(http, base, cookie, p).await;
    }
    // `in_flight` clients, each its own task taking the next request when its last one is
    // answered, as a load tester's connections do. Driven from one task instead, every response
    // waits for that task to be free, and the client's own work is counted in the page's time.
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let paths = std::sync::Arc::new(paths.to_vec());
    let clients: Vec<_> = (0..in_flight)
        .map(|_| {
            let (http, base, cookie) = (http.clone(), base.to_string(), cookie.to_string());
            let (next, paths) = (next.clone(), paths.clone());
            tokio::spawn(async move {
                let mut times = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= runs {
                        return times;
                    }
                    let t = Instant::now();
                    get(&http, &base, &cookie, &paths[i % paths.len()]).await;
                    times.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut times = Vec::with_capacity(runs);
    for client in clients {
        times.extend(client.await.expect("a client task"));
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1)].as_secs_f64() * 1000.0;
    println!("| {name} | {in_flight} | {:.1} | {:.1} |", at(0.50), at(0.95));
}

/// Waits until the database has run nothing for half a second, so a measure starts in the
/// steady state: the app's first worker sweep at start-up includes a full pass over the event
/// store for events the indexer missed (about 2 s over 2,200,000 events), which would otherwise
/// land on the first measure.
async fn quiet(pg: &sqlx::PgPool) {
    let mut idle_polls = 0;
    while idle_polls < 5 {
        let busy: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() \
             AND datname = current_database()",
        )
        .fetch_one(pg)
        .await
        .unwrap();
        idle_polls = if busy == 0 { idle_polls + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type Http = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

/// A page, read whole; anything but 200 stops the benchmark (a fast error page measures nothing).
async fn get(http: &Http, base: &str, cookie: &str, path: &str) -> usize {
    use http_body_util::BodyExt;
    let req = hyper::Request::get(format!("{base}{path}")).header("cookie", cookie).body(Default::default()).unwrap();
    let res = http.request(req).await.expect("request");
    let status = res.status();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    body.len()
}

async fn sign_in(http: &Http, base: &str, email: &str) -> String {
    use leptos::server_fn::ServerFn;
    let form = format!("email={}&password={PASSWORD}", email.replace('@', "%40"));
    let req = hyper::Request::post(format!("{base}{}", app::web::auth::SignIn::PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", base)
        .body(http_body_util::Full::new(bytes::Bytes::from(form)))
        .unwrap();
    let res = http.request(req).await.expect("sign in");
    assert!(res.status().as_u16() < 400, "sign-in: {}", res.status());
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("revision_store_session="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string()
}

/// The logins a seeded database has: the admin, and advertiser0 with their contracts.
async fn seeded_logins(pg: &sqlx::PgPool) -> (String, (String, Vec<i64>)) {
    let own: Vec<i64> = sqlx::query_scalar(
        "SELECT c.id FROM contracts c JOIN users u ON u.id = c.advertiser_id \
         WHERE u.email = 'advertiser0@scale.example' ORDER BY c.id",
    )
    .fetch_all(pg)
    .await
    .unwrap();
    assert!(!own.is_empty(), "not a database bench-admin seeded");
    ("admin@scale.example".into(), ("advertiser0@scale.example".into(), own))
}

/// The seed's statements after the users and contracts, in order.
const SEED_STATEMENTS: [&str; 7] = [
    // Pack k (1..=n) of a contract with n = 1 + (its index % 10) packs, paid over the last year.
    "CREATE UNLOGGED TABLE seed_packs AS \
         SELECT c.id AS contract_id, c.advertiser_id, 'pi_scale' || lpad(c.id::text, 7, '0') || 'k' || k AS pi, \
                'ch_scale' || lpad(c.id::text, 7, '0') || 'k' || k AS ch, \
                'evt_scale' || lpad(c.id::text, 7, '0') || 'k' || k AS evt, \
                now() - interval '365 days' + (((c.id * 7 + k * 104729) % 31536000) || ' seconds')::interval AS paid_at \
         FROM contracts c, generate_series(1, 10) k WHERE k <= 1 + c.id % 10",
    // The four events of each pack, as Stripe sends them (trimmed to what is read).
    "INSERT INTO stripe_events (event_id, event_type, livemode, api_version, stripe_created, payload, \
           signature_header, request_headers, received_at, payload_sha256) \
         SELECT e.id, e.type, false, '2026-09-30.endive', extract(epoch FROM e.at)::bigint, e.body, 't=1,v1=seed', '{}', \
                e.at, encode(sha256(e.body), 'hex') \
         FROM (SELECT p.evt || '_' || t.n AS id, t.type, p.paid_at + (t.n || ' seconds')::interval AS at, \
                 convert_to(json_build_object('id', p.evt || '_' || t.n, 'object', 'event', 'type', t.type, \
                   'livemode', false, 'created', extract(epoch FROM p.paid_at)::bigint + t.n, \
                   'data', json_build_object('object', CASE WHEN t.type LIKE 'charge.%' THEN \
                     json_build_object('id', p.ch, 'object', 'charge', 'amount', 15000, 'amount_refunded', 0, \
                       'currency', 'usd', 'payment_intent', p.pi, 'refunded', false, 'disputed', false) \
                   ELSE json_build_object('id', p.pi, 'object', 'payment_intent', 'amount', 15000, \
                       'amount_received', CASE WHEN t.type = 'payment_intent.succeeded' THEN 15000 ELSE 0 END, \
                       'currency', 'usd', 'status', CASE WHEN t.type = 'payment_intent.succeeded' THEN 'succeeded' \
                       ELSE 'requires_payment_method' END, \
                       'metadata', json_build_object('contractId', p.contract_id::text)) END))::text, 'UTF8') AS body \
               FROM seed_packs p, (VALUES (0, 'payment_intent.created'), (1, 'payment_intent.succeeded'), \
                 (2, 'charge.succeeded'), (3, 'charge.updated')) t(n, type)) e",
    "INSERT INTO stripe_event_processing (event_id, status, attempts, next_attempt_at, outcome, processed_at) \
         SELECT event_id, 'processed', 1, received_at, 'seeded', received_at FROM stripe_events",
    "INSERT INTO purchases (payment_intent_id, contract_id, created_by, amount, currency, revisions, status, \
           idempotency_key, livemode, created_at, updated_at) \
         SELECT pi, contract_id, advertiser_id, 15000, 'usd', 2, 'succeeded', 'seed-' || pi, false, paid_at, paid_at \
         FROM seed_packs",
    "INSERT INTO contract_revisions (contract_id, payment_id, revisions, amount, currency, livemode, \
           stripe_event_id, created_at, credited_by) \
         SELECT contract_id, pi, 2, 15000, 'usd', false, evt || '_1', paid_at + interval '1 second', 'webhook' \
         FROM seed_packs",
    // Contract index i has i % 10 requests: never more than its 3 + 2 × (1 + i % 10) revisions.
    "INSERT INTO revision_requests (contract_id, requested_by, notes, created_at) \
         SELECT c.id, c.advertiser_id, 'Revision ' || r || ': move the logo, brighter headline', \
                now() - interval '300 days' + (r || ' days')::interval \
         FROM contracts c, generate_series(1, 9) r WHERE r <= c.id % 10",
    "DROP TABLE seed_packs",
];

/// Seeds the data set; returns the admin's email and one advertiser's email with their
/// contracts. Everyone's password is `PASSWORD` (one real hash, copied).
async fn seed(db: &app::store::Db, pg: &sqlx::PgPool, contracts: i64) -> (String, (String, Vec<i64>)) {
    use app::domain::users::Role;
    let admin = app::services::accounts::create_user(db, "admin@scale.example", Role::Admin, PASSWORD).await.unwrap();
    let first = app::services::accounts::create_user(db, "advertiser0@scale.example", Role::Advertiser, PASSWORD)
        .await
        .unwrap();
    let exec = |sql: String| async move {
        let t = Instant::now();
        let done = sqlx::query(&sql).execute(pg).await.unwrap_or_else(|e| panic!("{e}: {sql}"));
        eprintln!(
            "  {} rows in {:.1} s: {}",
            done.rows_affected(),
            t.elapsed().as_secs_f64(),
            &sql[..60.min(sql.len())]
        );
    };
    let advertisers = contracts / 10;
    exec(format!(
        "INSERT INTO users (email, role, password_hash, created_at) \
         SELECT 'advertiser' || g || '@scale.example', 'advertiser', u.password_hash, now() \
         FROM generate_series(1, {advertisers} - 1) g, users u WHERE u.id = {}",
        first.id
    ))
    .await;
    // Contract g (0-based) belongs to advertiser g % advertisers: advertiser0 is `first`.
    exec(format!(
        "INSERT INTO contracts (advertiser_id, publication, ad_size, base_revisions, created_at) \
         SELECT CASE WHEN g % {advertisers} = 0 THEN {first} \
                ELSE (SELECT id FROM users WHERE email = 'advertiser' || (g % {advertisers}) || '@scale.example') END, \
                ({PUBLICATIONS})[1 + g % 8], 'Half page', 3, now() - interval '400 days' \
         FROM generate_series(0, {contracts} - 1) g",
        first = first.id
    ))
    .await;
    for sql in SEED_STATEMENTS {
        exec(sql.to_string()).await;
    }
    let own: Vec<i64> = sqlx::query_scalar("SELECT id FROM contracts WHERE advertiser_id = $1 ORDER BY id")
        .bind(first.id)
        .fetch_all(pg)
        .await
        .unwrap();
    (admin.email, (first.email, own))
}
