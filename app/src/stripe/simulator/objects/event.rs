//! The Event object: what every change emits, with the object as it then stood.
//! `pending_webhooks` says whether the endpoint has had it yet: 1 until an attempt got a 2xx,
//! then 0.
use crate::stripe::simulator::wire::{new_id, now, object, RequestInfo};
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The API version the simulator renders objects in: the one async-stripe pins (what
/// `api_version` on events says). Since 2024-10-28 every refund emits `refund.*` events.
pub const API_VERSION: &str = "2026-09-30.endive";

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: String,
    pub object: &'static str,
    pub api_version: &'static str,
    pub created: i64,
    pub data: EventData,
    pub livemode: bool,
    pub pending_webhooks: u8,
    pub request: RequestInfo,
    #[serde(rename = "type")]
    pub kind: String,
    /// Set by the delivery that gets a 2xx.
    #[serde(skip)]
    pub delivered: Arc<AtomicBool>,
    /// Whether there is an endpoint to deliver to at all.
    #[serde(skip)]
    pub has_endpoint: bool,
}
object!(Event);

#[derive(Debug, Clone, Serialize)]
pub struct EventData {
    pub object: Value,
    /// For `*.updated` events: the changed fields' values before the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_attributes: Option<Value>,
}

impl Event {
    /// A new event of type `kind` about `object`, made in `request`, for an endpoint to
    /// receive if there is one.
    pub fn new(
        kind: &str,
        object: &impl Serialize,
        previous_attributes: Option<Value>,
        request: &RequestInfo,
        has_endpoint: bool,
    ) -> Self {
        Self {
            id: new_id("evt"),
            object: "event",
            api_version: API_VERSION,
            created: now(),
            data: EventData { object: serde_json::to_value(object).unwrap_or_default(), previous_attributes },
            livemode: false,
            pending_webhooks: u8::from(has_endpoint),
            request: request.clone(),
            kind: kind.to_string(),
            delivered: Arc::default(),
            has_endpoint,
        }
    }

    /// Not yet received by the endpoint: still pending, dropped, or every attempt failed.
    pub fn pending(&self) -> bool {
        self.has_endpoint && !self.delivered.load(Ordering::SeqCst)
    }

    pub fn render(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        value["pending_webhooks"] = u8::from(self.pending()).into();
        value
    }

    /// Whether this event matches a `type` filter, where `*` stands for any run of characters
    /// (`charge.dispute.*`).
    pub fn matches_type(&self, pattern: &str) -> bool {
        type_matches(pattern, &self.kind)
    }
}

fn type_matches(pattern: &str, kind: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = kind.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::type_matches;

    #[test]
    fn type_filters_match_exactly_or_by_wildcard() {
        assert!(type_matches("charge.refunded", "charge.refunded"));
        assert!(!type_matches("charge.refunded", "charge.refunded.x"));
        assert!(type_matches("charge.dispute.*", "charge.dispute.created"));
        assert!(type_matches("charge.dispute.*", "charge.dispute.funds_withdrawn"));
        assert!(!type_matches("charge.dispute.*", "charge.refunded"));
        assert!(type_matches("*.created", "refund.created"));
        assert!(type_matches("charge.*.created", "charge.dispute.created"));
        assert!(!type_matches("charge.*.created", "charge.dispute.closed"));
        assert!(type_matches("*", "payment_intent.succeeded"));
    }
}
