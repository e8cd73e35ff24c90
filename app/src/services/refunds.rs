//! An admin refunds a pack, fully or by a number of revisions. The confirmation step `offer`s
//! the refund: the server plans the amount (domain rules) and keeps the confirmation with the
//! payment's moment (what was refunded, disputed and revoked then, `payment_moment`). The submit
//! consumes that confirmation (once: a reload, a second tab or a confirmation of a payment that
//! changed since is refused), asks Stripe for the Refund with an idempotency key made from the
//! confirmation (a retry is the same refund) and metadata saying who and why, then books it
//! through the same function the webhook uses: whichever of the two comes first books it, the
//! other finds it booked.
use super::adjustments::{self, refund_record, META_REFUNDED_BY, META_REFUND_NOTE};
use super::Services;
use crate::domain::adjustments::{
    payment_moment, plan_refund, revocation, DisputeStatus, PaidPack, RefundAsk, RefundFact, RefundPlan, RefundStatus,
    Revocation,
};
use crate::domain::{Currency, Money};
use crate::store::adjustments::{self as store, BookedBy, Booking, Fact};
use crate::store::refund_quotes::{self, Consumed, RefundQuoteRow};
use crate::store::{ledger, StoreError};
use crate::stripe::StripeApiError;
use chrono::Utc;

/// What an admin reads when a confirmation no longer describes the payment.
pub const CHANGED: &str = "this payment changed since you confirmed; review it again";
/// Another confirmation of this payment's moment was sent to Stripe, whose answer was lost, and
/// Stripe cannot be asked now whether that refund was made: refunding again could make two.
pub const WAITING: &str = "an earlier confirmation of this payment is waiting for Stripe's answer; \
                           try again in a minute, or submit that confirmation again";

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

/// The payment's pack, known refunds and revocation, and its moment's fingerprint.
async fn state(
    svc: &Services,
    payment_id: &str,
) -> Result<(ledger::LedgerCredit, PaidPack, Vec<RefundFact>, Revocation, String), RefundError> {
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
    let moment = payment_moment(&pack, &refunds, &disputes).fingerprint();
    Ok((credit, pack, refunds, r, moment))
}

/// Plans a refund without making it.
pub async fn quote(svc: &Services, payment_id: &str, ask: RefundAsk) -> Result<RefundQuote, RefundError> {
    Ok(quote_at(svc, payment_id, ask).await?.0)
}

/// The quote and the payment's moment it was made at.
async fn quote_at(svc: &Services, payment_id: &str, ask: RefundAsk) -> Result<(RefundQuote, String), RefundError> {
    let (credit, pack, refunds, r, moment) = state(svc, payment_id).await?;
    let RefundPlan { amount, revisions } = plan_refund(&pack, &refunds, &r, ask).map_err(RefundError::Refused)?;
    let currency = Currency::parse(&credit.currency).map_err(RefundError::Refused)?;
    let quote = RefundQuote {
        payment_id: credit.payment_id,
        contract_id: credit.contract_id,
        amount: Money::new(amount, currency),
        revisions,
    };
    Ok((quote, moment))
}

/// A refund offered for confirmation: the quote and the one-time token its submit must bring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOffer {
    pub quote: RefundQuote,
    pub token: String,
}

/// What the confirmation page shows: plans the refund and keeps the confirmation, bound to the
/// payment's moment, until a submit consumes it.
pub async fn offer(
    svc: &Services,
    payment_id: &str,
    ask: RefundAsk,
    admin_email: &str,
) -> Result<RefundOffer, RefundError> {
    use rand::Rng;
    let (quote, moment) = quote_at(svc, payment_id, ask).await?;
    let token: String =
        rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(32).map(char::from).collect();
    let row = RefundQuoteRow {
        token: token.clone(),
        payment_id: quote.payment_id.clone(),
        contract_id: quote.contract_id,
        ask: ask_word(ask),
        amount: quote.amount.minor,
        moment,
        quoted_by: admin_email.to_string(),
    };
    refund_quotes::insert(&svc.db, &row, Utc::now()).await?;
    Ok(RefundOffer { quote, token })
}

fn ask_word(ask: RefundAsk) -> String {
    match ask {
        RefundAsk::Full => "all".into(),
        RefundAsk::Revisions(n) => n.to_string(),
    }
}

fn parse_ask(word: &str) -> Option<RefundAsk> {
    match word {
        "all" => Some(RefundAsk::Full),
        n => n.parse().ok().map(RefundAsk::Revisions),
    }
}

/// An admin's refund, as confirmed.
#[derive(Debug, Clone)]
pub struct RefundOrder<'a> {
    pub admin_email: &'a str,
    pub payment_id: &'a str,
    /// One of Stripe's `REASONS`.
    pub reason: &'a str,
    pub note: &'a str,
    /// The confirmation's one-time token (`offer`): what is refunded is what it quoted, once.
    pub token: &'a str,
}

