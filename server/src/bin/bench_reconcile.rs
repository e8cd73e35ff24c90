//! Reconciliation benchmark (BENCHMARKS.md): the app in simulator mode on a fresh database takes
//! N payments through the simulator with 1 in 100 of them having every webhook dropped, then one
//! reconciliation runs over the window at Stripe's pace. Reports wall time, Stripe API calls and
//! findings, and checks every dropped payment was credited exactly once. Run through
//! `.ci/bench`, which also starts a throwaway PostgreSQL.

mod bench_support;
use app::services::purchase::start_purchase;
use app::services::reconcile::{self, Category};
use app::stripe::simulator::Faults;
use clap::Parser;
use server::Application;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Measure one reconciliation over N simulator payments with 1 % of webhooks dropped")]
struct Args {
    /// sqlite, postgres, or both
    #[arg(long, default_value = "both")]
    db: String,
    #[arg(long, env = "TEST_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// Payments in the window.
    #[arg(long, default_value_t = 10_000)]
    payments: usize,
    /// One payment in this many has its webhooks dropped.
    #[arg(long, default_value_t = 100)]
    drop_one_in: usize,
    /// Stripe API calls per second (Stripe's limit is 25 in test mode; ours defaults to 20).
    #[arg(long, default_value_t = 20)]
    rate: u32,
}

fn main() {
    let args = Args::parse();
    if args.payments == 0 || args.drop_one_in == 0 {
        eprintln!("error: --payments and --drop-one-in must be positive");
        std::process::exit(2);
    }
    let dbs = bench_support::kinds(&args.db);
    println!("| database | payments | dropped payments | dropped events | set-up s | reconcile s | Stripe API calls | findings healed | credited by the run | credits in all |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for db in dbs {
        rt.block_on(run(&args, db));
    }
}

async fn run(args: &Args, db: &str) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let url = bench_support::database(db, args.postgres_url.as_deref(), "bench_reconcile", tmp.path()).await;
    let app = Application::start(&settings(&url, tmp.path())).await.expect("server starts");
    let svc = app.services.clone();
    let sim = app.simulator.clone().expect("simulator mode");
    let (user, contracts) = bench_support::contracts(&svc.db, 1).await;
    let contract = contracts[0];
    let window_from = chrono::Utc::now() - chrono::Duration::minutes(1);
    let client = reqwest_like::Client::new();
    let base = app.url();

    // Payments in blocks of `drop_one_in`: all but one concurrently with webhooks on, then one
    // alone with every webhook dropped (the fault applies to events emitted while it is set).
    let setup = Instant::now();
    let mut dropped = Vec::new();
    let mut done = 0;
    while done < args.payments {
        let block = args.drop_one_in.min(args.payments - done);
        let normal = block.saturating_sub(1);
        let pay = || pay(&svc, &client, &base, user, contract);
        for chunk in (0..normal).collect::<Vec<_>>().chunks(8) {
            futures_util::future::join_all(chunk.iter().map(|_| pay())).await;
        }
        if block == args.drop_one_in {
            sim.set_faults(Faults { drop: true, ..Faults::default() }).unwrap();
            dropped.push(pay().await);
            sim.set_faults(Faults::default()).unwrap();
        } else if normal < block {
            pay().await;
        }
        done += block;
    }
    // Every delivered webhook answered: only the dropped payments are uncredited.
    let expected = args.payments - dropped.len();
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&svc, contract).await < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = count(&svc, contract).await;
    assert_eq!(before, expected, "the delivered payments are credited before reconciliation");
    let setup = setup.elapsed();

    let opts = reconcile::Options {
        from: window_from,
        to: chrono::Utc::now() + chrono::Duration::seconds(5),
        dry_run: false,
        started_by: "cli",
        rate: args.rate,
    };
    let started = Instant::now();
    let report = reconcile::run(&svc, &opts, &|_| {}).await.expect("reconciliation");
    let took = started.elapsed();
    let after = count(&svc, contract).await;
    assert_eq!(after, args.payments, "every payment credited");
    for pi in &dropped {
        let credits = app::store::ledger::credit_for_payment(&svc.db, pi).await.unwrap();
        assert!(credits.is_some(), "{pi} was dropped and must be credited now");
    }
    let healed = report.findings.iter().filter(|(_, s, _)| s == "healed").map(|(_, _, n)| n).sum::<i64>();
    let undelivered = report.count(Category::UndeliveredEvent, "healed");
    let again = reconcile::run(&svc, &opts, &|_| {}).await.expect("second reconciliation");
    assert_eq!(again.total(), 0, "a second run finds nothing: {again:?}");
    println!(
        "| {db} | {} | {} | {undelivered} | {:.1} | {:.1} | {} | {healed} | {} | {after} |",
        args.payments,
        dropped.len(),
        setup.as_secs_f64(),
        took.as_secs_f64(),
        report.api_calls,
        after - before,
    );
    app.stop().await;
}

/// Simulator mode, as `make run`, on database `url`, without the worker's own reconciliation.
fn settings(url: &str, dir: &std::path::Path) -> server::config::Settings {
    let cli =
        server::cli::Cli::parse_from(["bench", "--database-url", url, "--bind", "127.0.0.1:0", "--stripe-simulator"]);
    let mut settings = cli.config.settings().expect("settings");
    settings.reconcile.interval = None;
    settings.artwork.data_dir = dir.to_path_buf();
    // The buyers, the Stripe client and the simulator's webhooks all come from this one
    // loopback address, eight payments at a time, and the simulator opens a connection per
    // webhook: together they pass the cap on one client's connections (64) within the first
    // couple of hundred payments, and a refused connection fails the set-up. No cap, as
    // `bench` has none.
    settings.connections.max_connections_per_client = None;
    settings
}

/// One payment as a buyer makes it: the server starts the purchase, the "browser" confirms
/// with the 4242 card.
async fn pay(
    svc: &app::services::Services,
    client: &reqwest_like::Client,
    base: &str,
    user: i64,
    contract: i64,
) -> String {
    let p = start_purchase(svc, user, contract).await.expect("purchase");
    client
        .confirm(&format!("{base}/stripe-sim/v1/payment_intents/{}/confirm", p.payment_intent_id), &p.client_secret)
        .await;
    p.payment_intent_id
}

async fn count(svc: &app::services::Services, contract_id: i64) -> usize {
    app::store::ledger::credits(&svc.db, contract_id).await.unwrap().len()
}

/// The few HTTP calls the bench makes as the browser would (Stripe.js confirming a card).
mod reqwest_like {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client as Hyper;
    use hyper_util::rt::TokioExecutor;

    pub struct Client(Hyper<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>);

    impl Client {
        pub fn new() -> Self {
            Self(Hyper::builder(TokioExecutor::new()).build_http())
        }
        pub async fn confirm(&self, url: &str, client_secret: &str) {
            let body = format!(
                "client_secret={client_secret}&payment_method_data[type]=card&payment_method_data[card][number]=4242424242424242"
            );
            let req = hyper::Request::post(url)
                .header("authorization", format!("Bearer {}", app::stripe::simulator::PUBLISHABLE_KEY))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let res = self.0.request(req).await.expect("confirm");
            assert!(res.status().is_success(), "confirm answered {}", res.status());
            let _ = res.into_body().collect().await;
        }
    }
}
