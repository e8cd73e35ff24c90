//! Stripe API calls through async-stripe, pointed at `STRIPE_API_BASE` (Stripe itself, or the
//! simulator). Returns our own small types so the rest of the app does not depend on
//! async-stripe's generated ones.
use crate::domain::events::{valid_stripe_id, DisputeFacts, RefundFacts, StripeMode, META_CONTRACT};
use crate::domain::PackTerms;
use std::collections::BTreeMap;
use std::fmt;

use stripe::{IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_client_core::{RequestBuilder, StripeMethod};
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
    /// Stripe did not answer within the client's deadline (`STRIPE_TIMEOUT_SECS`).
    #[error("Stripe did not answer within the deadline")]
    Timeout,
    #[error("{0}")]
    Invalid(String),
}

impl StripeApiError {
    /// Stripe answered that it did not do what was asked (an invalid request, a card error):
    /// unlike a timeout, a lost connection, 429 or a 5xx, which leave it unknown.
    pub fn definitely_refused(&self) -> bool {
        matches!(self, Self::Api { status, .. } if (400..500).contains(status) && *status != 409 && *status != 429)
    }
}

impl From<stripe::StripeError> for StripeApiError {
    fn from(e: stripe::StripeError) -> Self {
        match e {
            stripe::StripeError::Stripe(err, status) => Self::Api {
                status,
                code: err.code.as_ref().map(|c| c.as_str().to_string()),
                message: err.message.clone().unwrap_or_else(|| err.type_.as_str().to_string()),
            },
            stripe::StripeError::Timeout => Self::Timeout,
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

/// How long one call to Stripe may take, connection included, unless `STRIPE_TIMEOUT_SECS` says
/// otherwise. async-stripe sets no deadline of its own, so a Stripe (or a network path) that
/// accepted the connection and then said nothing held a buyer's "Buy revisions" click, and a
/// reconciliation, for as long as the socket lived. Stripe answers in well under a second; ten
/// leave room for a slow day and still tell the buyer within seconds.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl StripeApi {
    pub fn new(secret_key: &str, api_base: &str) -> Result<Self, String> {
        Self::with_timeout(secret_key, api_base, DEFAULT_TIMEOUT)
    }

    /// A client whose every attempt (connecting, sending, and reading the whole answer) ends
    /// after `timeout`: async-stripe offers one deadline per attempt, not a separate connect and
    /// read timeout, and one bound over both is what a waiting buyer needs.
    pub fn with_timeout(secret_key: &str, api_base: &str, timeout: std::time::Duration) -> Result<Self, String> {
        let mode = key_mode(secret_key)?;
        // async-stripe appends `v1/...` to the base: make sure it ends with a slash.
        let base = if api_base.ends_with('/') { api_base.to_string() } else { format!("{api_base}/") };
        let client = stripe::ClientBuilder::new(secret_key)
            .url(base)
            .timeout(timeout)
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

/// Paces calls under Stripe's rate limit (a long reconciliation must not starve the checkout of
/// its share: Stripe allows about 100 requests/s in live mode and 25 in test mode) and counts
/// them, so a run can say how many it made.
#[derive(Debug)]
pub struct Pacer {
    interval: std::time::Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
    calls: std::sync::atomic::AtomicU64,
}

impl Pacer {
    /// At most `per_second` calls a second (0: unpaced).
    pub fn new(per_second: u32) -> Self {
        let interval =
            if per_second == 0 { std::time::Duration::ZERO } else { std::time::Duration::from_secs(1) / per_second };
        Self { interval, next: tokio::sync::Mutex::new(tokio::time::Instant::now()), calls: Default::default() }
    }
    async fn wait(&self) {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.interval.is_zero() {
            return;
        }
        let at = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
    /// API calls made so far (each attempt counts).
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A client that keeps the raw bytes of Stripe's answer: an event fetched by reconciliation is
/// stored exactly as Stripe sent it, like a webhook body.
struct Recorder<'a> {
    inner: &'a stripe::Client,
    answer: std::sync::Mutex<Option<bytes::Bytes>>,
}

impl stripe_client_core::StripeClient for Recorder<'_> {
    type Err = stripe::StripeError;
    async fn execute(&self, req: stripe::CustomizedStripeRequest) -> Result<bytes::Bytes, Self::Err> {
        let bytes = self.inner.execute(req).await?;
        *self.answer.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bytes.clone());
        Ok(bytes)
    }
}

/// One page of a Stripe list.
#[derive(Debug, serde::Deserialize)]
struct Page {
    data: Vec<serde_json::Value>,
    #[serde(default)]
    has_more: bool,
}

impl StripeApi {
    /// Sends a request and returns Stripe's answer as received. Paced when a pacer is given;
    /// a 429 (rate limited) is retried with exponential backoff from 1 s, up to 6 times, a 5xx
    /// or a failed connection up to 3 times.
    /// (Stripe's `Retry-After`, when sent, is not surfaced by async-stripe's client; its own
    /// `Stripe-Should-Retry` is honoured there for idempotent retries.)
    async fn raw(
        &self,
        build: impl Fn() -> RequestBuilder,
        idempotency_key: Option<&str>,
        pacer: Option<&Pacer>,
    ) -> Result<Vec<u8>, StripeApiError> {
        let mut backoff = std::time::Duration::from_secs(1);
        for attempt in 0.. {
            if let Some(p) = pacer {
                p.wait().await;
            }
            let recorder = Recorder { inner: &self.client, answer: Default::default() };
            let mut request = build().customize::<miniserde::json::Value>();
            if let Some(key) = idempotency_key {
                let key = IdempotencyKey::new(key).map_err(|e| StripeApiError::Invalid(e.to_string()))?;
                request = request.request_strategy(RequestStrategy::Idempotent(key));
            }
            match request.send(&recorder).await {
                Ok(_) => {
                    let answer = recorder.answer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                    return Ok(answer.map(|b| b.to_vec()).unwrap_or_default());
                }
                Err(stripe::StripeError::Stripe(_, 429)) if attempt < 6 => {
                    tracing::warn!(?backoff, "Stripe answered 429 (rate limited); backing off");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                // Stripe's own trouble or the network's: worth a few more tries. A GET is safe to
                // repeat, and a POST carries its idempotency key.
                Err(
                    e @ (stripe::StripeError::Stripe(_, 500..=599)
                    | stripe::StripeError::Timeout
                    | stripe::StripeError::ClientError(_)),
                ) if attempt < 3 => {
                    tracing::warn!(error = %e, ?backoff, "Stripe call failed; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns")
    }

    /// Every object of a list endpoint, following `has_more` pages (`query` without paging).
    async fn list_all(
        &self,
        path: &str,
        query: &[(&str, String)],
        pacer: Option<&Pacer>,
    ) -> Result<Vec<serde_json::Value>, StripeApiError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            // Built in a block: the serializer is not Sync and must not live across an await.
            let q = {
                let mut q = form_urlencoded::Serializer::new(String::new());
                for (k, v) in query {
                    q.append_pair(k, v);
                }
                q.append_pair("limit", "100");
                if let Some(a) = &after {
                    q.append_pair("starting_after", a);
                }
                q.finish()
            };
            let bytes = self
                .raw(
                    || {
                        let mut b = RequestBuilder::new(StripeMethod::Get, path);
                        b.query = Some(q.clone());
                        b
                    },
                    None,
                    pacer,
                )
                .await?;
            let page: Page = serde_json::from_slice(&bytes)
                .map_err(|e| StripeApiError::Invalid(format!("Stripe's list answer is not a list: {e}")))?;
            after = page.data.last().and_then(|o| o["id"].as_str()).map(str::to_string);
            all.extend(page.data);
            if !page.has_more || after.is_none() {
                return Ok(all);
            }
        }
    }

    /// Refunds all or part of a payment. The idempotency key makes a retried or double-submitted
    /// refund the same refund; metadata says who asked and why.
    pub async fn create_refund(
        &self,
        payment_intent: &str,
        amount: i64,
        reason: Option<&str>,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> Result<RefundFacts, StripeApiError> {
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("payment_intent", payment_intent);
            form.append_pair("amount", &amount.to_string());
            if let Some(reason) = reason {
                form.append_pair("reason", reason);
            }
            for (k, v) in metadata {
                form.append_pair(&format!("metadata[{k}]"), v);
            }
            form.finish()
        };
        let bytes = self
            .raw(
                || {
                    let mut b = RequestBuilder::new(StripeMethod::Post, "/refunds");
                    b.body = Some(body.clone());
                    b
                },
                Some(idempotency_key),
                None,
            )
            .await?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| StripeApiError::Invalid(format!("refund answer: {e}")))?;
        RefundFacts::from_value(v).map_err(StripeApiError::Invalid)
    }

    /// Every refund of a payment, as Stripe holds them now.
    pub async fn refunds_of(
        &self,
        payment_intent: &str,
        pacer: Option<&Pacer>,
    ) -> Result<Vec<RefundFacts>, StripeApiError> {
        self.list_all("/refunds", &[("payment_intent", payment_intent.to_string())], pacer)
            .await?
            .into_iter()
            .map(|v| RefundFacts::from_value(v).map_err(StripeApiError::Invalid))
            .collect()
    }

    /// Every dispute of a payment, as Stripe holds them now.
    pub async fn disputes_of(
        &self,
        payment_intent: &str,
        pacer: Option<&Pacer>,
    ) -> Result<Vec<DisputeFacts>, StripeApiError> {
        self.list_all("/disputes", &[("payment_intent", payment_intent.to_string())], pacer)
            .await?
            .into_iter()
            .map(|v| DisputeFacts::from_value(v).map_err(StripeApiError::Invalid))
            .collect()
    }

    /// PaymentIntents created in [from, to] (unix seconds), each with its latest charge expanded
    /// (refunded amount, disputed flag), so one list call covers a hundred payments.
    pub async fn payments_created_between(
        &self,
        from: i64,
        to: i64,
        pacer: Option<&Pacer>,
    ) -> Result<Vec<PaymentSnapshot>, StripeApiError> {
        let query = [
            ("created[gte]", from.to_string()),
            ("created[lte]", to.to_string()),
            ("expand[]", "data.latest_charge".to_string()),
        ];
        self.list_all("/payment_intents", &query, pacer)
            .await?
            .into_iter()
            .map(|v| PaymentSnapshot::from_value(&v).map_err(StripeApiError::Invalid))
            .collect()
    }

    /// One PaymentIntent with its latest charge; None when Stripe does not know it.
    pub async fn payment_snapshot(
        &self,
        id: &str,
        pacer: Option<&Pacer>,
    ) -> Result<Option<PaymentSnapshot>, StripeApiError> {
        let path = format!("/payment_intents/{id}");
        match self
            .raw(
                || {
                    let mut b = RequestBuilder::new(StripeMethod::Get, path.clone());
                    b.query = Some("expand[]=latest_charge".into());
                    b
                },
                None,
                pacer,
            )
            .await
        {
            Ok(bytes) => {
                let v: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| StripeApiError::Invalid(format!("PaymentIntent answer: {e}")))?;
                PaymentSnapshot::from_value(&v).map(Some).map_err(StripeApiError::Invalid)
            }
            Err(StripeApiError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Ids of the events Stripe reports it could not deliver (`delivery_success=false`),
    /// created in [from, to].
    pub async fn undelivered_event_ids(
        &self,
        from: i64,
        to: i64,
        pacer: Option<&Pacer>,
    ) -> Result<Vec<String>, StripeApiError> {
        let query = [
            ("delivery_success", "false".to_string()),
            ("created[gte]", from.to_string()),
            ("created[lte]", to.to_string()),
        ];
        Ok(self
            .list_all("/events", &query, pacer)
            .await?
            .iter()
            .filter_map(|e| e["id"].as_str().filter(|id| valid_stripe_id(id, "evt_")).map(str::to_string))
            .collect())
    }

    /// One event as Stripe's raw JSON: stored as evidence byte for byte.
    pub async fn event_raw(&self, id: &str, pacer: Option<&Pacer>) -> Result<Vec<u8>, StripeApiError> {
        if !valid_stripe_id(id, "evt_") {
            return Err(StripeApiError::Invalid(format!("`{id}` is not an event id")));
        }
        let path = format!("/events/{id}");
        self.raw(|| RequestBuilder::new(StripeMethod::Get, path.clone()), None, pacer).await
    }

    /// Refunds created in [from, to], whatever the age of their payment.
    pub async fn refunds_created_between(
        &self,
        from: i64,
        to: i64,
        pacer: Option<&Pacer>,
    ) -> Result<Vec<RefundFacts>, StripeApiError> {
        let query = [("created[gte]", from.to_string()), ("created[lte]", to.to_string())];
        self.list_all("/refunds", &query, pacer)
            .await?
            .into_iter()
            .map(|v| RefundFacts::from_value(v).map_err(StripeApiError::Invalid))
            .collect()
    }

    /// Disputes created in [from, to], whatever the age of their payment.
    pub async fn disputes_created_between(
        &self,
        from: i64,
        to: i64,
        pacer: Option<&Pacer>,
    ) -> Result<Vec<DisputeFacts>, StripeApiError> {
        let query = [("created[gte]", from.to_string()), ("created[lte]", to.to_string())];
        self.list_all("/disputes", &query, pacer)
            .await?
            .into_iter()
            .map(|v| DisputeFacts::from_value(v).map_err(StripeApiError::Invalid))
            .collect()
    }
}

/// A PaymentIntent and its latest charge, as reconciliation compares them with our books.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaymentSnapshot {
    pub id: String,
    pub amount: i64,
    pub amount_received: i64,
    pub currency: String,
    pub status: String,
    pub livemode: bool,
    pub created: i64,
    pub metadata: BTreeMap<String, String>,
    pub charge_id: Option<String>,
    /// Σ refunded on the charge (Stripe's cumulative `amount_refunded`).
    pub amount_refunded: i64,
    pub disputed: bool,
    /// The charge's receipt page at Stripe, when Stripe gives one (a receipt email links it).
    pub receipt_url: Option<String>,
}

impl PaymentSnapshot {
    fn from_value(v: &serde_json::Value) -> Result<Self, String> {
        let id = v["id"].as_str().filter(|id| valid_stripe_id(id, "pi_")).ok_or("a PaymentIntent without an id")?;
        let int = |k: &str| v[k].as_i64().unwrap_or_default();
        let charge = &v["latest_charge"];
        Ok(Self {
            id: id.to_string(),
            amount: int("amount"),
            amount_received: int("amount_received"),
            currency: v["currency"].as_str().unwrap_or_default().to_ascii_lowercase(),
            status: v["status"].as_str().unwrap_or_default().to_string(),
            livemode: v["livemode"].as_bool().unwrap_or_default(),
            created: int("created"),
            metadata: v["metadata"]
                .as_object()
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                .unwrap_or_default(),
            charge_id: charge["id"].as_str().or(charge.as_str()).map(str::to_string),
            amount_refunded: charge["amount_refunded"].as_i64().unwrap_or_default(),
            disputed: charge["disputed"].as_bool().unwrap_or_default(),
            receipt_url: charge["receipt_url"]
                .as_str()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .map(str::to_string),
        })
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
