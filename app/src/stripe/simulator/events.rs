//! The Events API: retrieve; list by `type` with `*` wildcards, `types[]`, `created`,
//! `delivery_success`, both cursors. Events are emitted by `Simulator::emit` as objects change.
use super::handle::Simulator;
use super::http::authorize;
use super::objects::Event;
use super::wire::{ok, ApiError, ApiResult, Params};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;

/// Stripe accepts at most this many `types[]`.
const MAX_TYPES: usize = 20;

pub(super) fn routes() -> Router<Simulator> {
    Router::new().route("/v1/events", get(list)).route("/v1/events/{id}", get(retrieve))
}

async fn retrieve(State(sim): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    authorize(&headers)?;
    let state = sim.lock();
    let event = state.events.get(&id).ok_or_else(|| ApiError::no_such("event", &id, "id"))?;
    ok(&event.render())
}

/// `GET /v1/events`: filters `type` (exact or with `*`), `types[]` (exact, up to 20),
/// `created`, `delivery_success`; newest first, paginated either way.
async fn list(State(sim): State<Simulator>, headers: HeaderMap, RawQuery(query): RawQuery) -> ApiResult {
    authorize(&headers)?;
    let q = Params::query(query);
    let (page, created) = (q.page()?, q.created("created")?);
    let kind = q.string("type")?;
    let kinds = q.list("types");
    if kind.is_some() && !kinds.is_empty() {
        return Err(ApiError::exclusive("type", "types"));
    }
    if kinds.len() > MAX_TYPES {
        return Err(ApiError::invalid(
            None,
            format!("You may pass at most {MAX_TYPES} types, not {}.", kinds.len()),
            Some("types"),
        ));
    }
    let delivery_success = q.bool("delivery_success")?;
    let state = sim.lock();
    let matching: Vec<&Event> = state
        .events
        .newest_first()
        .filter(|e| {
            kind.is_none_or(|k| e.matches_type(k))
                && (kinds.is_empty() || kinds.contains(&e.kind.as_str()))
                && created.contains(e.created)
                && delivery_success.is_none_or(
                    |delivered| {
                        if delivered {
                            e.has_endpoint && !e.pending()
                        } else {
                            e.pending()
                        }
                    },
                )
        })
        .collect();
    page.render(&matching, "event", "/v1/events", Event::render)
}
