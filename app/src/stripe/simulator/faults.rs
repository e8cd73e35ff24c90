//! Fault injection: the failures Stripe and networks really produce, on demand, so reliability
//! tests can show the app survives them. Set per run (`Simulator::set_faults`) or through
//! `POST /_simulator/faults` (JSON), read back with `GET /_simulator/faults`.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Deliver each event this many times, concurrently (Stripe may deliver more than once).
    pub copies: u32,
    /// Wait this long before the first delivery attempt of each event.
    pub delay_ms: u64,
    /// Record events but never deliver them (a delivery lost for good).
    pub drop: bool,
    /// Hold each event back by how early its step is in a payment's life (created 900 ms,
    /// requires_action or processing 600 ms, charge.succeeded 300 ms, the rest 0), counted
    /// from when it is emitted: events emitted within that window arrive latest step first
    /// (Stripe does not guarantee order).
    pub out_of_order: bool,
    /// Sign with a secret the endpoint does not know.
    pub wrong_secret: bool,
    /// Sign with a timestamp ten minutes old, outside any endpoint's tolerance.
    pub stale_timestamp: bool,
    /// Hold every API call this long before answering it (a Stripe that is slow or does not
    /// answer at all: the client's deadline must end the wait, not the buyer's patience).
    pub api_delay_ms: u64,
    /// Answer the next `api_error_count` API calls with this status (500 or 429).
    pub api_error_status: Option<u16>,
    pub api_error_count: u32,
    /// Accepted payments stay `processing` this long before they succeed (0: at once). Cards
    /// settle at once on Stripe; this stands in for payment methods that do not, so the app's
    /// "processing" and "still waiting" states can be exercised.
    pub processing_ms: u64,
    /// How long after it is made a refund of the 4000 0000 0000 5126 card fails (Stripe: the
    /// card was closed, so the bank sends the money back later).
    pub refund_failure_ms: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            copies: 1,
            delay_ms: 0,
            drop: false,
            out_of_order: false,
            wrong_secret: false,
            stale_timestamp: false,
            api_delay_ms: 0,
            api_error_status: None,
            api_error_count: 0,
            processing_ms: 0,
            refund_failure_ms: 1000,
        }
    }
}

impl Faults {
    /// Refuses settings that make no sense rather than half-applying them.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=50).contains(&self.copies) {
            return Err("copies must be between 1 and 50".into());
        }
        if self.delay_ms > 600_000 {
            return Err("delay_ms must be at most 600000 (10 minutes)".into());
        }
        if self.api_delay_ms > 600_000 {
            return Err("api_delay_ms must be at most 600000 (10 minutes)".into());
        }
        if self.processing_ms > 600_000 {
            return Err("processing_ms must be at most 600000 (10 minutes)".into());
        }
        if self.refund_failure_ms > 600_000 {
            return Err("refund_failure_ms must be at most 600000 (10 minutes)".into());
        }
        match self.api_error_status {
            None | Some(500) | Some(429) => Ok(()),
            Some(other) => Err(format!("api_error_status must be 500 or 429, not {other}")),
        }
    }
}
