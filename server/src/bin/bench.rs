//! Webhook throughput benchmark: starts the real server on a fresh database (port 0, its own
//! runtime) and sends signed `payment_intent.succeeded` deliveries from a loopback client.
//! Reports credited events/s and latency percentiles. Run through `.ci/bench`, which also
//! starts a throwaway PostgreSQL with fsync on.

mod bench_support;
use app::stripe::signature::sign;
use app::stripe::WebhookSecret;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use server::config::Config;
use server::Application;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Measure webhook deliveries per second, beside the bare handler when given")]
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
    /// Concurrent connections; a comma-separated list runs each in turn (e.g. 8,64).
    #[arg(long, default_value = "8", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Share of deliveries that repeat an earlier event (0.0 = every one new).
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Copies of each event delivered at the same moment (consecutive deliveries, taken by
    /// different connections): Stripe after a timeout, or two instances behind a load balancer.
    #[arg(long, default_value_t = 1)]
    copies: usize,
    /// Contracts the payments are spread over, in turn (1: every credit moves one contract's
    /// kept balance, the hottest row there can be; the bare handler keeps no balance).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    contracts: u32,
    /// Also measure each run with this many extra tasks flooding the server alongside the
    /// deliveries: `/readyz` and failed sign-ins in turn, as fast as they are answered (0: no
    /// such run).
    #[arg(long, default_value_t = 0)]
    flood: usize,
    /// Server runtime worker threads.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// The bare handler to measure beside us on PostgreSQL (`../shared/bench/node-seed` with its
    /// node_modules installed; `.ci/bench` prepares a copy): the same signed load, its own
    /// database in the same cluster, one run after ours at each concurrency.
    #[arg(long, env = "BENCH_REFERENCE")]
    reference: Option<std::path::PathBuf>,
    /// Forwarding instead: intake with forwarding off, then on to each of these numbers of
    /// destinations (fast receivers on this machine), and the forwarded deliveries a second when
    /// a backlog of `--requests` events is let go to them (e.g. 1,10).
    #[arg(long, value_delimiter = ',')]
    forward: Vec<usize>,
}

const SECRET: &str = "whsec_bench";

