//! The API, behind keys made with `revision-store api-key create --scope revenue|events`.
//!
//! - `GET /api/v1/revenue?from=YYYY-MM-DD&to=YYYY-MM-DD[&by=day|week|month]` (either scope)
//!   answers with sums and counts only, never an email, a name, a contract, a PaymentIntent or
//!   an event id, so a revenue key can be given to a dashboard or a phone without giving away
//!   customers.
//! - `GET /api/v1/events?<filters>[&after=…][&limit=N]` (events scope): one page of an event
//!   search, newest first, with the `next` page's position; `GET /api/v1/events/export?<filters>
//!   &format=csv|ndjson` streams the whole search.
use crate::AppState;
use app::domain::revenue::page_range;
use app::domain::revenue::Period;
use app::services::api_keys::Scope;
use app::services::{api_keys, revenue};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

/// Requests per key per minute, counted by `governor` (GCRA: a steady rate with a burst of
/// one minute's worth). Per process: with several processes a key gets each one's share.
#[derive(Clone)]
pub struct ApiLimits {
    limiter: Arc<DefaultKeyedRateLimiter<i64>>,
}

impl ApiLimits {
    pub fn per_minute(n: NonZeroU32) -> Self {
        Self { limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(n))) }
    }

    /// None when the key may go on; otherwise the whole seconds to wait (at least 1).
    fn retry_after(&self, key_id: i64) -> Option<u64> {
        self.limiter.check_key(&key_id).err().map(|not_until| app::services::wait_secs(&not_until))
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// One answer for a missing, malformed, unknown or revoked key, so the API does not tell an
/// attacker which keys exist or once existed.
fn unauthorized() -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "a valid API key is required: Authorization: Bearer rsk_...");
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"revision-store\""));
    r
}

/// Checks the key, its scope and its rate; the key's id when the request may go on.
async fn admit(state: &AppState, headers: &HeaderMap, needs: Scope) -> Result<i64, Response> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let key = match api_keys::authenticate(&state.services.db, auth, chrono::Utc::now()).await {
        Ok(Some(key)) => key,
        Ok(None) => return Err(unauthorized()),
        Err(e) => {
            tracing::error!(error = %e, "API key check failed");
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, "please try again in a moment"));
        }
    };
    if !needs.allowed_by(&key.scope) {
        let message =
            format!("this key's scope is {}; this needs a key made with --scope {}", key.scope, needs.as_str());
        return Err(error(StatusCode::FORBIDDEN, &message));
    }
    if let Some(secs) = state.api_limits.retry_after(key.id) {
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "too many requests for this key: see Retry-After");
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Err(r);
    }
    Ok(key.id)
}

/// The date range of a revenue query (both ends required: a script should say what it means),
/// and its period when `by` is given; or the message for a 400.
fn revenue_query(
    q: &HashMap<String, String>,
) -> Result<(chrono::NaiveDate, chrono::NaiveDate, Option<Period>), String> {
    let get = |name: &str| q.get(name).map(String::as_str);
    for name in ["from", "to"] {
        if get(name).is_none_or(|v| v.trim().is_empty()) {
            return Err(format!("{name} is required (YYYY-MM-DD, UTC)"));
        }
    }
    let (from, to, period) = page_range(get("from"), get("to"), get("by"), chrono::Utc::now().date_naive())?;
    Ok((from, to, get("by").map(|_| period)))
}

pub async fn revenue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&state, &headers, Scope::Revenue).await {
        return r;
    }
    let (from, to, by) = match revenue_query(&q) {
        Ok(x) => x,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let svc = &state.services;
    let report = revenue::report(svc, from, to, by.unwrap_or(Period::Day)).await;
    fresh_json("revenue report", report.map(|r| r.to_json(svc.mode.as_str(), by.is_some())))
}

/// A read's answer: its JSON, never cached (the figures move), or 503 when the store failed.
fn fresh_json<E: std::fmt::Display>(what: &str, result: Result<serde_json::Value, E>) -> Response {
    match result {
        Ok(body) => {
            let mut r = Json(body).into_response();
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "{what} failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "please try again in a moment")
        }
    }
}

/// One page of an event search (events scope): `{"events": [...], "next": "<after>" | null,
/// "unindexed": n}`. `next` goes back as `after` for the page after.
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&state, &headers, Scope::Events).await {
        return r;
    }
    let (filter, after, limit) = match app::domain::event_search::parse_page(|k| q.get(k).map(String::as_str)) {
        Ok(x) => x,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let page = app::services::event_search::page(&state.services.db, &filter, after.as_ref(), limit).await;
    fresh_json("event search", page.map(|p| p.to_json()))
}

/// The whole search as a file (events scope), `format=csv` (the default) or `ndjson`, streamed.
pub async fn events_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&state, &headers, Scope::Events).await {
        return r;
    }
    crate::routes::admin::stream_events(state.services.db.clone(), &q, None).await
}

/// Called by scripts and dashboards with an API key, never with a session.
pub fn router() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/api/v1/revenue", get(revenue))
        .route("/api/v1/events", get(events))
        .route("/api/v1/events/export", get(events_export))
}
