//! Events: what every change emits, delivered to the webhook endpoint and kept for the Events
//! API (retrieve; list by `type` with `*` wildcards, `types[]`, `created`, `delivery_success`,
//! both cursors). `pending_webhooks` says whether the endpoint has had it yet: 1 until an
//! attempt got a 2xx, then 0.
use super::http::{authorize, new_id, now, ok, ApiError, ApiResult, Params, RequestInfo};
use super::state::{object, SimState};
use super::Simulator;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};

/// The API version the simulator renders objects in: the one async-stripe pins (what
/// `api_version` on events says). Since 2024-10-28 every refund emits `refund.*` events.
pub const API_VERSION: &str = "2026-09-30.endive";

/// Stripe accepts at most this many `types[]`.
const MAX_TYPES: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub(super) struct Event {
    pub id: String,
    pub object: &'static str,
    pub api_version: &'static str,
    pub created: i64,
    pub data: EventData,
    pub livemode: bool,
    pub pending_webhooks: u8,
    pub request: RequestInfo,
    #[serde(rename = "type")]
    pub kind: String,
    /// Set by the delivery that gets a 2xx.
    #[serde(skip)]
    pub delivered: Arc<AtomicBool>,
    /// Whether there is an endpoint to deliver to at all.
    #[serde(skip)]
    pub has_endpoint: bool,
}
object!(Event);

#[derive(Debug, Clone, Serialize)]
pub(super) struct EventData {
    pub object: Value,
    /// For `*.updated` events: the changed fields' values before the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_attributes: Option<Value>,
}

impl Event {
    /// Not yet received by the endpoint: still pending, dropped, or every attempt failed.
    pub fn pending(&self) -> bool {
        self.has_endpoint && !self.delivered.load(Ordering::SeqCst)
    }

    pub fn render(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        value["pending_webhooks"] = u8::from(self.pending()).into();
        value
    }
}

impl Simulator {
    /// Records an event for `object` and delivers it if webhooks are configured.
    pub(super) fn emit(&self, state: &mut SimState, kind: &str, object: &impl Serialize, request: &RequestInfo) {
        self.record(state, kind, object, None, request);
    }

    /// `emit` for an update, with the changed fields' earlier values.
    pub(super) fn emit_update(
        &self,
        state: &mut SimState,
        kind: &str,
        object: &impl Serialize,
        previous: Value,
        request: &RequestInfo,
    ) {
        self.record(state, kind, object, Some(previous), request);
    }

    fn record(
        &self,
        state: &mut SimState,
        kind: &str,
        object: &impl Serialize,
        previous_attributes: Option<Value>,
        request: &RequestInfo,
    ) {
        let event = Event {
            id: new_id("evt"),
            object: "event",
            api_version: API_VERSION,
            created: now(),
            data: EventData { object: serde_json::to_value(object).unwrap_or_default(), previous_attributes },
            livemode: false,
            pending_webhooks: u8::from(self.webhook.is_some()),
            request: request.clone(),
            kind: kind.to_string(),
            delivered: Arc::default(),
            has_endpoint: self.webhook.is_some(),
        };
        if let Some(config) = &self.webhook {
            super::webhooks::deliver(
                config.clone(),
                self.faults(),
                event.id.clone(),
                event.kind.clone(),
                event.render().to_string(),
                self.deliveries.clone(),
                event.delivered.clone(),
            );
        }
        state.events.insert(event);
    }
}

/// Whether `kind` matches a `type` filter, where `*` stands for any run of characters
/// (`charge.dispute.*`).
fn type_matches(pattern: &str, kind: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = kind.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

pub(super) fn routes() -> Router<Simulator> {
    Router::new().route("/v1/events", get(list)).route("/v1/events/{id}", get(retrieve))
}

async fn retrieve(State(sim): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    authorize(&headers)?;
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
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
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    let matching: Vec<&Event> = state
        .events
        .newest_first()
        .filter(|e| {
            kind.is_none_or(|k| type_matches(k, &e.kind))
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

#[cfg(test)]
mod tests {
    use super::type_matches;

    #[test]
    fn type_filters_match_exactly_or_by_wildcard() {
        assert!(type_matches("charge.refunded", "charge.refunded"));
        assert!(!type_matches("charge.refunded", "charge.refunded.x"));
        assert!(type_matches("charge.dispute.*", "charge.dispute.created"));
        assert!(type_matches("charge.dispute.*", "charge.dispute.funds_withdrawn"));
        assert!(!type_matches("charge.dispute.*", "charge.refunded"));
        assert!(type_matches("*.created", "refund.created"));
        assert!(type_matches("charge.*.created", "charge.dispute.created"));
        assert!(!type_matches("charge.*.created", "charge.dispute.closed"));
        assert!(type_matches("*", "payment_intent.succeeded"));
    }
}
