//! Stripe API calls through async-stripe, pointed at `STRIPE_API_BASE` (Stripe itself, or the
//! simulator). Returns our own small types so the rest of the app does not depend on
//! async-stripe's generated ones.
use crate::domain::events::{StripeMode, META_CONTRACT};
use crate::domain::PackTerms;
use std::collections::BTreeMap;
use std::fmt;
use stripe::{IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_core::payment_intent::{
    CreatePaymentIntent, CreatePaymentIntentAutomaticPaymentMethods, ListPaymentIntent, RetrievePaymentIntent,
};
use stripe_types::{Currency as StripeCurrency, RangeBoundsTs, RangeQueryTs};

#[derive(Clone)]
pub struct StripeApi {
    client: stripe::Client,
    mode: StripeMode,
}

impl fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StripeApi({} mode)", self.mode.as_str())
    }
}

/// A PaymentIntent as far as we use it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaymentIntentInfo {
    pub id: String,
    pub amount: i64,
    pub amount_received: i64,
    pub currency: String,
    pub status: String,
    pub metadata: BTreeMap<String, String>,
    pub livemode: bool,
    pub client_secret: Option<String>,
    pub created: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StripeApiError {
    /// Stripe answered with an error object (a card error, an invalid request, 429, 5xx...).
    #[error("Stripe answered {status}: {message}")]
    Api { status: u16, code: Option<String>, message: String },
    /// Stripe could not be reached or its answer could not be read.
    #[error("Stripe could not be reached: {0}")]
    Transport(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<stripe::StripeError> for StripeApiError {
    fn from(e: stripe::StripeError) -> Self {
        match e {
            stripe::StripeError::Stripe(err, status) => Self::Api {
                status,
                code: err.code.as_ref().map(|c| c.as_str().to_string()),
                message: err.message.clone().unwrap_or_else(|| err.type_.as_str().to_string()),
            },
            other => Self::Transport(other.to_string()),
        }
    }
}

/// The mode a secret key works in: `sk_test_`/`rk_test_` or `sk_live_`/`rk_live_`.
pub fn key_mode(secret_key: &str) -> Result<StripeMode, String> {
    match secret_key.get(..8) {
        Some("sk_test_") | Some("rk_test_") => Ok(StripeMode::Test),
        Some("sk_live_") | Some("rk_live_") => Ok(StripeMode::Live),
        _ => Err("STRIPE_SECRET_KEY must start with sk_test_, sk_live_, rk_test_ or rk_live_".into()),
    }
}

impl StripeApi {
    pub fn new(secret_key: &str, api_base: &str) -> Result<Self, String> {
        let mode = key_mode(secret_key)?;
        // async-stripe appends `v1/...` to the base: make sure it ends with a slash.
        let base = if api_base.ends_with('/') { api_base.to_string() } else { format!("{api_base}/") };
        let client = stripe::ClientBuilder::new(secret_key)
            .url(base)
            .build()
            .map_err(|e| format!("cannot build the Stripe client: {e}"))?;
        Ok(Self { client, mode })
    }

    pub fn mode(&self) -> StripeMode {
        self.mode
    }

    /// Creates the PaymentIntent for one revision pack. The idempotency key makes a retried
    /// request (a timeout, a double submit) return the first PaymentIntent instead of a second.
    pub async fn create_pack_payment(
        &self,
        contract_id: i64,
        terms: &PackTerms,
        idempotency_key: &str,
    ) -> Result<PaymentIntentInfo, StripeApiError> {
        let key = IdempotencyKey::new(idempotency_key).map_err(|e| StripeApiError::Invalid(e.to_string()))?;
        let currency: StripeCurrency = terms
            .price
            .currency
            .as_str()
            .parse()
            .map_err(|_| StripeApiError::Invalid(format!("currency {} unknown to Stripe", terms.price.currency)))?;
        let pi = CreatePaymentIntent::new(terms.price.minor, currency)
            .metadata([(META_CONTRACT.to_string(), contract_id.to_string())])
            .automatic_payment_methods(CreatePaymentIntentAutomaticPaymentMethods::new(true))
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&self.client)
            .await?;
        Ok(info(pi))
    }

    pub async fn retrieve(&self, payment_intent_id: &str) -> Result<PaymentIntentInfo, StripeApiError> {
        Ok(info(RetrievePaymentIntent::new(payment_intent_id).send(&self.client).await?))
    }

    /// Every PaymentIntent created in [from, to] (unix seconds), following `has_more` pages.
    pub async fn list_created_between(&self, from: i64, to: i64) -> Result<Vec<PaymentIntentInfo>, StripeApiError> {
        use futures_util::TryStreamExt;
        let created = RangeQueryTs::Bounds(RangeBoundsTs { gte: Some(from), lte: Some(to), ..Default::default() });
        let all: Vec<stripe_shared::PaymentIntent> =
            ListPaymentIntent::new().created(created).limit(100).paginate().stream(&self.client).try_collect().await?;
        Ok(all.into_iter().map(info).collect())
    }
}

fn info(pi: stripe_shared::PaymentIntent) -> PaymentIntentInfo {
    PaymentIntentInfo {
        id: pi.id.as_str().to_string(),
        amount: pi.amount,
        amount_received: pi.amount_received,
        currency: pi.currency.to_string(),
        status: pi.status.as_str().to_string(),
        metadata: pi.metadata.into_iter().collect(),
        livemode: pi.livemode,
        client_secret: pi.client_secret,
        created: pi.created,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_prefix_decides_the_mode() {
        assert_eq!(key_mode("sk_test_abc").unwrap(), StripeMode::Test);
        assert_eq!(key_mode("rk_live_abc").unwrap(), StripeMode::Live);
        assert!(key_mode("pk_test_abc").is_err());
        assert!(key_mode("").is_err());
    }
}
