//! PaymentIntents: create, retrieve, list (with `latest_charge` expandable), confirm with
//! Stripe's test cards (3-D Secure included), cancel; and how a payment settles into a charge.
use super::cards::{card_outcome, test_payment_method_number, AfterSuccess, Card, CardOutcome};
use super::charges::Charge;
use super::http::{authorize, bearer, new_id, now, ok, random_token, ApiError, ApiResult, Params, RequestInfo};
use super::state::{object, SimState};
use super::Simulator;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::time::Duration;

/// Stripe's minimum charge in USD-like currencies is 50 minor units; the maximum is 8 digits.
const MIN_AMOUNT: i64 = 50;
const MAX_AMOUNT: i64 = 99_999_999;

/// How long after a 4000 0000 0000 0259 payment succeeds its dispute is opened.
const DISPUTE_AFTER: Duration = Duration::from_millis(1000);

#[derive(Debug, Clone, Serialize)]
pub(super) struct PaymentIntent {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub amount_capturable: i64,
    pub amount_details: AmountDetails,
    pub amount_received: i64,
    pub application: Option<String>,
    pub automatic_payment_methods: Option<AutomaticPaymentMethods>,
    pub canceled_at: Option<i64>,
    pub cancellation_reason: Option<String>,
    pub capture_method: &'static str,
    pub client_secret: String,
    pub confirmation_method: &'static str,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub description: Option<String>,
    pub last_payment_error: Option<PaymentError>,
    /// The charge's id (the Charge itself when expanded).
    pub latest_charge: Option<String>,
    pub livemode: bool,
    pub metadata: BTreeMap<String, String>,
    pub next_action: Option<NextAction>,
    pub payment_method: Option<String>,
    pub payment_method_types: Vec<&'static str>,
    pub status: Status,
    /// The card it was last confirmed with.
    #[serde(skip)]
    pub card: Card,
}
object!(PaymentIntent);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Status {
    RequiresPaymentMethod,
    RequiresAction,
    Processing,
    Succeeded,
    Canceled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct AmountDetails {
    tip: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct AutomaticPaymentMethods {
    allow_redirects: &'static str,
    enabled: bool,
}

/// Stripe's error object as `last_payment_error` carries it.
#[derive(Debug, Clone, Serialize)]
pub(super) struct PaymentError {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    decline_code: Option<&'static str>,
    message: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct NextAction {
    #[serde(rename = "type")]
    kind: &'static str,
    use_stripe_sdk: UseStripeSdk,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct UseStripeSdk {
    #[serde(rename = "type")]
    kind: &'static str,
    stripe_js: String,
}

pub(super) fn find<'a>(state: &'a SimState, id: &str, param: &str) -> Result<&'a PaymentIntent, ApiError> {
    state.intents.get(id).ok_or_else(|| ApiError::no_such("payment_intent", id, param))
}

fn find_mut<'a>(state: &'a mut SimState, id: &str) -> Result<&'a mut PaymentIntent, ApiError> {
    state.intents.get_mut(id).ok_or_else(|| ApiError::no_such("payment_intent", id, "intent"))
}

fn unexpected_state(pi: &PaymentIntent, action: &str) -> ApiError {
    ApiError::invalid(
        Some("payment_intent_unexpected_state"),
        format!("You cannot {action} this PaymentIntent because it has a status of {}.", pi.status.as_str()),
        None,
    )
}

/// The PaymentIntent as the API renders it, with `latest_charge` replaced by the Charge when
/// it is expanded.
pub(super) fn render(state: &SimState, pi: &PaymentIntent, expand_charge: bool) -> Value {
    let mut value = serde_json::to_value(pi).unwrap_or_default();
    if expand_charge {
        if let Some(charge) = pi.latest_charge.as_deref().and_then(|id| state.charges.get(id)) {
            value["latest_charge"] = serde_json::to_value(charge).unwrap_or_default();
        }
    }
    value
}