/// Makes the refund a confirmation quoted, if the payment is still as it was then.
pub async fn refund_pack(svc: &Services, order: &RefundOrder<'_>) -> Result<RefundDone, RefundError> {
    let RefundOrder { admin_email, payment_id, reason, note, token } = *order;
    if !REASONS.contains(&reason) {
        return Err(RefundError::Refused(format!("the reason must be one of {}", REASONS.join(", "))));
    }
    let note = note.trim();
    if note.chars().count() > 500 {
        return Err(RefundError::Refused("the note is longer than 500 characters".into()));
    }
    let stale = || RefundError::Refused("this confirmation is not valid any more; start the refund again".into());
    if token.len() < 16 || token.len() > 64 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(stale());
    }
    let (_, _, _, _, moment) = state(svc, payment_id).await?;
    let mut consumed = refund_quotes::consume(&svc.db, token, payment_id, &moment, Utc::now()).await?;
    if let Consumed::Claimed { unsettled: Some(other) } = &consumed {
        // Another confirmation of this moment is waiting on a lost Stripe answer. Learn what
        // Stripe holds now: its refund, if made, is booked (the moment moves and this one is
        // refused as changed); if Stripe holds none, that claim is freed and this one may go.
        if !book_what_stripe_holds(svc, payment_id).await {
            return Err(RefundError::Refused(WAITING.into()));
        }
        refund_quotes::release(&svc.db, other).await?;
        let (_, _, _, _, moment) = state(svc, payment_id).await?;
        consumed = refund_quotes::consume(&svc.db, token, payment_id, &moment, Utc::now()).await?;
    }
    let confirmed = match consumed {
        Consumed::Now(q) => q,
        Consumed::Unknown => return Err(stale()),
        Consumed::Already => {
            return Err(RefundError::Refused(
                "this confirmation was already used (its refund is made once); review the payment for another".into(),
            ))
        }
        Consumed::Changed | Consumed::Claimed { unsettled: None } => return Err(RefundError::Refused(CHANGED.into())),
        Consumed::Claimed { unsettled: Some(_) } => return Err(RefundError::Refused(WAITING.into())),
    };
    match make_refund(svc, &confirmed, admin_email, reason, note).await {
        Ok(done) => Ok(done),
        // Stripe refused or could not be reached: the confirmation can be submitted again, with
        // the same idempotency key. When Stripe's answer was lost (a timeout, a 5xx) the refund
        // may exist all the same: its refunds are asked for and booked first, so the payment's
        // moment moves and no other confirmation of the old moment can make a second one.
        // Booking failures keep the confirmation consumed: the refund exists.
        //
        // If even that fails, the refund may exist unseen: the confirmation is given back with
        // its claim kept (`reopen`), so it alone (same key) can be submitted again, and another
        // confirmation of this moment first asks Stripe again (above) instead of refunding twice.
        Err(e @ (RefundError::Stripe(_) | RefundError::PaymentsUnavailable)) => {
            let lost = matches!(&e, RefundError::Stripe(s) if !s.definitely_refused());
            if !lost || book_what_stripe_holds(svc, payment_id).await {
                refund_quotes::release(&svc.db, token).await?;
            } else {
                refund_quotes::reopen(&svc.db, token).await?;
            }
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Books the payment's refunds as Stripe lists them now. True when every one Stripe holds is
/// booked, so our moment of the payment is Stripe's; false (logged) when the listing or a booking
/// failed: a refund may then exist that we have not booked, and the webhooks or the next
/// reconciliation will book it.
async fn book_what_stripe_holds(svc: &Services, payment_id: &str) -> bool {
    let Some(stripe) = svc.stripe.as_ref() else { return false };
    let live = svc.mode == crate::domain::events::StripeMode::Live;
    match stripe.refunds_of(payment_id, None).await {
        Ok(refunds) => {
            let mut all_booked = true;
            for r in refunds.iter().filter_map(|r| refund_record(r, live)).filter(|r| r.payment_id == payment_id) {
                if let Err(e) = adjustments::book(&svc.db, &Fact::Refund(r), BookedBy::Admin, None, Utc::now()).await {
                    tracing::error!(payment_id, error = %e, "booking a refund Stripe lists failed");
                    all_booked = false;
                }
            }
            all_booked
        }
        Err(e) => {
            tracing::warn!(payment_id, error = %e, "listing the refunds of a payment after a lost answer failed");
            false
        }
    }
}

async fn make_refund(
    svc: &Services,
    confirmed: &RefundQuoteRow,
    admin_email: &str,
    reason: &str,
    note: &str,
) -> Result<RefundDone, RefundError> {
    let payment_id = confirmed.payment_id.as_str();
    let ask = parse_ask(&confirmed.ask)
        .ok_or_else(|| RefundError::Refused(format!("the confirmation asks for `{}`", confirmed.ask)))?;
    // The moment is unchanged, so the plan is the one confirmed; said loudly if it were not.
    let quote = quote(svc, payment_id, ask).await?;
    if quote.amount.minor != confirmed.amount {
        return Err(RefundError::Refused(CHANGED.into()));
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
            &format!("admin-refund-{payment_id}-{}", confirmed.token),
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
