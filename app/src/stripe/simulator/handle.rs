//! The `Simulator` handle: its tables, its faults, where its events go and what was delivered.
//! Cloning it shares all of them. What the cardholder, bank or network would do to a payment
//! (`open_dispute`, `settle_refund`, ...) is in `control`, next to its `/_simulator/` endpoint.
use super::faults::Faults;
use super::objects::Event;
use super::state::SimState;
use super::webhooks::{self, DeliveryAttempt, WebhookConfig};
use super::wire::RequestInfo;
use serde::Serialize;
use serde_json::Value;
// A panic while the state is locked must not take the simulator down for good: its state is
// plain data, valid after any completed step, so a poisoned lock is taken as it stands.
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
        *self.lock_faults() = faults;
        Ok(())
    }

    pub fn faults(&self) -> Faults {
        self.lock_faults().clone()
    }

    /// Every delivery attempt so far.
    pub fn deliveries(&self) -> Vec<DeliveryAttempt> {
        self.deliveries.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The charge of a PaymentIntent (its `latest_charge`), once it has succeeded.
    pub fn charge_id(&self, payment_intent_id: &str) -> Option<String> {
        self.lock().intents.get(payment_intent_id)?.latest_charge.clone()
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

    /// The tables, for one step of the API (held while the step runs, so each is atomic).
    pub(super) fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn lock_faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

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
        let event = Event::new(kind, object, previous_attributes, request, self.webhook.is_some());
        if let Some(config) = &self.webhook {
            webhooks::deliver(
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
