//! Stripe events in business terms: which of them credit a contract, which belong to the
//! external Rate Card Landing Page, and which are only evidence. Pure: the webhook stores the
//! raw bytes first and then asks `route` what the event means.
use super::adjustments::{DisputeStatus, RefundStatus};
use super::money::{Currency, Money, PackTerms};
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

/// Who a PaymentIntent pays, read from its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentSource {
    /// Our own revision-pack purchase.
    Contract(i64),
    /// A purchase made on the external Rate Card Landing Page; that system fulfils it.
    RateCard { advertiser_ref: String, size_ref: String, publication_ref: String },
}

pub const META_CONTRACT: &str = "contractId";
pub const META_RLP_KEYS: [&str; 3] = ["advertiserId", "sizeId", "publicationId"];

impl PaymentSource {
    pub fn from_metadata(metadata: &BTreeMap<String, String>) -> Result<Self, String> {
        let contract = metadata.get(META_CONTRACT);
        let rlp: Vec<Option<&String>> = META_RLP_KEYS.iter().map(|k| metadata.get(*k)).collect();
        let any_rlp = rlp.iter().any(Option::is_some);
        match (contract, any_rlp) {
            (Some(_), true) => {
                Err(format!("metadata has both {META_CONTRACT} and Rate Card keys: cannot tell who was paid"))
            }
            (Some(id), false) => match id.trim().parse::<i64>() {
                Ok(n) if n > 0 => Ok(Self::Contract(n)),
                _ => Err(format!("metadata {META_CONTRACT} `{}` is not a contract id", truncate(id, 64))),
            },
            (None, true) => {
                let missing: Vec<&str> = META_RLP_KEYS
                    .iter()
                    .zip(&rlp)
                    .filter(|(_, v)| v.is_none_or(|v| v.trim().is_empty()))
                    .map(|(k, _)| *k)
                    .collect();
                if !missing.is_empty() {
                    return Err(format!("Rate Card metadata is missing {}", missing.join(", ")));
                }
                if let Some(long) = rlp.iter().flatten().find(|v| v.len() > 200) {
                    return Err(format!("Rate Card metadata value `{}…` is too long", truncate(long, 32)));
                }
                let v = |i: usize| rlp[i].expect("checked above").trim().to_string();
                Ok(Self::RateCard { advertiser_ref: v(0), size_ref: v(1), publication_ref: v(2) })
            }
            (None, false) => Err(format!(
                "metadata has neither {META_CONTRACT} nor the Rate Card keys ({})",
                META_RLP_KEYS.join(", ")
            )),
        }
    }
}

/// One credited revision pack, ready for the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub contract_id: i64,
    /// The PaymentIntent id: UNIQUE in the ledger, so a payment credits once.
    pub payment_id: String,
    pub revisions: i64,
    pub amount: Money,
    pub livemode: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalPayment {
    pub payment_id: String,
    pub advertiser_ref: String,
    pub size_ref: String,
    pub publication_ref: String,
    pub amount: i64,
    pub currency: String,
    pub livemode: bool,
}

/// What an authentic, stored event asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Credit(Credit),
    RecordExternal(ExternalPayment),
    /// A PaymentIntent of ours changed state (processing, failed, canceled, ...).
    UpdatePurchase {
        payment_id: String,
        status: String,
    },
    /// Money went back, or may: book the refund's facts and what they revoke.
    BookRefund(RefundFacts),
    /// A dispute opened, moved or closed: book its facts, hold or revoke.
    BookDispute(DisputeFacts),
    /// `charge.refunded` says only how much is refunded in all, not by which refunds: compare
    /// with the refunds we know, and ask Stripe for the payment's refunds when they differ.
    SyncRefunds {
        payment_id: String,
        charge: ChargeFacts,
    },
    /// Radar warns a charge may be fraudulent: recorded and shown to admins.
    RecordFraudWarning(FraudWarningFacts),
    /// Kept as evidence, nothing to do.
    Ignore {
        reason: String,
    },
    /// Authentic but unusable, and no retry can change that: kept, visible, never credited.
    DeadLetter {
        reason: String,
    },
}