/// One measured run, as the table prints it.
struct Measured {
    credited: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Measured {
    fn credited_per_sec(&self) -> f64 {
        self.credited as f64 / self.elapsed.as_secs_f64()
    }
}

fn main() {
    let args = Args::parse();
    if !(0.0..1.0).contains(&args.duplicates)
        || args.concurrency.is_empty()
        || args.concurrency.contains(&0)
        || args.requests == 0
        || args.copies == 0
        || (args.copies > 1 && args.duplicates > 0.0)
    {
        eprintln!(
            "error: --duplicates must be in [0, 1), --concurrency, --requests and --copies positive, \
             and --copies and --duplicates are not combined"
        );
        std::process::exit(2);
    }
    let dbs = bench_support::kinds(&args.db);
    if !args.forward.is_empty() {
        return forwarding(&args, &dbs);
    }
    println!("{INTAKE_HEADER}");
    let mut ratios = Vec::new();
    for db in dbs {
        for &concurrency in &args.concurrency {
            let ours = run_ours(&args, db, concurrency, 0, 0);
            if args.flood > 0 {
                run_ours(&args, db, concurrency, args.flood, 0);
            }
            if let (Some(dir), "postgres") = (&args.reference, db) {
                let reference = run_reference(&args, dir, concurrency);
                ratios.push((concurrency, ours / reference));
            }
        }
    }
    for (concurrency, ratio) in ratios {
        println!("Revision Store ÷ bare handler, credited/s at {concurrency} connections on PostgreSQL: {ratio:.2}×");
    }
}

const INTAKE_HEADER: &str = "| server | database | deliveries | new events | duplicates | concurrency | credited/s | deliveries/s | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|---|---|---|---|";

/// `--forward`: intake with forwarding off and on, side by side on each database, then the
/// forwarded deliveries a second to each number of destinations.
fn forwarding(args: &Args, dbs: &[&str]) {
    if args.duplicates > 0.0 || args.copies > 1 {
        eprintln!("error: --forward counts each event's deliveries: no --duplicates or --copies");
        std::process::exit(2);
    }
    println!("{INTAKE_HEADER}");
    let mut costs = Vec::new();
    for &db in dbs {
        for &concurrency in &args.concurrency {
            // Off, on, off, on ...: the best of five of each, so a hiccup of the machine's
            // does not pass for forwarding's cost (or hide it): on this 2-core machine runs of
            // one setting spread by up to 15 %.
            let mut off = 0f64;
            let mut on = vec![0f64; args.forward.len()];
            for _ in 0..5 {
                off = off.max(run_ours(args, db, concurrency, 0, 0));
                for (i, &n) in args.forward.iter().enumerate() {
                    on[i] = on[i].max(run_ours(args, db, concurrency, 0, n));
                }
            }
            for (i, &n) in args.forward.iter().enumerate() {
                costs.push((db, concurrency, n, 1.0 - on[i] / off));
            }
        }
    }
    for (db, concurrency, n, cost) in costs {
        println!(
            "Intake with forwarding to {n} destination(s) on {db}, {concurrency} connections: {:+.1} % credited/s against forwarding off (best of five each)",
            -cost * 100.0
        );
    }
    println!();
    println!(
        "| forwarding | database | destinations | events | deliveries | seconds | deliveries/s | per destination/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &db in dbs {
        for &n in &args.forward {
            run_forwarded(args, db, n);
        }
    }
}

/// The signed deliveries of one run, built up front so the load generator spends its CPU on
/// sending: warm-up first, then the measured ones; `--duplicates` repeats the latest new event.
struct Load {
    deliveries: Arc<Vec<(Bytes, String)>>,
    warmup: usize,
    new_events: usize,
    /// Distinct events, warm-up included: what is stored.
    events: usize,
}

fn load(args: &Args, prefix: &str, contracts: &[i64]) -> Load {
    let warmup = 500.min(args.requests);
    let total = warmup + args.requests;
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let ts = chrono::Utc::now().timestamp();
    let mut new_events = 0usize;
    let mut events = 0usize;
    let mut last_new = 0usize;
    let deliveries = (0..total)
        .map(|i| {
            let dup = if args.copies > 1 {
                i % args.copies != 0
            } else {
                i > 0 && ((i as f64 * args.duplicates).floor() != ((i - 1) as f64 * args.duplicates).floor())
            };
            let n = if dup { last_new } else { i };
            let contract_id = contracts[n % contracts.len()];
            if !dup {
                last_new = i;
                events += 1;
                if i >= warmup {
                    new_events += 1;
                }
            }
            let body = format!(
                r#"{{"id":"evt_{prefix}{n}","object":"event","api_version":"2024-06-20","created":{ts},"livemode":false,"type":"payment_intent.succeeded","data":{{"object":{{"id":"pi_{prefix}{n}","object":"payment_intent","amount":15000,"amount_received":15000,"currency":"usd","status":"succeeded","livemode":false,"metadata":{{"contractId":"{contract_id}"}}}}}}}}"#
            );
            let header = sign(body.as_bytes(), &secret, ts);
            (Bytes::from(body), header)
        })
        .collect();
    Load { deliveries: Arc::new(deliveries), warmup, new_events, events }
}

/// Sends `load` to `url` from `concurrency` keep-alive connections (a 1-thread client runtime),
/// warm-up first; `credits` counts the credit rows at the server. Asserts every delivery got a
/// 2xx and each new event credited exactly once.
/// The most requests one flood task sends (it stops sooner, when the measurement ends).
const FLOOD_MAX_REQUESTS: usize = 10_000_000;

/// Tasks asking `/readyz` and failing a sign-in, in turn, each as fast as it is answered, on a
/// thread and runtime of their own, until stopped. Only ever at the server under test (loopback).
struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    started: Instant,
    thread: std::thread::JoinHandle<()>,
}

impl Flood {
    fn start(base: &str, tasks: usize) -> Self {
        assert!(base.starts_with("http://127."), "the flood goes only to a loopback server: {base}");
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let (base, stopping, counted) = (base.to_string(), stop.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let sign_in = format!("{base}{}", <app::web::auth::SignIn as leptos::server_fn::ServerFn>::PATH);
                let flooders: Vec<_> = (0..tasks)
                    .map(|task| {
                        let (base, sign_in, stop, sent) =
                            (base.clone(), sign_in.clone(), stopping.clone(), counted.clone());
                        tokio::spawn(async move {
                            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
                            for n in 0..FLOOD_MAX_REQUESTS {
                                if stop.load(Ordering::Relaxed) {
                                    break;
                                }
                                let req = if n % 2 == 0 {
                                    hyper::Request::get(format!("{base}/readyz")).body(Full::default()).unwrap()
                                } else {
                                    let form = format!("email=flood{task}%40example.com&password=not-the-password");
                                    hyper::Request::post(&sign_in)
                                        .header("content-type", "application/x-www-form-urlencoded")
                                        .header("origin", &base)
                                        .body(Full::new(Bytes::from(form)))
                                        .unwrap()
                                };
                                if let Ok(res) = client.request(req).await {
                                    let _ = res.into_body().collect().await;
                                    sent.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        })
                    })
                    .collect();
                for f in flooders {
                    let _ = f.await;
                }
            });
        });
        Self { stop, sent, started: Instant::now(), thread }
    }

    /// Stops it: the requests it had answered, a second.
    fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        self.thread.join().expect("the flood's thread");
        self.sent.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
    }
}

