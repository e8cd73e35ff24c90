//! The background worker: retries due events, and picks up anything a request left pending
//! (its inline processing failed, or the process died) once the lease runs out. Now and then
//! it also removes expired sign-in sessions.
use app::services::processing::run_due;
use app::services::Services;
use std::time::Duration;

/// Sweeps between expired-session clean-ups (about every ten minutes at the default interval).
const SESSION_SWEEP_EVERY: u32 = 120;

pub async fn run(svc: Services, interval: Duration) {
    let mut sweeps = 0u32;
    loop {
        if let Err(e) = run_due(&svc, false).await {
            tracing::error!(error = %e, "worker sweep failed; retrying next interval");
        }
        if sweeps.is_multiple_of(SESSION_SWEEP_EVERY) {
            if let Err(e) = app::store::sessions::delete_expired(&svc.db, chrono::Utc::now()).await {
                tracing::warn!(error = %e, "removing expired sessions failed; trying again later");
            }
        }
        sweeps = sweeps.wrapping_add(1);
        // Retries wait 30 s at least and fresh events are processed in their request, so a
        // sweep every few seconds is prompt enough.
        tokio::time::sleep(interval).await;
    }
}
