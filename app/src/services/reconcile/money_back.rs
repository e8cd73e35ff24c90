//! Money that went back: refunds and disputes Stripe knows of that our books do not, and facts
//! we hold but never booked; booked through `services::adjustments`, the webhook's own path.
use super::run::Run;
use super::{Category, ReconcileError};
use crate::domain::adjustments::{DisputeStatus, RefundStatus};
use crate::services::adjustments::{self, dispute_record, refund_record};
use crate::store::adjustments::{self as facts, BookedBy, Fact};
use crate::store::ledger;
use crate::stripe::{PaymentSnapshot, StripeApi};
use chrono::Utc;
use serde_json::json;

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
pub(super) async fn money_back(
    run: &mut Run<'_>,
    stripe: &StripeApi,
    snap: &PaymentSnapshot,
) -> Result<(), ReconcileError> {
    let svc = run.svc;
    let contract_id = ledger::credit_for_payment(&svc.db, &snap.id).await?.map(|c| c.contract_id);
    settle_stored(run, &snap.id, contract_id).await?;
    refunds_missed(run, stripe, snap, contract_id).await?;
    disputes_missed(run, stripe, snap, contract_id).await
}

/// The payment's refunds, when what our refunds reserve differs from the charge's refunded
/// amount: each one Stripe has and we do not (or hold in an older state) booked now.
async fn refunds_missed(
    run: &mut Run<'_>,
    stripe: &StripeApi,
    snap: &PaymentSnapshot,
    contract_id: Option<i64>,
) -> Result<(), ReconcileError> {
    let svc = run.svc;
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
    Ok(())
}

/// The payment's disputes, while one we hold (or Stripe flags) has no verdict yet: each one
/// Stripe has and we do not (or hold in an older state) booked now.
async fn disputes_missed(
    run: &mut Run<'_>,
    stripe: &StripeApi,
    snap: &PaymentSnapshot,
    contract_id: Option<i64>,
) -> Result<(), ReconcileError> {
    let svc = run.svc;
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