fn measure(url: &str, load: &Load, concurrency: usize, credits: impl Fn() -> usize) -> Measured {
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let send = |range: std::ops::Range<usize>| {
        let next = Arc::new(AtomicUsize::new(range.start));
        let end = range.end;
        client_rt.block_on(async {
            let tasks: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (next, deliveries, url) = (next.clone(), load.deliveries.clone(), url.to_string());
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
    send(0..load.warmup);
    let before = credits();
    let started = Instant::now();
    let (mut latencies, failures) = send(load.warmup..load.deliveries.len());
    let elapsed = started.elapsed();
    let credited = credits() - before;
    assert_eq!(failures, 0, "every delivery must be answered 2xx");
    assert_eq!(credited, load.new_events, "each new event credits exactly once");
    latencies.sort();
    Measured { credited, elapsed, latencies }
}

fn print_row(server: &str, db: &str, args: &Args, concurrency: usize, load: &Load, m: &Measured) {
    let pct = |p: f64| {
        m.latencies[((m.latencies.len() as f64 * p).ceil() as usize).saturating_sub(1).min(m.latencies.len() - 1)]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {server} | {db} | {} | {} | {} | {concurrency} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |",
        args.requests,
        load.new_events,
        args.requests - load.new_events,
        m.credited_per_sec(),
        args.requests as f64 / m.elapsed.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*m.latencies.last().unwrap()),
    );
}

/// The server on a fresh database, on a runtime (and threads) of its own, as a separate process
/// would be, with `args.contracts` contracts. The temporary directory holds a SQLite database.
fn start_server(
    args: &Args,
    db: &str,
    concurrency: usize,
) -> (tempfile::TempDir, tokio::runtime::Runtime, Application, Vec<i64>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let url = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench_support::database(db, args.postgres_url.as_deref(), "bench", tmp.path()));
    // The flags' defaults (never the environment's), then what the benchmark needs.
    let mut settings = Config::defaults().settings().expect("the defaults are valid");
    settings.database.url = url;
    settings.database.max_connections = (concurrency as u32).max(4);
    settings.stripe.mode = Some(app::domain::deployment::DeploymentMode::Test);
    settings.stripe.webhook_secrets = WebhookSecret::parse_list(SECRET).unwrap();
    settings.bind = "127.0.0.1:0".parse().unwrap();
    // Every delivery comes from this one loopback client: no cap per client address.
    settings.connections.max_connections_per_client = None;
    settings.reconcile.worker_interval = Duration::from_secs(3600);
    settings.reconcile.interval = None;
    settings.artwork.data_dir = std::env::temp_dir();
    let server_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.server_threads).enable_all().build().unwrap();
    let (app, contracts) = server_rt.block_on(async {
        let app = Application::start(&settings).await.expect("server starts");
        let (_, contracts) = bench_support::contracts(&app.services.db, args.contracts).await;
        (app, contracts)
    });
    (tmp, server_rt, app, contracts)
}

/// Revision Store on a fresh database, with `flood` flooding tasks alongside the measured
/// deliveries (0: none) and forwarding every event to `forward` destinations meanwhile (0: off);
/// its credited/s.
fn run_ours(args: &Args, db: &str, concurrency: usize, flood: usize, forward: usize) -> f64 {
    let (_tmp, server_rt, app, contracts) = start_server(args, db, concurrency);
    let forwarding = (forward > 0).then(|| {
        let sinks = bench_support::forward::Sinks::start(forward);
        server_rt.block_on(bench_support::forward::destinations(&app.services.db, &sinks, false));
        let stop = Arc::new(AtomicBool::new(false));
        let _guard = server_rt.enter();
        let driver = bench_support::forward::drive(app.services.clone(), stop.clone());
        (sinks, stop, driver)
    });
    let load = load(args, "bench", &contracts);
    let credits = || {
        contracts
            .iter()
            .map(|c| server_rt.block_on(app::store::ledger::credits(&app.services.db, *c)).unwrap().len())
            .sum::<usize>()
    };
    let flooding = (flood > 0).then(|| Flood::start(&app.url(), flood));
    let m = measure(&format!("{}/webhooks/stripe", app.url()), &load, concurrency, credits);
    if let Some((sinks, stop, driver)) = forwarding {
        stop.store(true, Ordering::Relaxed);
        let sent = sinks.requests();
        let fanned = server_rt.block_on(driver).expect("the forwarding driver");
        let label = format!("Revision Store, forwarding to {forward}");
        print_row(&label, db, args, concurrency, &load, &m);
        println!(
            "(forwarded meanwhile: {sent} of the {} deliveries the run's events make; the fan-out made {fanned})",
            load.events * forward
        );
    }
    match flooding {
        None if forward > 0 => {}
        None => print_row("Revision Store", db, args, concurrency, &load, &m),
        Some(f) => {
            let rate = f.stop();
            print_row(&format!("Revision Store, flood {flood}"), db, args, concurrency, &load, &m);
            let stats = app.services.stats.render();
            let figure = |name: &str| {
                stats.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
            };
            println!(
                "(flood: {flood} tasks, {rate:.0} requests/s to /readyz and failed sign-ins alongside; \
                 {:.0} readiness probes answered with {:.0} database checks)",
                figure("revision_store_readiness_probes_total").unwrap_or(0.0),
                figure("revision_store_readiness_checks_total").unwrap_or(0.0),
            );
        }
    }
    if let app::store::Db::Postgres(pg) = &app.services.db {
        let deadlocks: i64 = server_rt
            .block_on(
                sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
                    .fetch_one(pg),
            )
            .unwrap();
        println!("(deadlocks PostgreSQL detected in this database during the run: {deadlocks})");
    }
    server_rt.block_on(app.stop());
    m.credited_per_sec()
}

