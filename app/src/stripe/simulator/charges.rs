//! The Charges API: retrieve (`refunds` expandable), list by PaymentIntent. Charges are made
//! when a PaymentIntent succeeds; refunds and disputes change them.
use super::handle::Simulator;
use super::http::authorize;
use super::objects::Charge;
use super::state::SimState;
use super::wire::{ok, ApiResult, Params};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

/// How many refunds an expanded `refunds` list holds, as Stripe's embedded lists do.
const EMBEDDED_LIST_LIMIT: usize = 10;

pub(super) fn routes() -> Router<Simulator> {
    Router::new().route("/v1/charges", get(list)).route("/v1/charges/{id}", get(retrieve))
}

async fn retrieve(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    authorize(&headers)?;
    let expand_refunds = !Params::query(query).expand(&["refunds"])?.is_empty();
    let state = sim.lock();
    let charge = state.charge(&id, "id")?;
    let mut value = serde_json::to_value(charge).unwrap_or_default();
    if expand_refunds {
        value["refunds"] = refunds_of(&state, charge);
    }
    ok(&value)
}

/// The charge's refunds as the list Stripe embeds when `refunds` is expanded (since API
/// version 2022-11-15 the key is left out otherwise), newest first.
fn refunds_of(state: &SimState, charge: &Charge) -> Value {
    let refunds: Vec<Value> = state
        .refunds
        .newest_first()
        .filter(|r| r.charge == charge.id)
        .map(|r| serde_json::to_value(r).unwrap_or_default())
        .collect();
    json!({
        "object": "list",
        "has_more": refunds.len() > EMBEDDED_LIST_LIMIT,
        "data": refunds.into_iter().take(EMBEDDED_LIST_LIMIT).collect::<Vec<_>>(),
        "url": format!("/v1/charges/{}/refunds", charge.id),
    })
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
