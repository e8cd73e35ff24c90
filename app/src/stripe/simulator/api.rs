//! The API: PaymentIntents (create, retrieve, list, confirm, cancel), Events (list, retrieve),
//! Stripe's idempotency and error semantics, and the simulator's own control endpoints under
//! `/_simulator/` (3-D Secure outcome, delivery log).
use super::webhooks::DeliveryAttempt;
use super::{Faults, WebhookConfig};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
// A panic while the state is locked must not take the simulator down for good: its state is
// plain data, valid after any completed step, so a poisoned lock is taken as it stands.
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Clone, Default)]
pub struct Simulator {
    state: Arc<Mutex<SimState>>,
    webhook: Option<WebhookConfig>,
    deliveries: Arc<Mutex<Vec<DeliveryAttempt>>>,
    faults: Arc<Mutex<Faults>>,
}

#[derive(Default)]
struct SimState {
    /// In creation order; Stripe lists newest first.
    intents: Vec<Value>,
    /// Idempotency-Key → the request it was first used with, and its answer once there is one.
    idempotency: HashMap<String, Idempotent>,
    /// Every event emitted, in order.
    events: Vec<Value>,
    /// PaymentIntent id → last four digits of the card it was confirmed with.
    card_last4: HashMap<String, String>,
    /// Charges of succeeded PaymentIntents (refunds update them).
    charges: Vec<Value>,
}

/// What an Idempotency-Key stands for.
enum Idempotent {
    /// A request with this key is being answered now (fingerprint of that request).
    InFlight(String),
    /// Answered: the fingerprint, and the answer every retry with this key replays.
    Answered(String, StatusCode, Bytes),
}

impl Simulator {
    /// A simulator that delivers its events to `webhook`.
    pub fn with_webhooks(webhook: WebhookConfig) -> Self {
        Self { webhook: Some(webhook), ..Self::default() }
    }

