//! Stripe events in business terms: which of them credit a contract, which belong to the
//! external Rate Card Landing Page, and which are only evidence. Pure: the webhook stores the
//! raw bytes first and then asks `route` what the event means.
use super::adjustments::{DisputeStatus, RefundStatus};
use super::money::Currency;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Whether a deployment (or an event) is Stripe test mode or live mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeMode {
    Test,
    Live,
}

impl StripeMode {
    pub fn from_livemode(livemode: bool) -> Self {
        if livemode {
            Self::Live
        } else {
            Self::Test
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Live => "live",
        }
    }
}

/// The fields of an event that we act on. Stripe's object shapes drift between API versions
/// (`api_version` says which one rendered `data.object`), so only these are parsed and the raw
/// body is kept as the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct StripeEvent {
    pub id: String,
    pub event_type: String,
    pub livemode: bool,
    pub api_version: Option<String>,
    /// Unix seconds, Stripe's `created`.
    pub created: i64,
    /// `data.object`, as far as we act on it.
    pub object: EventObject,
}

/// The object an event carries (`data.object`), by its `object` field.
#[derive(Debug, Clone, PartialEq)]
pub enum EventObject {
    PaymentIntent(PaymentIntentFacts),
    Charge(ChargeFacts),
    Refund(RefundFacts),
    Dispute(DisputeFacts),
    EarlyFraudWarning(FraudWarningFacts),
    /// A money object (charge, refund, dispute, fraud warning) that does not read as one: the
    /// event is still authentic, so it is stored and dead-lettered with the reason rather than
    /// refused (a 400 would make Stripe retry for days and lose nothing but our evidence).
    Unreadable {
        object: String,
        reason: String,
    },
    /// Anything else: kept as evidence, not read.
    Other(String),
}

/// A Charge: `charge.refunded` carries it with the cumulative `amount_refunded` (and, since API
/// 2022-11-15, without its refunds).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChargeFacts {
    pub id: String,
    pub payment_intent: Option<String>,
    pub amount: i64,
    #[serde(default)]
    pub amount_refunded: i64,
    pub currency: String,
    #[serde(default)]
    pub refunded: bool,
    #[serde(default)]
    pub disputed: bool,
}

/// A Refund: `refund.created/updated/failed` carry it for every refund since API 2024-10-28.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundFacts {
    pub id: String,
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: RefundStatus,
    pub reason: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// A Dispute: `charge.dispute.*` carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeFacts {
    pub id: String,
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: DisputeStatus,
    pub reason: Option<String>,
}

/// Radar's early fraud warning on a charge.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FraudWarningFacts {
    pub id: String,
    pub charge: String,
    pub payment_intent: Option<String>,
    pub fraud_type: String,
    #[serde(default)]
    pub actionable: bool,
}

#[derive(Deserialize)]
struct RawRefund {
    id: String,
    payment_intent: Option<String>,
    charge: Option<String>,
    amount: i64,
    currency: String,
    status: String,
    reason: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawDispute {
    id: String,
    payment_intent: Option<String>,
    charge: Option<String>,
    amount: i64,
    currency: String,
    status: String,
    reason: Option<String>,
}

impl RefundFacts {
    /// A Refund object as Stripe renders it (in an event or an API answer).
    pub fn from_value(v: serde_json::Value) -> Result<Self, String> {
        let r: RawRefund = serde_json::from_value(v).map_err(|e| format!("not a Refund: {e}"))?;
        if !valid_stripe_id(&r.id, "re_") && !valid_stripe_id(&r.id, "pyr_") {
            return Err(format!("`{}` is not a refund id", truncate(&r.id, 64)));
        }
        check_payment_ref(r.payment_intent.as_deref())?;
        if r.amount <= 0 {
            return Err(format!("refund {} has amount {}", r.id, r.amount));
        }
        Ok(Self {
            status: RefundStatus::parse(&r.status)?,
            currency: Currency::parse(&r.currency)?.as_str().to_string(),
            id: r.id,
            payment_intent: r.payment_intent,
            charge: r.charge,
            amount: r.amount,
            reason: r.reason,
            metadata: r.metadata,
        })
    }
}

impl DisputeFacts {
    pub fn from_value(v: serde_json::Value) -> Result<Self, String> {
        let d: RawDispute = serde_json::from_value(v).map_err(|e| format!("not a Dispute: {e}"))?;
        if !valid_stripe_id(&d.id, "du_") && !valid_stripe_id(&d.id, "dp_") {
            return Err(format!("`{}` is not a dispute id", truncate(&d.id, 64)));
        }
        check_payment_ref(d.payment_intent.as_deref())?;
        Ok(Self {
            status: DisputeStatus::parse(&d.status)?,
            currency: Currency::parse(&d.currency)?.as_str().to_string(),
            id: d.id,
            payment_intent: d.payment_intent,
            charge: d.charge,
            amount: d.amount.max(0),
            reason: d.reason,
        })
    }
}

/// Reads a charge, refund, dispute or early fraud warning.
fn money_object(kind: &str, object: serde_json::Value) -> Result<EventObject, String> {
    Ok(match kind {
        "charge" => {
            let c: ChargeFacts =
                serde_json::from_value(object).map_err(|e| format!("data.object is not a Charge: {e}"))?;
            if !valid_stripe_id(&c.id, "ch_") && !valid_stripe_id(&c.id, "py_") {
                return Err(format!("`{}` is not a charge id", truncate(&c.id, 64)));
            }
            check_payment_ref(c.payment_intent.as_deref())?;
            EventObject::Charge(c)
        }
        "refund" => EventObject::Refund(RefundFacts::from_value(object)?),
        "dispute" => EventObject::Dispute(DisputeFacts::from_value(object)?),
        _ => {
            let w: FraudWarningFacts = serde_json::from_value(object)
                .map_err(|e| format!("data.object is not an early fraud warning: {e}"))?;
            if !valid_stripe_id(&w.id, "issfr_") {
                return Err(format!("`{}` is not an early fraud warning id", truncate(&w.id, 64)));
            }
            check_payment_ref(w.payment_intent.as_deref())?;
            EventObject::EarlyFraudWarning(w)
        }
    })
}

fn check_payment_ref(pi: Option<&str>) -> Result<(), String> {
    match pi {
        Some(pi) if !valid_stripe_id(pi, "pi_") => Err(format!("`{}` is not a PaymentIntent id", truncate(pi, 64))),
        _ => Ok(()),
    }
}

impl StripeEvent {
    /// The `payment_intent.succeeded` a webhook would have carried for a PaymentIntent we read
    /// from Stripe ourselves (the return page, reconciliation), so it is judged by the same
    /// `route`. `source` names who read it (`confirm`, `reconcile`); it is never stored.
    pub fn succeeded_as_read(source: &str, pi: PaymentIntentFacts, livemode: bool, created: i64) -> Self {
        Self {
            id: format!("{source}:{}", pi.id),
            event_type: "payment_intent.succeeded".into(),
            livemode,
            api_version: None,
            created,
            object: EventObject::PaymentIntent(pi),
        }
    }