pub(super) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/v1/payment_intents", post(create).get(list))
        .route("/v1/payment_intents/{id}", get(retrieve))
        .route("/v1/payment_intents/{id}/confirm", post(confirm))
        .route("/v1/payment_intents/{id}/cancel", post(cancel))
}

async fn create(
    State(sim): State<Simulator>,
    Extension(request): Extension<RequestInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    authorize(&headers)?;
    // Idempotency-Key is handled for every POST by the `idempotency` layer.
    let pi = new_payment_intent(&Params::parse(&body))?;
    let mut state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    sim.emit(&mut state, "payment_intent.created", &pi, &request);
    let answer = ok(&pi);
    state.intents.insert(pi);
    answer
}

/// A new PaymentIntent from the create parameters, or Stripe's error for the parameter at
/// fault.
fn new_payment_intent(fields: &Params) -> Result<PaymentIntent, ApiError> {
    let raw_amount = fields.get("amount").ok_or_else(|| ApiError::missing("amount"))?;
    let amount: i64 = raw_amount.parse().map_err(|_| ApiError::invalid_integer("amount", raw_amount))?;
    if !(MIN_AMOUNT..=MAX_AMOUNT).contains(&amount) {
        return Err(ApiError::invalid(
            Some(if amount < MIN_AMOUNT { "amount_too_small" } else { "amount_too_large" }),
            format!("Amount must be between {MIN_AMOUNT} and {MAX_AMOUNT} in the currency's minor unit."),
            Some("amount"),
        ));
    }
    let currency = fields.get("currency").ok_or_else(|| ApiError::missing("currency"))?.to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(ApiError::invalid(
            Some("parameter_invalid_string"),
            format!("Invalid currency: {currency}."),
            Some("currency"),
        ));
    }
    let metadata = fields.metadata()?;
    let automatic = fields.get("automatic_payment_methods[enabled]") == Some("true");
    let id = new_id("pi");
    let client_secret = format!("{id}_secret_{}", random_token(24));
    Ok(PaymentIntent {
        id,
        object: "payment_intent",
        amount,
        amount_capturable: 0,
        amount_details: AmountDetails::default(),
        amount_received: 0,
        application: None,
        automatic_payment_methods: automatic
            .then_some(AutomaticPaymentMethods { allow_redirects: "always", enabled: true }),
        canceled_at: None,
        cancellation_reason: None,
        capture_method: "automatic",
        client_secret,
        confirmation_method: "automatic",
        created: now(),
        currency,
        customer: None,
        description: fields.get("description").map(str::to_string),
        last_payment_error: None,
        latest_charge: None,
        livemode: false,
        metadata,
        next_action: None,
        payment_method: None,
        payment_method_types: vec!["card"],
        status: Status::RequiresPaymentMethod,
        card: Card::default(),
    })
}

async fn retrieve(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let q = Params::query(query);
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    // Stripe.js retrieves with the publishable key and the client secret; servers with the
    // secret key. The client secret check is the same one confirm makes.
    let Some(pi) = state.intents.get(&id) else {
        authorize(&headers)?;
        return Err(ApiError::no_such("payment_intent", &id, "intent"));
    };
    authorize_confirm(&headers, &q, pi)?;
    let expand = q.expand(&["latest_charge"])?;
    ok(&render(&state, pi, !expand.is_empty()))
}

/// `GET /v1/payment_intents`: filter `created`; newest first, paginated; `data.latest_charge`
/// expandable.
async fn list(State(sim): State<Simulator>, headers: HeaderMap, RawQuery(query): RawQuery) -> ApiResult {
    authorize(&headers)?;
    let q = Params::query(query);
    let (page, created) = (q.page()?, q.created("created")?);
    let expand_charge = !q.expand(&["data.latest_charge"])?.is_empty();
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    let matching: Vec<&PaymentIntent> =
        state.intents.newest_first().filter(|pi| created.contains(pi.created)).collect();
    page.render(&matching, "payment_intent", "/v1/payment_intents", |pi| render(&state, pi, expand_charge))
}