/// Decides what an event means for a deployment running in `mode` with `terms`.
/// Why a payment attempt failed, in Stripe's words: the `last_payment_error` of the
/// PaymentIntent a `payment_intent.payment_failed` event carries, as its message and its codes
/// ("Your card was declined. (card_declined, generic_decline)"). None when the payload says
/// nothing of it.
pub fn payment_failure(payload: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let e = v.pointer("/data/object/last_payment_error").filter(|e| e.is_object())?;
    let text = |k: &str| e.get(k).and_then(|x| x.as_str()).filter(|s| !s.trim().is_empty());
    let codes: Vec<&str> = [text("code"), text("decline_code")].into_iter().flatten().collect();
    match (text("message"), codes.is_empty()) {
        (Some(m), true) => Some(m.to_string()),
        (Some(m), false) => Some(format!("{m} ({})", codes.join(", "))),
        (None, false) => Some(codes.join(", ")),
        (None, true) => None,
    }
}

pub fn route(event: &StripeEvent, mode: StripeMode, terms: &PackTerms) -> Action {
    if StripeMode::from_livemode(event.livemode) != mode {
        // A test payment must never grant revisions in a live deployment, nor count as revenue
        // (and a live one must not land in a test deployment's books).
        return Action::Ignore {
            reason: format!(
                "{}-mode event received by a {}-mode deployment: stored, never credited",
                StripeMode::from_livemode(event.livemode).as_str(),
                mode.as_str()
            ),
        };
    }
    let t = event.event_type.as_str();
    let pi = match &event.object {
        EventObject::PaymentIntent(pi) if t.starts_with("payment_intent.") => pi,
        EventObject::Refund(r)
            if matches!(t, "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated") =>
        {
            return match r.payment_intent {
                Some(_) => Action::BookRefund(r.clone()),
                // Only charges made through PaymentIntents are ours (in-app packs and the Rate Card).
                None => Action::Ignore {
                    reason: format!("refund {} is of a charge without a PaymentIntent: not ours", r.id),
                },
            };
        }
        EventObject::Dispute(d) if t.starts_with("charge.dispute.") => {
            return match d.payment_intent {
                Some(_) => Action::BookDispute(d.clone()),
                None => Action::Ignore {
                    reason: format!("dispute {} is of a charge without a PaymentIntent: not ours", d.id),
                },
            };
        }
        EventObject::Charge(c) if t == "charge.refunded" => {
            return match &c.payment_intent {
                Some(pi) => Action::SyncRefunds { payment_id: pi.clone(), charge: c.clone() },
                None => Action::Ignore { reason: format!("charge {} has no PaymentIntent: not ours", c.id) },
            };
        }
        EventObject::EarlyFraudWarning(w) if t.starts_with("radar.early_fraud_warning.") => {
            return Action::RecordFraudWarning(w.clone());
        }
        EventObject::Unreadable { object, reason } => {
            return Action::DeadLetter { reason: format!("the {object} in this event cannot be read: {reason}") }
        }
        _ => return Action::Ignore { reason: format!("{t} is stored but not acted on") },
    };
    let source = match PaymentSource::from_metadata(&pi.metadata) {
        Ok(source) => source,
        Err(reason) => return Action::DeadLetter { reason },
    };
    let succeeded = event.event_type == "payment_intent.succeeded";
    match source {
        PaymentSource::Contract(contract_id) if succeeded => {
            if pi.status != "succeeded" {
                return Action::DeadLetter { reason: format!("payment_intent.succeeded carries status {}", pi.status) };
            }
            let received = pi.amount_received.unwrap_or(pi.amount);
            if received != pi.amount {
                return Action::DeadLetter {
                    reason: format!("amount received {received} differs from amount {}", pi.amount),
                };
            }
            if let Err(reason) = terms.check_payment(pi.amount, &pi.currency) {
                return Action::DeadLetter { reason };
            }
            let currency = Currency::parse(&pi.currency).expect("checked against the pack currency");
            Action::Credit(Credit {
                contract_id,
                payment_id: pi.id.clone(),
                revisions: terms.revisions_per_pack,
                amount: Money::new(pi.amount, currency),
                livemode: event.livemode,
            })
        }
        // We record our purchase when we create the PaymentIntent; its `created` event, which
        // may arrive after later ones, must not move the purchase back to the start.
        PaymentSource::Contract(_) if event.event_type == "payment_intent.created" => {
            Action::Ignore { reason: "payment_intent.created: the purchase was recorded when we created it".into() }
        }
        PaymentSource::Contract(_) => Action::UpdatePurchase { payment_id: pi.id.clone(), status: pi.status.clone() },
        PaymentSource::RateCard { advertiser_ref, size_ref, publication_ref } if succeeded => {
            Action::RecordExternal(ExternalPayment {
                payment_id: pi.id.clone(),
                advertiser_ref,
                size_ref,
                publication_ref,
                amount: pi.amount_received.unwrap_or(pi.amount),
                currency: pi.currency.to_ascii_lowercase(),
                livemode: event.livemode,
            })
        }
        PaymentSource::RateCard { .. } => Action::Ignore {
            reason: format!("{} for a Rate Card payment: the external system fulfils it", event.event_type),
        },
    }
}

