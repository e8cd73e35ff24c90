//! The Charge object: the money movement behind a succeeded PaymentIntent; refunds and
//! disputes change it. Rendered as API version 2022-11-15 and later do: no `refunds` list on
//! the charge unless expanded (`charges` adds it; list refunds with `charge=` otherwise). Every
//! other key of Stripe's Charge is there, null where the simulator has nothing to say
//! (Connect, shipping, sources, Radar).
use super::cards::{AfterSuccess, Card};
use super::payment_intent::PaymentIntent;
use crate::stripe::simulator::wire::{now, object};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Charge {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub amount_captured: i64,
    /// Over refunds that have not failed.
    pub amount_refunded: i64,
    pub balance_transaction: Option<String>,
    pub billing_details: Value,
    pub calculated_statement_descriptor: Option<String>,
    pub captured: bool,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub description: Option<String>,
    pub disputed: bool,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub fraud_details: BTreeMap<String, String>,
    pub livemode: bool,
    pub metadata: BTreeMap<String, String>,
    pub outcome: Value,
    pub paid: bool,
    pub payment_intent: String,
    pub payment_method: Option<String>,
    pub payment_method_details: Value,
    pub receipt_email: Option<String>,
    pub receipt_number: Option<String>,
    pub receipt_url: Option<String>,
    /// Fully refunded.
    pub refunded: bool,
    pub statement_descriptor: Option<String>,
    pub statement_descriptor_suffix: Option<String>,
    pub status: &'static str,
    /// Stripe's keys for what the simulator never does (Connect, shipping, sources, Radar
    /// reviews), null as Stripe sends them then.
    #[serde(flatten)]
    pub not_simulated: Map<String, Value>,
    /// What the card does later (a refund that fails, say).
    #[serde(skip)]
    pub after_success: AfterSuccess,
    /// The dispute on this charge, if any (Stripe allows one).
    #[serde(skip)]
    pub dispute: Option<String>,
}
object!(Charge);

impl Charge {
    /// The charge of a PaymentIntent that has just succeeded.
    pub fn for_payment(pi: &PaymentIntent, id: String, card: &Card) -> Self {
        Self {
            receipt_url: Some(receipt_url(&id)),
            id,
            object: "charge",
            amount: pi.amount,
            amount_captured: pi.amount,
            amount_refunded: 0,
            balance_transaction: None,
            billing_details: json!({
                "address": {"city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null},
                "email": pi.receipt_email, "name": null, "phone": null, "tax_id": null,
            }),
            calculated_statement_descriptor: calculated_statement_descriptor(pi),
            captured: true,
            created: now(),
            currency: pi.currency.clone(),
            customer: None,
            description: pi.description.clone(),
            disputed: false,
            failure_code: None,
            failure_message: None,
            fraud_details: BTreeMap::new(),
            livemode: false,
            metadata: pi.metadata.clone(),
            outcome: json!({
                "advice_code": null, "network_advice_code": null, "network_decline_code": null,
                "network_status": "approved_by_network", "reason": null, "risk_level": "normal",
                "seller_message": "Payment complete.", "type": "authorized",
            }),
            paid: true,
            payment_intent: pi.id.clone(),
            payment_method: pi.payment_method.clone(),
            payment_method_details: json!({"type": "card", "card": card_details(pi.amount, card)}),
            receipt_email: pi.receipt_email.clone(),
            receipt_number: None,
            refunded: false,
            statement_descriptor: pi.statement_descriptor.clone(),
            statement_descriptor_suffix: pi.statement_descriptor_suffix.clone(),
            status: "succeeded",
            not_simulated: not_simulated(),
            after_success: card.after_success,
            dispute: None,
        }
    }

    /// The card network the charge went through.
    pub fn brand(&self) -> &str {
        self.payment_method_details["card"]["brand"].as_str().unwrap_or("visa")
    }

    /// What may still be refunded.
    pub fn refundable(&self) -> i64 {
        self.amount_captured - self.amount_refunded
    }

    /// Counts `amount` as refunded (negative: a refund that failed gives it back).
    pub fn add_refunded(&mut self, amount: i64) {
        self.amount_refunded = (self.amount_refunded + amount).clamp(0, self.amount_captured);
        self.refunded = self.amount_refunded == self.amount_captured;
    }
}

/// Where the simulator shows a charge's receipt, relative to its own base (as the 3-D Secure
/// challenge of `next_action` is): it knows no host of its own.
fn receipt_url(charge_id: &str) -> String {
    format!("/_simulator/receipts/{charge_id}")
}

/// What the card statement reads: the payment's own descriptor, or the account's (the
/// simulator's) with the payment's suffix.
fn calculated_statement_descriptor(pi: &PaymentIntent) -> Option<String> {
    pi.statement_descriptor.clone().or_else(|| {
        Some(match &pi.statement_descriptor_suffix {
            Some(suffix) => format!("STRIPE SIM* {suffix}"),
            None => "STRIPE SIMULATOR".to_string(),
        })
    })
}

/// `payment_method_details.card` as Stripe renders it for a one-off card payment: CVC checked,
/// no address asked for, no wallet, installments or mandate; 3-D Secure's result when the card
/// took a challenge.
fn card_details(amount: i64, card: &Card) -> Value {
    let brand = if card.last4 == "4444" { "mastercard" } else { "visa" };
    let three_d_secure = card.three_d_secure.then(|| {
        json!({
            "authentication_flow": "challenge", "electronic_commerce_indicator": "05", "exemption_indicator": null,
            "result": "authenticated", "result_reason": null, "transaction_id": null, "version": "2.2.0",
        })
    });
    json!({
        "amount_authorized": amount, "authorization_code": null, "brand": brand,
        "checks": {"address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass"},
        "country": "US", "exp_month": 12, "exp_year": chrono::Datelike::year(&chrono::Utc::now()) + 3,
        "extended_authorization": {"status": "disabled"}, "fingerprint": card.fingerprint, "funding": "credit",
        "incremental_authorization": {"status": "unavailable"}, "installments": null, "last4": card.last4,
        "mandate": null, "multicapture": {"status": "unavailable"}, "network": brand,
        "network_token": {"used": false}, "network_transaction_id": null,
        "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
        "regulated_status": "unregulated", "three_d_secure": three_d_secure, "transaction_link_id": null,
        "wallet": null,
    })
}

/// Stripe's keys for what the simulator never does, each null.
fn not_simulated() -> Map<String, Value> {
    let keys = [
        "application",
        "application_fee",
        "application_fee_amount",
        "failure_balance_transaction",
        "on_behalf_of",
        "review",
        "shipping",
        "source",
        "source_transfer",
        "transfer_data",
        "transfer_group",
    ];
    keys.into_iter().map(|k| (k.to_string(), Value::Null)).collect()
}
