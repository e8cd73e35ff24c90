//! Processing a stored event: route it (pure) and apply the action, finishing its processing
//! row in the same transaction as the work. Called inline by the webhook right after storing,
//! and by the worker for retries, recovery after a crash, and replays.
use super::adjustments::{self, dispute_record, refund_record};
use super::fulfil::{fulfil, Evidence, Fulfilled};
use super::stats::Stats;
use super::Services;
use super::DELIVERY_LOG;
use crate::domain::adjustments::RefundStatus;
use crate::domain::events::RetryPolicy;
use crate::domain::events::{credit_target, route, Action, ChargeFacts, Credit, StripeEvent};
use crate::domain::PackTerms;
use crate::store::adjustments::{self as store_adjustments, BookedBy, Fact};
use crate::store::events as event_store;
use crate::store::external_payments;
use crate::store::purchases;
use crate::store::{StoreResult, Tx};
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Finished with this status (`processed`, `ignored` or `failed`) and outcome in words.
    Finished { status: &'static str, detail: String },
    /// A retry may help; the event stays pending until `next_at`.
    RetryScheduled { reason: String, next_at: DateTime<Utc> },
    /// Someone else finished it first (a concurrent processor); nothing changed here.
    AlreadyFinished,
    /// No stored event with this id.
    NotFound,
}

/// Processes an event by id, reading the stored evidence (worker, replay, recovery).
pub async fn process_stored(svc: &Services, event_id: &str, now: DateTime<Utc>) -> StoreResult<Processed> {
    let Some(evidence) = event_store::evidence(&svc.db, event_id).await? else {
        return Ok(Processed::NotFound);
    };
    match StripeEvent::parse(&evidence.payload) {
        Ok(event) => apply(svc, &event, now).await,
        // Only parseable events are stored, so this means the parser changed since: keep the
        // evidence, say why, and let an operator replay it after a fix.
        Err(reason) => {
            finish(svc, event_id, "failed", &format!("stored payload no longer parses: {reason}"), now).await
        }
    }
}

/// The terms a payment is checked against: those of the purchase we recorded when it was
/// started (a price change since must not dead-letter a payment made at the old price), or,
/// for a payment we have no purchase for, today's; and that purchase's contract, if any.
async fn terms_for(svc: &Services, event: &StripeEvent) -> StoreResult<(PackTerms, Option<i64>)> {
    let Some(pi) = event.payment_intent().filter(|_| event.event_type == "payment_intent.succeeded") else {
        return Ok((svc.terms.clone(), None));
    };
    Ok(match purchases::find(&svc.db, &pi.id).await? {
        Some(p) => (p.terms(svc.terms.base_revisions).unwrap_or_else(|_| svc.terms.clone()), Some(p.contract_id)),
        None => (svc.terms.clone(), None),
    })
}

/// Applies what an already-stored event means.
pub async fn apply(svc: &Services, event: &StripeEvent, now: DateTime<Utc>) -> StoreResult<Processed> {
    apply_as(svc, event, BookedBy::Webhook, now).await
}

/// `apply`, saying who books any adjustment (a webhook, reconciliation, a replay).
pub async fn apply_as(
    svc: &Services,
    event: &StripeEvent,
    booked_by: BookedBy,
    now: DateTime<Utc>,
) -> StoreResult<Processed> {
    let (terms, bought_for) = terms_for(svc, event).await?;
    match route(event, svc.mode, &terms) {
        Action::Credit(credit) => apply_credit(svc, event, &credit, bought_for, now).await,
        Action::RecordExternal(x) => {
            let detail = format!(
                "Rate Card payment recorded for advertiser {}, size {}, publication {}",
                x.advertiser_ref, x.size_ref, x.publication_ref
            );
            let mut tx = svc.db.begin().await?;
            external_payments::insert(&mut tx, &x, &event.id, now).await?;
            finish_in(tx, &event.id, "processed", None, &detail, now).await
        }
        Action::UpdatePurchase { payment_id, status } => {
            let detail = format!("purchase {payment_id} is now {status}");
            let mut tx = svc.db.begin().await?;
            let known = purchases::move_status(&mut tx, &payment_id, &status, now).await?;
            let detail = if known { detail } else { format!("{detail} (no open purchase of ours to update)") };
            finish_in(tx, &event.id, "processed", None, &detail, now).await
        }
        Action::BookRefund(r) => {
            let Some(record) = refund_record(&r, event.livemode) else {
                return finish(svc, &event.id, "ignored", "a refund without a PaymentIntent is not ours", now).await;
            };
            let booking = adjustments::book(&svc.db, &Fact::Refund(record), booked_by, Some(&event.id), now).await?;
            let what = format!("refund {} of {} is {}", r.id, money(r.amount, &r.currency), r.status.as_str());
            finish_processed(svc, &event.id, &adjustments::describe(&booking, &what), now).await
        }
        Action::BookDispute(d) => {
            let Some(record) = dispute_record(&d, event.livemode) else {
                return finish(svc, &event.id, "ignored", "a dispute without a PaymentIntent is not ours", now).await;
            };
            let booking = adjustments::book(&svc.db, &Fact::Dispute(record), booked_by, Some(&event.id), now).await?;
            let what = format!("dispute {} of {} is {}", d.id, money(d.amount, &d.currency), d.status.as_str());
            finish_processed(svc, &event.id, &adjustments::describe(&booking, &what), now).await
        }
        Action::SyncRefunds { payment_id, charge } => {
            sync_refunds(svc, event, &payment_id, &charge, booked_by, now).await
        }
        Action::RecordFraudWarning(w) => {
            store_adjustments::record_fraud_warning(
                &svc.db,
                &w.id,
                w.payment_intent.as_deref(),
                &w.charge,
                &w.fraud_type,
                w.actionable,
                event.livemode,
                Some(&event.id),
                now,
            )
            .await?;
            tracing::warn!(warning_id = %w.id, charge = %w.charge, fraud_type = %w.fraud_type, "early fraud warning");
            let detail = format!(
                "early fraud warning {} ({}) on charge {}{}",
                w.id,
                w.fraud_type,
                w.charge,
                if w.actionable { ": actionable, a refund now avoids a dispute" } else { "" }
            );
            finish_processed(svc, &event.id, &detail, now).await
        }
        Action::Ignore { reason } => finish(svc, &event.id, "ignored", &reason, now).await,
        Action::DeadLetter { reason } => {
            tracing::warn!(event_id = %event.id, %reason, "event dead-lettered");
            Stats::inc(&svc.stats.dead_lettered);
            finish(svc, &event.id, "failed", &reason, now).await
        }
    }
}

