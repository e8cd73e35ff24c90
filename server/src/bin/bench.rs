//! Webhook throughput benchmark: starts the real server on a fresh database (port 0, its own
//! runtime) and sends signed `payment_intent.succeeded` deliveries from a loopback client.
//! Reports credited events/s and latency percentiles. Run through `.ci/bench`, which also
//! starts a throwaway PostgreSQL with fsync on.
use app::domain::users::Role;
use app::domain::PackTerms;
use app::stripe::signature::sign;
use app::stripe::WebhookSecret;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use server::config::Settings;
use server::Application;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Measure webhook deliveries per second")]
struct Args {
    /// sqlite, postgres, or both
    #[arg(long, default_value = "both")]
    db: String,
    /// PostgreSQL server URL to create the bench database in (default: TEST_POSTGRES_URL).
    #[arg(long, env = "TEST_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// Deliveries to send (after warm-up).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Share of deliveries that repeat an earlier event (0.0 = every one new).
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Server runtime worker threads.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
}

const SECRET: &str = "whsec_bench";

fn main() {
    let args = Args::parse();
    if !(0.0..1.0).contains(&args.duplicates) || args.concurrency == 0 || args.requests == 0 {
        eprintln!("error: --duplicates must be in [0, 1), --concurrency and --requests positive");
        std::process::exit(2);
    }
    let dbs = server::bench_kinds(&args.db);
    println!(
        "| database | deliveries | new events | duplicates | concurrency | credited/s | deliveries/s | p50 ms | p99 ms | max ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for db in dbs {
        run(&args, db);
    }
}

fn run(args: &Args, db: &str) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let url = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(server::bench_database(db, args.postgres_url.as_deref(), "bench", tmp.path()));
    let settings = Settings {
        database_url: url,
        db_max_connections: (args.concurrency as u32).max(4),
        db_timeout: Duration::from_secs(5),
        terms: PackTerms::standard(),
        mode: Some(app::domain::deployment::DeploymentMode::Test),
        switch_mode: false,
        stripe: None,
        publishable_key: None,
        webhook_secrets: WebhookSecret::parse_list(SECRET).unwrap(),
        bind: "127.0.0.1:0".parse().unwrap(),
        connections: Default::default(),
        worker_interval: Duration::from_secs(3600),
        data_dir: std::env::temp_dir(),
        secure_cookies: false,
        public_origin: None,
        client_ip_header: None,
        reconcile_interval: None,
        reconcile_window: chrono::Duration::days(3),
        reconcile_rate: 20,
        owners: Default::default(),
        api_rate_per_minute: std::num::NonZeroU32::new(60).unwrap(),
        slack: Default::default(),
        metrics_token_hash: None,
    };

    // The server gets a runtime (and threads) of its own, like a separate process would.
    let server_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.server_threads).enable_all().build().unwrap();
    let (app, contract_id) = server_rt.block_on(async {
        let app = Application::start(&settings).await.expect("server starts");
        let user = app::services::accounts::create_user(
            &app.services.db,
            "bench@example.com",
            Role::Advertiser,
            "bench-password-123",
        )
        .await
        .unwrap();
        let c = app::store::contracts::create(
            &app.services.db,
            &app::store::contracts::NewContract {
                advertiser_id: user.id,
                publication: "Bench",
                ad_size: "Page",
                base_revisions: 3,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        (app, c.id)
    });
    let url = format!("{}/webhooks/stripe", app.url());

    // Bodies are built and signed up front so the load generator spends its CPU on sending.
    let warmup = 500.min(args.requests);
    let total = warmup + args.requests;
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let ts = chrono::Utc::now().timestamp();
    let mut new_events = 0usize;
    let mut last_new = 0usize;
    let deliveries: Vec<(Bytes, String)> = (0..total)
        .map(|i| {
            // A deterministic spread of duplicates: the given share repeats the latest new event.
            let dup = i > 0 && ((i as f64 * args.duplicates).floor() != ((i - 1) as f64 * args.duplicates).floor());
            let n = if dup { last_new } else { i };
            if !dup {
                last_new = i;
                if i >= warmup {
                    new_events += 1;
                }
            }
            let body = format!(
                r#"{{"id":"evt_bench{n}","object":"event","api_version":"2024-06-20","created":{ts},"livemode":false,"type":"payment_intent.succeeded","data":{{"object":{{"id":"pi_bench{n}","object":"payment_intent","amount":15000,"amount_received":15000,"currency":"usd","status":"succeeded","livemode":false,"metadata":{{"contractId":"{contract_id}"}}}}}}}}"#
            );
            let header = sign(body.as_bytes(), &secret, ts);
            (Bytes::from(body), header)
        })
        .collect();
    let deliveries = Arc::new(deliveries);

    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let send = |range: std::ops::Range<usize>| {
        let next = Arc::new(AtomicUsize::new(range.start));
        let end = range.end;
        client_rt.block_on(async {
            let tasks: Vec<_> = (0..args.concurrency)
                .map(|_| {
                    let (next, deliveries, url) = (next.clone(), deliveries.clone(), url.clone());
                    tokio::spawn(async move {
                        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
                        let mut latencies = Vec::new();
                        let mut failures = 0usize;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= end {
                                break;
                            }
                            let (body, header) = &deliveries[i];
                            let req = hyper::Request::post(&url)
                                .header("content-type", "application/json")
                                .header("stripe-signature", header)
                                .body(Full::new(body.clone()))
                                .unwrap();
                            let started = Instant::now();
                            let res = client.request(req).await.expect("request");
                            let ok = res.status().is_success();
                            let _ = res.into_body().collect().await;
                            latencies.push(started.elapsed());
                            if !ok {
                                failures += 1;
                            }
                        }
                        (latencies, failures)
                    })
                })
                .collect();
            let mut all = Vec::new();
            let mut failures = 0;
            for t in tasks {
                let (l, f) = t.await.unwrap();
                all.extend(l);
                failures += f;
            }
            (all, failures)
        })
    };

    send(0..warmup);
    let credited_before = count_credits(&server_rt, &app, contract_id);
    let started = Instant::now();
    let (mut latencies, failures) = send(warmup..total);
    let elapsed = started.elapsed();
    let credited = count_credits(&server_rt, &app, contract_id) - credited_before;
    assert_eq!(failures, 0, "every delivery must be answered 2xx");
    assert_eq!(credited, new_events, "each new event credits exactly once");

    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {db} | {} | {new_events} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |",
        args.requests,
        args.requests - new_events,
        args.concurrency,
        credited as f64 / elapsed.as_secs_f64(),
        args.requests as f64 / elapsed.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*latencies.last().unwrap()),
    );
    server_rt.block_on(app.stop());
}

fn count_credits(rt: &tokio::runtime::Runtime, app: &Application, contract_id: i64) -> usize {
    rt.block_on(app::store::ledger::credits(&app.services.db, contract_id)).unwrap().len()
}
