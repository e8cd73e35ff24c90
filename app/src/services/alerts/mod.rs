//! Alerts: the worker gathers this process's webhook faults into the database each sweep
//! (`gather_faults`) and, about once a minute, evaluates every rule (`evaluate`): one evaluation
//! at a time across every process (the `alert_lease` row), each rule's observation turned into
//! its state and the notice it owes by the pure `domain::alerts`, each notice sent through
//! `notify::send` and settled only once it went out.
use crate::domain::alerts::{self as rules, Notice, Rule, Settings, State, Thresholds};
use crate::services::Services;
use crate::store::{self, StoreError};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

pub mod facts;
pub mod notify;

/// How long an evaluation may hold the lease: longer than its reads and a Slack post (10 s)
/// for each rule, short enough that a process that died holding it delays the next by minutes.
const LEASE_SECS: i64 = 180;
/// Fault tallies older than this are removed (no rule looks back further than minutes).
pub const FAULTS_KEPT: Duration = Duration::days(1);

/// The alert settings: `ALERT_THRESHOLDS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSettings {
    pub thresholds: Thresholds,
}

/// The rules' settings in effect: the thresholds, and the reconciliation schedule they watch.
pub fn settings(svc: &Services) -> Settings {
    Settings {
        thresholds: svc.settings.alerts.thresholds,
        reconcile_interval: svc.settings.reconcile.interval.and_then(|i| Duration::from_std(i).ok()),
    }
}

/// What an evaluation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Another process (or task) was evaluating: nothing was done.
    pub busy: bool,
    pub firing: Vec<Rule>,
    pub sent: Vec<Notice>,
    /// Notices that could not be sent (kept owed), with why.
    pub failed: Vec<(Notice, String)>,
}

/// Writes the faults this process counted since the last call into the shared per-minute
/// tallies (`now`'s minute): nothing when there were none, and they are put back when the
/// database does not take them.
pub async fn gather_faults(svc: &Services, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let taken = svc.stats.take_faults();
    let counts: Vec<(&str, i64)> = rules::Fault::ALL
        .iter()
        .zip(taken)
        .filter(|(_, n)| *n > 0)
        .map(|(f, n)| (f.as_str(), i64::try_from(n).unwrap_or(i64::MAX)))
        .collect();
    if counts.is_empty() {
        return Ok(0);
    }
    if let Err(e) = store::webhook_faults::add(&svc.db, facts::minute_of(now), &counts).await {
        svc.stats.put_back_faults(taken);
        return Err(e);
    }
    Ok(taken.iter().sum())
}

/// Evaluates every rule at `now`, once across every process: a caller that finds another
/// evaluating gets `busy` and does nothing.
pub async fn evaluate(svc: &Services, now: DateTime<Utc>) -> Result<Evaluation, StoreError> {
    let Some(generation) = store::alerts::claim(&svc.db, now, now + Duration::seconds(LEASE_SECS)).await? else {
        return Ok(Evaluation { busy: true, ..Default::default() });
    };
    let done = evaluate_claimed(svc, now).await;
    if let Err(e) = store::alerts::release(&svc.db, generation).await {
        tracing::warn!(error = %e, "could not give the alert lease back; it runs out by itself");
    }
    done
}

async fn evaluate_claimed(svc: &Services, now: DateTime<Utc>) -> Result<Evaluation, StoreError> {
    // To the microsecond, as PostgreSQL keeps times: an episode's start read back is the start
    // its notice names, whichever database holds it.
    let now = chrono::SubsecRound::trunc_subsecs(now, 6);
    let settings = settings(svc);
    let facts = facts::read(svc, &settings, now).await?;
    let rows = store::alerts::states(&svc.db).await?;
    let known: HashMap<Rule, State> = rows.iter().filter_map(|r| r.state()).collect();
    let mut out = Evaluation::default();
    for rule in Rule::ALL {
        let observed = rules::evaluate(rule, &facts, &settings, now);
        let before = known.get(&rule);
        let (state, notice) = rules::next(rule, before.cloned().as_ref().unwrap_or(&State::default()), &observed, now);
        // Only a change is written (a quiet minute costs the one `touch` below).
        if before != Some(&state) {
            store::alerts::save(&svc.db, rule, &state, now).await?;
        }
        if state.firing() {
            out.firing.push(rule);
        }
        if let Some(notice) = notice {
            settle(svc, notice, &mut out).await?;
        }
    }
    store::alerts::touch(&svc.db, now).await?;
    Ok(out)
}

/// Sends an owed notice and records that it went (or why not: it stays owed).
async fn settle(svc: &Services, notice: Notice, out: &mut Evaluation) -> Result<(), StoreError> {
    match notify::send(svc, &notice).await {
        Ok(delivered) => {
            let at = (!delivered.channels.is_empty()).then(Utc::now);
            store::alerts::notified(&svc.db, notice.rule, notice.kind, notice.since, at).await?;
            tracing::info!(rule = notice.rule.name(), kind = notice.kind.as_str(), channels = ?delivered.channels, "alert notice sent");
            out.sent.push(notice);
        }
        Err(error) => {
            store::alerts::notify_failed(&svc.db, notice.rule, &error).await?;
            tracing::warn!(rule = notice.rule.name(), kind = notice.kind.as_str(), %error, "alert notice not sent; trying again at the next evaluation");
            out.failed.push((notice, error));
        }
    }
    Ok(())
}

/// Each rule as the page and the CLI show it: its state row (None: never evaluated).
pub async fn overview(svc: &Services) -> Result<Vec<(Rule, Option<store::alerts::StateRow>)>, StoreError> {
    let rows = store::alerts::states(&svc.db).await?;
    Ok(Rule::ALL.into_iter().map(|r| (r, rows.iter().find(|row| row.rule == r.name()).cloned())).collect())
}

/// Sets the gauges read from the shared database at each scrape, so every process's /metrics
/// says the same: which rules fire (as the evaluating process decided), and when a
/// reconciliation last completed (what the Prometheus rule for an overdue one reads).
pub async fn publish_gauges(svc: &Services) -> Result<(), StoreError> {
    for (rule, row) in overview(svc).await? {
        svc.stats.set_alert_firing(rule, row.is_some_and(|r| r.firing()));
    }
    if let Some(t) = store::reconciliation::latest_full_run(&svc.db).await?.and_then(|r| r.finished_at) {
        svc.stats.last_reconciled.set(t.timestamp() as f64);
    }
    Ok(())
}
