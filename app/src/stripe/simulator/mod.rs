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
//!   Stripe's test cards (`cards`), 3-D Secure completion or failure, cancel;
//! - `charges`: retrieve, list by PaymentIntent;
//! - `refunds`: create (full or partial, by PaymentIntent or charge), retrieve, list; the
//!   4000 0000 0000 5126 card's refunds fail later, the 7726 card's wait `pending` until settled;
//! - `disputes`: retrieve, list, update (evidence), close; opened by the 0259 card or on demand;
//! - `early_fraud_warnings` (Radar): retrieve, list;
//! - `events`: retrieve, list with Stripe's filters, each event's delivery state;
//! - `http`: what all share (error object, keys, parameters, pagination, request ids,
//!   idempotency keys, injected API errors); `state`: the tables they are kept in;
//! - `control`: the simulator's own `/_simulator/` endpoints (what the cardholder, bank or
//!   network would do; delivery log; faults) and the Stripe.js stand-in;
//! - `webhooks`: delivery with Stripe's signature, retries with exponential backoff and a
//!   delivery log; `faults`: duplicate, delayed, dropped, reordered or mis-signed deliveries,
//!   API 500/429, slow settlement, when a refund fails.
mod cards;
mod charges;
mod control;
mod disputes;
mod early_fraud_warnings;
mod events;
mod faults;
mod http;
mod payment_intents;
mod refunds;
mod state;
mod webhooks;

pub use disputes::DisputeOutcome;
pub use events::API_VERSION;
pub use faults::Faults;
pub use refunds::RefundSettlement;
pub use webhooks::DeliveryAttempt;

use self::http::{Params, RequestInfo};
use self::state::SimState;
use crate::stripe::WebhookSecret;
use axum::Router;
// A panic while the state is locked must not take the simulator down for good: its state is
// plain data, valid after any completed step, so a poisoned lock is taken as it stands.
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Simulator {
    state: Arc<Mutex<SimState>>,
    webhook: Option<WebhookConfig>,
    deliveries: Arc<Mutex<Vec<DeliveryAttempt>>>,
    faults: Arc<Mutex<Faults>>,
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

    /// The charge of a PaymentIntent (its `latest_charge`), once it has succeeded.
    pub fn charge_id(&self, payment_intent_id: &str) -> Option<String> {
        self.lock().intents.get(payment_intent_id)?.latest_charge.clone()
    }

    /// The cardholder disputes a succeeded payment now, for what was not refunded, as
    /// `POST /_simulator/payment_intents/{id}/dispute` does. Returns the dispute's id.
    pub fn open_dispute(&self, payment_intent_id: &str) -> Result<String, String> {
        let mut state = self.lock();
        let dispute = disputes::open_for_payment(self, &mut state, payment_intent_id, &Params::default());
        dispute.map(|d| d.id).map_err(|e| e.to_string())
    }

    /// The bank decides a dispute, as `POST /_simulator/disputes/{id}/close` does.
    pub fn close_dispute(&self, dispute_id: &str, outcome: DisputeOutcome) -> Result<(), String> {
        let mut state = self.lock();
        disputes::close(self, &mut state, dispute_id, outcome, &RequestInfo::default())
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// A pending refund (the 4000 0000 0000 7726 card's) ends as `outcome` says, as
    /// `POST /_simulator/refunds/{id}/settle` does.
    pub fn settle_refund(&self, refund_id: &str, outcome: RefundSettlement) -> Result<(), String> {
        let mut state = self.lock();
        refunds::settle(self, &mut state, refund_id, outcome).map(drop).map_err(|e| e.to_string())
    }

    /// The card network warns of fraud on a charge, as
    /// `POST /_simulator/charges/{id}/early_fraud_warning` does. Returns the warning's id.
    pub fn early_fraud_warning(&self, charge_id: &str) -> Result<String, String> {
        let mut state = self.lock();
        early_fraud_warnings::raise(self, &mut state, charge_id).map(|w| w.id).map_err(|e| e.to_string())
    }

    /// Events the webhook endpoint has not received (`pending_webhooks` 1: not yet delivered,
    /// dropped, or every attempt failed), oldest first; what `delivery_success=false` lists.
    pub fn undelivered_event_ids(&self) -> Vec<String> {
        self.lock().events.iter().filter(|e| e.pending()).map(|e| e.id.clone()).collect()
    }

    /// Forgets every event about a payment (its own, its charge's, refunds' and disputes'), as
    /// Stripe has forgotten events older than 30 days: only the objects are left to tell what
    /// happened, which is what reconciliation must then work from.
    pub fn forget_events_of(&self, payment_intent_id: &str) {
        self.lock().events.retain(|e| {
            let o = &e.data.object;
            o["id"] != payment_intent_id && o["payment_intent"] != payment_intent_id
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

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