    /// Replaces the active faults.
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        *self.faults.lock().unwrap_or_else(PoisonError::into_inner) = faults;
        Ok(())
    }

    pub fn faults(&self) -> Faults {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Every delivery attempt so far.
    pub fn deliveries(&self) -> Vec<DeliveryAttempt> {
        self.deliveries.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Records an event for `object` and delivers it if webhooks are configured.
    fn emit(&self, state: &mut SimState, event_type: &str, object: &Value) {
        let event = json!({
            "id": format!("evt_sim{}", random_token(24)),
            "object": "event",
            "api_version": API_VERSION,
            "created": chrono::Utc::now().timestamp(),
            "data": {"object": object},
            "livemode": false,
            "pending_webhooks": u8::from(self.webhook.is_some()),
            "request": {"id": null, "idempotency_key": null},
            "type": event_type,
        });
        state.events.push(event.clone());
        if let Some(config) = &self.webhook {
            let id = event["id"].as_str().unwrap_or_default().to_string();
            super::webhooks::deliver(
                config.clone(),
                self.faults(),
                id,
                event_type.to_string(),
                event.to_string(),
                self.deliveries.clone(),
            );
        }
    }
}

/// The API version the simulator renders objects in (what `api_version` on events says).
pub const API_VERSION: &str = "2024-06-20";

pub fn router(sim: Simulator) -> Router {
    let api = Router::new()
        .route("/v1/payment_intents", post(create_payment_intent).get(list_payment_intents))
        .route("/v1/payment_intents/{id}", get(retrieve_payment_intent))
        .route("/v1/payment_intents/{id}/confirm", post(confirm_payment_intent))
        .route("/v1/payment_intents/{id}/cancel", post(cancel_payment_intent))
        .route("/v1/refunds", post(create_refund))
        .route("/v1/events", get(list_events))
        .route("/v1/events/{id}", get(retrieve_event))
        // Inner layer: injected faults (below) answer before a request counts as executed.
        .layer(axum::middleware::from_fn_with_state(sim.clone(), idempotency))
        .layer(axum::middleware::from_fn_with_state(sim.clone(), injected_api_errors));
    Router::new()
        .merge(api)
        .route("/_simulator/payment_intents/{id}/authenticate", post(authenticate_payment_intent))
        .route("/_simulator/deliveries", get(list_deliveries))
        .route("/_simulator/faults", get(get_faults).post(set_faults))
        .route("/v3", get(stripe_js))
        .route("/v3/", get(stripe_js))
        .route("/v3/stripe.js", get(stripe_js))
        .with_state(sim)
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

/// Answers API calls with a 500 or 429 while the fault is armed, as Stripe does under load.
async fn injected_api_errors(
    State(sim): State<Simulator>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let injected = {
        let mut faults = sim.faults.lock().unwrap_or_else(PoisonError::into_inner);
        match faults.api_error_status {
            Some(status) if faults.api_error_count > 0 => {
                faults.api_error_count -= 1;
                Some(status)
            }
            _ => None,
        }
    };
    match injected {
        Some(429) => stripe_error(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_request_error",
            Some("rate_limit"),
            "Too many requests hit the API too quickly (simulated).",
            None,
        ),
        Some(_) => stripe_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            None,
            "An unexpected error occurred on Stripe's end (simulated).",
            None,
        ),
        None => next.run(request).await,
    }
}

/// `Idempotency-Key` on every POST, as Stripe keeps it: the first answer of a request that ran
/// (a success, a card decline, a server error) is replayed to every retry with the same key and
/// the same endpoint and parameters, marked `Idempotent-Replayed: true`; the same key with other
/// parameters is an `idempotency_error`; a retry while the first is still running is a 409.
/// Requests refused before they ran (bad parameters, no such object, auth) are not kept, so
/// they can be retried fixed under the same key.
async fn idempotency(
    State(sim): State<Simulator>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let key = request.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let Some(key) = key.filter(|_| request.method() == axum::http::Method::POST) else {
        return next.run(request).await;
    };
    if key.len() > 255 {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            "Idempotency keys are at most 255 characters.",
            None,
        );
    }
    // A replay hands back what the first answer held (a client secret, say): only to a caller
    // with a usable key, and only the same key (it is part of the fingerprint below). A
    // publishable key is checked with its client secret by the handler; both are in the
    // fingerprint.
    let credential = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    if !credential.starts_with("pk_test_") {
        if let Err(r) = authorize(request.headers()) {
            return r;
        }
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            "The request body is too large.",
            None,
        );
    };
    let fingerprint =
        format!("{credential} {} {}", parts.uri.path(), serde_json::to_string(&form(&body)).unwrap_or_default());
    {
        let mut state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.idempotency.get(&key) {
            Some(Idempotent::Answered(first, _, _) | Idempotent::InFlight(first)) if *first != fingerprint => {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    None,
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                    None,
                );
            }
            Some(Idempotent::Answered(_, status, answer)) => {
                let mut r =
                    (*status, [(axum::http::header::CONTENT_TYPE, "application/json")], answer.clone()).into_response();
                r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
                return r;
            }
            Some(Idempotent::InFlight(_)) => {
                return stripe_error(
                    StatusCode::CONFLICT,
                    "idempotency_error",
                    Some("idempotency_key_in_use"),
                    "There is currently another in-progress request using this Idempotency-Key. Please try again later.",
                    None,
                );
            }
            None => {
                state.idempotency.insert(key.clone(), Idempotent::InFlight(fingerprint.clone()));
            }
        }
    }
    // Should this request never finish (dropped, or a handler panics), the key is freed again
    // rather than answering "in progress" for ever.
    let mut in_flight = InFlightKey { sim: sim.clone(), key: Some(key) };
    let response = next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(body))).await;
    let (parts, body) = response.into_parts();
    let answer = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let ran =
        parts.status.is_success() || parts.status == StatusCode::PAYMENT_REQUIRED || parts.status.is_server_error();
    if ran {
        if let Some(key) = in_flight.key.take() {
            let mut state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.idempotency.insert(key, Idempotent::Answered(fingerprint, parts.status, answer.clone()));
        }
    }
    drop(in_flight);
    Response::from_parts(parts, axum::body::Body::from(answer))
}

/// An Idempotency-Key marked in flight; removed on drop unless its answer was stored.
struct InFlightKey {
    sim: Simulator,
    key: Option<String>,
}

impl Drop for InFlightKey {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.sim.state.lock().unwrap_or_else(PoisonError::into_inner).idempotency.remove(&key);
        }
    }
}

async fn get_faults(State(sim): State<Simulator>) -> Response {
    Json(sim.faults()).into_response()
}

