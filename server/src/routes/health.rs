//! `/readyz` for a load balancer, which may ask every second from every node, and for anyone
//! else (it is not secret). The check takes SQLite's write lock, so answered afresh for every
//! probe a flood of probes queued webhook intake and revision requests behind it until they
//! answered 503. Here:
//! - one check at a time: probes that arrive while one runs wait for its answer (single flight);
//! - an answer is reused for `FRESH_FOR`, so the database is asked at most once a second however
//!   often `/readyz` is;
//! - a check gets `CHECK_TIMEOUT`: a database that does not answer at all (PostgreSQL stopped
//!   mid-connection, a lock held) is "not ready" within a second, where a probe would otherwise
//!   time out instead of reading 503;
//! - the answer is a reason in our words (`NotReady`), never the driver's error text.
use app::services::stats::Stats;
use app::store::Db;
use std::time::{Duration, Instant};

/// How long one check's answer is reused.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// How long a check may take before the answer is "the database did not answer".
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Why this instance should get no traffic now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error(transparent)]
    Database(#[from] app::store::NotReady),
    /// The check had no answer within `CHECK_TIMEOUT`.
    #[error("database unavailable: no answer within {} s", CHECK_TIMEOUT.as_secs())]
    NoAnswer,
}

/// The last answer, and the lock that makes checks one at a time.
#[derive(Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Result<(), NotReady>)>>,
}

impl Readiness {
    /// Ready or not: the last check's answer while it is fresh, else a new check's.
    pub async fn probe(&self, db: &Db, stats: &Stats) -> Result<(), NotReady> {
        Stats::inc(&stats.readiness_probes);
        // Probes that come while a check runs wait here (in turn), then find its answer fresh.
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = &*last {
            if at.elapsed() < FRESH_FOR {
                return answer.clone();
            }
        }
        Stats::inc(&stats.readiness_checks);
        let answer = match tokio::time::timeout(CHECK_TIMEOUT, db.ready()).await {
            Ok(answer) => answer.map_err(NotReady::from),
            Err(_) => Err(NotReady::NoAnswer),
        };
        // Fresh from when it was known, so a slow check is not asked again at once.
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

/// Alive: the process answers (for a restart policy). Ready: it can do its work, the database
/// answering and migrated (for a load balancer, which should send traffic elsewhere while this
/// instance could only answer 503).
pub fn router() -> axum::Router<crate::AppState> {
    use axum::routing::get;
    axum::Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(readyz))
}

async fn readyz(axum::extract::State(state): axum::extract::State<crate::AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match state.readiness.probe(&state.services.db, &state.services.stats).await {
        Ok(()) => "ready".into_response(),
        Err(why) => {
            tracing::warn!(reason = %why, "not ready");
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, why.to_string()).into_response()
        }
    }
}
