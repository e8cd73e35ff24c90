//! What an authentic event means for us (`route`): a pack to credit, a Rate Card payment to
//! record, a purchase that moved, money going back, or nothing; and whose contract a paid pack
//! is credited to (`credit_target`), the one rule every credit path follows.
use super::{
    truncate, ChargeFacts, DisputeFacts, EventObject, FraudWarningFacts, PaymentIntentFacts, RefundFacts, StripeEvent,
    StripeMode,
};
use crate::domain::money::{Currency, Money, PackTerms};
use std::collections::BTreeMap;

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

/// Decides what an event means for a deployment running in `mode` with `terms`.
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
    match &event.object {
        EventObject::PaymentIntent(pi) if t.starts_with("payment_intent.") => route_payment(event, pi, terms),
        EventObject::Refund(r)
            if matches!(t, "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated") =>
        {
            match r.payment_intent {
                Some(_) => Action::BookRefund(r.clone()),
                // Only charges made through PaymentIntents are ours (in-app packs and the Rate Card).
                None => Action::Ignore {
                    reason: format!("refund {} is of a charge without a PaymentIntent: not ours", r.id),
                },
            }
        }
        EventObject::Dispute(d) if t.starts_with("charge.dispute.") => match d.payment_intent {
            Some(_) => Action::BookDispute(d.clone()),
            None => {
                Action::Ignore { reason: format!("dispute {} is of a charge without a PaymentIntent: not ours", d.id) }
            }
        },
        EventObject::Charge(c) if t == "charge.refunded" => match &c.payment_intent {
            Some(pi) => Action::SyncRefunds { payment_id: pi.clone(), charge: c.clone() },
            None => Action::Ignore { reason: format!("charge {} has no PaymentIntent: not ours", c.id) },
        },
        EventObject::EarlyFraudWarning(w) if t.starts_with("radar.early_fraud_warning.") => {
            Action::RecordFraudWarning(w.clone())
        }
        EventObject::Unreadable { object, reason } => {
            Action::DeadLetter { reason: format!("the {object} in this event cannot be read: {reason}") }
        }
        _ => Action::Ignore { reason: format!("{t} is stored but not acted on") },
    }
}

/// A `payment_intent.*` event: whose payment it is (its metadata), and what it asks of us.
fn route_payment(event: &StripeEvent, pi: &PaymentIntentFacts, terms: &PackTerms) -> Action {
    let source = match PaymentSource::from_metadata(&pi.metadata) {
        Ok(source) => source,
        Err(reason) => return Action::DeadLetter { reason },
    };
    let succeeded = event.event_type == "payment_intent.succeeded";
    match source {
        PaymentSource::Contract(contract_id) if succeeded => pack_paid(event, pi, contract_id, terms),
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

/// `payment_intent.succeeded` for one of our contracts: a pack to credit, if the payment is
/// whole and at the pack's price; otherwise a dead letter saying why.
fn pack_paid(event: &StripeEvent, pi: &PaymentIntentFacts, contract_id: i64, terms: &PackTerms) -> Action {
    if pi.status != "succeeded" {
        return Action::DeadLetter { reason: format!("payment_intent.succeeded carries status {}", pi.status) };
    }
    let received = pi.amount_received.unwrap_or(pi.amount);
    if received != pi.amount {
        return Action::DeadLetter { reason: format!("amount received {received} differs from amount {}", pi.amount) };
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
