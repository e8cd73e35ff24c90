//! The Stripe simulator: a local stand-in for Stripe that speaks its wire formats
//! (form-encoded requests with bracketed keys, JSON objects shaped like Stripe's, Stripe's
//! error object and status codes, idempotency keys, signed webhooks), so production code paths
//! (async-stripe, our signature check) run unchanged against it. Test mode only: a live key is
//! refused. State is in memory. Objects and events are rendered as API version
//! [`API_VERSION`], the one async-stripe pins.
//!
//! One module per resource, as Stripe's API reference is organised, so each can be checked
//! against its page:
//! - `payment_intents`: create, retrieve, list (`latest_charge` expandable), confirm with
//!   Stripe's test cards (`objects::cards`), 3-D Secure completion or failure, cancel;
//! - `charges`: retrieve (`refunds` expandable), list by PaymentIntent;
//! - `refunds`: create (full or partial, by PaymentIntent or charge), retrieve, list; the
//!   4000 0000 0000 5126 card's refunds fail later, the 7726 card's wait `pending` until settled;
//! - `disputes`: retrieve, list, update (evidence), close; opened by the 0259 card or on demand;
//! - `early_fraud_warnings` (Radar): retrieve, list;
//! - `events`: retrieve, list with Stripe's filters, each event's delivery state;
//! - `control`: the simulator's own controls (what the cardholder, bank or network would do,
//!   as methods and `/_simulator/` endpoints; delivery log; faults) and the Stripe.js stand-in;
//! - `webhooks`: delivery with Stripe's signature, retries with exponential backoff and a
//!   delivery log; `faults`: duplicate, delayed, dropped, reordered or mis-signed deliveries,
//!   API 500/429, slow settlement, when a refund fails.
//!
//! Beneath the resources, in layers, each using only those below it:
//! - `http`: what every endpoint does around its handler (API keys, request ids, injected API
//!   errors, idempotency keys);
//! - `handle`: the `Simulator` handle (its tables, faults, where its events go);
//! - `state`: the tables the objects are kept in;
//! - `objects`: Stripe's objects and what each does by itself;
//! - `wire`: Stripe's wire formats (error object, parameters, list pages, ids); `faults`;
//!   `webhooks`.
mod charges;
mod control;
mod disputes;
mod early_fraud_warnings;
mod events;
mod faults;
mod handle;
mod http;
mod objects;
mod payment_intents;
mod refunds;
mod state;
mod webhooks;
mod wire;

pub use faults::Faults;
pub use handle::Simulator;
pub use http::{PUBLISHABLE_KEY, SECRET_KEY};
pub use objects::{DisputeOutcome, RefundSettlement, API_VERSION};
pub use webhooks::{random_webhook_secret, DeliveryAttempt, WebhookConfig};

use axum::Router;

/// Where the app mounts an in-process simulator: same origin, so the browser can reach it.
pub const MOUNT: &str = "/stripe-sim";

/// The simulator's HTTP API: Stripe's `/v1` endpoints and its own `/_simulator` ones.
pub fn router(sim: Simulator) -> Router {
    let api = Router::new()
        .merge(payment_intents::routes())
        .merge(charges::routes())
        .merge(refunds::routes())
        .merge(disputes::routes())
        .merge(early_fraud_warnings::routes())
        .merge(events::routes())
        // Inner layer: injected faults (below) answer before a request counts as executed.
        .layer(axum::middleware::from_fn_with_state(sim.clone(), http::idempotency))
        .layer(axum::middleware::from_fn_with_state(sim.clone(), http::injected_api_errors))
        .layer(axum::middleware::from_fn(http::request_id));
    Router::new().merge(api).merge(control::routes()).with_state(sim)
}

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