/// Checks a key that may confirm: a secret test key, or a publishable test key together with
/// the PaymentIntent's client secret (what Stripe.js sends from the browser).
fn authorize_confirm(headers: &HeaderMap, fields: &Params, pi: &PaymentIntent) -> Result<(), ApiError> {
    if bearer(headers).starts_with("pk_test_") {
        return if fields.get("client_secret") == Some(pi.client_secret.as_str()) {
            Ok(())
        } else {
            Err(ApiError::invalid(
                Some("payment_intent_invalid_parameter"),
                "The client_secret provided does not match the client_secret associated with the PaymentIntent.",
                Some("client_secret"),
            ))
        };
    }
    authorize(headers)
}

async fn confirm(
    State(sim): State<Simulator>,
    Extension(request): Extension<RequestInfo>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let fields = Params::parse(&body);
    let mut guard = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    let state = &mut *guard;
    let pi = find_mut(state, &id)?;
    authorize_confirm(&headers, &fields, pi)?;
    // (Stripe's `requires_confirmation` never arises: the simulator's PaymentIntents are created
    // without a payment method.)
    if pi.status != Status::RequiresPaymentMethod {
        return Err(unexpected_state(pi, "confirm"));
    }
    let number = match (fields.get("payment_method_data[card][number]"), fields.get("payment_method")) {
        (Some(n), _) => n,
        (None, Some(pm)) => test_payment_method_number(pm).ok_or_else(|| {
            ApiError::invalid(
                Some("resource_missing"),
                format!("No such PaymentMethod: '{pm}'"),
                Some("payment_method"),
            )
        })?,
        (None, None) => {
            return Err(ApiError::invalid(
                Some("payment_intent_unexpected_state"),
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                Some("payment_method"),
            ))
        }
    };
    let (outcome, card) = card_outcome(number)?;
    pi.card = card;
    pi.payment_method = Some(new_id("pm"));
    pi.last_payment_error = None;
    match outcome {
        CardOutcome::Succeeds(_) => {
            let pi = sim.settle(state, &id, &request);
            ok(&render(state, &pi, false))
        }
        CardOutcome::RequiresAuthentication => {
            pi.status = Status::RequiresAction;
            pi.next_action = Some(NextAction {
                kind: "use_stripe_sdk",
                use_stripe_sdk: UseStripeSdk {
                    kind: "three_d_secure_redirect",
                    stripe_js: format!("/_simulator/payment_intents/{id}/authenticate"),
                },
            });
            let pi = pi.clone();
            sim.emit(state, "payment_intent.requires_action", &pi, &request);
            ok(&pi)
        }
        CardOutcome::Declined { decline_code, message } => {
            let error =
                PaymentError { kind: "card_error", code: "card_declined", decline_code: Some(decline_code), message };
            pi.status = Status::RequiresPaymentMethod;
            pi.last_payment_error = Some(error.clone());
            let pi = pi.clone();
            sim.emit(state, "payment_intent.payment_failed", &pi, &request);
            let mut body = serde_json::to_value(&error).unwrap_or_default();
            body["payment_intent"] = serde_json::to_value(&pi).unwrap_or_default();
            Ok((StatusCode::PAYMENT_REQUIRED, Json(json!({"error": body}))).into_response())
        }
    }
}