/// A payment's metadata names another contract than the purchase we recorded for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the PaymentIntent's metadata names contract {metadata_names} but it was bought for contract {bought_for}: \
     never credited to either (metadata can be edited after the purchase; ours cannot)"
)]
pub struct ContractMismatch {
    pub bought_for: i64,
    pub metadata_names: i64,
}

/// Which contract a paid pack is credited to: the contract of the purchase we recorded when we
/// created the PaymentIntent, which the metadata must repeat; a payment we have no purchase for
/// (started elsewhere, or before purchases were recorded) goes to the contract its metadata
/// names. The one rule every credit path follows: intake's shortcut (which credits only when
/// no purchase of ours differs, and leaves the rest to `apply`), `apply`, the return page and
/// reconciliation.
pub fn credit_target(bought_for: Option<i64>, metadata_names: i64) -> Result<i64, ContractMismatch> {
    match bought_for {
        Some(bought_for) if bought_for != metadata_names => Err(ContractMismatch { bought_for, metadata_names }),
        _ => Ok(metadata_names),
    }
}

/// How an event that may succeed later is retried: exponential backoff, then a dead letter.
/// (A payment for a contract that does not exist *yet* is the case a retry can help.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_delay_secs: i64,
    pub max_delay_secs: i64,
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // 30 s, 1 min, 2, 4, 8, 16, 32 min, then hourly: about a day before giving up.
        Self { first_delay_secs: 30, max_delay_secs: 3600, max_attempts: 28 }
    }
}

