//! The running server: its state, router, middleware, connection loop, worker and stop.
pub mod middleware;
pub mod router;
pub mod serve;
pub mod state;
pub mod stop;
pub mod wiring;
pub mod worker;

pub use router::{router, WebPolicy};
pub use state::{AppState, AppStateInner};
pub use stop::StopSignal;
pub use wiring::{open_database, services};

use crate::config::Settings;
use app::services::Services;
use app::store::Db;
use std::net::SocketAddr;
use tokio::task::JoinHandle;

/// A running server: its address, its services, and its tasks.
pub struct Application {
    pub addr: SocketAddr,
    pub services: Services,
    /// Where it keeps uploaded artwork.
    pub artwork: crate::artwork::store::ArtworkStore,
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
        app::services::deployment::claim(&db, mode, settings.stripe.switch_mode).await.map_err(|e| e.to_string())?;
        // Events a previous run stored but never processed (it stopped in between) still hold
        // that run's fresh lease. A SQLite database has one serving process, so such a lease is
        // a dead process's and is taken at once. On PostgreSQL other processes may be serving
        // the same database: their fresh leases are theirs (a request is processing that event
        // right now), so start-up leaves them to run out (`lease_secs`), after which any
        // process's worker takes what is still pending.
        let take_fresh_leases = matches!(db, Db::Sqlite(_));
        let artwork = crate::artwork::store::ArtworkStore::open(&settings.artwork.storage, &settings.artwork.data_dir)?;
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
                wiring::with_simulator(services, addr, settings.stripe.timeout)?
            }
            _ => (services, None),
        };
        let state = AppState::new(AppStateInner {
            leptos_options: wiring::leptos_options(addr),
            services: services.clone(),
            api_limits: crate::routes::api::ApiLimits::per_minute(settings.web.api_rate_per_minute),
            metrics_token_hash: settings.metrics.token_hash.as_deref().map(Into::into),
            artwork: artwork.clone(),
            readiness: Default::default(),
            uploads: crate::routes::revisions::UploadSlots::new(settings.artwork.uploads_per_user),
        });
        let app = router(
            state,
            simulator.clone(),
            WebPolicy {
                secure: settings.web.secure_cookies,
                public_origin: settings.web.public_origin.clone(),
                body_timeout: settings.connections.body_timeout,
                body_deadlines: settings.connections.body_deadlines,
            },
        );
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(serve::serve(listener, app, settings.connections, stopping.clone()));
        let worker = tokio::spawn(worker::run(
            services.clone(),
            artwork.clone(),
            settings.reconcile.worker_interval,
            settings.reconcile.interval,
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
