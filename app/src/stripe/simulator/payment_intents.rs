//! The PaymentIntents API: create, retrieve, list (with `latest_charge` expandable), confirm
//! with Stripe's test cards (3-D Secure included), cancel; and how a payment settles into a
//! charge.
use super::disputes;
use super::handle::Simulator;
use super::http::{authorize, bearer};
use super::objects::{card_outcome, test_payment_method_number, AfterSuccess, CardOutcome};
use super::objects::{Charge, PaymentIntent, PaymentIntentStatus as Status};
use super::state::SimState;
use super::wire::{new_id, ok, ApiError, ApiResult, Params, RequestInfo};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};
use std::time::Duration;

/// How long after a 4000 0000 0000 0259 payment succeeds its dispute is opened.
const DISPUTE_AFTER: Duration = Duration::from_millis(1000);

fn find_mut<'a>(state: &'a mut SimState, id: &str) -> Result<&'a mut PaymentIntent, ApiError> {
    state.intents.get_mut(id).ok_or_else(|| ApiError::no_such("payment_intent", id, "intent"))
}

/// The PaymentIntent as the API renders it, with `latest_charge` replaced by the Charge when
/// it is expanded.
fn render(state: &SimState, pi: &PaymentIntent, expand_charge: bool) -> Value {
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
    let pi = PaymentIntent::create(&Params::parse(&body))?;
    let mut state = sim.lock();
    sim.emit(&mut state, "payment_intent.created", &pi, &request);
    let answer = ok(&pi);
    state.intents.insert(pi);
    answer
}

async fn retrieve(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let q = Params::query(query);
    let state = sim.lock();
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
    let state = sim.lock();
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

/// The test card number a confirm names: `payment_method_data[card][number]`, or one of
/// Stripe's test PaymentMethods.
fn card_number(fields: &Params) -> Result<&str, ApiError> {
    match (fields.get("payment_method_data[card][number]"), fields.get("payment_method")) {
        (Some(n), _) => Ok(n),
        (None, Some(pm)) => test_payment_method_number(pm).ok_or_else(|| {
            ApiError::invalid(
                Some("resource_missing"),
                format!("No such PaymentMethod: '{pm}'"),
                Some("payment_method"),
            )
        }),
        (None, None) => Err(ApiError::invalid(
            Some("payment_intent_unexpected_state"),
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            Some("payment_method"),
        )),
    }
}

async fn confirm(
    State(sim): State<Simulator>,
    Extension(request): Extension<RequestInfo>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let fields = Params::parse(&body);
    let mut guard = sim.lock();
    let state = &mut *guard;
    let pi = find_mut(state, &id)?;
    authorize_confirm(&headers, &fields, pi)?;
    // (Stripe's `requires_confirmation` never arises: the simulator's PaymentIntents are created
    // without a payment method.)
    if pi.status != Status::RequiresPaymentMethod {
        return Err(pi.unexpected_state("confirm"));
    }
    let (outcome, card) = card_outcome(card_number(&fields)?)?;
    pi.confirm_with(card);
    match outcome {
        CardOutcome::Succeeds(_) => {
            let pi = settle(&sim, state, &id, &request);
            ok(&render(state, &pi, false))
        }
        CardOutcome::RequiresAuthentication => {
            pi.require_action();
            let pi = pi.clone();
            sim.emit(state, "payment_intent.requires_action", &pi, &request);
            ok(&pi)
        }
        CardOutcome::Declined { decline_code, message } => {
            let error = pi.decline(decline_code, message);
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
        return Err(pi.unexpected_state("authenticate"));
    }
    let none = RequestInfo::default();
    match outcome {
        Some("complete") => {
            let pi = settle(sim, state, id, &none);
            ok(&pi)
        }
        Some("fail") => {
            pi.fail_authentication();
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
    let mut guard = sim.lock();
    let state = &mut *guard;
    let pi = find_mut(state, &id)?;
    if matches!(pi.status, Status::Succeeded | Status::Canceled) {
        return Err(pi.unexpected_state("cancel"));
    }
    pi.cancel(fields.get("cancellation_reason").unwrap_or("requested_by_customer"));
    let pi = pi.clone();
    sim.emit(state, "payment_intent.canceled", &pi, &request);
    ok(&pi)
}

/// A payment the card accepted: `succeeded` now, or, with the `processing_ms` fault,
/// `processing` now and `succeeded` that much later (as Stripe does for payment methods that
/// settle later), each step with its events. Returns the PaymentIntent as it stands.
fn settle(sim: &Simulator, state: &mut SimState, id: &str, request: &RequestInfo) -> PaymentIntent {
    let processing_ms = sim.faults().processing_ms;
    if processing_ms == 0 {
        return succeed_now(sim, state, id, request);
    }
    let Some(pi) = state.intents.get_mut(id) else { unreachable!("the caller found {id}") };
    pi.start_processing();
    let pi = pi.clone();
    sim.emit(state, "payment_intent.processing", &pi, request);
    let (sim, id) = (sim.clone(), id.to_string());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(processing_ms)).await;
        let mut guard = sim.lock();
        // Canceled meanwhile (or otherwise moved on): nothing settles.
        if guard.intents.get(&id).is_some_and(|pi| pi.status == Status::Processing) {
            succeed_now(&sim, &mut guard, &id, &RequestInfo::default());
        }
    });
    pi
}

/// Moves a PaymentIntent to `succeeded` with its charge: `charge.succeeded`, then
/// `payment_intent.succeeded`.
fn succeed_now(sim: &Simulator, state: &mut SimState, id: &str, request: &RequestInfo) -> PaymentIntent {
    let Some(pi) = state.intents.get_mut(id) else { unreachable!("the caller found {id}") };
    let charge_id = new_id("ch");
    pi.succeed(&charge_id);
    let pi = pi.clone();
    let charge = Charge::for_payment(&pi, charge_id.clone(), &pi.card);
    sim.emit(state, "charge.succeeded", &charge, request);
    state.charges.insert(charge);
    sim.emit(state, "payment_intent.succeeded", &pi, request);
    if pi.card.after_success == AfterSuccess::Disputed {
        // A cardholder disputes after the payment, not with it: the dispute comes
        // DISPUTE_AFTER later, as its own delivery.
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep(DISPUTE_AFTER).await;
            let mut guard = sim.lock();
            let opened = disputes::open(&sim, &mut guard, &charge_id, &Params::default());
            if let Err(e) = opened {
                tracing::warn!(charge_id, error = %e, "simulator: the test card's dispute could not open");
            }
        });
    }
    pi
}
