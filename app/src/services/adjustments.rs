//! Booking refunds and disputes: the one way money moving back reaches the ledger, whoever
//! reports it (a webhook, the admin's own refund, reconciliation). Facts are merged and the
//! difference booked by `store::adjustments::book`; this module closes the one gap a single
//! transaction cannot: a refund reported at the same moment the payment is first credited.
use crate::domain::events::{DisputeFacts, RefundFacts};
use crate::store::adjustments::{self, BookedBy, Booking, DisputeRecord, Fact, PaymentOwner, RefundRecord};
use crate::store::{Db, StoreResult};
use chrono::{DateTime, Utc};

/// Metadata keys our own refunds carry, so a refund made from the admin page is recognised in
/// Stripe's dashboard and in the webhook that reports it.
pub const META_REFUNDED_BY: &str = "revisionStoreAdmin";
pub const META_REFUND_NOTE: &str = "revisionStoreNote";

pub fn refund_record(r: &RefundFacts, livemode: bool) -> Option<RefundRecord> {
    Some(RefundRecord {
        refund_id: r.id.clone(),
        payment_id: r.payment_intent.clone()?,
        charge_id: r.charge.clone(),
        amount: r.amount,
        currency: r.currency.clone(),
        status: r.status,
        reason: r.reason.clone(),
        livemode,
        requested_by: r.metadata.get(META_REFUNDED_BY).cloned(),
        note: r.metadata.get(META_REFUND_NOTE).map(|n| n.chars().take(500).collect()),
    })
}

pub fn dispute_record(d: &DisputeFacts, livemode: bool) -> Option<DisputeRecord> {
    Some(DisputeRecord {
        dispute_id: d.id.clone(),
        payment_id: d.payment_intent.clone()?,
        charge_id: d.charge.clone(),
        amount: d.amount,
        currency: d.currency.clone(),
        status: d.status,
        reason: d.reason.clone(),
        livemode,
    })
}

/// Books a fact. When the payment was not credited at the time, it is checked again after the
/// commit: a credit committed meanwhile may have looked for facts before this one committed, so
/// one of the two must see the other, and this second look makes sure it does (the credit's
/// side looks again after its own commit, `settle_after_credit`; intake's batch looks under
/// the lock `book` takes, `store::events::store_batch`).
pub async fn book(
    db: &Db,
    fact: &Fact,
    booked_by: BookedBy,
    event_id: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Booking> {
    let booking = adjustments::book(db, fact, booked_by, event_id, now).await?;
    if matches!(booking.owner, PaymentOwner::Uncredited(_) | PaymentOwner::Unknown)
        && crate::store::ledger::credit_for_payment(db, fact.payment_id()).await?.is_some()
    {
        let settle = Fact::Settle { payment_id: fact.payment_id().to_string() };
        return adjustments::book(db, &settle, BookedBy::Payment, event_id, now).await;
    }
    log(&booking, fact);
    Ok(booking)
}

/// After a payment is credited: if refunds or disputes were reported before, book them now.
pub async fn settle_after_credit(db: &Db, payment_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
    if adjustments::has_facts(db, payment_id).await? {
        settle(db, payment_id, now).await?;
    }
    Ok(())
}

/// Books the refunds and disputes stored for a payment against its credit (what is not yet
/// booked; booking is idempotent).
pub async fn settle(db: &Db, payment_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
    let fact = Fact::Settle { payment_id: payment_id.to_string() };
    let booking = adjustments::book(db, &fact, BookedBy::Payment, None, now).await?;
    log(&booking, &fact);
    Ok(())
}

fn log(booking: &Booking, fact: &Fact) {
    if booking.revoked_now != 0 {
        tracing::info!(payment_id = fact.payment_id(), revoked = booking.revoked_now, owner = ?booking.owner,
            "revisions adjusted");
    }
}

/// The outcome of a booking in words, for the event's processing row.
pub fn describe(booking: &Booking, what: &str) -> String {
    match booking.owner {
        PaymentOwner::Contract(contract) => {
            let r = booking.revocation.expect("a credited payment has a revocation");
            let change = match booking.revoked_now {
                0 => "no change to the ledger".to_string(),
                n if n > 0 => format!("{n} revision{} revoked from contract {contract}", if n == 1 { "" } else { "s" }),
                n => format!("{} revision{} given back to contract {contract}", -n, if n == -1 { "" } else { "s" }),
            };
            let mut s = format!("{what}: {change}; {} of the pack now revoked", r.revoked);
            if r.disputed {
                s.push_str(", its unused revisions held while the dispute is open");
            }
            s
        }
        PaymentOwner::RateCard => format!("{what}: recorded against the Rate Card payment (no contract to adjust)"),
        PaymentOwner::Uncredited(contract) => {
            format!("{what}: recorded; contract {contract}'s purchase is not credited yet, so it is booked when it is")
        }
        PaymentOwner::Unknown => {
            format!("{what}: recorded; the payment is not one we know (reconciliation looks at it)")
        }
    }
}
