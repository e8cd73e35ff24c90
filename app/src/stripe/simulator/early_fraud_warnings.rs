//! Radar early fraud warnings: raised through the control endpoint; retrieve and list as
//! Stripe's `/v1/radar/early_fraud_warnings`.
use super::handle::Simulator;
use super::http::authorize;
use super::objects::EarlyFraudWarning;
use super::state::SimState;
use super::wire::{ok, ApiError, ApiResult, Params, RequestInfo};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;

/// Raises a warning on a charge: `radar.early_fraud_warning.created`.
pub(super) fn raise(sim: &Simulator, state: &mut SimState, charge_id: &str) -> Result<EarlyFraudWarning, ApiError> {
    let warning = EarlyFraudWarning::on(state.charge(charge_id, "charge")?);
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
    let state = sim.lock();
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
    let state = sim.lock();
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
