//! The `revision-store` server: configuration, the axum application (pages, server functions,
//! the Stripe webhook), the background worker and the operator CLI.
pub mod admin_actions;
pub mod api;
pub mod artwork_store;
pub mod artwork_sweep;
pub mod body_deadline;
pub mod cli;
pub mod config;
pub mod guard;
pub mod people;
pub mod readiness;
pub mod request_id;
pub mod serve;
pub mod slack;
pub mod upload;
pub mod webhook;
pub mod worker;

/// mimalloc instead of glibc's malloc, for every binary that links this crate (the server, the
/// benchmarks, the tests). A page render allocates thousands of small short-lived values on both
/// runtime threads; under load glibc's malloc and free were about a seventh of the process's time,
/// with its arena locks contended (BENCHMARKS.md, admin pages, "fourth session").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use app::services::Services;
use app::store::{Db, DbOptions};
use app::web::{shell, App};
use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;
use config::Settings;
use leptos::prelude::*;
use leptos_axum::{generate_route_list_with_exclusions_and_ssg_and_context, LeptosRoutes};
use std::net::SocketAddr;
use tokio::task::JoinHandle;

/// What every handler can reach: one shared value behind an `Arc`. axum clones the state for
/// every request (into the handler's service, again for its `State` extractor), and a plain
/// struct made each of those copy the configuration's strings and free them again (`perf` at 8
/// connections: `Services`' and `LeptosOptions`' clones and drops were among the server's
/// busiest symbols, besides the allocator).
#[derive(Clone)]
pub struct AppState(std::sync::Arc<AppStateInner>);

