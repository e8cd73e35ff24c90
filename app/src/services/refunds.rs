//! An admin refunds a pack, fully or by a number of revisions. The server plans the amount
//! (domain rules), asks Stripe for the Refund with an idempotency key (a double submit or a
//! retry is the same refund) and metadata saying who and why, then books it through the same
//! function the webhook uses: whichever of the two comes first books it, the other finds it
//! booked.
use super::adjustments::{self, refund_record, META_REFUNDED_BY, META_REFUND_NOTE};
use super::Services;
use crate::domain::adjustments::{
    plan_refund, revocation, DisputeStatus, PaidPack, RefundAsk, RefundFact, RefundPlan, RefundStatus, Revocation,
};
use crate::domain::{Currency, Money};
use crate::store::adjustments::{self as store, BookedBy, Booking, Fact};
use crate::store::{ledger, StoreError};
use crate::stripe::StripeApiError;
use chrono::Utc;

/// Stripe's refund reasons; anything else is said in the note.
pub const REASONS: [&str; 3] = ["requested_by_customer", "duplicate", "fraudulent"];

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("no such credited payment")]
    NotFound,
    /// The refund cannot be made as asked; the message says why.
    #[error("{0}")]
    Refused(String),
    #[error("payments are not configured")]
    PaymentsUnavailable,
    #[error(transparent)]
    Stripe(#[from] StripeApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a refund of one payment would be, for the confirmation step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundQuote {
    pub payment_id: String,
    pub contract_id: i64,
    pub amount: Money,
    pub revisions: i64,
}

#[derive(Debug, Clone)]
pub struct RefundDone {
    pub refund_id: String,
    pub amount: Money,
    pub status: RefundStatus,
    pub booking: Booking,
}

/// The payment's pack, known refunds and revocation.
async fn state(
    svc: &Services,
    payment_id: &str,
) -> Result<(ledger::LedgerCredit, PaidPack, Vec<RefundFact>, Revocation), RefundError> {
    let credit = ledger::credit_for_payment(&svc.db, payment_id).await?.ok_or(RefundError::NotFound)?;
    let pack = PaidPack { amount: credit.amount, revisions: credit.revisions };
    let refunds: Vec<RefundFact> = store::refunds_for_payment(&svc.db, payment_id)
        .await?
        .into_iter()
        .filter_map(|r| Some(RefundFact { amount: r.amount, status: RefundStatus::parse(&r.status).ok()? }))
        .collect();
    let disputes: Vec<DisputeStatus> = store::disputes_for_payment(&svc.db, payment_id)
        .await?
        .into_iter()
        .filter_map(|d| DisputeStatus::parse(&d.status).ok())
        .collect();
    let r = revocation(&pack, &refunds, &disputes);
    Ok((credit, pack, refunds, r))
}

/// Plans a refund without making it: what the admin confirms.
pub async fn quote(svc: &Services, payment_id: &str, ask: RefundAsk) -> Result<RefundQuote, RefundError> {
    let (credit, pack, refunds, r) = state(svc, payment_id).await?;
    let RefundPlan { amount, revisions } = plan_refund(&pack, &refunds, &r, ask).map_err(RefundError::Refused)?;
    let currency = Currency::parse(&credit.currency).map_err(RefundError::Refused)?;
    Ok(RefundQuote {
        payment_id: credit.payment_id,
        contract_id: credit.contract_id,
        amount: Money::new(amount, currency),
        revisions,
    })
}

/// An admin's refund, as confirmed.
#[derive(Debug, Clone)]
pub struct RefundOrder<'a> {
    pub admin_email: &'a str,
    pub payment_id: &'a str,
    pub ask: RefundAsk,
    /// One of Stripe's `REASONS`.
    pub reason: &'a str,
    pub note: &'a str,
    /// The confirmation's one-time token: the same confirmation submitted twice is one refund
    /// at Stripe (the idempotency key), never two.
    pub attempt: &'a str,
    /// The amount the confirmation showed, minor units.
    pub confirmed_amount: Option<i64>,
}

/// Makes the refund.
pub async fn refund_pack(svc: &Services, order: &RefundOrder<'_>) -> Result<RefundDone, RefundError> {
    let RefundOrder { admin_email, payment_id, ask, reason, note, attempt, confirmed_amount } = *order;
    if !REASONS.contains(&reason) {
        return Err(RefundError::Refused(format!("the reason must be one of {}", REASONS.join(", "))));
    }
    let note = note.trim();
    if note.chars().count() > 500 {
        return Err(RefundError::Refused("the note is longer than 500 characters".into()));
    }
    if attempt.is_empty() || attempt.len() > 64 || !attempt.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(RefundError::Refused("this confirmation is not valid any more; start the refund again".into()));
    }
    let quote = quote(svc, payment_id, ask).await?;
    // The admin confirmed an amount; if the payment changed since (another refund, a
    // dispute), this is not that refund any more.
    if confirmed_amount.is_some_and(|a| a != quote.amount.minor) {
        return Err(RefundError::Refused(format!(
            "the payment changed since you confirmed: the refund would now be {}; look at it again",
            quote.amount
        )));
    }
    let stripe = svc.stripe.as_ref().ok_or(RefundError::PaymentsUnavailable)?;
    let revisions = quote.revisions.to_string();
    let metadata = [(META_REFUNDED_BY, admin_email), (META_REFUND_NOTE, note), ("revisions", revisions.as_str())];
    let refund = stripe
        .create_refund(
            payment_id,
            quote.amount.minor,
            Some(reason),
            &metadata,
            &format!("admin-refund-{payment_id}-{attempt}"),
        )
        .await?;
    // Stripe answered for this payment; anything else would be a bug to refuse loudly.
    let Some(record) = refund_record(&refund, svc.mode == crate::domain::events::StripeMode::Live)
        .filter(|r| r.payment_id == payment_id)
    else {
        return Err(RefundError::Refused(format!("Stripe's refund {} is not for {payment_id}", refund.id)));
    };
    let booking = adjustments::book(&svc.db, &Fact::Refund(record), BookedBy::Admin, None, Utc::now()).await?;
    tracing::info!(refund_id = %refund.id, payment_id, admin = admin_email, amount = refund.amount, revoked = booking.revoked_now, "admin refund");
    Ok(RefundDone {
        refund_id: refund.id,
        amount: Money::new(refund.amount, quote.amount.currency.clone()),
        status: refund.status,
        booking,
    })
}
