//! The worker's sweeps and the scheduled reconciliation with Stripe.
use super::positive_secs;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct ReconcileArgs {
    /// Seconds between worker sweeps for due retries.
    #[arg(long, env = "WORKER_INTERVAL_SECS", default_value_t = 5.0, global = true)]
    pub worker_interval_secs: f64,
    /// Hours between scheduled reconciliations with Stripe (0 turns the schedule off). One run
    /// at a time across every process sharing the database.
    #[arg(long, env = "RECONCILE_INTERVAL_HOURS", default_value_t = 24.0, global = true)]
    pub reconcile_interval_hours: f64,
    /// Days back a scheduled reconciliation looks (payments created in that window).
    #[arg(long, env = "RECONCILE_WINDOW_DAYS", default_value_t = 3, global = true)]
    pub reconcile_window_days: i64,
    /// Stripe API calls per second reconciliation makes at most (Stripe's own limit is 100 in
    /// live mode, 25 in test mode; the checkout needs its share).
    #[arg(long, env = "RECONCILE_RATE", default_value_t = 20, global = true)]
    pub reconcile_rate: u32,
}

pub use app::services::settings::ReconcileSettings;

impl ReconcileArgs {
    pub fn check(&self) -> Result<ReconcileSettings, String> {
        Ok(ReconcileSettings {
            worker_interval: positive_secs("WORKER_INTERVAL_SECS", self.worker_interval_secs)?,
            interval: {
                let h = self.reconcile_interval_hours;
                if h == 0.0 {
                    None
                } else if h.is_finite() && h > 0.0 && h <= 24.0 * 31.0 {
                    Some(Duration::from_secs_f64(h * 3600.0))
                } else {
                    return Err(format!("RECONCILE_INTERVAL_HOURS must be 0 (off) or up to 744 hours, got {h}"));
                }
            },
            window: match self.reconcile_window_days {
                d @ 1..=365 => chrono::Duration::days(d),
                d => return Err(format!("RECONCILE_WINDOW_DAYS must be between 1 and 365, got {d}")),
            },
            rate: match self.reconcile_rate {
                r @ 1..=100 => r,
                r => return Err(format!("RECONCILE_RATE must be between 1 and 100 calls a second, got {r}")),
            },
        })
    }
}