impl AppState {
    pub fn new(inner: AppStateInner) -> Self {
        Self(std::sync::Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// Leptos' handlers take the options from the state (and clone them only there).
impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

pub struct AppStateInner {
    pub leptos_options: LeptosOptions,
    pub services: Services,
    /// Per-key request limits of the totals-only API.
    pub api_limits: api::ApiLimits,
    /// SHA-256 (hex) of the token /metrics requires; None: /metrics is not served.
    pub metrics_token_hash: Option<std::sync::Arc<str>>,
    /// Where uploaded artwork is kept.
    pub artwork: artwork_store::ArtworkStore,
    /// `/readyz`'s last answer (a check at most once a second).
    pub readiness: readiness::Readiness,
    /// Artwork uploads in progress, per uploader.
    pub uploads: upload::UploadSlots,
}

/// Opens the database and migrates it. A failed migration stops the program.
pub async fn open_database(settings: &Settings) -> Result<Db, String> {
    let db = Db::connect(
        &settings.database_url,
        &DbOptions {
            max_connections: settings.db_max_connections,
            acquire_timeout: settings.db_timeout,
            ..DbOptions::default()
        },
    )
    .await?;
    db.migrate().await.map_err(|e| format!("database migration failed: {e}"))?;
    Ok(db)
}

/// The services for `mode`: the serving process's chosen mode, or for the CLI the database's.
pub fn services(settings: &Settings, db: Db, mode: app::domain::deployment::DeploymentMode) -> Services {
    let mut svc = Services::new(
        db,
        settings.terms.clone(),
        mode.stripe_mode(),
        settings.webhook_secrets.clone(),
        settings.stripe.clone(),
    );
    svc.db_timeout = settings.db_timeout;
    svc.publishable_key = settings.publishable_key.clone();
    svc.client_ip_header = settings.client_ip_header.clone();
    svc.trusted_proxies = std::sync::Arc::new(settings.trusted_proxies.clone());
    svc.secure_cookies = settings.secure_cookies;
    svc.public_origin = settings.public_origin.clone();
    svc.reconcile_rate = settings.reconcile_rate;
    svc.reconcile_window = settings.reconcile_window;
    svc.owners = settings.owners.clone();
    svc.slack = settings.slack.clone();
    if let Some(name) = &settings.instance {
        svc.stats = std::sync::Arc::new(app::services::stats::Stats::labelled(Some(name)));
    }
    svc
}

fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    // cargo-leptos sets these when it runs the server; a plain `cargo run` gets the defaults.
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    LeptosOptions::builder()
        .output_name(env("LEPTOS_OUTPUT_NAME", "revision-store"))
        .site_root(env("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(env("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(addr)
        .build()
}

/// How the app meets browsers.
#[derive(Debug, Clone, Default)]
pub struct WebPolicy {
    /// Users reach the app over https: the session cookie is Secure (https only) and HSTS is sent.
    pub secure: bool,
    /// `PUBLIC_URL`'s origin: forms must come from it (behind a proxy that rewrites Host).
    pub public_origin: Option<String>,
    /// How long a request body may stall between chunks.
    pub body_timeout: std::time::Duration,
    /// How long a whole request body may take.
    pub body_deadlines: body_deadline::BodyDeadlines,
}

/// The app's routes, discovered once per process. Discovery renders the app with resource
/// loading suppressed through a process-wide flag (leptos_server 0.8.8), and a resource whose
/// future is first polled while that flag is up waits for ever, so a page rendering for one
/// server while another server in the same process starts (the tests, the benchmark) would never
/// answer (leptos issue #4773). The routes depend on the `App` alone, never on a server's state.
static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::OnceLock::new();

pub fn router(state: AppState, simulator: Option<app::stripe::simulator::Simulator>, web: WebPolicy) -> Router {
    let stats = state.services.stats.clone();
    use tower_sessions::cookie::SameSite;
    use tower_sessions::{Expiry, SessionManagerLayer};
    let context = {
        let services = state.services.clone();
        move || provide_context(services.clone())
    };
    let routes = ROUTES
        .get_or_init(|| {
            // Route discovery renders the app once; with the services in context, resources it
            // starts can find them.
            generate_route_list_with_exclusions_and_ssg_and_context(App, None, context.clone()).0
        })
        .clone();
    // Sessions live in our database. HttpOnly: scripts cannot read the cookie. SameSite=Lax:
    // other sites' forms and scripts cannot send it with a POST (with the Origin check in
    // `guard`, that is the cross-site request defence). Signed out after 12 idle hours.
    let sessions = SessionManagerLayer::new(state.services.db.clone())
        .with_name("revision_store_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(web.secure)
        // Saved only when it changes: saving on every request (assets included) wrote a row
        // through SQLite's one writer per request. An active user's session is still extended:
        // `guard::session_snapshot` touches it at most once an hour, so it ends after 11 to 12
        // idle hours.
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(12)));
    // Pages, server functions and form posts: sessions and the cross-site check.
    let site = Router::new()
        .route(
            "/contracts/{id}/revisions",
            post(upload::request_revision).layer(axum::extract::DefaultBodyLimit::max(upload::MAX_BODY)),
        )
        .route("/contracts/{id}/revisions/{request}/artwork", get(upload::artwork))
        .route("/admin/contracts/{id}/refund", post(admin_actions::refund))
        .route("/admin/reconciliation/run", post(admin_actions::start_reconciliation))
        .route("/admin/reconciliation/{id}/findings.csv", get(admin_actions::findings_csv))
        .route("/admin/revenue.csv", get(admin_actions::revenue_csv))
        .route("/admin/events.csv", get(admin_actions::events_csv))
        .route("/admin/events.ndjson", get(admin_actions::events_ndjson))
        .route("/admin/payments/{payment}/evidence.tar", get(admin_actions::evidence_bundle))
        .route("/admin/people", post(people::invite))
        .route("/admin/people/{id}/password-link", post(people::reset_password))
        .route("/admin/people/{id}/deactivate", post(people::deactivate))
        .route("/admin/people/{id}/reactivate", post(people::reactivate))
        .route("/admin/people/{id}/contracts", post(people::create_contract))
        .route("/password/{token}", post(people::set_password))
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        .layer(axum::middleware::from_fn_with_state(
            guard::Origins::new(web.public_origin.clone()),
            guard::same_origin_writes,
        ))
        .layer(axum::middleware::from_fn(guard::session_snapshot))
        .layer(sessions);
    let mut router = Router::new();
    if let Some(sim) = simulator {
        router = router.nest_service(app::stripe::simulator::MOUNT, app::stripe::simulator::router(sim));
    }
    // The webhook is called by Stripe, not a browser: no session, its own signature check.
    let router = router
        .route(
            "/webhooks/stripe",
            post(webhook::receive).layer(axum::extract::DefaultBodyLimit::max(webhook::MAX_BODY)),
        )
        .route("/metrics", get(webhook::metrics))
        // Called by scripts and dashboards with an API key, never with a session.
        .route("/api/v1/revenue", get(api::revenue))
        .route("/api/v1/events", get(api::events))
        .route("/api/v1/events/export", get(api::events_export))
        // Called by Slack, verified by its request signature.
        .route("/slack/commands", post(slack::command).layer(axum::extract::DefaultBodyLimit::max(slack::MAX_BODY)))
        // Alive: the process answers (for a restart policy). Ready: it can do its work, the
        // database answering and migrated (for a load balancer, which should send traffic
        // elsewhere while this instance could only answer 503).
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state.clone())
        .merge(site.with_state(state));
    security_headers(router, web.secure)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(web.body_timeout))
        .layer(axum::middleware::from_fn_with_state(web.body_deadlines, body_deadline::enforce))
        .layer(axum::middleware::from_fn(guard::close_after_refused_body))
        .layer(axum::middleware::from_fn_with_state(stats, timed))
        .layer(axum::middleware::from_fn(request_id::tag))
}

/// Records how long each request took: webhook deliveries apart from everything else people and
/// scripts ask for; static files are not counted.
async fn timed(
    axum::extract::State(stats): axum::extract::State<std::sync::Arc<app::services::stats::Stats>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path();
    let histogram = if path == "/webhooks/stripe" {
        Some(&stats.webhook_seconds)
    } else if path.starts_with("/pkg/") || path.starts_with(app::stripe::simulator::MOUNT) || path == "/favicon.svg" {
        None
    } else {
        Some(&stats.page_seconds)
    }
    .cloned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    if let Some(h) = histogram {
        h.record(started.elapsed().as_secs_f64());
    }
    response
}

/// Headers every response carries. Pages set their own Content-Security-Policy (with their
/// scripts' nonce, `app::web::security`); anything else gets the inert one. HSTS only when the
/// app is reached over https (`SECURE_COOKIES`): sent over plain http it would be ignored at
/// best, and it cannot be taken back for its max-age.
fn security_headers(router: Router, https: bool) -> Router {
    use axum::http::{header, HeaderValue};
    use tower_http::set_header::SetResponseHeaderLayer;
    let router = router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(app::web::security::INERT_POLICY),
        ))
        // Never guess a type: an uploaded file is never run as a script or page.
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        // frame-ancestors for browsers that predate it.
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        // Other sites learn our origin, never a page's path (contract ids, search filters).
        // Stripe.js needs the origin.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ));
    if https {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
    } else {
        router
    }
}

