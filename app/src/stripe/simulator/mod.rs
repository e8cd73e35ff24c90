//! The Stripe simulator: a local stand-in for Stripe that speaks its wire formats
//! (form-encoded requests with bracketed keys, JSON objects shaped like Stripe's, Stripe's
//! error object and status codes, idempotency keys, signed webhooks), so production code paths
//! (async-stripe, our signature check) run unchanged against it. Test mode only: a live key is
//! refused. State is in memory.
//!
//! Implemented: PaymentIntents (create, retrieve, list, confirm with Stripe's test cards,
//! 3-D Secure completion or failure, cancel), Refunds (full or partial), Events (list,
//! retrieve), webhook delivery with
//! Stripe's signature, retries with exponential backoff and a delivery log, and fault
//! injection (duplicate, delayed, dropped, reordered or mis-signed deliveries; API 500/429).
mod api;
mod faults;
mod webhooks;

pub use api::{router, Simulator};
pub use faults::Faults;
pub use webhooks::DeliveryAttempt;

use crate::stripe::WebhookSecret;
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

/// The keys an in-process simulator accepts. The simulator refuses live keys, so these can
/// never move money.
pub const SECRET_KEY: &str = "sk_test_simulator";
pub const PUBLISHABLE_KEY: &str = "pk_test_simulator";
/// Where the app mounts an in-process simulator: same origin, so the browser can reach it.
pub const MOUNT: &str = "/stripe-sim";

/// Starts the simulator on `addr` (port 0 picks a free port); returns where it listens.
pub async fn start(
    addr: std::net::SocketAddr,
    sim: Simulator,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(sim);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "Stripe simulator stopped");
        }
    });
    Ok((local, task))
}
