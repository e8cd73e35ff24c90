//! Reconciliation: compares Stripe with our books over a window of time, records every
//! difference as a finding with its evidence, and heals what is safe to heal through the same
//! functions the webhook uses (so a run racing webhooks and the return page still ends with one
//! credit per payment, and a second run heals nothing twice):
//!
//! 1. Events Stripe reports undelivered (`delivery_success=false`; Stripe keeps 30 days) are
//!    fetched with our key, stored as evidence marked `api_fetch`, and processed like a
//!    delivery. This heals most of what a lost webhook left out, with the event as evidence.
//! 2. PaymentIntents created in the window (listed with their latest charge expanded):
//!    - paid but not credited → `fulfil`, recorded as credited by reconciliation;
//!    - refunded or disputed beyond what we booked → the payment's refunds or disputes are
//!      listed and booked through `services::adjustments`;
//!    - amount, currency or mode different from our credit → alert (open);
//!    - our purchase still in a non-final state long after it was created → refreshed.
//! 3. Our credits in the window that Stripe does not show paid → alert (open), never removed.
mod money_back;
mod payments;
mod run;
mod undelivered;

use super::Services;
use crate::store::events as event_store;
use crate::store::reconciliation as runs;
use crate::store::{external_payments, ledger, purchases, StoreError};
use crate::stripe::{Pacer, StripeApi, StripeApiError};
use chrono::{DateTime, Duration, Utc};
use run::Run;
use serde_json::json;
use std::collections::HashSet;

/// Stripe keeps events for 30 days; older undelivered ones cannot be fetched.
const EVENT_RETENTION_DAYS: i64 = 30;
/// A purchase still open this long after it was created is asked about.
const STALE_PURCHASE_MINUTES: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    PaidNotCredited,
    RefundNotBooked,
    DisputeNotBooked,
    CreditedNotPaid,
    Mismatch,
    StalePurchase,
    UndeliveredEvent,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Self::PaidNotCredited,
        Self::RefundNotBooked,
        Self::DisputeNotBooked,
        Self::CreditedNotPaid,
        Self::Mismatch,
        Self::StalePurchase,
        Self::UndeliveredEvent,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaidNotCredited => "paid_not_credited",
            Self::RefundNotBooked => "refund_not_booked",
            Self::DisputeNotBooked => "dispute_not_booked",
            Self::CreditedNotPaid => "credited_not_paid",
            Self::Mismatch => "mismatch",
            Self::StalePurchase => "stale_purchase",
            Self::UndeliveredEvent => "undelivered_event",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub dry_run: bool,
    /// `cli`, `schedule` or `admin`.
    pub started_by: &'static str,
    /// Stripe API calls per second at most.
    pub rate: u32,
}

/// Progress of a long run, for the command line.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub payments_checked: usize,
    pub api_calls: u64,
    pub findings: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub run_id: i64,
    pub api_calls: u64,
    pub payments_checked: usize,
    /// (category, state, count)
    pub findings: Vec<(String, String, i64)>,
}

