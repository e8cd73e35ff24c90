//! Starting a purchase: the server creates the PaymentIntent (never the browser), after checking
//! that the contract belongs to the signed-in advertiser, and records it before answering.
use super::Services;
use crate::store::purchases::{self, Purchase};
use crate::store::{contracts, StoreError};
use crate::stripe::StripeApiError;
use chrono::Utc;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PurchaseStarted {
    pub payment_intent_id: String,
    /// Handed to Stripe.js to confirm the payment in the browser.
    pub client_secret: String,
    pub amount: i64,
    pub currency: String,
    pub revisions: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    /// No such contract, or not this advertiser's: the same answer, so ids leak nothing.
    #[error("no such contract")]
    NotFound,
    #[error("payments are not configured")]
    PaymentsUnavailable,
    #[error("the payment could not be started: {0}")]
    Stripe(#[from] StripeApiError),
    #[error("Stripe returned an unusable PaymentIntent: {0}")]
    UnexpectedReply(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn start_purchase(
    svc: &Services,
    advertiser_id: i64,
    contract_id: i64,
) -> Result<PurchaseStarted, PurchaseError> {
    let contract = contracts::find(&svc.db, contract_id).await?.ok_or(PurchaseError::NotFound)?;
    if contract.advertiser_id != advertiser_id {
        return Err(PurchaseError::NotFound);
    }
    let stripe = svc.stripe.as_ref().ok_or(PurchaseError::PaymentsUnavailable)?;
    // One key per purchase attempt: async-stripe resends it if it retries, and Stripe replays
    // the first answer instead of creating a second PaymentIntent.
    let idempotency_key = format!("revision-pack-{contract_id}-{}", random_token());
    let pi = stripe.create_pack_payment(contract_id, &svc.terms, &idempotency_key).await?;
    let client_secret =
        pi.client_secret.clone().ok_or_else(|| PurchaseError::UnexpectedReply("no client_secret".into()))?;
    if pi.amount != svc.terms.price.minor {
        return Err(PurchaseError::UnexpectedReply(format!(
            "amount {} instead of {}",
            pi.amount, svc.terms.price.minor
        )));
    }
    let now = Utc::now();
    purchases::record(
        &svc.db,
        &Purchase {
            payment_intent_id: pi.id.clone(),
            contract_id,
            created_by: advertiser_id,
            amount: pi.amount,
            currency: pi.currency.clone(),
            revisions: svc.terms.revisions_per_pack,
            status: pi.status.clone(),
            idempotency_key,
            livemode: pi.livemode,
            created_at: now,
            updated_at: now,
        },
    )
    .await?;
    super::stats::Stats::inc(&svc.stats.purchases_started);
    Ok(PurchaseStarted {
        payment_intent_id: pi.id,
        client_secret,
        amount: pi.amount,
        currency: pi.currency,
        revisions: svc.terms.revisions_per_pack,
    })
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::thread_rng().gen();
    hex::encode(bytes)
}
