//! The simulator's memory: one table per resource, each in creation order (Stripe lists newest
//! first) with an index by id, so a retrieve is a lookup rather than a scan.
use super::objects::{Charge, Dispute, EarlyFraudWarning, Event, PaymentIntent, Refund};
use super::wire::{ApiError, Object};
use axum::body::Bytes;
use axum::http::StatusCode;
use std::collections::HashMap;

/// The objects of one resource, in creation order, indexed by id.
pub(super) struct Table<T> {
    rows: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self { rows: Vec::new(), index: HashMap::new() }
    }
}

impl<T: Object> Table<T> {
    pub fn insert(&mut self, row: T) -> &mut T {
        let at = self.rows.len();
        self.index.insert(row.id().to_string(), at);
        self.rows.push(row);
        &mut self.rows[at]
    }

    pub fn get(&self, id: &str) -> Option<&T> {
        self.index.get(id).map(|&at| &self.rows[at])
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.index.get(id).map(|&at| &mut self.rows[at])
    }

    /// Keeps only the rows `keep` says to (the index is rebuilt).
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.rows.retain(keep);
        self.index = self.rows.iter().enumerate().map(|(at, r)| (r.id().to_string(), at)).collect();
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.rows.iter()
    }

    /// Newest first, as Stripe's lists are; objects created in the same second keep their
    /// creation order.
    pub fn newest_first(&self) -> impl Iterator<Item = &T> {
        self.rows.iter().rev()
    }
}

#[derive(Default)]
pub(super) struct SimState {
    pub intents: Table<PaymentIntent>,
    /// Charges of succeeded PaymentIntents (refunds and disputes update them).
    pub charges: Table<Charge>,
    pub refunds: Table<Refund>,
    pub disputes: Table<Dispute>,
    pub early_fraud_warnings: Table<EarlyFraudWarning>,
    /// Every event emitted.
    pub events: Table<Event>,
    /// Idempotency-Key → the request it was first used with, and its answer once there is one.
    pub idempotency: HashMap<String, Idempotent>,
}

impl SimState {
    /// A PaymentIntent, or Stripe's 404 naming `param`.
    pub fn payment_intent(&self, id: &str, param: &str) -> Result<&PaymentIntent, ApiError> {
        self.intents.get(id).ok_or_else(|| ApiError::no_such("payment_intent", id, param))
    }

    /// A charge, or Stripe's 404 naming `param`.
    pub fn charge(&self, id: &str, param: &str) -> Result<&Charge, ApiError> {
        self.charges.get(id).ok_or_else(|| ApiError::no_such("charge", id, param))
    }
}

/// What an Idempotency-Key stands for.
pub(super) enum Idempotent {
    /// A request with this key is being answered now (fingerprint of that request).
    InFlight(String),
    /// Answered: the fingerprint, and the answer every retry with this key replays.
    Answered(String, StatusCode, Bytes),
}