/// A backlog let go: `--requests` events (and the warm-up's) stored while `destinations`
/// destinations were paused, then every one resumed; prints how fast the deliveries arrive.
fn run_forwarded(args: &Args, db: &str, destinations: usize) {
    use bench_support::forward;
    let concurrency = args.concurrency[0];
    let (_tmp, server_rt, app, contracts) = start_server(args, db, concurrency);
    let sinks = forward::Sinks::start(destinations);
    let names = server_rt.block_on(forward::destinations(&app.services.db, &sinks, true));
    let load = load(args, "fwd", &contracts);
    let credits = || {
        contracts
            .iter()
            .map(|c| server_rt.block_on(app::store::ledger::credits(&app.services.db, *c)).unwrap().len())
            .sum::<usize>()
    };
    measure(&format!("{}/webhooks/stripe", app.url()), &load, concurrency, credits);
    let expected = load.events * destinations;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    server_rt.block_on(async {
        for name in &names {
            app::services::forwarding::set_paused(&app.services.db, name, false, chrono::Utc::now()).await.unwrap();
        }
    });
    let driver = {
        let _in = server_rt.enter();
        forward::drive(app.services.clone(), stop.clone())
    };
    // A benchmark's poll of its own counter, not a test's wait.
    while sinks.requests() < expected {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{} of {expected} deliveries after ten minutes",
            sinks.requests()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    server_rt.block_on(driver).expect("the forwarding driver");
    assert_eq!(sinks.distinct(), vec![load.events; destinations], "every event to every destination");
    assert_eq!(sinks.requests(), expected, "each once");
    let per_sec = expected as f64 / elapsed.as_secs_f64();
    println!(
        "| Revision Store | {db} | {destinations} | {} | {expected} | {:.2} | {per_sec:.0} | {:.0} |",
        load.events,
        elapsed.as_secs_f64(),
        per_sec / destinations as f64
    );
    server_rt.block_on(app.stop());
}

/// The bare handler (`node server.mjs` in `dir`) on its own database in the same cluster, sent
/// the same kind of load; its credited/s.
fn run_reference(args: &Args, dir: &std::path::Path, concurrency: usize) -> f64 {
    use std::io::BufRead;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tmp = tempfile::tempdir().expect("temp dir");
    let url = rt.block_on(bench_support::database("postgres", args.postgres_url.as_deref(), "bench_ref", tmp.path()));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new("node")
        .arg("server.mjs")
        .current_dir(dir)
        .env("DATABASE_URL", &url)
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node in {}: {e}", dir.display()));
    // It prints "listening PORT" once its table exists and it accepts requests.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("listening") {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            panic!("the bare handler exited before listening");
        }
    }
    // No reaper task (it can spin: `app::store::pool_rules`).
    let pool = rt
        .block_on(sqlx::postgres::PgPoolOptions::new().idle_timeout(None).max_lifetime(None).connect(&url))
        .expect("the bare handler's database");
    let load = load(args, "ref", &[1]);
    let credits = || {
        rt.block_on(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM contract_revisions").fetch_one(&pool)).unwrap()
            as usize
    };
    let m = measure(&format!("http://127.0.0.1:{port}/webhooks/stripe"), &load, concurrency, credits);
    print_row("bare handler (Node)", "postgres", args, concurrency, &load, &m);
    rt.block_on(pool.close());
    // SIGTERM: it closes its server and pool, then exits.
    let _ = std::process::Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    m.credited_per_sec()
}
