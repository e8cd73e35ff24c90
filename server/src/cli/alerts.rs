//! `alerts list`: every alert rule, whether it fires and since when, what it saw, its threshold
//! in effect and what to check first; then the latest episodes.
use super::{cli_services, Outcome};
use crate::config::Settings;

#[derive(clap::Subcommand)]
pub enum AlertsCommand {
    /// Every rule with its state (firing since, resolved at), count, threshold and runbook, then
    /// the latest episodes.
    List {
        /// How many past episodes to show.
        #[arg(long, default_value_t = 20)]
        history: i64,
    },
}

pub async fn run(settings: &Settings, cmd: AlertsCommand) -> Outcome {
    let AlertsCommand::List { history } = cmd;
    let (svc, _) = cli_services(settings, false).await?;
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let thresholds = svc.settings.alerts.thresholds;
    for (rule, row) in app::services::alerts::overview(&svc).await? {
        let state = match &row {
            Some(r) if r.firing() => format!("FIRING since {}", r.firing_since.map(time).unwrap_or_default()),
            Some(r) if r.resolved_at.is_some() => {
                format!("ok, resolved {}", r.resolved_at.map(time).unwrap_or_default())
            }
            Some(_) => "ok".to_string(),
            None => "ok, not evaluated yet".to_string(),
        };
        println!("{:<24} {state}", rule.name());
        println!("    {}: count {}", rule.title(), row.as_ref().map_or(0, |r| r.count));
        if let Some(r) = row.as_ref().filter(|r| !r.detail.is_empty()) {
            println!("    seen: {}", r.detail);
        }
        if let Some(e) = row.as_ref().filter(|r| r.owed.is_some()).and_then(|r| r.notify_error.as_deref()) {
            println!("    notice not sent yet: {e}");
        }
        println!("    threshold: {} {}", thresholds.get(rule), rule.threshold_unit());
        println!("    check first: {}", rule.runbook());
    }
    let episodes = app::store::alerts::history(&svc.db, history.max(0)).await?;
    if !episodes.is_empty() {
        println!("\nLatest episodes:");
    }
    for e in episodes {
        let end = e.resolved_at.map_or("still firing".to_string(), |r| format!("resolved {}", time(r)));
        println!("  {} {:<24} {end}, at most {}: {}", time(e.started_at), e.rule, e.peak, e.detail);
    }
    Ok(())
}