impl Report {
    pub fn count(&self, category: Category, state: &str) -> i64 {
        self.findings.iter().filter(|(c, s, _)| c == category.as_str() && s == state).map(|(_, _, n)| n).sum()
    }
    pub fn total(&self) -> i64 {
        self.findings.iter().map(|(_, _, n)| n).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("another reconciliation is running; at most one runs at a time")]
    AlreadyRunning,
    #[error("the window must end after it starts")]
    BadWindow,
    #[error("reconciliation needs Stripe API access (a secret key or the simulator)")]
    NoStripe,
    #[error("the run went silent for too long and was marked abandoned; it stopped (run it again)")]
    Abandoned,
    #[error("the server stopped before the run finished (run it again)")]
    Stopped,
    #[error("Stripe: {0}")]
    Stripe(#[from] StripeApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs one reconciliation over `opts`' window. Refuses to start while another runs.
pub async fn run(
    svc: &Services,
    opts: &Options,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report, ReconcileError> {
    if opts.to <= opts.from {
        return Err(ReconcileError::BadWindow);
    }
    let stripe = svc.stripe.as_ref().ok_or(ReconcileError::NoStripe)?;
    let id = runs::start(&svc.db, opts.started_by, opts.from, opts.to, opts.dry_run, Utc::now())
        .await?
        .ok_or(ReconcileError::AlreadyRunning)?;
    // While it runs, shutdown knows of it (`Background::stop` names what did not end).
    let _hold = svc.background.hold_run(id);
    let mut run = Run {
        svc,
        id,
        dry_run: opts.dry_run,
        pacer: Pacer::new(opts.rate),
        findings: 0,
        payments: 0,
        last_beat: std::time::Instant::now(),
    };
    tracing::info!(run = id, from = %opts.from, to = %opts.to, dry_run = opts.dry_run, "reconciliation started");
    let outcome = match steps(&mut run, stripe, opts, progress).await {
        // A step that fails while the server stops failed because it stops (in simulator mode
        // the simulator's listener closes first; a Stripe call is cut off): the run was cut
        // short, not wrong, and says so rather than report a misleading Stripe error.
        Err(e) if svc.background.is_stopping() && !matches!(e, ReconcileError::Stopped) => {
            tracing::info!(run = id, error = %e, "reconciliation cut short by the stop");
            Err(ReconcileError::Stopped)
        }
        outcome => outcome,
    };
    let calls = run.pacer.calls();
    let error = outcome.as_ref().err().map(|e| e.to_string());
    let (payments, now) = (run.payments as i64, Utc::now());
    match &outcome {
        // Not a failure of the run: it was cut short on purpose, and says so.
        Err(ReconcileError::Stopped) => {
            runs::abandon(&svc.db, id, &ReconcileError::Stopped.to_string(), calls as i64, payments, now).await?
        }
        _ => runs::finish(&svc.db, id, error.as_deref(), calls as i64, payments, now).await?,
    }
    outcome?;
    let findings = runs::counts(&svc.db, id).await?;
    if !opts.dry_run {
        let open = findings.iter().filter(|(_, s, _)| s == "open").map(|(_, _, n)| *n).sum::<i64>();
        svc.stats.set_open_findings(open.max(0) as u64);
    }
    tracing::info!(
        run = id,
        api_calls = calls,
        payments = run.payments,
        findings = run.findings,
        "reconciliation finished"
    );
    Ok(Report { run_id: id, api_calls: calls, payments_checked: run.payments, findings })
}

async fn steps(
    run: &mut Run<'_>,
    stripe: &StripeApi,
    opts: &Options,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(), ReconcileError> {
    let report = |run: &Run<'_>| {
        progress(Progress { payments_checked: run.payments, api_calls: run.pacer.calls(), findings: run.findings })
    };
    undelivered_events(run, stripe, opts).await?;
    report(run);
    // Each step's end is a safe point to stop at too (a step may have nothing to loop over).
    run.beat().await?;
    let mut seen = payments_in_window(run, stripe, opts, &report).await?;
    run.beat().await?;
    money_back_in_window(run, stripe, opts, &mut seen).await?;
    run.beat().await?;
    credits_stripe_missed(run, stripe, opts, &seen).await?;
    report(run);
    Ok(())
}

/// 1. Undelivered events, within what Stripe still keeps. Stripe goes on listing an event as
///    undelivered after we fetched it, so events we hold cost no further call.
async fn undelivered_events(run: &mut Run<'_>, stripe: &StripeApi, opts: &Options) -> Result<(), ReconcileError> {
    let oldest = (Utc::now() - Duration::days(EVENT_RETENTION_DAYS)).max(opts.from);
    if oldest >= opts.to {
        return Ok(());
    }
    for id in stripe.undelivered_event_ids(oldest.timestamp(), opts.to.timestamp(), Some(&run.pacer)).await? {
        run.beat().await?;
        if event_store::summary(&run.svc.db, &id).await?.is_some() {
            continue; // we hold it: our answer was lost, not the event
        }
        let raw = stripe.event_raw(&id, Some(&run.pacer)).await?;
        undelivered::event(run, raw).await?;
    }
    Ok(())
}

/// 2. Stripe's payments in the window against ours. The payments it listed.
async fn payments_in_window(
    run: &mut Run<'_>,
    stripe: &StripeApi,
    opts: &Options,
    report: &(dyn Fn(&Run<'_>) + Sync),
) -> Result<HashSet<String>, ReconcileError> {
    let snapshots =
        stripe.payments_created_between(opts.from.timestamp(), opts.to.timestamp(), Some(&run.pacer)).await?;
    let mut seen: HashSet<String> = HashSet::with_capacity(snapshots.len());
    for snap in &snapshots {
        seen.insert(snap.id.clone());
        run.beat().await?;
        payments::payment(run, stripe, snap).await?;
        run.payments += 1;
        if run.payments.is_multiple_of(100) {
            report(run);
        }
    }
    Ok(seen)
}

/// 2b. Refunds and disputes created in the window, whatever the age of their payment (a
///     chargeback comes weeks after the payment): those of our payments not booked as Stripe
///     has them are booked.
async fn money_back_in_window(
    run: &mut Run<'_>,
    stripe: &StripeApi,
    opts: &Options,
    seen: &mut HashSet<String>,
) -> Result<(), ReconcileError> {
    let (from, to) = (opts.from.timestamp(), opts.to.timestamp());
    let mut payments_to_check: Vec<String> = Vec::new();
    for r in stripe.refunds_created_between(from, to, Some(&run.pacer)).await? {
        payments_to_check.extend(r.payment_intent.filter(|pi| !seen.contains(pi)));
    }
    for d in stripe.disputes_created_between(from, to, Some(&run.pacer)).await? {
        payments_to_check.extend(d.payment_intent.filter(|pi| !seen.contains(pi)));
    }
    payments_to_check.sort();
    payments_to_check.dedup();
    for pi in payments_to_check {
        run.beat().await?;
        let ours = ledger::credit_for_payment(&run.svc.db, &pi).await?.is_some()
            || purchases::find(&run.svc.db, &pi).await?.is_some()
            || external_payments::find(&run.svc.db, &pi).await?.is_some();
        if !ours {
            continue;
        }
        if let Some(snap) = stripe.payment_snapshot(&pi, Some(&run.pacer)).await? {
            seen.insert(snap.id.clone());
            money_back::money_back(run, stripe, &snap).await?;
        }
    }
    Ok(())
}

/// 3. Our credits in the window that Stripe did not list.
async fn credits_stripe_missed(
    run: &mut Run<'_>,
    stripe: &StripeApi,
    opts: &Options,
    seen: &HashSet<String>,
) -> Result<(), ReconcileError> {
    for credit in ledger::credits_between(&run.svc.db, opts.from, opts.to).await? {
        if seen.contains(&credit.payment_id) {
            continue;
        }
        run.beat().await?;
        match stripe.payment_snapshot(&credit.payment_id, Some(&run.pacer)).await? {
            Some(snap) => {
                payments::payment(run, stripe, &snap).await?;
                run.payments += 1;
            }
            None => {
                let detail = format!(
                    "payment {} is credited to contract {} but Stripe does not know it: left as it is, for an admin to look at",
                    credit.payment_id, credit.contract_id
                );
                run.found(
                    Category::CreditedNotPaid,
                    false,
                    Some(&credit.payment_id),
                    None,
                    Some(credit.contract_id),
                    &detail,
                    json!({"ours": credit, "stripe": "resource_missing"}),
                )
                .await?;
            }
        }
    }
    Ok(())
}
