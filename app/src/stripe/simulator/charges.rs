//! The Charges API: retrieve, list by PaymentIntent. Charges are made when a PaymentIntent
//! succeeds; refunds and disputes change them.
use super::handle::Simulator;
use super::http::authorize;
use super::objects::Charge;
use super::wire::{ok, ApiResult, Params};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;

pub(super) fn routes() -> Router<Simulator> {
    Router::new().route("/v1/charges", get(list)).route("/v1/charges/{id}", get(retrieve))
}

async fn retrieve(State(sim): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    authorize(&headers)?;
    let state = sim.lock();
    ok(state.charge(&id, "id")?)
}

/// `GET /v1/charges`: filters `payment_intent`, `created`; newest first, paginated.
async fn list(State(sim): State<Simulator>, headers: HeaderMap, RawQuery(query): RawQuery) -> ApiResult {
    authorize(&headers)?;
    let q = Params::query(query);
    let (page, created) = (q.page()?, q.created("created")?);
    let payment_intent = q.string("payment_intent")?;
    let state = sim.lock();
    let matching: Vec<&Charge> = state
        .charges
        .newest_first()
        .filter(|c| payment_intent.is_none_or(|pi| c.payment_intent == pi) && created.contains(c.created))
        .collect();
    page.render(&matching, "charge", "/v1/charges", |c| serde_json::to_value(c).unwrap_or_default())
}