async fn set_faults(State(sim): State<Simulator>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", None, &format!("faults: {e}"), None)
        }
    };
    match sim.set_faults(faults) {
        Ok(()) => Json(sim.faults()).into_response(),
        Err(e) => stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", None, &e, None),
    }
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
        Err(stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("api_key_expired"),
            "The Stripe simulator runs in test mode only and refuses live keys.",
            None,
        ))
    } else {
        Err(stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            "You did not provide an API key. Provide it in the Authorization header as `Bearer sk_test_...`.",
            None,
        ))
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
    // Idempotency-Key is handled for every POST by the `idempotency` layer.
    let fields = form(&body);
    let mut state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    match new_payment_intent(&fields) {
        Ok(pi) => {
            state.intents.push(pi.clone());
            sim.emit(&mut state, "payment_intent.created", &pi);
            Json(pi).into_response()
        }
        Err((param, code, message)) => {
            stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", Some(code), &message, Some(param))
        }
    }
}

/// A new PaymentIntent from the create parameters, or the parameter at fault with Stripe's
/// error code and message.
fn new_payment_intent(fields: &BTreeMap<String, String>) -> Result<Value, (&'static str, &'static str, String)> {
    let amount: i64 = fields
        .get("amount")
        .ok_or(("amount", "parameter_missing", "Missing required param: amount.".to_string()))?
        .parse()
        .map_err(|_| ("amount", "parameter_invalid_integer", "Invalid integer: amount.".to_string()))?;
    if !(MIN_AMOUNT..=MAX_AMOUNT).contains(&amount) {
        return Err((
            "amount",
            if amount < MIN_AMOUNT { "amount_too_small" } else { "amount_too_large" },
            format!("Amount must be between {MIN_AMOUNT} and {MAX_AMOUNT} in the currency's minor unit."),
        ));
    }
    let currency = fields
        .get("currency")
        .ok_or(("currency", "parameter_missing", "Missing required param: currency.".to_string()))?
        .to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(("currency", "parameter_invalid_string", format!("Invalid currency: {currency}.")));
    }
    let mut metadata = Map::new();
    for (k, v) in fields {
        if let Some(name) = k.strip_prefix("metadata[").and_then(|k| k.strip_suffix(']')) {
            // Stripe's limits: 50 keys, key ≤ 40 characters, value ≤ 500.
            if name.is_empty() || name.len() > 40 || v.len() > 500 || metadata.len() >= 50 {
                return Err((
                    "metadata",
                    "parameter_invalid_string",
                    "Metadata keys are 1-40 characters, values at most 500, at most 50 keys.".into(),
                ));
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

async fn retrieve_payment_intent(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    // Stripe.js retrieves with the publishable key and the client secret; servers with the
    // secret key. The client secret check is the same one confirm makes.
    if let Ok(pi) = find_intent_ref(&state, &id) {
        if let Err(r) = authorize_confirm(&headers, &form(query.unwrap_or_default().as_bytes()), pi) {
            return r;
        }
    } else if let Err(r) = authorize(&headers) {
        return r;
    }
    retrieve(&state.intents, &id, "payment_intent", "intent")
}

async fn list_payment_intents(State(sim): State<Simulator>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Err(r) = authorize(&headers) {
        return r;
    }
    let q = form(query.unwrap_or_default().as_bytes());
    let int = |name: &str| -> Result<Option<i64>, Response> {
        q.get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    stripe_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request_error",
                        None,
                        &format!("Invalid integer: {name}."),
                        Some(name),
                    )
                })
            })
            .transpose()
    };
    let (gte, lte, gt, lt, exact, limit) = match (
        int("created[gte]"),
        int("created[lte]"),
        int("created[gt]"),
        int("created[lt]"),
        int("created"),
        int("limit"),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d), Ok(e), Ok(f)) => (a, b, c, d, e, f),
        (Err(r), ..)
        | (_, Err(r), ..)
        | (_, _, Err(r), ..)
        | (_, _, _, Err(r), ..)
        | (_, _, _, _, Err(r), _)
        | (.., Err(r)) => return r,
    };
    let limit = limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return limit_out_of_range();
    }
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    let matching: Vec<&Value> = state
        .intents
        .iter()
        .rev()
        .filter(|pi| {
            let c = pi["created"].as_i64().unwrap_or_default();
            gte.is_none_or(|v| c >= v)
                && lte.is_none_or(|v| c <= v)
                && gt.is_none_or(|v| c > v)
                && lt.is_none_or(|v| c < v)
                && exact.is_none_or(|v| c == v)
        })
        .collect();
    list_page(&matching, q.get("starting_after"), limit as usize, "payment_intent", "/v1/payment_intents")
}

