//! PaymentIntents: create, retrieve, list; Stripe's idempotency and error semantics.
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Simulator {
    state: Arc<Mutex<SimState>>,
}

#[derive(Default)]
struct SimState {
    /// In creation order; Stripe lists newest first.
    intents: Vec<Value>,
    /// Idempotency-Key → (the request it was first used with, the answer given).
    idempotency: HashMap<String, (String, StatusCode, Value)>,
}

pub fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/v1/payment_intents", post(create_payment_intent).get(list_payment_intents))
        .route("/v1/payment_intents/{id}", get(retrieve_payment_intent))
        .with_state(sim)
}

/// Stripe's error object.
fn stripe_error(status: StatusCode, kind: &str, code: Option<&str>, message: &str, param: Option<&str>) -> Response {
    let mut err = Map::new();
    err.insert("type".into(), json!(kind));
    err.insert("message".into(), json!(message));
    if let Some(code) = code {
        err.insert("code".into(), json!(code));
        err.insert("doc_url".into(), json!(format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-"))));
    }
    if let Some(param) = param {
        err.insert("param".into(), json!(param));
    }
    (status, Json(json!({ "error": err }))).into_response()
}

/// Checks `Authorization: Bearer sk_test_...`; the simulator never accepts a live key.
fn authorize(headers: &HeaderMap) -> Result<(), Response> {
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if key.starts_with("sk_test_") || key.starts_with("rk_test_") {
        Ok(())
    } else if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
        Err(stripe_error(StatusCode::UNAUTHORIZED, "invalid_request_error", Some("api_key_expired"),
            "The Stripe simulator runs in test mode only and refuses live keys.", None))
    } else {
        Err(stripe_error(StatusCode::UNAUTHORIZED, "invalid_request_error", None,
            "You did not provide an API key. Provide it in the Authorization header as `Bearer sk_test_...`.", None))
    }
}

/// Form fields with Stripe's bracketed keys (`metadata[contractId]`), kept flat and in order.
fn form(raw: &[u8]) -> BTreeMap<String, String> {
    form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// Stripe's minimum charge in USD-like currencies is 50 minor units; the maximum is 8 digits.
const MIN_AMOUNT: i64 = 50;
const MAX_AMOUNT: i64 = 99_999_999;

async fn create_payment_intent(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorize(&headers) {
        return r;
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let fields = form(&body);
    let fingerprint = serde_json::to_string(&fields).unwrap_or_default();
    let mut state = sim.state.lock().expect("simulator state");
    if let Some(key) = &key {
        if key.len() > 255 {
            return stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", None, "Idempotency keys are at most 255 characters.", None);
        }
        if let Some((first, status, answer)) = state.idempotency.get(key) {
            if *first != fingerprint {
                return stripe_error(StatusCode::BAD_REQUEST, "idempotency_error", None,
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.", None);
            }
            let mut r = (*status, Json(answer.clone())).into_response();
            r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            return r;
        }
    }
    let (status, answer) = match new_payment_intent(&fields) {
        Ok(pi) => {
            state.intents.push(pi.clone());
            (StatusCode::OK, pi)
        }
        Err((param, message)) => (
            StatusCode::BAD_REQUEST,
            json!({"error": {"type": "invalid_request_error", "message": message, "param": param}}),
        ),
    };
    if let Some(key) = key {
        state.idempotency.insert(key, (fingerprint, status, answer.clone()));
    }
    (status, Json(answer)).into_response()
}

fn new_payment_intent(fields: &BTreeMap<String, String>) -> Result<Value, (&'static str, String)> {
    let amount: i64 = fields
        .get("amount")
        .ok_or(("amount", "Missing required param: amount.".to_string()))?
        .parse()
        .map_err(|_| ("amount", "Invalid integer: amount.".to_string()))?;
    if !(MIN_AMOUNT..=MAX_AMOUNT).contains(&amount) {
        return Err(("amount", format!("Amount must be between {MIN_AMOUNT} and {MAX_AMOUNT} in the currency's minor unit.")));
    }
    let currency = fields.get("currency").ok_or(("currency", "Missing required param: currency.".to_string()))?.to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(("currency", format!("Invalid currency: {currency}.")));
    }
    let mut metadata = Map::new();
    for (k, v) in fields {
        if let Some(name) = k.strip_prefix("metadata[").and_then(|k| k.strip_suffix(']')) {
            // Stripe's limits: 50 keys, key ≤ 40 characters, value ≤ 500.
            if name.is_empty() || name.len() > 40 || v.len() > 500 || metadata.len() >= 50 {
                return Err(("metadata", "Metadata keys are 1-40 characters, values at most 500, at most 50 keys.".into()));
            }
            metadata.insert(name.to_string(), json!(v));
        }
    }
    let automatic = fields.get("automatic_payment_methods[enabled]").map(|v| v == "true").unwrap_or(false);
    let id = format!("pi_sim{}", random_token(20));
    let client_secret = format!("{id}_secret_{}", random_token(24));
    Ok(json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": null,
        "automatic_payment_methods": if automatic { json!({"allow_redirects": "always", "enabled": true}) } else { Value::Null },
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic",
        "client_secret": client_secret,
        "confirmation_method": "automatic",
        "created": chrono::Utc::now().timestamp(),
        "currency": currency,
        "customer": null,
        "description": fields.get("description"),
        "last_payment_error": null,
        "latest_charge": null,
        "livemode": false,
        "metadata": metadata,
        "next_action": null,
        "payment_method": null,
        "payment_method_types": ["card"],
        "status": "requires_payment_method",
    }))
}

async fn retrieve_payment_intent(State(sim): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorize(&headers) {
        return r;
    }
    let state = sim.state.lock().expect("simulator state");
    match state.intents.iter().find(|pi| pi["id"] == id.as_str()) {
        Some(pi) => Json(pi.clone()).into_response(),
        None => stripe_error(StatusCode::NOT_FOUND, "invalid_request_error", Some("resource_missing"),
            &format!("No such payment_intent: '{id}'"), Some("intent")),
    }
}

async fn list_payment_intents(State(sim): State<Simulator>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Err(r) = authorize(&headers) {
        return r;
    }
    let q = form(query.unwrap_or_default().as_bytes());
    let int = |name: &str| -> Result<Option<i64>, Response> {
        q.get(name)
            .map(|v| v.parse::<i64>().map_err(|_| {
                stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", None, &format!("Invalid integer: {name}."), Some(name))
            }))
            .transpose()
    };
    let (gte, lte, gt, lt, exact, limit) = match (
        int("created[gte]"), int("created[lte]"), int("created[gt]"), int("created[lt]"), int("created"), int("limit"),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d), Ok(e), Ok(f)) => (a, b, c, d, e, f),
        (Err(r), ..) | (_, Err(r), ..) | (_, _, Err(r), ..) | (_, _, _, Err(r), ..) | (_, _, _, _, Err(r), _) | (.., Err(r)) => return r,
    };
    let limit = limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", None, "Limit must be between 1 and 100.", Some("limit"));
    }
    let state = sim.state.lock().expect("simulator state");
    let matching: Vec<&Value> = state
        .intents
        .iter()
        .rev()
        .filter(|pi| {
            let c = pi["created"].as_i64().unwrap_or_default();
            gte.is_none_or(|v| c >= v) && lte.is_none_or(|v| c <= v) && gt.is_none_or(|v| c > v)
                && lt.is_none_or(|v| c < v) && exact.is_none_or(|v| c == v)
        })
        .collect();
    let start = match q.get("starting_after") {
        Some(after) => match matching.iter().position(|pi| pi["id"] == after.as_str()) {
            Some(i) => i + 1,
            None => {
                return stripe_error(StatusCode::NOT_FOUND, "invalid_request_error", Some("resource_missing"),
                    &format!("No such payment_intent: '{after}'"), Some("starting_after"))
            }
        },
        None => 0,
    };
    let page: Vec<Value> = matching.iter().skip(start).take(limit as usize).map(|v| (*v).clone()).collect();
    let has_more = matching.len() > start + page.len();
    Json(json!({"object": "list", "data": page, "has_more": has_more, "url": "/v1/payment_intents"})).into_response()
}
