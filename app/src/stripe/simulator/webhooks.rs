//! Webhook delivery as Stripe does it: POST the event JSON with `Stripe-Signature:
//! t=...,v1=...` (a fresh timestamp and signature per attempt), retry non-2xx answers with
//! exponential backoff, and log every attempt.
use super::WebhookConfig;
use crate::stripe::signature::sign;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryAttempt {
    pub event_id: String,
    pub attempt: u32,
    /// The endpoint's HTTP status, or None if it could not be reached.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

pub(super) fn deliver(config: WebhookConfig, event_id: String, body: String, log: Arc<Mutex<Vec<DeliveryAttempt>>>) {
    tokio::spawn(async move {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        for attempt in 1..=config.max_attempts {
            let header = sign(body.as_bytes(), &config.secret, chrono::Utc::now().timestamp());
            let request = hyper::Request::post(&config.url)
                .header("content-type", "application/json; charset=utf-8")
                .header("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks) simulator")
                .header("stripe-signature", header)
                .body(Full::new(Bytes::from(body.clone())));
            let (status, error) = match request {
                Ok(request) => match client.request(request).await {
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let _ = res.into_body().collect().await;
                        (Some(status), None)
                    }
                    Err(e) => (None, Some(e.to_string())),
                },
                Err(e) => (None, Some(e.to_string())),
            };
            let ok = status.is_some_and(|s| (200..300).contains(&s));
            log.lock().expect("delivery log").push(DeliveryAttempt {
                event_id: event_id.clone(),
                attempt,
                status,
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
    });
}