/// One page of a Stripe list, newest first: `starting_after` an id of `matching`, at most
/// `limit` objects, and whether more follow.
/// Stripe's answer to a list `limit` outside 1..=100.
fn limit_out_of_range() -> Response {
    stripe_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        None,
        "Limit must be between 1 and 100.",
        Some("limit"),
    )
}

fn list_page(matching: &[&Value], starting_after: Option<&String>, limit: usize, object: &str, url: &str) -> Response {
    let start = match starting_after {
        Some(after) => match matching.iter().position(|o| o["id"] == after.as_str()) {
            Some(i) => i + 1,
            None => return no_such(object, after, "starting_after"),
        },
        None => 0,
    };
    let page: Vec<Value> = matching.iter().skip(start).take(limit).map(|v| (*v).clone()).collect();
    let has_more = matching.len() > start + page.len();
    Json(json!({"object": "list", "data": page, "has_more": has_more, "url": url})).into_response()
}

/// Checks a key that may confirm: a secret test key, or a publishable test key together with
/// the PaymentIntent's client secret (what Stripe.js sends from the browser).
fn authorize_confirm(headers: &HeaderMap, fields: &BTreeMap<String, String>, pi: &Value) -> Result<(), Response> {
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if key.starts_with("pk_test_") {
        return if fields.get("client_secret").map(String::as_str) == pi["client_secret"].as_str() {
            Ok(())
        } else {
            Err(stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("payment_intent_invalid_parameter"),
                "The client_secret provided does not match the client_secret associated with the PaymentIntent.",
                Some("client_secret"),
            ))
        };
    }
    authorize(headers)
}

/// What a test card does, as Stripe documents for test mode.
enum CardOutcome {
    Succeeds,
    /// Succeeds, then the cardholder disputes the charge.
    SucceedsThenDisputed,
    RequiresAuthentication,
    Declined {
        decline_code: &'static str,
        message: &'static str,
    },
}

/// What a test card number does, and its last four digits (of the cleaned digits: the number as
/// typed may hold spaces of any width, and cutting that by bytes could split a character).
fn card_outcome(number: &str) -> Result<(CardOutcome, String), Response> {
    let digits: String = number.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if digits.len() < 12 || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) || !luhn(&digits) {
        return Err(stripe_error(
            StatusCode::PAYMENT_REQUIRED,
            "card_error",
            Some("incorrect_number"),
            "Your card number is incorrect.",
            Some("payment_method_data[card][number]"),
        ));
    }
    let outcome = match digits.as_str() {
        "4242424242424242" | "5555555555554444" => CardOutcome::Succeeds,
        "4000002500003155" | "4000002760003184" => CardOutcome::RequiresAuthentication,
        "4000000000000002" => {
            CardOutcome::Declined { decline_code: "generic_decline", message: "Your card was declined." }
        }
        "4000000000009995" => {
            CardOutcome::Declined { decline_code: "insufficient_funds", message: "Your card has insufficient funds." }
        }
        "4000000000000259" => CardOutcome::SucceedsThenDisputed,
        _ => CardOutcome::Declined {
            decline_code: "test_mode_live_card",
            message: "Your card was declined. Your request was in test mode, but used a non test card.",
        },
    };
    Ok((outcome, digits[digits.len() - 4..].to_string()))
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Stripe's ready-made test PaymentMethods, mapped to their card numbers.
fn test_payment_method_number(pm: &str) -> Option<&'static str> {
    Some(match pm {
        "pm_card_visa" => "4242424242424242",
        "pm_card_mastercard" => "5555555555554444",
        "pm_card_authenticationRequired" | "pm_card_threeDSecure2Required" => "4000002500003155",
        "pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined" => "4000000000000002",
        "pm_card_chargeDeclinedInsufficientFunds" | "pm_card_visa_chargeDeclinedInsufficientFunds" => {
            "4000000000009995"
        }
        "pm_card_createDispute" => "4000000000000259",
        _ => return None,
    })
}