/// Simulator mode: the app's Stripe is the simulator mounted on its own origin, which signs its
/// webhooks with a fresh secret and delivers them to this app's webhook route.
fn with_simulator(
    mut services: Services,
    addr: SocketAddr,
    stripe_timeout: std::time::Duration,
) -> Result<(Services, Option<app::stripe::simulator::Simulator>), String> {
    use app::stripe::simulator::{random_webhook_secret, Simulator, WebhookConfig, MOUNT, SECRET_KEY};
    let secret = random_webhook_secret();
    let mut secrets = (*services.webhook_secrets).clone();
    secrets.push(secret.clone());
    services.webhook_secrets = std::sync::Arc::new(secrets);
    services.stripe =
        Some(app::stripe::StripeApi::with_timeout(SECRET_KEY, &format!("http://{addr}{MOUNT}/"), stripe_timeout)?);
    services.simulated = true;
    services.publishable_key = Some(app::stripe::simulator::PUBLISHABLE_KEY.to_string());
    services.stripe_js_url = format!("{MOUNT}/v3/");
    let sim = Simulator::with_webhooks(WebhookConfig {
        url: format!("http://{addr}/webhooks/stripe"),
        secret,
        retry_base: std::time::Duration::from_secs(2),
        max_attempts: 10,
    });
    Ok((services, Some(sim)))
}

/// A running server: its address, its services, and its tasks.
pub struct Application {
    pub addr: SocketAddr,
    pub services: Services,
    /// Where it keeps uploaded artwork.
    pub artwork: artwork_store::ArtworkStore,
    /// The mode it serves in (recorded in the database).
    pub mode: app::domain::deployment::DeploymentMode,
    /// The in-process Stripe simulator, in simulator mode (tests drive its control side).
    pub simulator: Option<app::stripe::simulator::Simulator>,
    stop: tokio::sync::watch::Sender<bool>,
    server: JoinHandle<()>,
    worker: JoinHandle<()>,
    /// How long a stop waits for the worker and for background work (`DRAIN_TIMEOUT_SECS`).
    drain: std::time::Duration,
}