    /// The PaymentIntent the event carries, if it carries one.
    pub fn payment_intent(&self) -> Option<&PaymentIntentFacts> {
        match &self.object {
            EventObject::PaymentIntent(pi) => Some(pi),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PaymentIntentFacts {
    pub id: String,
    pub amount: i64,
    pub amount_received: Option<i64>,
    pub currency: String,
    pub status: String,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    livemode: bool,
    api_version: Option<String>,
    created: i64,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: serde_json::Value,
}

#[derive(Deserialize)]
struct RawPaymentIntent {
    id: String,
    amount: i64,
    amount_received: Option<i64>,
    currency: String,
    status: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// Stripe ids are short ASCII tokens (`evt_1Nx...`, `pi_3Ab...`); anything else is not an id and
/// must not reach the database as a key.
pub fn valid_stripe_id(id: &str, prefix: &str) -> bool {
    id.len() <= 255
        && id.len() > prefix.len()
        && id.starts_with(prefix)
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl StripeEvent {
    /// Parses an event body. Errors name the first field that is missing or wrong.
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        let raw: RawEvent = serde_json::from_slice(raw).map_err(|e| format!("not a Stripe event: {e}"))?;
        if !valid_stripe_id(&raw.id, "evt_") {
            return Err(format!("`{}` is not a Stripe event id", truncate(&raw.id, 64)));
        }
        if raw.event_type.is_empty() || raw.event_type.len() > 100 {
            return Err("the event type is empty or too long".into());
        }
        let kind = raw.data.object.get("object").and_then(|o| o.as_str()).unwrap_or_default().to_string();
        let object = match kind.as_str() {
            "payment_intent" => {
                let pi: RawPaymentIntent = serde_json::from_value(raw.data.object)
                    .map_err(|e| format!("data.object is not a PaymentIntent: {e}"))?;
                if !valid_stripe_id(&pi.id, "pi_") {
                    return Err(format!("`{}` is not a PaymentIntent id", truncate(&pi.id, 64)));
                }
                EventObject::PaymentIntent(PaymentIntentFacts {
                    id: pi.id,
                    amount: pi.amount,
                    amount_received: pi.amount_received,
                    currency: pi.currency,
                    status: pi.status,
                    metadata: pi.metadata,
                })
            }
            "charge" | "refund" | "dispute" | "radar.early_fraud_warning" => money_object(&kind, raw.data.object)
                .unwrap_or_else(|reason| EventObject::Unreadable { object: kind.clone(), reason }),
            _ => EventObject::Other(kind),
        };
        Ok(Self {
            id: raw.id,
            event_type: raw.event_type,
            livemode: raw.livemode,
            api_version: raw.api_version,
            created: raw.created,
            object,
        })
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

mod route;
pub use route::{
    credit_target, payment_failure, route, Action, ContractMismatch, Credit, ExternalPayment, PaymentSource,
    RetryPolicy, META_CONTRACT, META_RLP_KEYS,
};

#[cfg(test)]
mod tests;
