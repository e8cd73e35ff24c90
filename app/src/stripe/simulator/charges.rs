//! Charges: the money movement behind a succeeded PaymentIntent (retrieve, list). Refunds and
//! disputes change them. Rendered as API version 2022-11-15 and later do: no `refunds` list on
//! the charge (list refunds with `charge=` instead).
use super::cards::{AfterSuccess, Card};
use super::http::{authorize, ok, ApiError, ApiResult, Params};
use super::payment_intents::PaymentIntent;
use super::state::{object, SimState};
use super::Simulator;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::PoisonError;

#[derive(Debug, Clone, Serialize)]
pub(super) struct Charge {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub amount_captured: i64,
    /// Over refunds that have not failed.
    pub amount_refunded: i64,
    pub balance_transaction: Option<String>,
    pub billing_details: BillingDetails,
    pub captured: bool,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub description: Option<String>,
    pub disputed: bool,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub fraud_details: BTreeMap<String, String>,
    pub livemode: bool,
    pub metadata: BTreeMap<String, String>,
    pub outcome: Outcome,
    pub paid: bool,
    pub payment_intent: String,
    pub payment_method: Option<String>,
    pub payment_method_details: PaymentMethodDetails,
    pub receipt_url: Option<String>,
    /// Fully refunded.
    pub refunded: bool,
    pub status: &'static str,
    /// What the card does later (a refund that fails, say).
    #[serde(skip)]
    pub after_success: AfterSuccess,
    /// The dispute on this charge, if any (Stripe allows one).
    #[serde(skip)]
    pub dispute: Option<String>,
}
object!(Charge);

#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct BillingDetails {
    address: Option<String>,
    email: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    tax_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Outcome {
    network_status: &'static str,
    reason: Option<String>,
    risk_level: &'static str,
    seller_message: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct PaymentMethodDetails {
    #[serde(rename = "type")]
    kind: &'static str,
    card: CardDetails,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct CardDetails {
    brand: &'static str,
    country: &'static str,
    exp_month: i64,
    exp_year: i64,
    funding: &'static str,
    last4: String,
    network: &'static str,
}

impl Charge {
    /// The charge of a PaymentIntent that has just succeeded.
    pub fn for_payment(pi: &PaymentIntent, id: String, card: &Card) -> Self {
        let brand = if card.last4 == "4444" { "mastercard" } else { "visa" };
        Self {
            id,
            object: "charge",
            amount: pi.amount,
            amount_captured: pi.amount,
            amount_refunded: 0,
            balance_transaction: None,
            billing_details: BillingDetails::default(),
            captured: true,
            created: super::http::now(),
            currency: pi.currency.clone(),
            customer: None,
            description: pi.description.clone(),
            disputed: false,
            failure_code: None,
            failure_message: None,
            fraud_details: BTreeMap::new(),
            livemode: false,
            metadata: pi.metadata.clone(),
            outcome: Outcome {
                network_status: "approved_by_network",
                reason: None,
                risk_level: "normal",
                seller_message: "Payment complete.",
                kind: "authorized",
            },
            paid: true,
            payment_intent: pi.id.clone(),
            payment_method: pi.payment_method.clone(),
            payment_method_details: PaymentMethodDetails {
                kind: "card",
                card: CardDetails {
                    brand,
                    country: "US",
                    exp_month: 12,
                    exp_year: chrono::Datelike::year(&chrono::Utc::now()) as i64 + 3,
                    funding: "credit",
                    last4: card.last4.clone(),
                    network: brand,
                },
            },
            receipt_url: None,
            refunded: false,
            status: "succeeded",
            after_success: card.after_success,
            dispute: None,
        }
    }

    /// What may still be refunded.
    pub fn refundable(&self) -> i64 {
        self.amount_captured - self.amount_refunded
    }

    /// Counts `amount` as refunded (negative: a refund that failed gives it back).
    pub fn add_refunded(&mut self, amount: i64) {
        self.amount_refunded = (self.amount_refunded + amount).clamp(0, self.amount_captured);
        self.refunded = self.amount_refunded == self.amount_captured;
    }
}

pub(super) fn find<'a>(state: &'a SimState, id: &str, param: &str) -> Result<&'a Charge, ApiError> {
    state.charges.get(id).ok_or_else(|| ApiError::no_such("charge", id, param))
}

pub(super) fn routes() -> Router<Simulator> {
    Router::new().route("/v1/charges", get(list)).route("/v1/charges/{id}", get(retrieve))
}

async fn retrieve(State(sim): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    authorize(&headers)?;
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    ok(find(&state, &id, "id")?)
}

/// `GET /v1/charges`: filters `payment_intent`, `created`; newest first, paginated.
async fn list(State(sim): State<Simulator>, headers: HeaderMap, RawQuery(query): RawQuery) -> ApiResult {
    authorize(&headers)?;
    let q = Params::query(query);
    let (page, created) = (q.page()?, q.created("created")?);
    let payment_intent = q.string("payment_intent")?;
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    let matching: Vec<&Charge> = state
        .charges
        .newest_first()
        .filter(|c| payment_intent.is_none_or(|pi| c.payment_intent == pi) && created.contains(c.created))
        .collect();
    page.render(&matching, "charge", "/v1/charges", |c| serde_json::to_value(c).unwrap_or_default())
}
