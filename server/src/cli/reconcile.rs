//! `reconcile`: compare Stripe with our books over a window and heal what is safe to heal.
use super::{cli_services, parse_when, Outcome};
use crate::config::Settings;
use app::domain::deployment::DeploymentMode;

#[derive(clap::Args)]
pub struct Args {
    /// Start of the window: YYYY-MM-DD (UTC midnight) or an RFC 3339 time. Default: the
    /// scheduled window (RECONCILE_WINDOW_DAYS) back from now.
    #[arg(long)]
    since: Option<String>,
    /// End of the window (YYYY-MM-DD: the end of that day, UTC). Default: now.
    #[arg(long)]
    until: Option<String>,
    /// Find and record, heal nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(settings: &Settings, Args { since, until, dry_run }: Args) -> Outcome {
    let now = chrono::Utc::now();
    let to = match until {
        Some(u) => parse_when(&u, true)?,
        None => now,
    };
    let from = match since {
        Some(s) => parse_when(&s, false)?,
        None => to - settings.reconcile.window,
    };
    if to <= from {
        return Err("--until must be after --since".into());
    }
    let svc = services(settings).await?;
    let opts =
        app::services::reconcile::Options { from, to, dry_run, started_by: "cli", rate: settings.reconcile.rate };
    eprintln!(
        "Reconciling payments created {} .. {}{} (at most {} Stripe calls/s)",
        from.format("%Y-%m-%d %H:%M:%S"),
        to.format("%Y-%m-%d %H:%M:%S"),
        if dry_run { ", dry run: nothing is healed" } else { "" },
        settings.reconcile.rate
    );
    let progress = |p: app::services::reconcile::Progress| {
        eprintln!("  {} payments checked, {} API calls, {} findings", p.payments_checked, p.api_calls, p.findings)
    };
    let report =
        app::services::reconcile::run(&svc, &opts, &progress).await.map_err(|e| format!("reconciliation: {e}"))?;
    println!(
        "Run {}: {} payments checked, {} Stripe API calls, {} findings",
        report.run_id,
        report.payments_checked,
        report.api_calls,
        report.total()
    );
    for (category, state, n) in &report.findings {
        println!("  {category:<20} {state:<10} {n}");
    }
    Ok(())
}

/// The services in the database's mode, with that mode's Stripe: the simulator of the serving
/// process, or the configured key when it is of that mode.
async fn services(settings: &Settings) -> Result<app::services::Services, String> {
    let (mut svc, mode) = cli_services(settings, true).await?;
    match (mode, &settings.stripe.mode) {
        // The simulator lives in the serving process (BIND_ADDR); ask it there.
        (DeploymentMode::Simulator, _) => {
            let base = format!("http://{}{}/", settings.bind, app::stripe::simulator::MOUNT);
            let key = app::stripe::simulator::SECRET_KEY;
            svc.stripe = Some(app::stripe::StripeApi::with_timeout(key, &base, settings.stripe.timeout)?);
        }
        (db_mode, Some(key_mode)) if svc.stripe.is_some() && *key_mode == db_mode => {}
        (db_mode, _) => {
            return Err(format!(
                "this database is served with {}: reconciliation needs that mode's STRIPE_SECRET_KEY \
                 (with its publishable key and webhook secret)",
                db_mode.describe()
            ))
        }
    }
    Ok(svc)
}