impl Application {
    /// Connects, migrates, finishes events a previous run left pending (a crash between storing
    /// and processing), binds (port 0 picks a free one) and starts serving.
    pub async fn start(settings: &Settings) -> Result<Self, String> {
        let mode = settings.serving_mode()?;
        let db = open_database(settings).await?;
        // Before anything is processed: a database served in another mode is refused here.
        app::services::deployment::claim(&db, mode, settings.switch_mode).await?;
        // Events a previous run stored but never processed (it stopped in between) still hold
        // that run's fresh lease. A SQLite database has one serving process, so such a lease is
        // a dead process's and is taken at once. On PostgreSQL other processes may be serving
        // the same database: their fresh leases are theirs (a request is processing that event
        // right now), so start-up leaves them to run out (`lease_secs`), after which any
        // process's worker takes what is still pending.
        let take_fresh_leases = matches!(db, Db::Sqlite(_));
        let artwork = artwork_store::ArtworkStore::open(&settings.artwork, &settings.data_dir)?;
        let mut services = services(settings, db, mode);
        // Shared by every process of this database, so a device cookie or a sealed session value
        // made by one is read by any other, and after a restart.
        let keys = app::services::keys::ServerKeys::load(&services.db).await;
        services.keys = std::sync::Arc::new(keys.map_err(|e| format!("loading the server's keys failed: {e}"))?);
        let recovered = app::services::processing::run_due(&services, take_fresh_leases)
            .await
            .map_err(|e| format!("recovering pending events failed: {e}"))?;
        if recovered > 0 {
            tracing::info!(recovered, "processed events left pending by a previous run");
        }
        let listener = tokio::net::TcpListener::bind(settings.bind)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", settings.bind))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (services, simulator) = match mode {
            app::domain::deployment::DeploymentMode::Simulator => {
                with_simulator(services, addr, settings.stripe_timeout)?
            }
            _ => (services, None),
        };
        let state = AppState::new(AppStateInner {
            leptos_options: leptos_options(addr),
            services: services.clone(),
            api_limits: api::ApiLimits::per_minute(settings.api_rate_per_minute),
            metrics_token_hash: settings.metrics_token_hash.as_deref().map(Into::into),
            artwork: artwork.clone(),
            readiness: Default::default(),
            uploads: upload::UploadSlots::new(settings.uploads_per_user),
        });
        let app = router(
            state,
            simulator.clone(),
            WebPolicy {
                secure: settings.secure_cookies,
                public_origin: settings.public_origin.clone(),
                body_timeout: settings.connections.body_timeout,
                body_deadlines: settings.connections.body_deadlines,
            },
        );
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(serve::serve(listener, app, settings.connections, stopping.clone()));
        let worker = tokio::spawn(worker::run(
            services.clone(),
            artwork.clone(),
            settings.worker_interval,
            settings.reconcile_interval,
            stopping,
        ));
        let drain = settings.connections.drain_timeout;
        Ok(Self { addr, services, artwork, mode, simulator, stop, server, worker, drain })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until `stop` (SIGTERM or Ctrl-C), then shuts down gracefully.
    pub async fn run_until_stopped(self, stop: StopSignal) {
        stop.wait().await;
        tracing::info!("stop requested");
        self.shut_down().await;
    }

    /// A graceful stop: no new connections; in-flight requests finish (each webhook delivery
    /// answered only after its event is stored, so the group-commit writer is empty once they
    /// have); the worker finishes its sweep and background reconciliations stop at their next
    /// payment, each waited for at most the drain timeout; a run that still has not ended is
    /// marked abandoned with the reason; then the database closes.
    pub async fn shut_down(mut self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        let (left, worker) =
            tokio::join!(self.services.background.stop(self.drain), tokio::time::timeout(self.drain, &mut self.worker));
        if worker.is_err() {
            tracing::warn!(after = ?self.drain, "the worker's sweep outlived the drain; stopping it");
            self.worker.abort();
        }
        for run in left {
            let reason = "the server stopped before the run finished, and could not wait for it (run it again)";
            let marked = app::store::reconciliation::abandon(&self.services.db, run, reason, 0, 0, chrono::Utc::now());
            if let Err(e) = marked.await {
                tracing::error!(run, error = %e, "could not mark an unfinished reconciliation abandoned");
            }
        }
        if let Err(e) = self.services.sign_in.flush(&self.services.db).await {
            tracing::warn!(error = %e, "could not write the last sign-in counters");
        }
        self.services.db.close().await;
        tracing::info!("stopped");
    }

