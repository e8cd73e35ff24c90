//! Webhook delivery as Stripe does it: POST the event JSON with `Stripe-Signature:
//! t=...,v1=...` (a fresh timestamp and signature per attempt), retry non-2xx answers with
//! exponential backoff, and log every attempt.
use super::faults::Faults;
use crate::stripe::signature::sign;
use crate::stripe::WebhookSecret;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Where and how the simulator delivers webhooks.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The endpoint to POST events to, e.g. `http://127.0.0.1:3000/webhooks/stripe`.
    pub url: String,
    /// The endpoint's signing secret.
    pub secret: WebhookSecret,
    /// First retry delay; doubles per attempt (Stripe's own scale is hours: tests shrink it).
    pub retry_base: Duration,
    /// Attempts before giving up on a delivery.
    pub max_attempts: u32,
}

/// A fresh endpoint secret for an in-process simulator and the app that verifies it.
pub fn random_webhook_secret() -> WebhookSecret {
    use rand::Rng;
    let bytes: [u8; 24] = rand::thread_rng().gen();
    WebhookSecret::parse(&format!("whsec_sim{}", hex::encode(bytes))).expect("well-formed")
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryAttempt {
    pub event_id: String,
    pub event_type: String,
    pub attempt: u32,
    /// The endpoint's HTTP status, or None if it could not be reached.
    pub status: Option<u16>,
    /// The start of the endpoint's answer (what it said, for a failed delivery).
    pub answer: Option<String>,
    pub error: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The longest answer the log keeps, in characters.
const ANSWER_CHARS: usize = 500;

/// How long the `out_of_order` fault holds an event back: the earlier its step in a payment's
/// life, the longer, so later steps emitted soon after overtake earlier ones (Stripe does not
/// promise order, and `payment_intent.succeeded` before `.created` must still credit once).
fn holdback_ms(event_type: &str) -> u64 {
    match event_type {
        "payment_intent.created" => 900,
        "payment_intent.requires_action" | "payment_intent.processing" => 600,
        "charge.succeeded" => 300,
        _ => 0,
    }
}

pub(super) fn deliver(
    config: WebhookConfig,
    faults: Faults,
    event_id: String,
    event_type: String,
    body: String,
    log: Arc<Mutex<Vec<DeliveryAttempt>>>,
    delivered: Arc<AtomicBool>,
) {
    if faults.drop {
        tracing::info!(event_id, "simulator fault: delivery dropped");
        return;
    }
    for _ in 0..faults.copies.max(1) {
        let (config, faults, event_id, event_type, body, log, delivered) = (
            config.clone(),
            faults.clone(),
            event_id.clone(),
            event_type.clone(),
            body.clone(),
            log.clone(),
            delivered.clone(),
        );
        tokio::spawn(async move { deliver_one(config, faults, event_id, event_type, body, log, delivered).await });
    }
}

async fn deliver_one(
    config: WebhookConfig,
    faults: Faults,
    event_id: String,
    event_type: String,
    body: String,
    log: Arc<Mutex<Vec<DeliveryAttempt>>>,
    delivered: Arc<AtomicBool>,
) {
    let mut delay = Duration::from_millis(faults.delay_ms);
    if faults.out_of_order {
        delay += Duration::from_millis(holdback_ms(&event_type));
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let secret = if faults.wrong_secret {
        WebhookSecret::parse("whsec_simulator_wrong_secret").expect("well-formed")
    } else {
        config.secret.clone()
    };
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    for attempt in 1..=config.max_attempts {
        let skew = if faults.stale_timestamp { 600 } else { 0 };
        let header = sign(body.as_bytes(), &secret, chrono::Utc::now().timestamp() - skew);
        let request = hyper::Request::post(&config.url)
            .header("content-type", "application/json; charset=utf-8")
            .header("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks) simulator")
            .header("stripe-signature", header)
            .body(Full::new(Bytes::from(body.clone())));
        let (status, answer, error) = match request {
            Ok(request) => match client.request(request).await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    let answer = res.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let answer = String::from_utf8_lossy(&answer).chars().take(ANSWER_CHARS).collect();
                    (Some(status), Some(answer), None)
                }
                Err(e) => (None, None, Some(e.to_string())),
            },
            Err(e) => (None, None, Some(e.to_string())),
        };
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        if ok {
            // Before the log says so, so whoever sees the 2xx in the log sees it delivered.
            delivered.store(true, Ordering::SeqCst);
        }
        log.lock().unwrap_or_else(PoisonError::into_inner).push(DeliveryAttempt {
            event_id: event_id.clone(),
            event_type: event_type.clone(),
            attempt,
            status,
            answer,
            error,
            at: chrono::Utc::now(),
        });
        if ok {
            return;
        }
        if attempt < config.max_attempts {
            tokio::time::sleep(config.retry_base * 2u32.saturating_pow(attempt - 1)).await;
        }
    }
    tracing::warn!(event_id, "simulator gave up delivering a webhook");
}
