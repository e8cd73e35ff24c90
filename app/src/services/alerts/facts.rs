//! What the alert rules are evaluated against, read from the database once per evaluation: the
//! faults every process gathered, the event store, purchases, the ledger and reconciliation.
use crate::domain::alerts::{self as rules, Facts, Fault, Rule, RunFacts, Settings};
use crate::services::Services;
use crate::store::{self, StoreError};
use chrono::{DateTime, Duration, DurationRound, Utc};

/// Return-page credits looked at per evaluation, and how many of those missing their webhook
/// a notice names.
const RETURNS_LOOKED_AT: i64 = 200;
const RETURNS_NAMED: usize = 5;

/// The start of the minute `t` falls in: the stamp of the fault tallies gathered at `t`.
pub fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::minutes(1)).unwrap_or(t)
}

pub async fn read(svc: &Services, settings: &Settings, now: DateTime<Utc>) -> Result<Facts, StoreError> {
    let db = &svc.db;
    let mut f = Facts::default();
    let window_start = minute_of(now) - Duration::minutes(rules::FAULT_WINDOW_MINUTES - 1);
    for (kind, n) in store::webhook_faults::since(db, window_start).await? {
        if let Some(k) = Fault::parse(&kind) {
            f.faults[k.index()] = n;
        }
    }
    f.last_webhook = store::events::last_delivered(db).await?;
    let silence = Duration::hours(settings.thresholds.get(Rule::WebhookSilence));
    if f.last_webhook.is_none_or(|t| now - t >= silence) {
        f.purchases_in_silence = store::purchases::started_since(db, now - silence).await?;
    }
    if let Some(run) = store::reconciliation::latest_full_run(db).await? {
        let counts = store::reconciliation::counts(db, run.id).await?;
        let sum = |keep: &dyn Fn(&str, &str) -> bool| counts.iter().filter(|(c, s, _)| keep(c, s)).map(|x| x.2).sum();
        f.last_reconciled = run.finished_at;
        f.last_run = Some(RunFacts {
            id: run.id,
            finished_at: run.finished_at.unwrap_or(run.started_at),
            undelivered: sum(&|c, _| c == "undelivered_event"),
            open: sum(&|_, s| s == "open"),
            self_credited: sum(&|c, s| c == "paid_not_credited" && s == "healed"),
        });
    }
    f.first_reconcile_start = store::reconciliation::first_start(db).await?;
    f.dead_letters =
        store::events::dead_lettered_since(db, now - Duration::hours(rules::DEAD_LETTER_WINDOW_HOURS)).await?;
    let overdue = now - rules::retry_budget(&svc.retry) - Duration::hours(1);
    f.overdue_events = store::events::pending_received_before(db, overdue).await?;
    let wait = Duration::minutes(settings.thresholds.get(Rule::ReturnWithoutWebhook));
    f.returns_without_webhook = returns_without_webhook(svc, now, wait).await?;
    Ok(f)
}

/// Payments the return page credited more than `wait` ago (within the look-back) of which no
/// `payment_intent.succeeded` has been stored: a few ids, and how many.
async fn returns_without_webhook(
    svc: &Services,
    now: DateTime<Utc>,
    wait: Duration,
) -> Result<(Vec<String>, i64), StoreError> {
    let from = now - Duration::hours(rules::RETURN_PAGE_LOOK_BACK_HOURS);
    let credited = store::ledger::credited_by_return_page(&svc.db, from, now - wait, RETURNS_LOOKED_AT).await?;
    if credited.is_empty() {
        return Ok((vec![], 0));
    }
    let events = store::events::about_payments(&svc.db, &credited, 20).await?;
    let missing: Vec<String> = credited
        .into_iter()
        .filter(|id| {
            !events.get(id).is_some_and(|list| list.iter().any(|e| e.event_type == "payment_intent.succeeded"))
        })
        .collect();
    let n = missing.len() as i64;
    Ok((missing.into_iter().take(RETURNS_NAMED).collect(), n))
}