fn find_intent_ref<'a>(state: &'a SimState, id: &str) -> Result<&'a Value, Response> {
    state.intents.iter().find(|pi| pi["id"] == id).ok_or_else(|| no_such("payment_intent", id, "intent"))
}

fn find_intent<'a>(state: &'a mut SimState, id: &str) -> Result<&'a mut Value, Response> {
    state.intents.iter_mut().find(|pi| pi["id"] == id).ok_or_else(|| no_such("payment_intent", id, "intent"))
}

fn unexpected_state(pi: &Value, action: &str) -> Response {
    stripe_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        Some("payment_intent_unexpected_state"),
        &format!(
            "You cannot {action} this PaymentIntent because it has a status of {}.",
            pi["status"].as_str().unwrap_or("unknown")
        ),
        None,
    )
}

async fn confirm_payment_intent(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    let mut guard = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    let state = &mut *guard;
    let pi = match find_intent(state, &id) {
        Ok(pi) => pi,
        Err(r) => return r,
    };
    if let Err(r) = authorize_confirm(&headers, &fields, pi) {
        return r;
    }
    if !matches!(pi["status"].as_str(), Some("requires_payment_method" | "requires_confirmation")) {
        return unexpected_state(pi, "confirm");
    }
    let number = match (fields.get("payment_method_data[card][number]"), fields.get("payment_method")) {
        (Some(n), _) => n.clone(),
        (None, Some(pm)) => match test_payment_method_number(pm) {
            Some(n) => n.to_string(),
            None => {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    Some("resource_missing"),
                    &format!("No such PaymentMethod: '{pm}'"),
                    Some("payment_method"),
                )
            }
        },
        (None, None) => {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("payment_intent_unexpected_state"),
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                Some("payment_method"),
            )
        }
    };
    let (outcome, last4) = match card_outcome(&number) {
        Ok(o) => o,
        Err(r) => return r,
    };
    state.card_last4.insert(id.clone(), last4.clone());
    let pi = find_intent(state, &id).expect("found above");
    pi["payment_method"] = json!(format!("pm_sim{}", random_token(20)));
    pi["last_payment_error"] = Value::Null;
    match outcome {
        CardOutcome::Succeeds | CardOutcome::SucceedsThenDisputed => {
            let disputed = matches!(outcome, CardOutcome::SucceedsThenDisputed);
            Json(sim.settle(state, &id, &last4, disputed)).into_response()
        }
        CardOutcome::RequiresAuthentication => {
            pi["status"] = json!("requires_action");
            pi["next_action"] = json!({
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": format!("/_simulator/payment_intents/{id}/authenticate")}
            });
            let pi = pi.clone();
            sim.emit(state, "payment_intent.requires_action", &pi);
            Json(pi).into_response()
        }
        CardOutcome::Declined { decline_code, message } => {
            let error = json!({"type": "card_error", "code": "card_declined", "decline_code": decline_code, "message": message});
            pi["status"] = json!("requires_payment_method");
            pi["last_payment_error"] = error.clone();
            let pi = pi.clone();
            sim.emit(state, "payment_intent.payment_failed", &pi);
            let mut body = error;
            body["payment_intent"] = pi;
            (StatusCode::PAYMENT_REQUIRED, Json(json!({"error": body}))).into_response()
        }
    }
}

impl Simulator {
    /// A payment the card accepted: `succeeded` now, or, with the `processing_ms` fault,
    /// `processing` now and `succeeded` that much later (as Stripe does for payment methods
    /// that settle later), each step with its events. Returns the PaymentIntent as it stands.
    fn settle(&self, state: &mut SimState, id: &str, last4: &str, disputed: bool) -> Value {
        let processing_ms = self.faults().processing_ms;
        let pi = find_intent(state, id).expect("the caller found it");
        if processing_ms == 0 {
            return self.succeed_now(state, id, last4, disputed);
        }
        pi["status"] = json!("processing");
        pi["next_action"] = Value::Null;
        let pi = pi.clone();
        self.emit(state, "payment_intent.processing", &pi);
        let (sim, id, last4) = (self.clone(), id.to_string(), last4.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(processing_ms)).await;
            let mut guard = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
            let state = &mut *guard;
            // Canceled meanwhile (or otherwise moved on): nothing settles.
            if find_intent(state, &id).is_ok_and(|pi| pi["status"] == "processing") {
                sim.succeed_now(state, &id, &last4, disputed);
            }
        });
        pi
    }

    fn succeed_now(&self, state: &mut SimState, id: &str, last4: &str, disputed: bool) -> Value {
        let pi = find_intent(state, id).expect("the caller found it");
        let (pi, events) = succeed(pi, last4, disputed);
        state.charges.push(events[0].1.clone());
        for (event_type, object) in events {
            if event_type == "charge.dispute.created" {
                // A cardholder disputes after the payment, not with it: the dispute comes
                // DISPUTE_AFTER_MS later, as its own delivery.
                let sim = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(DISPUTE_AFTER_MS)).await;
                    let mut guard = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
                    sim.emit(&mut guard, event_type, &object);
                });
            } else {
                self.emit(state, event_type, &object);
            }
        }
        pi
    }
}