/// The simulator's 3-D Secure challenge, answered `complete` or `fail`.
pub(super) fn authenticate(sim: &Simulator, state: &mut SimState, id: &str, outcome: Option<&str>) -> ApiResult {
    let pi = find_mut(state, id)?;
    if pi.status != Status::RequiresAction {
        return Err(unexpected_state(pi, "authenticate"));
    }
    let none = RequestInfo::default();
    match outcome {
        Some("complete") => {
            let pi = sim.settle(state, id, &none);
            ok(&pi)
        }
        Some("fail") => {
            pi.status = Status::RequiresPaymentMethod;
            pi.next_action = None;
            pi.last_payment_error = Some(PaymentError {
                kind: "invalid_request_error",
                code: "payment_intent_authentication_failure",
                decline_code: None,
                message: "We are unable to authenticate your payment method. Please choose a different payment method and try again.",
            });
            let pi = pi.clone();
            sim.emit(state, "payment_intent.payment_failed", &pi, &none);
            ok(&pi)
        }
        _ => Err(ApiError::invalid(None, "outcome must be complete or fail", Some("outcome"))),
    }
}

async fn cancel(
    State(sim): State<Simulator>,
    Extension(request): Extension<RequestInfo>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    authorize(&headers)?;
    let fields = Params::parse(&body);
    let mut guard = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    let state = &mut *guard;
    let pi = find_mut(state, &id)?;
    if matches!(pi.status, Status::Succeeded | Status::Canceled) {
        return Err(unexpected_state(pi, "cancel"));
    }
    pi.status = Status::Canceled;
    pi.canceled_at = Some(now());
    pi.cancellation_reason = Some(fields.get("cancellation_reason").unwrap_or("requested_by_customer").to_string());
    pi.next_action = None;
    let pi = pi.clone();
    sim.emit(state, "payment_intent.canceled", &pi, &request);
    ok(&pi)
}

impl Simulator {
    /// A payment the card accepted: `succeeded` now, or, with the `processing_ms` fault,
    /// `processing` now and `succeeded` that much later (as Stripe does for payment methods
    /// that settle later), each step with its events. Returns the PaymentIntent as it stands.
    fn settle(&self, state: &mut SimState, id: &str, request: &RequestInfo) -> PaymentIntent {
        let processing_ms = self.faults().processing_ms;
        if processing_ms == 0 {
            return self.succeed_now(state, id, request);
        }
        let Some(pi) = state.intents.get_mut(id) else { unreachable!("the caller found {id}") };
        pi.status = Status::Processing;
        pi.next_action = None;
        let pi = pi.clone();
        self.emit(state, "payment_intent.processing", &pi, request);
        let (sim, id) = (self.clone(), id.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(processing_ms)).await;
            let mut guard = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
            // Canceled meanwhile (or otherwise moved on): nothing settles.
            if guard.intents.get(&id).is_some_and(|pi| pi.status == Status::Processing) {
                sim.succeed_now(&mut guard, &id, &RequestInfo::default());
            }
        });
        pi
    }

    /// Moves a PaymentIntent to `succeeded` with its charge: `charge.succeeded`, then
    /// `payment_intent.succeeded`.
    fn succeed_now(&self, state: &mut SimState, id: &str, request: &RequestInfo) -> PaymentIntent {
        let Some(pi) = state.intents.get_mut(id) else { unreachable!("the caller found {id}") };
        let charge_id = new_id("ch");
        pi.status = Status::Succeeded;
        pi.amount_received = pi.amount;
        pi.latest_charge = Some(charge_id.clone());
        pi.next_action = None;
        let pi = pi.clone();
        let charge = Charge::for_payment(&pi, charge_id.clone(), &pi.card);
        self.emit(state, "charge.succeeded", &charge, request);
        state.charges.insert(charge);
        self.emit(state, "payment_intent.succeeded", &pi, request);
        if pi.card.after_success == AfterSuccess::Disputed {
            // A cardholder disputes after the payment, not with it: the dispute comes
            // DISPUTE_AFTER later, as its own delivery.
            let sim = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(DISPUTE_AFTER).await;
                let mut guard = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
                let opened = super::disputes::open(&sim, &mut guard, &charge_id, &Params::default());
                if let Err(e) = opened {
                    tracing::warn!(charge_id, error = %e, "simulator: the test card's dispute could not open");
                }
            });
        }
        pi
    }
}