/// A paid pack: credited to the contract `credit_target` names, through `fulfil`.
async fn apply_credit(
    svc: &Services,
    event: &StripeEvent,
    credit: &Credit,
    bought_for: Option<i64>,
    now: DateTime<Utc>,
) -> StoreResult<Processed> {
    if let Err(mismatch) = credit_target(bought_for, credit.contract_id) {
        let reason = mismatch.to_string();
        tracing::error!(event_id = %event.id, payment_id = %credit.payment_id, %reason, "credit refused: contract mismatch");
        Stats::inc(&svc.stats.dead_lettered);
        return finish(svc, &event.id, "failed", &reason, now).await;
    }
    match fulfil(&svc.db, credit, Evidence::Event(&event.id), now).await? {
        Fulfilled::Credited { ledger_id } => {
            Stats::inc(&svc.stats.credited);
            tracing::info!(target: DELIVERY_LOG, event_id = %event.id, payment_id = %credit.payment_id, contract_id = credit.contract_id, ledger_id, "credited revision pack");
            Ok(Processed::Finished { status: "processed", detail: format!("credited ledger row {ledger_id}") })
        }
        Fulfilled::AlreadyCredited { ledger_id } => {
            tracing::info!(target: DELIVERY_LOG, event_id = %event.id, payment_id = %credit.payment_id, ledger_id, "payment already credited");
            Ok(Processed::Finished {
                status: "processed",
                detail: format!("already credited as ledger row {ledger_id}"),
            })
        }
        Fulfilled::EventAlreadyFinished => Ok(Processed::AlreadyFinished),
        // The contract may not exist *yet* (created in another system, replicated late):
        // a retry can help, so back off before dead-lettering.
        Fulfilled::UnknownContract => {
            retry_or_give_up(svc, &event.id, &format!("unknown contract {}", credit.contract_id), now).await
        }
    }
}

use crate::domain::money::format_amount as money;

/// `charge.refunded` carries the charge's cumulative refunded amount but not its refunds (not
/// since API 2022-11-15). When the refunds we know add up to it, there is nothing to do; when
/// they do not (this event came before the refund's own `refund.created`, or that one was lost),
/// the event alone cannot say which refund is missing, so we ask Stripe for the payment's
/// refunds and book each.
async fn sync_refunds(
    svc: &Services,
    event: &StripeEvent,
    payment_id: &str,
    charge: &ChargeFacts,
    booked_by: BookedBy,
    now: DateTime<Utc>,
) -> StoreResult<Processed> {
    let known: i64 = store_adjustments::refunds_for_payment(&svc.db, payment_id)
        .await?
        .iter()
        .filter(|r| RefundStatus::parse(&r.status).is_ok_and(|s| s.reserves_amount()))
        .map(|r| r.amount)
        .sum();
    if known == charge.amount_refunded {
        let detail = format!(
            "charge {} refunded {} in all, as the refunds already booked",
            charge.id,
            money(charge.amount_refunded, &charge.currency)
        );
        return finish_processed(svc, &event.id, &detail, now).await;
    }
    let Some(stripe) = svc.stripe.as_ref() else {
        return finish(
            svc,
            &event.id,
            "failed",
            "the charge's refunds differ from ours and no Stripe key is set to ask",
            now,
        )
        .await;
    };
    let refunds = match stripe.refunds_of(payment_id, None).await {
        Ok(r) => r,
        Err(e) => {
            return retry_or_give_up(svc, &event.id, &format!("listing the refunds of {payment_id}: {e}"), now).await
        }
    };
    let mut changed = 0;
    for r in &refunds {
        if let Some(record) = refund_record(r, event.livemode) {
            changed +=
                adjustments::book(&svc.db, &Fact::Refund(record), booked_by, Some(&event.id), now).await?.revoked_now;
        }
    }
    let detail = format!(
        "charge {} refunded {} in all; asked Stripe for {payment_id}'s refunds (the event does not list them): \
         {} refund{} booked, {changed} revision{} revoked now",
        charge.id,
        money(charge.amount_refunded, &charge.currency),
        refunds.len(),
        if refunds.len() == 1 { "" } else { "s" },
        if changed.abs() == 1 { "" } else { "s" },
    );
    finish_processed(svc, &event.id, &detail, now).await
}