/// How long after a 4000 0000 0000 0259 payment succeeds its dispute is opened.
const DISPUTE_AFTER_MS: u64 = 1000;

/// Moves a PaymentIntent to `succeeded` with a charge; returns it and the events to emit.
fn succeed(pi: &mut Value, last4: &str, disputed: bool) -> (Value, Vec<(&'static str, Value)>) {
    let charge_id = format!("ch_sim{}", random_token(20));
    let now = chrono::Utc::now().timestamp();
    pi["status"] = json!("succeeded");
    pi["amount_received"] = pi["amount"].clone();
    pi["latest_charge"] = json!(charge_id);
    pi["next_action"] = Value::Null;
    let charge = json!({
        "id": charge_id, "object": "charge", "amount": pi["amount"], "amount_captured": pi["amount"],
        "amount_refunded": 0, "captured": true, "created": now, "currency": pi["currency"],
        "disputed": disputed, "livemode": false, "metadata": pi["metadata"], "paid": true,
        "payment_intent": pi["id"], "payment_method": pi["payment_method"],
        "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": last4}},
        "refunded": false, "status": "succeeded",
    });
    // The charge comes first: callers keep events[0] as the PaymentIntent's charge.
    let mut events = vec![("charge.succeeded", charge.clone()), ("payment_intent.succeeded", pi.clone())];
    if disputed {
        events.push((
            "charge.dispute.created",
            json!({
                "id": format!("dp_sim{}", random_token(20)), "object": "dispute", "amount": pi["amount"],
                "charge": charge_id, "created": now, "currency": pi["currency"], "livemode": false,
                "payment_intent": pi["id"], "reason": "fraudulent", "status": "needs_response", "metadata": {},
            }),
        ));
    }
    (pi.clone(), events)
}

/// The simulator's 3-D Secure challenge: `outcome=complete` or `outcome=fail`.
async fn authenticate_payment_intent(State(sim): State<Simulator>, Path(id): Path<String>, body: Bytes) -> Response {
    let fields = form(&body);
    let mut guard = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    let state = &mut *guard;
    let last4 = state.card_last4.get(&id).cloned().unwrap_or_default();
    let pi = match find_intent(state, &id) {
        Ok(pi) => pi,
        Err(r) => return r,
    };
    if pi["status"] != "requires_action" {
        return unexpected_state(pi, "authenticate");
    }
    match fields.get("outcome").map(String::as_str) {
        Some("complete") => Json(sim.settle(state, &id, &last4, false)).into_response(),
        Some("fail") => {
            pi["status"] = json!("requires_payment_method");
            pi["next_action"] = Value::Null;
            pi["last_payment_error"] = json!({
                "type": "invalid_request_error", "code": "payment_intent_authentication_failure",
                "message": "We are unable to authenticate your payment method. Please choose a different payment method and try again.",
            });
            let pi = pi.clone();
            sim.emit(state, "payment_intent.payment_failed", &pi);
            Json(pi).into_response()
        }
        _ => stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            "outcome must be complete or fail",
            Some("outcome"),
        ),
    }
}

