//! The background worker: retries due events, and picks up anything a request left pending
//! (its inline processing failed, or the process died) once the lease runs out.
use app::services::processing::run_due;
use app::services::Services;
use std::time::Duration;

pub async fn run(svc: Services, interval: Duration) {
    loop {
        if let Err(e) = run_due(&svc, false).await {
            tracing::error!(error = %e, "worker sweep failed; retrying next interval");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = svc.worker_wake.notified() => {}
        }
    }
}