    /// Stops serving at once (tests: a "crash" or a restart).
    pub async fn stop(self) {
        self.server.abort();
        self.worker.abort();
        let _ = self.server.await;
        let _ = self.worker.await;
        self.services.db.close().await;
    }
}

/// SIGTERM (what service managers and container runtimes send) or Ctrl-C (SIGINT), listened
/// for from the moment it is made. Made before the server takes its first connection: a
/// listener made later, when the serving task first waited on it, left a window after start-up
/// in which SIGTERM's default action killed the process mid-request instead of draining it.
pub struct StopSignal {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignal {
    pub fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
                (Ok(term), Ok(int)) => Self { signals: Some((term, int)) },
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on Ctrl-C only");
                    Self { signals: None }
                }
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = self.signals {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The databases a benchmark's `--db` names (`sqlite`, `postgres` or `both`); exits with the
/// reason for anything else.
pub fn bench_kinds(db: &str) -> Vec<&'static str> {
    match db {
        "both" => vec!["sqlite", "postgres"],
        "sqlite" => vec!["sqlite"],
        "postgres" => vec!["postgres"],
        other => {
            eprintln!("error: --db must be sqlite, postgres or both, not {other}");
            std::process::exit(2);
        }
    }
}

/// Runs the search indexer until every stored event is indexed, as the worker would over many
/// sweeps (the benchmarks, after seeding); how many it indexed.
pub async fn index_everything(db: &Db) -> usize {
    let mut indexed = 0;
    loop {
        match app::store::event_search::index_pending(db, 5_000).await.expect("index") {
            0 => return indexed,
            n => indexed += n,
        }
    }
}

/// The benchmarks' advertiser (`bench@example.com`) and `contracts` contracts of theirs, with
/// 3 included revisions each. Returns the advertiser's id and the contracts' ids.
pub async fn bench_contracts(db: &Db, contracts: u32) -> (i64, Vec<i64>) {
    let user = app::services::accounts::create_user(
        db,
        "bench@example.com",
        app::domain::users::Role::Advertiser,
        "bench-password-123",
    )
    .await
    .expect("the bench advertiser");
    let mut ids = Vec::new();
    for _ in 0..contracts {
        let terms = app::store::contracts::NewContract {
            advertiser_id: user.id,
            publication: "Bench",
            ad_size: "Page",
            base_revisions: 3,
        };
        ids.push(app::store::contracts::create(db, &terms, chrono::Utc::now()).await.expect("a bench contract").id);
    }
    (user.id, ids)
}

/// The benchmarks' fresh database: a SQLite file in `dir`, or a new PostgreSQL database `name`
/// made through `postgres_url` (the server `.ci/bench` starts). Exits with the reason when
/// PostgreSQL is asked for without a server to make it on.
pub async fn bench_database(kind: &str, postgres_url: Option<&str>, name: &str, dir: &std::path::Path) -> String {
    if kind == "sqlite" {
        return format!("sqlite:{}", dir.join("bench.db").display());
    }
    let Some(admin) = postgres_url else {
        eprintln!("error: PostgreSQL needs --postgres-url or TEST_POSTGRES_URL (.ci/bench starts one)");
        std::process::exit(2);
    };
    let name = format!("{name}_{}", std::process::id());
    // One connection, not a pool: sqlx's pools start a reaper task that can spin (`store::pool_rules`).
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("connect to PostgreSQL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await.expect("drop the old database");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create the database");
    let _ = conn.close().await;
    let (base, _) = admin.rsplit_once('/').expect("a database URL");
    format!("{base}/{name}")
}

async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match state.readiness.probe(&state.services.db, &state.services.stats).await {
        Ok(()) => "ready".into_response(),
        Err(why) => {
            tracing::warn!(reason = %why, "not ready");
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, why.to_string()).into_response()
        }
    }
}