async fn cancel_payment_intent(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&headers) {
        return r;
    }
    let fields = form(&body);
    let mut guard = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    let state = &mut *guard;
    let pi = match find_intent(state, &id) {
        Ok(pi) => pi,
        Err(r) => return r,
    };
    if matches!(pi["status"].as_str(), Some("succeeded" | "canceled")) {
        return unexpected_state(pi, "cancel");
    }
    pi["status"] = json!("canceled");
    pi["canceled_at"] = json!(chrono::Utc::now().timestamp());
    pi["cancellation_reason"] = fields.get("cancellation_reason").map_or(json!("requested_by_customer"), |r| json!(r));
    pi["next_action"] = Value::Null;
    let pi = pi.clone();
    sim.emit(state, "payment_intent.canceled", &pi);
    Json(pi).into_response()
}

async fn list_events(State(sim): State<Simulator>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Err(r) = authorize(&headers) {
        return r;
    }
    let q = form(query.unwrap_or_default().as_bytes());
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 10,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => return limit_out_of_range(),
    };
    let types: Vec<&String> =
        q.iter().filter(|(k, _)| *k == "type" || k.starts_with("types[")).map(|(_, v)| v).collect();
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    let matching: Vec<&Value> = state
        .events
        .iter()
        .rev()
        .filter(|e| types.is_empty() || types.iter().any(|t| e["type"] == t.as_str()))
        .collect();
    list_page(&matching, q.get("starting_after"), limit, "event", "/v1/events")
}

async fn retrieve_event(State(sim): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorize(&headers) {
        return r;
    }
    let state = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    retrieve(&state.events, &id, "event", "id")
}

/// Stripe's answer to a retrieve: the object with this id, or its 404 `resource_missing`.
fn retrieve(objects: &[Value], id: &str, object: &str, param: &str) -> Response {
    match objects.iter().find(|o| o["id"] == id) {
        Some(o) => Json(o.clone()).into_response(),
        None => no_such(object, id, param),
    }
}

fn no_such(object: &str, id: &str, param: &str) -> Response {
    stripe_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such {object}: '{id}'"),
        Some(param),
    )
}

async fn list_deliveries(State(sim): State<Simulator>) -> Response {
    Json(sim.deliveries()).into_response()
}

/// Refunds all or part of a succeeded PaymentIntent's charge (`payment_intent`, optional
/// `amount`; the default is what remains). Emits `charge.refunded` with the updated charge.
async fn create_refund(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorize(&headers) {
        return r;
    }
    let fields = form(&body);
    let Some(pi_id) = fields.get("payment_intent").cloned() else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("parameter_missing"),
            "Missing required param: payment_intent.",
            Some("payment_intent"),
        );
    };
    let mut guard = sim.state.lock().unwrap_or_else(PoisonError::into_inner);
    let state = &mut *guard;
    if let Err(r) = find_intent(state, &pi_id) {
        return r;
    }
    let Some(charge) = state.charges.iter_mut().find(|c| c["payment_intent"] == pi_id.as_str()) else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("charge_not_refundable"),
            &format!("PaymentIntent {pi_id} has no successful charge to refund."),
            Some("payment_intent"),
        );
    };
    let captured = charge["amount_captured"].as_i64().unwrap_or_default();
    let refunded = charge["amount_refunded"].as_i64().unwrap_or_default();
    let remaining = captured - refunded;
    let amount = match fields.get("amount").map(|a| a.parse::<i64>()) {
        None => remaining,
        Some(Ok(a)) => a,
        Some(Err(_)) => {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                "Invalid integer: amount.",
                Some("amount"),
            )
        }
    };
    if remaining <= 0 {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("charge_already_refunded"),
            &format!("Charge {} has already been refunded.", charge["id"].as_str().unwrap_or_default()),
            None,
        );
    }
    if amount <= 0 || amount > remaining {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("amount_too_large"),
            &format!("Refund amount ({amount}) must be between 1 and the {remaining} not yet refunded."),
            Some("amount"),
        );
    }
    charge["amount_refunded"] = json!(refunded + amount);
    charge["refunded"] = json!(refunded + amount == captured);
    let refund = json!({
        "id": format!("re_sim{}", random_token(20)), "object": "refund", "amount": amount,
        "charge": charge["id"], "created": chrono::Utc::now().timestamp(), "currency": charge["currency"],
        "metadata": {}, "payment_intent": pi_id, "reason": fields.get("reason"), "status": "succeeded",
    });
    let charge = charge.clone();
    sim.emit(state, "charge.refunded", &charge);
    Json(refund).into_response()
}
