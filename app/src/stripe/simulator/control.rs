//! The simulator's own controls: what the cardholder, the bank or the card network would do
//! (3-D Secure outcome, open and decide disputes, settle a pending refund, early fraud
//! warnings), as `Simulator` methods for tests and as endpoints under `/_simulator/`, with the
//! delivery log and faults; a charge's receipt (its `receipt_url`); and the Stripe.js stand-in
//! under `/v3`. The endpoints take a form (or no body) and answer Stripe's objects and error
//! shape, without an API key.
use super::faults::Faults;
use super::handle::Simulator;
use super::objects::{DisputeOutcome, RefundSettlement};
use super::wire::{ok, ApiError, ApiResult, Params, RequestInfo};
use super::{disputes, early_fraud_warnings, payment_intents, refunds};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

impl Simulator {
    /// The cardholder disputes a succeeded payment now, for what was not refunded, as
    /// `POST /_simulator/payment_intents/{id}/dispute` does. Returns the dispute's id.
    pub fn open_dispute(&self, payment_intent_id: &str) -> Result<String, String> {
        let mut state = self.lock();
        let dispute = disputes::open_for_payment(self, &mut state, payment_intent_id, &Params::default());
        dispute.map(|d| d.id).map_err(|e| e.to_string())
    }

    /// The bank decides a dispute, as `POST /_simulator/disputes/{id}/close` does.
    pub fn close_dispute(&self, dispute_id: &str, outcome: DisputeOutcome) -> Result<(), String> {
        let mut state = self.lock();
        disputes::close(self, &mut state, dispute_id, outcome, &RequestInfo::default())
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// A pending refund (the 4000 0000 0000 7726 card's) ends as `outcome` says, as
    /// `POST /_simulator/refunds/{id}/settle` does.
    pub fn settle_refund(&self, refund_id: &str, outcome: RefundSettlement) -> Result<(), String> {
        let mut state = self.lock();
        refunds::settle(self, &mut state, refund_id, outcome).map(drop).map_err(|e| e.to_string())
    }

    /// The card network warns of fraud on a charge, as
    /// `POST /_simulator/charges/{id}/early_fraud_warning` does. Returns the warning's id.
    pub fn early_fraud_warning(&self, charge_id: &str) -> Result<String, String> {
        let mut state = self.lock();
        early_fraud_warnings::raise(self, &mut state, charge_id).map(|w| w.id).map_err(|e| e.to_string())
    }
}

pub(super) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/_simulator/payment_intents/{id}/authenticate", post(authenticate))
        .route("/_simulator/payment_intents/{id}/dispute", post(open_dispute))
        .route("/_simulator/disputes/{id}/close", post(close_dispute))
        .route("/_simulator/disputes/{id}/submit_evidence", post(submit_evidence))
        .route("/_simulator/charges/{id}/early_fraud_warning", post(early_fraud_warning))
        .route("/_simulator/refunds/{id}/settle", post(settle_refund))
        .route("/_simulator/receipts/{id}", get(receipt))
        .route("/_simulator/deliveries", get(list_deliveries))
        .route("/_simulator/faults", get(get_faults).post(set_faults))
        .route("/v3", get(stripe_js))
        .route("/v3/", get(stripe_js))
        .route("/v3/stripe.js", get(stripe_js))
}

/// The Stripe.js stand-in: what the page loads instead of https://js.stripe.com/v3/.
async fn stripe_js() -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("stripe.js"),
    )
        .into_response()
}

/// A charge's receipt, where its `receipt_url` points: what the cardholder's receipt says.
async fn receipt(State(sim): State<Simulator>, Path(id): Path<String>) -> ApiResult {
    let state = sim.lock();
    let charge = state.charge(&id, "id")?;
    let card = &charge.payment_method_details["card"];
    let text = format!(
        "Receipt (Stripe simulator, test mode)\n\nCharge {}\nAmount {} {} (minor units), {} refunded\nCard {} ending {}\nStatus {}\n",
        charge.id,
        charge.amount,
        charge.currency.to_uppercase(),
        charge.amount_refunded,
        card["brand"].as_str().unwrap_or_default(),
        card["last4"].as_str().unwrap_or_default(),
        charge.status,
    );
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// The 3-D Secure challenge: `outcome=complete` or `outcome=fail`.
async fn authenticate(State(sim): State<Simulator>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let fields = Params::parse(&body);
    let mut state = sim.lock();
    payment_intents::authenticate(&sim, &mut state, &id, fields.get("outcome"))
}

/// The cardholder disputes a succeeded payment now (optional `reason`, `amount`).
async fn open_dispute(State(sim): State<Simulator>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let fields = Params::parse(&body);
    let mut state = sim.lock();
    ok(&disputes::open_for_payment(&sim, &mut state, &id, &fields)?)
}

/// A pending refund (the 7726 card's) ends: `outcome=succeeded|failed`.
async fn settle_refund(State(sim): State<Simulator>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let fields = Params::parse(&body);
    let outcome = match fields.get("outcome") {
        Some("succeeded") => RefundSettlement::Succeeded,
        Some("failed") => RefundSettlement::Failed,
        _ => return Err(ApiError::invalid(None, "outcome must be succeeded or failed", Some("outcome"))),
    };
    let mut state = sim.lock();
    ok(&refunds::settle(&sim, &mut state, &id, outcome)?)
}

/// The bank decides a dispute: `outcome=won|lost|warning_closed`.
async fn close_dispute(State(sim): State<Simulator>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let fields = Params::parse(&body);
    let outcome: DisputeOutcome = fields
        .get("outcome")
        .ok_or_else(|| ApiError::missing("outcome"))?
        .parse()
        .map_err(|e: String| ApiError::invalid(None, e, Some("outcome")))?;
    let mut state = sim.lock();
    ok(&disputes::close(&sim, &mut state, &id, outcome, &RequestInfo::default())?)
}

/// Evidence (`evidence[...]`) sent to the bank: the dispute goes `under_review`.
async fn submit_evidence(State(sim): State<Simulator>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let fields = Params::parse(&body);
    let mut state = sim.lock();
    disputes::submit_evidence(&sim, &mut state, &id, &fields)
}

/// The card network warns that a charge looks fraudulent.
async fn early_fraud_warning(State(sim): State<Simulator>, Path(id): Path<String>) -> ApiResult {
    let mut state = sim.lock();
    ok(&early_fraud_warnings::raise(&sim, &mut state, &id)?)
}

async fn list_deliveries(State(sim): State<Simulator>) -> Response {
    Json(sim.deliveries()).into_response()
}

async fn get_faults(State(sim): State<Simulator>) -> Response {
    Json(sim.faults()).into_response()
}

async fn set_faults(State(sim): State<Simulator>, body: Bytes) -> ApiResult {
    let faults: Faults =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid(None, format!("faults: {e}"), None))?;
    sim.set_faults(faults).map_err(|e| ApiError::invalid(None, e, None))?;
    ok(&sim.faults())
}
