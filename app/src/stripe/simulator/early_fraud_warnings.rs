//! Radar early fraud warnings: a card network's notice that a charge looks fraudulent, often
//! ahead of a dispute. Raised through the control endpoint; retrieve and list as Stripe's
//! `/v1/radar/early_fraud_warnings`.
use super::charges;
use super::http::{authorize, new_id, now, ok, ApiError, ApiResult, Params, RequestInfo};
use super::state::{object, SimState};
use super::Simulator;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use std::sync::PoisonError;

#[derive(Debug, Clone, Serialize)]
pub(super) struct EarlyFraudWarning {
    pub id: String,
    pub object: &'static str,
    pub actionable: bool,
    pub charge: String,
    pub created: i64,
    pub fraud_type: &'static str,
    pub livemode: bool,
    pub payment_intent: String,
}
object!(EarlyFraudWarning);

/// Raises a warning on a charge: `radar.early_fraud_warning.created`.
pub(super) fn raise(sim: &Simulator, state: &mut SimState, charge_id: &str) -> Result<EarlyFraudWarning, ApiError> {
    let charge = charges::find(state, charge_id, "charge")?;
    let warning = EarlyFraudWarning {
        id: new_id("issfr"),
        object: "radar.early_fraud_warning",
        // Actionable while the charge can still be refunded to head off a dispute.
        actionable: charge.dispute.is_none() && charge.refundable() > 0,
        charge: charge.id.clone(),
        created: now(),
        fraud_type: "made_with_stolen_card",
        livemode: false,
        payment_intent: charge.payment_intent.clone(),
    };
    sim.emit(state, "radar.early_fraud_warning.created", &warning, &RequestInfo::default());
    state.early_fraud_warnings.insert(warning.clone());
    Ok(warning)
}

pub(super) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/v1/radar/early_fraud_warnings", get(list))
        .route("/v1/radar/early_fraud_warnings/{id}", get(retrieve))
}

async fn retrieve(State(sim): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    authorize(&headers)?;
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    ok(state
        .early_fraud_warnings
        .get(&id)
        .ok_or_else(|| ApiError::no_such("radar.early_fraud_warning", &id, "early_fraud_warning"))?)
}

/// Filters `charge`, `payment_intent`, `created`; newest first, paginated.
async fn list(State(sim): State<Simulator>, headers: HeaderMap, RawQuery(query): RawQuery) -> ApiResult {
    authorize(&headers)?;
    let q = Params::query(query);
    let (page, created) = (q.page()?, q.created("created")?);
    let (payment_intent, charge) = (q.string("payment_intent")?, q.string("charge")?);
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    let matching: Vec<&EarlyFraudWarning> = state
        .early_fraud_warnings
        .newest_first()
        .filter(|w| {
            payment_intent.is_none_or(|pi| w.payment_intent == pi)
                && charge.is_none_or(|c| w.charge == c)
                && created.contains(w.created)
        })
        .collect();
    page.render(&matching, "radar.early_fraud_warning", "/v1/radar/early_fraud_warnings", |w| {
        serde_json::to_value(w).unwrap_or_default()
    })
}