async fn finish_processed(svc: &Services, event_id: &str, detail: &str, now: DateTime<Utc>) -> StoreResult<Processed> {
    finish_in(svc.db.begin().await?, event_id, "processed", None, detail, now).await
}

/// Finishes an event with nothing else to write. `reason` is both the error (for `failed` and
/// `ignored`, so an admin can read why) and the outcome.
async fn finish(
    svc: &Services,
    event_id: &str,
    status: &'static str,
    reason: &str,
    now: DateTime<Utc>,
) -> StoreResult<Processed> {
    finish_in(svc.db.begin().await?, event_id, status, Some(reason), reason, now).await
}

/// Finishes the event in `tx`, beside the work already done in it, and commits both; if
/// another processor finished the event first, `tx` is dropped uncommitted and the work rolls
/// back with it.
async fn finish_in(
    mut tx: Tx,
    event_id: &str,
    status: &'static str,
    error: Option<&str>,
    detail: &str,
    now: DateTime<Utc>,
) -> StoreResult<Processed> {
    if !event_store::finish(&mut tx, event_id, status, error, detail, now).await? {
        return Ok(Processed::AlreadyFinished);
    }
    tx.commit().await?;
    Ok(Processed::Finished { status, detail: detail.to_string() })
}

async fn retry_or_give_up(svc: &Services, event_id: &str, reason: &str, now: DateTime<Utc>) -> StoreResult<Processed> {
    retry_or_give_up_by(svc, &svc.retry, event_id, reason, now).await
}

/// Errors processing one event other than the database being unreachable (a constraint, a row
/// that cannot be read, a bug): a few retries in case they pass, then a dead letter with the
/// error. Neither retried every lease for ever, nor stopping the rest of a sweep.
pub const PROCESSING_ERROR_RETRY: RetryPolicy =
    RetryPolicy { first_delay_secs: 30, max_delay_secs: 600, max_attempts: 5 };

async fn retry_or_give_up_by(
    svc: &Services,
    policy: &RetryPolicy,
    event_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> StoreResult<Processed> {
    let attempts_done = event_store::summary(&svc.db, event_id).await?.map_or(0, |s| s.attempts) + 1;
    match policy.delay_after(attempts_done) {
        Some(delay) => {
            let next_at = now + Duration::seconds(delay);
            if !event_store::retry_later(&svc.db, event_id, reason, next_at).await? {
                return Ok(Processed::AlreadyFinished);
            }
            Stats::inc(&svc.stats.retries_scheduled);
            tracing::warn!(event_id, reason, attempts_done, %next_at, "event will be retried");
            Ok(Processed::RetryScheduled { reason: reason.to_string(), next_at })
        }
        None => {
            Stats::inc(&svc.stats.dead_lettered);
            let reason = format!("{reason}; gave up after {attempts_done} attempts");
            tracing::error!(event_id, %reason, "event dead-lettered");
            finish(svc, event_id, "failed", &reason, now).await
        }
    }
}

/// Claims and processes due events until none are left. `include_fresh` also takes events never
/// attempted (start-up recovery after a crash between storing and processing).
pub async fn run_due(svc: &Services, include_fresh: bool) -> StoreResult<usize> {
    let mut done = 0;
    loop {
        let now = Utc::now();
        let ids = event_store::claim_due(&svc.db, now, svc.lease_until(now), 100, include_fresh).await?;
        if ids.is_empty() {
            return Ok(done);
        }
        for id in &ids {
            match process_stored(svc, id, Utc::now()).await {
                Ok(p) => tracing::debug!(event_id = %id, outcome = ?p, "processed stored event"),
                // The database is down or cannot write: stop here rather than hammer it; the
                // lease expires and a later sweep retries.
                Err(e) if e.is_unavailable() => {
                    tracing::error!(event_id = %id, error = %e, "processing a stored event failed");
                    return Err(e);
                }
                // This event's own failure: count it (dead-lettered after a few) and go on with
                // the others.
                Err(e) => {
                    tracing::error!(event_id = %id, error = %e, "processing a stored event failed");
                    let reason = format!("processing failed: {e}");
                    match retry_or_give_up_by(svc, &PROCESSING_ERROR_RETRY, id, &reason, Utc::now()).await {
                        Ok(_) => {}
                        Err(e) if e.is_unavailable() => return Err(e),
                        Err(e) => tracing::error!(event_id = %id, error = %e, "recording the failure failed too"),
                    }
                }
            }
            done += 1;
        }
    }
}
