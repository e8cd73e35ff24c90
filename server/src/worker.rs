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
        // Retries wait 30 s at least and fresh events are processed in their request, so a
        // sweep every few seconds is prompt enough.
        tokio::time::sleep(interval).await;
    }
}
