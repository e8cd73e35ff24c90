//! The return page's confirmation: after the browser's confirm, the server asks Stripe itself
//! (with the secret key, never trusting the browser's word) whether the payment succeeded, and
//! if so credits it through the same idempotent fulfilment the webhook uses. Whichever of the
//! two arrives first credits; the other finds the UNIQUE payment_id taken.
use super::fulfil::{fulfil, Evidence, Fulfilled};
use super::Services;
use crate::domain::events::{credit_target, route, valid_stripe_id, Action, PaymentIntentFacts, StripeEvent};
use crate::domain::RevisionBalance;
use crate::store::{contracts, ledger, purchases, StoreError};
use crate::stripe::StripeApiError;
use chrono::Utc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentState {
    /// The pack is on the contract (now, or it already was).
    Credited,
    /// Stripe has not finished (processing, or authentication still open).
    Pending { status: String },
    /// The payment did not go through; nothing was charged.
    Failed { message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub contract_id: i64,
    pub state: PaymentState,
    pub balance: RevisionBalance,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// No such purchase, or not this advertiser's: one answer, so ids leak nothing.
    #[error("no such payment")]
    NotFound,
    #[error("payments are not configured")]
    PaymentsUnavailable,
    #[error(transparent)]
    Stripe(#[from] StripeApiError),
    /// Stripe says succeeded, but the payment is not one we may credit (wrong amount, wrong
    /// mode, metadata naming another contract). Logged loudly; never credited.
    #[error("this payment cannot be credited: {0}")]
    Rejected(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger could not answer and this user's budget of Stripe calls is spent: the whole
    /// seconds until the next call may be made.
    #[error("too many Stripe calls; try again in {0} s")]
    SlowDown(u64),
}

pub async fn confirm_purchase(
    svc: &Services,
    advertiser_id: i64,
    payment_intent_id: &str,
) -> Result<Confirmation, ConfirmError> {
    if !valid_stripe_id(payment_intent_id, "pi_") {
        return Err(ConfirmError::NotFound);
    }
    let purchase = purchases::find(&svc.db, payment_intent_id).await?.ok_or(ConfirmError::NotFound)?;
    let contract = contracts::find(&svc.db, purchase.contract_id).await?.ok_or(ConfirmError::NotFound)?;
    if contract.advertiser_id != advertiser_id {
        return Err(ConfirmError::NotFound);
    }
    // Already credited (usually by the webhook): no need to ask Stripe.
    if ledger::credit_for_payment(&svc.db, payment_intent_id).await?.is_some() {
        return Ok(Confirmation {
            contract_id: contract.id,
            state: PaymentState::Credited,
            balance: current_balance(svc, contract.id).await?,
        });
    }
    let stripe = svc.stripe.as_ref().ok_or(ConfirmError::PaymentsUnavailable)?;
    // Only a call to Stripe spends the budget: the pending modal's polls answered from the
    // ledger above cost Stripe nothing, and spending on them left no budget for the next
    // purchase.
    svc.stripe_call_allowed(advertiser_id).map_err(ConfirmError::SlowDown)?;
    let pi = stripe.retrieve(payment_intent_id).await?;
    let state = match pi.status.as_str() {
        "succeeded" => {
            // The same routing rules as a webhook: mode, metadata, amount and currency.
            let facts = PaymentIntentFacts {
                id: pi.id.clone(),
                amount: pi.amount,
                amount_received: Some(pi.amount_received),
                currency: pi.currency.clone(),
                status: pi.status.clone(),
                metadata: pi.metadata.clone(),
            };
            let event = StripeEvent::succeeded_as_read("confirm", facts, pi.livemode, pi.created);
            // Checked against the terms it was bought at, not today's.
            let terms = purchase.terms(svc.terms.base_revisions).map_err(ConfirmError::Rejected)?;
            match route(&event, svc.mode, &terms) {
                Action::Credit(credit) => {
                    if let Err(mismatch) = credit_target(Some(purchase.contract_id), credit.contract_id) {
                        return Err(ConfirmError::Rejected(mismatch.to_string()));
                    }
                    match fulfil(&svc.db, &credit, Evidence::Confirmed, Utc::now()).await? {
                        Fulfilled::Credited { .. } => {
                            super::stats::Stats::inc(&svc.stats.credited_return_page);
                            PaymentState::Credited
                        }
                        Fulfilled::AlreadyCredited { .. } => PaymentState::Credited,
                        other => return Err(ConfirmError::Rejected(format!("fulfilment answered {other:?}"))),
                    }
                }
                Action::Ignore { reason } | Action::DeadLetter { reason } => {
                    return Err(ConfirmError::Rejected(reason))
                }
                other => return Err(ConfirmError::Rejected(format!("unexpected routing {other:?}"))),
            }
        }
        "requires_payment_method" | "canceled" => PaymentState::Failed {
            message: "The payment did not go through and nothing was charged. Try again with another card.".into(),
        },
        status => PaymentState::Pending { status: status.to_string() },
    };
    Ok(Confirmation { contract_id: contract.id, state, balance: current_balance(svc, contract.id).await? })
}

async fn current_balance(svc: &Services, contract_id: i64) -> Result<RevisionBalance, ConfirmError> {
    ledger::balance(&svc.db, contract_id).await?.ok_or(ConfirmError::NotFound)
}
