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
use super::adjustments::{self, dispute_record, refund_record};
use super::fulfil::{fulfil, Evidence, Fulfilled};
use super::processing::{apply_as, Processed};
use super::Services;
use crate::domain::adjustments::{DisputeStatus, RefundStatus};
use crate::domain::events::{
    credit_target, route, Action, EventObject, PaymentIntentFacts, PaymentSource, StripeEvent, StripeMode,
};
use crate::store::adjustments::{self as facts, BookedBy, Fact};
use crate::store::events::{self as event_store, NewEvent, Stored};
use crate::store::reconciliation::{self as runs, NewFinding};
use crate::store::{external_payments, ledger, purchases, StoreError};
use crate::stripe::{Pacer, PaymentSnapshot, StripeApiError};
use chrono::{DateTime, Duration, Utc};
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

struct Run<'a> {
    svc: &'a Services,
    id: i64,
    dry_run: bool,
    pacer: Pacer,
    findings: usize,
    payments: usize,
    last_beat: std::time::Instant,
}

/// How often a run says it is alive (well inside `store::reconciliation::STALE_AFTER_SECS`).
const BEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl Run<'_> {
    /// Says the run is alive (at most every `BEAT_EVERY`), and stops it if its row was marked
    /// abandoned meanwhile (another process thought it dead and may be running now).
    async fn beat(&mut self) -> Result<(), ReconcileError> {
        // Between two payments is a safe point to stop: everything before it is booked.
        if self.svc.background.is_stopping() {
            return Err(ReconcileError::Stopped);
        }
        if self.last_beat.elapsed() < BEAT_EVERY {
            return Ok(());
        }
        self.last_beat = std::time::Instant::now();
        let alive =
            runs::heartbeat(&self.svc.db, self.id, self.pacer.calls() as i64, self.payments as i64, Utc::now()).await?;
        if alive {
            Ok(())
        } else {
            Err(ReconcileError::Abandoned)
        }
    }

    fn state(&self, healed: bool) -> &'static str {
        match (healed, self.dry_run) {
            (true, true) => "would_heal",
            (true, false) => "healed",
            (false, _) => "open",
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn found(
        &mut self,
        category: Category,
        healed: bool,
        payment_id: Option<&str>,
        object_id: Option<&str>,
        contract_id: Option<i64>,
        detail: &str,
        evidence: serde_json::Value,
    ) -> Result<(), StoreError> {
        let state = self.state(healed);
        self.findings += 1;
        self.svc.stats.finding(category.as_str(), state);
        tracing::info!(
            run = self.id,
            category = category.as_str(),
            state,
            payment_id,
            detail,
            "reconciliation finding"
        );
        runs::add_finding(
            &self.svc.db,
            self.id,
            &NewFinding {
                category: category.as_str(),
                state,
                payment_id,
                object_id,
                contract_id,
                detail,
                evidence: &evidence.to_string(),
            },
            Utc::now(),
        )
        .await
    }
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
    stripe: &crate::stripe::StripeApi,
    opts: &Options,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(), ReconcileError> {
    let report = |run: &Run<'_>| {
        progress(Progress { payments_checked: run.payments, api_calls: run.pacer.calls(), findings: run.findings })
    };
    // 1. Undelivered events, within what Stripe still keeps. Stripe goes on listing an event
    //    as undelivered after we fetched it, so events we hold cost no further call.
    let oldest = (Utc::now() - Duration::days(EVENT_RETENTION_DAYS)).max(opts.from);
    if oldest < opts.to {
        for id in stripe.undelivered_event_ids(oldest.timestamp(), opts.to.timestamp(), Some(&run.pacer)).await? {
            run.beat().await?;
            if event_store::summary(&run.svc.db, &id).await?.is_some() {
                continue; // we hold it: our answer was lost, not the event
            }
            let raw = stripe.event_raw(&id, Some(&run.pacer)).await?;
            undelivered_event(run, raw).await?;
        }
    }
    report(run);
    // Each step's end is a safe point to stop at too (a step may have nothing to loop over).
    run.beat().await?;

    // 2. Stripe's payments in the window against ours.
    let snapshots =
        stripe.payments_created_between(opts.from.timestamp(), opts.to.timestamp(), Some(&run.pacer)).await?;
    let mut seen: HashSet<String> = HashSet::with_capacity(snapshots.len());
    for snap in &snapshots {
        seen.insert(snap.id.clone());
        run.beat().await?;
        payment(run, stripe, snap).await?;
        run.payments += 1;
        if run.payments.is_multiple_of(100) {
            report(run);
        }
    }

    run.beat().await?;

    // 2b. Refunds and disputes created in the window, whatever the age of their payment (a
    //     chargeback comes weeks after the payment): those of our payments not booked as
    //     Stripe has them are booked.
    let from = opts.from.timestamp();
    let to = opts.to.timestamp();
    let mut payments_to_check: Vec<String> = Vec::new();
    for r in stripe.refunds_created_between(from, to, Some(&run.pacer)).await? {
        if let Some(pi) = r.payment_intent.filter(|pi| !seen.contains(pi)) {
            payments_to_check.push(pi);
        }
    }
    for d in stripe.disputes_created_between(from, to, Some(&run.pacer)).await? {
        if let Some(pi) = d.payment_intent.filter(|pi| !seen.contains(pi)) {
            payments_to_check.push(pi);
        }
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
            money_back(run, stripe, &snap).await?;
        }
    }

    run.beat().await?;

    // 3. Our credits in the window that Stripe did not list.
    for credit in ledger::credits_between(&run.svc.db, opts.from, opts.to).await? {
        if seen.contains(&credit.payment_id) {
            continue;
        }
        run.beat().await?;
        let snap = stripe.payment_snapshot(&credit.payment_id, Some(&run.pacer)).await?;
        match snap {
            Some(snap) => {
                payment(run, stripe, &snap).await?;
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
    report(run);
    Ok(())
}

/// An event Stripe could not deliver: stored (if we do not hold it) and processed.
async fn undelivered_event(run: &mut Run<'_>, raw: Vec<u8>) -> Result<(), ReconcileError> {
    let svc = run.svc;
    let event = match StripeEvent::parse(&raw) {
        Ok(e) => e,
        Err(reason) => {
            tracing::warn!(%reason, "an event Stripe listed does not parse; skipped");
            return Ok(());
        }
    };
    if event_store::summary(&svc.db, &event.id).await?.is_some() {
        return Ok(()); // we hold it: our answer was lost, not the event
    }
    let evidence = json!({"event_id": event.id, "type": event.event_type, "created": event.created});
    let detail = format!("{} ({}) was never delivered", event.id, event.event_type);
    let payment_id = event_payment(&event);
    if run.dry_run {
        return Ok(run
            .found(Category::UndeliveredEvent, true, payment_id.as_deref(), Some(&event.id), None, &detail, evidence)
            .await?);
    }
    let now = Utc::now();
    let new = NewEvent {
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        livemode: event.livemode,
        api_version: event.api_version.clone(),
        stripe_created: event.created,
        payload_sha256: NewEvent::digest(&raw),
        payload: raw,
        signature_header: String::new(),
        request_headers: json!({"fetched": format!("GET /v1/events/{}", event.id), "reconciliation_run": run.id})
            .to_string(),
        received_at: now,
    };
    // Stored through the same event store a delivery uses; if a delivery got there first, it
    // is that delivery's to process.
    if event_store::store_fetched(&svc.db, &new, svc.lease_until(now)).await? == Stored::Duplicate {
        return Ok(());
    }
    let outcome = apply_as(svc, &event, BookedBy::Reconciliation, now).await?;
    let detail = match &outcome {
        Processed::Finished { status, detail: d } => format!("{detail}: fetched, stored and {status}: {d}"),
        other => format!("{detail}: fetched and stored; processing: {other:?}"),
    };
    run.found(Category::UndeliveredEvent, true, payment_id.as_deref(), Some(&event.id), None, &detail, evidence)
        .await?;
    Ok(())
}

fn event_payment(event: &StripeEvent) -> Option<String> {
    match &event.object {
        EventObject::PaymentIntent(pi) => Some(pi.id.clone()),
        EventObject::Charge(c) => c.payment_intent.clone(),
        EventObject::Refund(r) => r.payment_intent.clone(),
        EventObject::Dispute(d) => d.payment_intent.clone(),
        EventObject::EarlyFraudWarning(w) => w.payment_intent.clone(),
        EventObject::Unreadable { .. } | EventObject::Other(_) => None,
    }
}

/// One of Stripe's PaymentIntents against our books.
async fn payment(
    run: &mut Run<'_>,
    stripe: &crate::stripe::StripeApi,
    snap: &PaymentSnapshot,
) -> Result<(), ReconcileError> {
    let svc = run.svc;
    let source = PaymentSource::from_metadata(&snap.metadata);
    let credit = ledger::credit_for_payment(&svc.db, &snap.id).await?;
    let purchase = purchases::find(&svc.db, &snap.id).await?;
    let mode_ok = StripeMode::from_livemode(snap.livemode) == svc.mode;
    if !mode_ok && credit.is_none() {
        return Ok(()); // another mode's payment: not this deployment's books
    }
    let succeeded = snap.status == "succeeded";
    match (&credit, succeeded) {
        (Some(c), true) => {
            // Credited (before the rule was kept on every path) to another contract than the
            // purchase's: an alert, the credit never moved automatically.
            if let Err(mismatch) = credit_target(purchase.as_ref().map(|p| p.contract_id), c.contract_id) {
                let detail = format!("{} is credited to contract {}, but {mismatch}", snap.id, c.contract_id);
                run.found(
                    Category::Mismatch,
                    false,
                    Some(&snap.id),
                    None,
                    Some(c.contract_id),
                    &detail,
                    json!({"ours": c, "purchase": purchase, "stripe": snap}),
                )
                .await?;
            }
            if c.amount != snap.amount_received || c.currency != snap.currency || c.livemode != snap.livemode {
                let detail = format!(
                    "credit of {} differs from Stripe's payment: ours {} {} ({}), Stripe's {} {} ({})",
                    snap.id,
                    c.amount,
                    c.currency,
                    mode_word(c.livemode),
                    snap.amount_received,
                    snap.currency,
                    mode_word(snap.livemode)
                );
                run.found(
                    Category::Mismatch,
                    false,
                    Some(&snap.id),
                    None,
                    Some(c.contract_id),
                    &detail,
                    json!({"ours": c, "stripe": snap}),
                )
                .await?;
            }
        }
        (Some(c), false) => {
            let detail = format!(
                "payment {} is credited to contract {} but Stripe says it is {}: left as it is, for an admin to look at",
                snap.id, c.contract_id, snap.status
            );
            run.found(
                Category::CreditedNotPaid,
                false,
                Some(&snap.id),
                None,
                Some(c.contract_id),
                &detail,
                json!({"ours": c, "stripe": snap}),
            )
            .await?;
        }
        (None, true) => match &source {
            Ok(PaymentSource::Contract(_)) => paid_not_credited(run, snap, purchase.as_ref()).await?,
            Ok(PaymentSource::RateCard { .. }) => {
                if external_payments::find(&svc.db, &snap.id).await?.is_none() {
                    let detail = format!(
                        "Rate Card payment {} succeeded at Stripe but was never recorded here (its events are not to be had)",
                        snap.id
                    );
                    run.found(
                        Category::PaidNotCredited,
                        false,
                        Some(&snap.id),
                        None,
                        None,
                        &detail,
                        json!({"stripe": snap}),
                    )
                    .await?;
                }
            }
            Err(_) => {} // not ours: neither a pack nor a Rate Card payment
        },
        (None, false) => {}
    }
    if let Some(p) = purchase.as_ref().filter(|p| !matches!(p.status.as_str(), "succeeded" | "canceled")) {
        if p.status != snap.status
            && p.created_at < Utc::now() - Duration::minutes(STALE_PURCHASE_MINUTES)
            && !succeeded
        {
            let detail =
                format!("purchase {} was still {} here; Stripe says {}", p.payment_intent_id, p.status, snap.status);
            if !run.dry_run {
                purchases::refresh_status(&svc.db, &p.payment_intent_id, &snap.status, Utc::now()).await?;
            }
            run.found(
                Category::StalePurchase,
                true,
                Some(&snap.id),
                None,
                Some(p.contract_id),
                &detail,
                json!({"ours": p, "stripe": snap}),
            )
            .await?;
        }
    }
    if succeeded && (credit.is_some() || purchase.is_some() || matches!(source, Ok(PaymentSource::RateCard { .. }))) {
        money_back(run, stripe, snap).await?;
    }
    Ok(())
}

fn mode_word(livemode: bool) -> &'static str {
    StripeMode::from_livemode(livemode).as_str()
}

/// Paid at Stripe, not credited here, and no event left to tell us: credit it through the
/// same rules and `fulfil` as a webhook, recorded as credited by reconciliation.
async fn paid_not_credited(
    run: &mut Run<'_>,
    snap: &PaymentSnapshot,
    purchase: Option<&purchases::Purchase>,
) -> Result<(), ReconcileError> {
    let svc = run.svc;
    let facts = PaymentIntentFacts {
        id: snap.id.clone(),
        amount: snap.amount,
        amount_received: Some(snap.amount_received),
        currency: snap.currency.clone(),
        status: snap.status.clone(),
        metadata: snap.metadata.clone(),
    };
    let event = StripeEvent::succeeded_as_read("reconcile", facts, snap.livemode, snap.created);
    let terms = match purchase {
        Some(p) => p.terms(svc.terms.base_revisions).unwrap_or_else(|_| svc.terms.clone()),
        None => svc.terms.clone(),
    };
    let evidence = json!({"stripe": snap, "purchase": purchase});
    match route(&event, svc.mode, &terms) {
        // The metadata names another contract than our purchase: credited to neither, an alert.
        Action::Credit(credit) if credit_target(purchase.map(|p| p.contract_id), credit.contract_id).is_err() => {
            let mismatch = credit_target(purchase.map(|p| p.contract_id), credit.contract_id).unwrap_err();
            let detail = format!("{} succeeded at Stripe but cannot be credited: {mismatch}", snap.id);
            run.found(Category::Mismatch, false, Some(&snap.id), None, Some(mismatch.bought_for), &detail, evidence)
                .await?;
        }
        Action::Credit(credit) => {
            let detail =
                format!("{} paid {} for contract {} and was never credited", snap.id, snap.amount, credit.contract_id);
            if run.dry_run {
                return Ok(run
                    .found(
                        Category::PaidNotCredited,
                        true,
                        Some(&snap.id),
                        None,
                        Some(credit.contract_id),
                        &detail,
                        evidence,
                    )
                    .await?);
            }
            match fulfil(&svc.db, &credit, Evidence::Reconciled, Utc::now()).await? {
                Fulfilled::Credited { ledger_id } => {
                    super::stats::Stats::inc(&svc.stats.credited_reconciliation);
                    let detail = format!("{detail}: credited now (ledger row {ledger_id})");
                    run.found(
                        Category::PaidNotCredited,
                        true,
                        Some(&snap.id),
                        None,
                        Some(credit.contract_id),
                        &detail,
                        evidence,
                    )
                    .await?;
                }
                // A webhook or the return page credited it meanwhile: nothing was missing.
                Fulfilled::AlreadyCredited { .. } | Fulfilled::EventAlreadyFinished => {}
                Fulfilled::UnknownContract => {
                    let detail = format!("{detail}: contract {} does not exist here", credit.contract_id);
                    run.found(
                        Category::PaidNotCredited,
                        false,
                        Some(&snap.id),
                        None,
                        Some(credit.contract_id),
                        &detail,
                        evidence,
                    )
                    .await?;
                }
            }
        }
        Action::Ignore { reason } | Action::DeadLetter { reason } => {
            let detail = format!("{} succeeded at Stripe but cannot be credited: {reason}", snap.id);
            run.found(
                Category::Mismatch,
                false,
                Some(&snap.id),
                None,
                purchase.map(|p| p.contract_id),
                &detail,
                evidence,
            )
            .await?;
        }
        other => tracing::warn!(payment_id = %snap.id, ?other, "unexpected routing of a reconciled payment"),
    }
    Ok(())
}

/// Facts we hold but whose revocation the ledger does not (a settle that failed after a
/// credit, say): booked from what is stored, with no API call.
async fn settle_stored(run: &mut Run<'_>, payment_id: &str, contract_id: Option<i64>) -> Result<(), ReconcileError> {
    let svc = run.svc;
    if contract_id.is_none() || !facts::has_facts(&svc.db, payment_id).await? {
        return Ok(());
    }
    if run.dry_run {
        return Ok(()); // what booking would change cannot be known without booking
    }
    let fact = Fact::Settle { payment_id: payment_id.to_string() };
    let b = adjustments::book(&svc.db, &fact, BookedBy::Reconciliation, None, Utc::now()).await?;
    if b.revoked_now != 0 {
        let lost = b.revocation.is_some_and(|r| r.lost);
        let category = if lost { Category::DisputeNotBooked } else { Category::RefundNotBooked };
        let detail = format!(
            "refunds or disputes of {payment_id} were stored but not booked: {} revision(s) {} now",
            b.revoked_now.abs(),
            if b.revoked_now > 0 { "revoked" } else { "given back" }
        );
        run.found(category, true, Some(payment_id), None, contract_id, &detail, json!({"revocation": b.revocation}))
            .await?;
    }
    Ok(())
}

/// Refunds and disputes Stripe knows of that our books do not: compared by the charge's
/// cumulative refunded amount and its disputed flag (so only payments that differ cost API calls).
async fn money_back(
    run: &mut Run<'_>,
    stripe: &crate::stripe::StripeApi,
    snap: &PaymentSnapshot,
) -> Result<(), ReconcileError> {
    let svc = run.svc;
    let contract_id = ledger::credit_for_payment(&svc.db, &snap.id).await?.map(|c| c.contract_id);
    settle_stored(run, &snap.id, contract_id).await?;
    let our_refunds = facts::refunds_for_payment(&svc.db, &snap.id).await?;
    let reserved: i64 = our_refunds
        .iter()
        .filter(|r| RefundStatus::parse(&r.status).is_ok_and(|s| s.reserves_amount()))
        .map(|r| r.amount)
        .sum();
    if reserved != snap.amount_refunded {
        let listed = stripe.refunds_of(&snap.id, Some(&run.pacer)).await?;
        for r in &listed {
            let ours = our_refunds.iter().find(|o| o.refund_id == r.id);
            let held = ours.and_then(|o| RefundStatus::parse(&o.status).ok());
            if held.is_some_and(|h| h.merge(r.status) == h) {
                continue; // booked, and Stripe has nothing newer
            }
            let detail = format!(
                "refund {} of {} ({}) was not booked{}",
                r.id,
                r.amount,
                r.status.as_str(),
                ours.map(|o| format!(" as {} (we held {})", r.status.as_str(), o.status)).unwrap_or_default()
            );
            let evidence = json!({"stripe_refund": {"id": r.id, "amount": r.amount, "status": r.status.as_str()},
                "charge_amount_refunded": snap.amount_refunded, "ours_reserved": reserved});
            let mut detail = detail;
            if !run.dry_run {
                if let Some(record) = refund_record(r, snap.livemode) {
                    let b =
                        adjustments::book(&svc.db, &Fact::Refund(record), BookedBy::Reconciliation, None, Utc::now())
                            .await?;
                    detail.push_str(&format!(": booked now, {} revision(s) revoked", b.revoked_now));
                }
            }
            run.found(Category::RefundNotBooked, true, Some(&snap.id), Some(&r.id), contract_id, &detail, evidence)
                .await?;
        }
    }
    let our_disputes = facts::disputes_for_payment(&svc.db, &snap.id).await?;
    // Skipped only when every dispute we hold has its verdict: an inquiry we hold as
    // warning_closed may have escalated since.
    let settled = !our_disputes.is_empty()
        && our_disputes
            .iter()
            .all(|d| matches!(DisputeStatus::parse(&d.status), Ok(DisputeStatus::Won | DisputeStatus::Lost)));
    if snap.disputed && !settled {
        for d in stripe.disputes_of(&snap.id, Some(&run.pacer)).await? {
            let ours = our_disputes.iter().find(|o| o.dispute_id == d.id);
            let held = ours.and_then(|o| DisputeStatus::parse(&o.status).ok());
            if held.is_some_and(|h| h.merge(d.status) == h) {
                continue;
            }
            let mut detail = format!(
                "dispute {} ({}) was not booked{}",
                d.id,
                d.status.as_str(),
                ours.map(|o| format!(" (we held {})", o.status)).unwrap_or_default()
            );
            let evidence = json!({"stripe_dispute": {"id": d.id, "amount": d.amount, "status": d.status.as_str()}});
            if !run.dry_run {
                if let Some(record) = dispute_record(&d, snap.livemode) {
                    let b =
                        adjustments::book(&svc.db, &Fact::Dispute(record), BookedBy::Reconciliation, None, Utc::now())
                            .await?;
                    detail.push_str(&format!(": booked now, {} revision(s) revoked", b.revoked_now));
                }
            }
            run.found(Category::DisputeNotBooked, true, Some(&snap.id), Some(&d.id), contract_id, &detail, evidence)
                .await?;
        }
    }
    Ok(())
}
