//! What every Stripe endpoint does around its handler: API keys, the `Request-Id` of each
//! call, injected API errors, and idempotency keys.
use super::handle::Simulator;
use super::state::Idempotent;
use super::wire::{random_token, ApiError, Params, RequestInfo};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The keys an in-process simulator accepts. The simulator refuses live keys, so these can
/// never move money.
pub const SECRET_KEY: &str = "sk_test_simulator";
pub const PUBLISHABLE_KEY: &str = "pk_test_simulator";

/// The bearer key of a request, or "" without one.
pub(super) fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
}

/// Checks `Authorization: Bearer sk_test_...`; the simulator never accepts a live key.
pub(super) fn authorize(headers: &HeaderMap) -> Result<(), ApiError> {
    let key = bearer(headers);
    if key.starts_with("sk_test_") || key.starts_with("rk_test_") {
        return Ok(());
    }
    let message = if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
        "The Stripe simulator runs in test mode only and refuses live keys."
    } else {
        "You did not provide an API key. Provide it in the Authorization header as `Bearer sk_test_...`."
    };
    let code = key.contains("_live_").then_some("api_key_expired");
    Err(ApiError { status: StatusCode::UNAUTHORIZED, ..ApiError::invalid(code, message, None) })
}

/// Gives every API call a `req_...` id, answered in `Request-Id` as Stripe does, and hands it
/// (with the Idempotency-Key) to the handler so the events it emits can name their request.
pub(super) async fn request_id(mut request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let id = format!("req_sim{}", random_token(14));
    let idempotency_key = request.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    request.extensions_mut().insert(RequestInfo { id: Some(id.clone()), idempotency_key });
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

/// Answers API calls with a 500 or 429 while the fault is armed, as Stripe does under load, and
/// holds them for `api_delay_ms` first.
pub(super) async fn injected_api_errors(
    State(sim): State<Simulator>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (delay, injected) = {
        let mut faults = sim.lock_faults();
        let delay = std::time::Duration::from_millis(faults.api_delay_ms);
        match faults.api_error_status {
            Some(status) if faults.api_error_count > 0 => {
                faults.api_error_count -= 1;
                (delay, Some(status))
            }
            _ => (delay, None),
        }
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match injected {
        Some(429) => ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            ..ApiError::invalid(Some("rate_limit"), "Too many requests hit the API too quickly (simulated).", None)
        }
        .into_response(),
        Some(_) => ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "api_error",
            code: None,
            message: "An unexpected error occurred on Stripe's end (simulated).".into(),
            param: None,
        }
        .into_response(),
        None => next.run(request).await,
    }
}

/// `Idempotency-Key` on every POST, as Stripe keeps it: the first answer of a request that ran
/// (a success, a card decline, a server error) is replayed to every retry with the same key and
/// the same endpoint and parameters, marked `Idempotent-Replayed: true`; the same key with other
/// parameters is an `idempotency_error`; a retry while the first is still running is a 409.
/// Requests refused before they ran (bad parameters, no such object, auth) are not kept, so
/// they can be retried fixed under the same key.
pub(super) async fn idempotency(
    State(sim): State<Simulator>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let key = request.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let Some(key) = key.filter(|_| request.method() == axum::http::Method::POST) else {
        return next.run(request).await;
    };
    if key.len() > 255 {
        return ApiError::invalid(None, "Idempotency keys are at most 255 characters.", None).into_response();
    }
    // A replay hands back what the first answer held (a client secret, say): only to a caller
    // with a usable key, and only the same key (it is part of the fingerprint below). A
    // publishable key is checked with its client secret by the handler; both are in the
    // fingerprint.
    let credential = bearer(request.headers()).to_string();
    if !credential.starts_with("pk_test_") {
        if let Err(e) = authorize(request.headers()) {
            return e.into_response();
        }
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return ApiError::invalid(None, "The request body is too large.", None).into_response();
    };
    let fingerprint = format!("{credential} {} {}", parts.uri.path(), Params::parse(&body).fingerprint());
    if let Some(earlier) = claim_key(&sim, &key, &fingerprint) {
        return earlier;
    }
    // Should this request never finish (dropped, or a handler panics), the key is freed again
    // rather than answering "in progress" for ever.
    let mut in_flight = InFlightKey { sim: sim.clone(), key: Some(key) };
    let response = next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(body))).await;
    let (parts, body) = response.into_parts();
    let answer: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let ran =
        parts.status.is_success() || parts.status == StatusCode::PAYMENT_REQUIRED || parts.status.is_server_error();
    if ran {
        if let Some(key) = in_flight.key.take() {
            let mut state = sim.lock();
            state.idempotency.insert(key, Idempotent::Answered(fingerprint, parts.status, answer.clone()));
        }
    }
    drop(in_flight);
    Response::from_parts(parts, axum::body::Body::from(answer))
}

/// Marks `key` in flight for a request with this fingerprint (None), or answers as Stripe would for a
/// key already used: the first answer replayed, another request's parameters refused, a request
/// still running a 409.
fn claim_key(sim: &Simulator, key: &str, fingerprint: &str) -> Option<Response> {
    let mut state = sim.lock();
    match state.idempotency.get(key) {
        Some(Idempotent::Answered(first, _, _) | Idempotent::InFlight(first)) if *first != fingerprint => Some(
            ApiError {
                kind: "idempotency_error",
                ..ApiError::invalid(
                    None,
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                    None,
                )
            }
            .into_response(),
        ),
        Some(Idempotent::Answered(_, status, answer)) => {
            let mut r =
                (*status, [(axum::http::header::CONTENT_TYPE, "application/json")], answer.clone()).into_response();
            r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            Some(r)
        }
        Some(Idempotent::InFlight(_)) => Some(ApiError {
            status: StatusCode::CONFLICT,
            kind: "idempotency_error",
            ..ApiError::invalid(
                Some("idempotency_key_in_use"),
                "There is currently another in-progress request using this Idempotency-Key. Please try again later.",
                None,
            )
        }
        .into_response()),
        None => {
            state.idempotency.insert(key.to_string(), Idempotent::InFlight(fingerprint.to_string()));
            None
        }
    }
}

/// An Idempotency-Key marked in flight; removed on drop unless its answer was stored.
struct InFlightKey {
    sim: Simulator,
    key: Option<String>,
}

impl Drop for InFlightKey {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.sim.lock().idempotency.remove(&key);
        }
    }
}