impl RetryPolicy {
    /// Seconds to wait after `attempts_done` failed attempts, or None when it is time to stop.
    pub fn delay_after(&self, attempts_done: i64) -> Option<i64> {
        if attempts_done >= self.max_attempts {
            return None;
        }
        let exp = attempts_done.saturating_sub(1).clamp(0, 30) as u32;
        Some(self.first_delay_secs.saturating_mul(1i64 << exp).min(self.max_delay_secs))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn retries_back_off_exponentially_then_stop() {
        let p = RetryPolicy { first_delay_secs: 30, max_delay_secs: 3600, max_attempts: 10 };
        let delays: Vec<_> = (1..=10).map(|n| p.delay_after(n)).collect();
        assert_eq!(
            &delays[..8],
            &[Some(30), Some(60), Some(120), Some(240), Some(480), Some(960), Some(1920), Some(3600)]
        );
        assert_eq!(delays[9], None);
    }

    use super::*;
    use serde_json::json;

    fn event(
        event_type: &str,
        livemode: bool,
        metadata: serde_json::Value,
        amount: i64,
        currency: &str,
    ) -> StripeEvent {
        let body = json!({
            "id": "evt_1", "object": "event", "type": event_type, "livemode": livemode,
            "api_version": "2024-06-20", "created": 1_700_000_000,
            "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": amount,
                "amount_received": amount, "currency": currency, "status":
                if event_type == "payment_intent.succeeded" { "succeeded" } else { "requires_payment_method" },
                "metadata": metadata}}
        });
        StripeEvent::parse(body.to_string().as_bytes()).unwrap()
    }

    fn terms() -> PackTerms {
        PackTerms::standard()
    }

    #[test]
    fn a_credit_goes_to_the_contract_of_the_recorded_purchase_or_to_none() {
        assert_eq!(credit_target(Some(7), 7), Ok(7));
        assert_eq!(credit_target(None, 9), Ok(9), "no purchase of ours: the metadata decides");
        let e = credit_target(Some(7), 9).unwrap_err();
        assert_eq!(e, ContractMismatch { bought_for: 7, metadata_names: 9 });
        assert!(e.to_string().contains("names contract 9 but it was bought for contract 7"), "{e}");
    }

    #[test]
    fn a_succeeded_pack_payment_credits_its_contract() {
        let e = event("payment_intent.succeeded", false, json!({"contractId": "42"}), 15_000, "usd");
        match route(&e, StripeMode::Test, &terms()) {
            Action::Credit(c) => {
                assert_eq!(c.contract_id, 42);
                assert_eq!(c.payment_id, "pi_1");
                assert_eq!(c.revisions, 2);
                assert_eq!(c.amount.minor, 15_000);
            }
            other => panic!("expected a credit, got {other:?}"),
        }
    }

    #[test]
    fn wrong_amount_or_currency_is_a_dead_letter() {
        let e = event("payment_intent.succeeded", false, json!({"contractId": "42"}), 100, "usd");
        assert!(
            matches!(route(&e, StripeMode::Test, &terms()), Action::DeadLetter { reason } if reason.contains("pack price"))
        );
        let e = event("payment_intent.succeeded", false, json!({"contractId": "42"}), 15_000, "eur");
        assert!(
            matches!(route(&e, StripeMode::Test, &terms()), Action::DeadLetter { reason } if reason.contains("currency"))
        );
    }

    #[test]
    fn a_test_event_never_credits_a_live_deployment() {
        let e = event("payment_intent.succeeded", false, json!({"contractId": "42"}), 15_000, "usd");
        assert!(
            matches!(route(&e, StripeMode::Live, &terms()), Action::Ignore { reason } if reason.contains("never credited"))
        );
        let e = event("payment_intent.succeeded", true, json!({"contractId": "42"}), 15_000, "usd");
        assert!(matches!(route(&e, StripeMode::Test, &terms()), Action::Ignore { .. }));
    }

    #[test]
    fn rate_card_payments_are_recorded_for_the_external_system() {
        let meta = json!({"advertiserId": "adv-9", "sizeId": "half-page", "publicationId": "pub-3"});
        let e = event("payment_intent.succeeded", false, meta.clone(), 9_900, "usd");
        match route(&e, StripeMode::Test, &terms()) {
            Action::RecordExternal(x) => {
                assert_eq!(
                    (x.advertiser_ref.as_str(), x.size_ref.as_str(), x.publication_ref.as_str()),
                    ("adv-9", "half-page", "pub-3")
                );
                assert_eq!(x.amount, 9_900);
            }
            other => panic!("expected an external payment, got {other:?}"),
        }
        let e = event("payment_intent.payment_failed", false, meta, 9_900, "usd");
        assert!(matches!(route(&e, StripeMode::Test, &terms()), Action::Ignore { .. }));
    }

    #[test]
    fn unusable_metadata_is_a_dead_letter_with_its_reason() {
        let cases = [
            (json!({}), "neither"),
            (json!({"contractId": "abc"}), "not a contract id"),
            (json!({"contractId": "-3"}), "not a contract id"),
            (json!({"advertiserId": "a", "sizeId": "s"}), "missing publicationId"),
            (json!({"contractId": "1", "sizeId": "s"}), "both"),
        ];
        for (meta, expected) in cases {
            let e = event("payment_intent.succeeded", false, meta.clone(), 15_000, "usd");
            match route(&e, StripeMode::Test, &terms()) {
                Action::DeadLetter { reason } => assert!(reason.contains(expected), "{meta}: {reason}"),
                other => panic!("{meta}: expected a dead letter, got {other:?}"),
            }
        }
    }

    #[test]
    fn failures_and_cancellations_update_our_purchase() {
        for t in ["payment_intent.payment_failed", "payment_intent.canceled", "payment_intent.processing"] {
            let e = event(t, false, json!({"contractId": "7"}), 15_000, "usd");
            assert!(
                matches!(route(&e, StripeMode::Test, &terms()), Action::UpdatePurchase { payment_id, .. } if payment_id == "pi_1")
            );
        }
    }

    #[test]
    fn a_failed_attempt_says_why_in_stripes_words() {
        let failed = |e: serde_json::Value| {
            json!({"id": "evt_f", "type": "payment_intent.payment_failed", "data": {"object": {"id": "pi_1", "last_payment_error": e}}})
                .to_string()
        };
        let declined = failed(json!({"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
            "message": "Your card was declined."}));
        assert_eq!(
            payment_failure(declined.as_bytes()).as_deref(),
            Some("Your card was declined. (card_declined, generic_decline)")
        );
        let bare = failed(json!({"code": "payment_intent_authentication_failure"}));
        assert_eq!(payment_failure(bare.as_bytes()).as_deref(), Some("payment_intent_authentication_failure"));
        assert_eq!(payment_failure(failed(json!(null)).as_bytes()), None);
        assert_eq!(payment_failure(b"not json"), None);
    }

    #[test]
    fn a_late_created_event_never_rewinds_a_purchase() {
        let e = event("payment_intent.created", false, json!({"contractId": "7"}), 15_000, "usd");
        assert!(matches!(route(&e, StripeMode::Test, &terms()), Action::Ignore { .. }));
    }

    #[test]
    fn other_event_types_are_only_evidence() {
        let body = json!({"id": "evt_2", "type": "customer.created", "livemode": false, "api_version": null,
            "created": 1, "data": {"object": {"id": "cus_1", "object": "customer"}}});
        let e = StripeEvent::parse(body.to_string().as_bytes()).unwrap();
        assert!(e.payment_intent().is_none());
        assert!(matches!(route(&e, StripeMode::Test, &terms()), Action::Ignore { .. }));
    }

    fn money_event(event_type: &str, livemode: bool, object: serde_json::Value) -> StripeEvent {
        let body = json!({"id": "evt_9", "object": "event", "type": event_type, "livemode": livemode,
            "api_version": "2026-09-30.endive", "created": 1_700_000_000, "data": {"object": object}});
        StripeEvent::parse(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn refunds_disputes_and_warnings_are_routed_to_the_ledger() {
        let refund = json!({"id": "re_1", "object": "refund", "amount": 7500, "currency": "usd",
            "payment_intent": "pi_1", "charge": "ch_1", "status": "succeeded", "reason": null, "metadata": {}});
        for t in ["refund.created", "refund.updated", "refund.failed"] {
            match route(&money_event(t, false, refund.clone()), StripeMode::Test, &terms()) {
                Action::BookRefund(r) => {
                    assert_eq!((r.id.as_str(), r.amount, r.status), ("re_1", 7500, RefundStatus::Succeeded))
                }
                other => panic!("{t}: {other:?}"),
            }
        }
        let dispute = json!({"id": "du_1", "object": "dispute", "amount": 15000, "currency": "usd",
            "payment_intent": "pi_1", "charge": "ch_1", "status": "lost", "reason": "fraudulent"});
        for t in ["charge.dispute.created", "charge.dispute.closed", "charge.dispute.funds_withdrawn"] {
            assert!(matches!(route(&money_event(t, false, dispute.clone()), StripeMode::Test, &terms()),
                Action::BookDispute(d) if d.status == DisputeStatus::Lost));
        }
        let charge = json!({"id": "ch_1", "object": "charge", "amount": 15000, "amount_refunded": 7500,
            "currency": "usd", "payment_intent": "pi_1", "refunded": false});
        assert!(matches!(route(&money_event("charge.refunded", false, charge.clone()), StripeMode::Test, &terms()),
            Action::SyncRefunds { payment_id, charge } if payment_id == "pi_1" && charge.amount_refunded == 7500));
        assert!(matches!(
            route(&money_event("charge.succeeded", false, charge), StripeMode::Test, &terms()),
            Action::Ignore { .. }
        ));
        let efw = json!({"id": "issfr_1", "object": "radar.early_fraud_warning", "charge": "ch_1",
            "payment_intent": "pi_1", "fraud_type": "made_with_stolen_card", "actionable": true});
        assert!(
            matches!(route(&money_event("radar.early_fraud_warning.created", false, efw), StripeMode::Test, &terms()),
            Action::RecordFraudWarning(w) if w.actionable)
        );
    }

    #[test]
    fn a_test_mode_refund_never_touches_a_live_ledger() {
        let refund = json!({"id": "re_1", "object": "refund", "amount": 7500, "currency": "usd",
            "payment_intent": "pi_1", "status": "succeeded"});
        assert!(matches!(
            route(&money_event("refund.created", false, refund), StripeMode::Live, &terms()),
            Action::Ignore { .. }
        ));
    }

    #[test]
    fn money_objects_that_are_not_what_they_say_are_dead_letters() {
        let bad = [
            json!({"id": "x_1", "object": "refund", "amount": 1, "currency": "usd", "status": "succeeded"}),
            json!({"id": "re_1", "object": "refund", "amount": 1, "currency": "usd", "status": "weird"}),
            json!({"id": "re_1", "object": "refund", "amount": 0, "currency": "usd", "status": "succeeded"}),
            json!({"id": "re_1", "object": "refund", "amount": 1, "currency": "usd", "status": "succeeded",
                "payment_intent": "pi_1; DROP"}),
            json!({"id": "du_1", "object": "dispute", "amount": 1, "currency": "usd", "status": "maybe"}),
        ];
        for object in bad {
            let body = json!({"id": "evt_9", "type": "refund.created", "livemode": false, "created": 1,
                "data": {"object": object}});
            // Authentic all the same: stored, and dead-lettered with the reason.
            let e = StripeEvent::parse(body.to_string().as_bytes()).unwrap();
            assert!(matches!(e.object, EventObject::Unreadable { .. }), "{object}");
            assert!(
                matches!(route(&e, StripeMode::Test, &terms()), Action::DeadLetter { reason } if reason.contains("cannot be read")),
                "{object}"
            );
        }
    }

    #[test]
    fn parse_rejects_what_is_not_an_event() {
        assert!(StripeEvent::parse(b"not json").is_err());
        assert!(StripeEvent::parse(br#"{"id":"x","type":"a","livemode":false,"created":1,"data":{"object":{}}}"#)
            .unwrap_err()
            .contains("event id"));
        let bad_pi = json!({"id": "evt_3", "type": "payment_intent.succeeded", "livemode": false, "created": 1,
            "data": {"object": {"id": "pi_1", "object": "payment_intent", "currency": "usd"}}});
        assert!(StripeEvent::parse(bad_pi.to_string().as_bytes()).unwrap_err().contains("PaymentIntent"));
    }

    #[test]
    fn stripe_ids_are_checked() {
        assert!(valid_stripe_id("evt_1NxAbc", "evt_"));
        assert!(!valid_stripe_id("evt_", "evt_"));
        assert!(!valid_stripe_id("evt_1; DROP", "evt_"));
        assert!(!valid_stripe_id("pi_1", "evt_"));
    }
}
