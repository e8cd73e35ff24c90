//! Step 2's payments: each of Stripe's payments in the window against our books: credited but
//! not paid, paid but not credited (credited now, through `fulfil`), money that differs, a
//! purchase left open; then its refunds and disputes (`money_back`).
use super::run::Run;
use super::{Category, ReconcileError, STALE_PURCHASE_MINUTES};
use crate::domain::events::{
    credit_target, route, Action, Credit, PaymentIntentFacts, PaymentSource, StripeEvent, StripeMode,
};
use crate::services::fulfil::{fulfil, Evidence, Fulfilled};
use crate::store::external_payments;
use crate::store::ledger::{self, LedgerCredit};
use crate::store::purchases::{self, Purchase};
use crate::stripe::{PaymentSnapshot, StripeApi};
use chrono::{Duration, Utc};
use serde_json::json;

/// One of Stripe's PaymentIntents against our books.
pub(super) async fn payment(
    run: &mut Run<'_>,
    stripe: &StripeApi,
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
        (Some(c), true) => check_credit(run, snap, c, purchase.as_ref()).await?,
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
            Ok(PaymentSource::RateCard { .. }) => rate_card_paid(run, snap).await?,
            Err(_) => {} // not ours: neither a pack nor a Rate Card payment
        },
        (None, false) => {}
    }
    if !succeeded {
        refresh_stale(run, snap, purchase.as_ref()).await?;
    }
    if succeeded && (credit.is_some() || purchase.is_some() || matches!(source, Ok(PaymentSource::RateCard { .. }))) {
        super::money_back::money_back(run, stripe, snap).await?;
    }
    Ok(())
}

fn mode_word(livemode: bool) -> &'static str {
    StripeMode::from_livemode(livemode).as_str()
}

/// A payment credited here and paid at Stripe: an alert if it went to another contract than the
/// purchase's, or if its money differs from Stripe's.
async fn check_credit(
    run: &mut Run<'_>,
    snap: &PaymentSnapshot,
    c: &LedgerCredit,
    purchase: Option<&Purchase>,
) -> Result<(), ReconcileError> {
    // Credited (before the rule was kept on every path) to another contract than the
    // purchase's: an alert, the credit never moved automatically.
    if let Err(mismatch) = credit_target(purchase.map(|p| p.contract_id), c.contract_id) {
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
    Ok(())
}

/// A Rate Card payment paid at Stripe: an alert if it was never recorded here.
async fn rate_card_paid(run: &mut Run<'_>, snap: &PaymentSnapshot) -> Result<(), ReconcileError> {
    if external_payments::find(&run.svc.db, &snap.id).await?.is_none() {
        let detail = format!(
            "Rate Card payment {} succeeded at Stripe but was never recorded here (its events are not to be had)",
            snap.id
        );
        run.found(Category::PaidNotCredited, false, Some(&snap.id), None, None, &detail, json!({"stripe": snap}))
            .await?;
    }
    Ok(())
}

/// Our purchase still open long after it was created while Stripe has moved on: refreshed.
async fn refresh_stale(
    run: &mut Run<'_>,
    snap: &PaymentSnapshot,
    purchase: Option<&Purchase>,
) -> Result<(), ReconcileError> {
    let svc = run.svc;
    if let Some(p) = purchase.filter(|p| !matches!(p.status.as_str(), "succeeded" | "canceled")) {
        if p.status != snap.status && p.created_at < Utc::now() - Duration::minutes(STALE_PURCHASE_MINUTES) {
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
    Ok(())
}

/// Paid at Stripe, not credited here, and no event left to tell us: credit it through the
/// same rules and `fulfil` as a webhook, recorded as credited by reconciliation.
async fn paid_not_credited(
    run: &mut Run<'_>,
    snap: &PaymentSnapshot,
    purchase: Option<&Purchase>,
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
        Action::Credit(credit) => match credit_target(purchase.map(|p| p.contract_id), credit.contract_id) {
            Ok(_) => credit_missed(run, snap, &credit, evidence).await?,
            Err(mismatch) => {
                let detail = format!("{} succeeded at Stripe but cannot be credited: {mismatch}", snap.id);
                let bought_for = Some(mismatch.bought_for);
                run.found(Category::Mismatch, false, Some(&snap.id), None, bought_for, &detail, evidence).await?;
            }
        },
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

/// A pack paid at Stripe and credited nowhere: credited now through `fulfil`, recorded as
/// credited by reconciliation (in a dry run, only reported).
async fn credit_missed(
    run: &mut Run<'_>,
    snap: &PaymentSnapshot,
    credit: &Credit,
    evidence: serde_json::Value,
) -> Result<(), ReconcileError> {
    let svc = run.svc;
    let detail = format!("{} paid {} for contract {} and was never credited", snap.id, snap.amount, credit.contract_id);
    if run.dry_run {
        return Ok(run
            .found(Category::PaidNotCredited, true, Some(&snap.id), None, Some(credit.contract_id), &detail, evidence)
            .await?);
    }
    match fulfil(&svc.db, credit, Evidence::Reconciled, Utc::now()).await? {
        Fulfilled::Credited { ledger_id } => {
            crate::services::stats::Stats::inc(&svc.stats.credited_reconciliation);
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
    Ok(())
}
