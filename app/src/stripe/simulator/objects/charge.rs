//! The Charge object: the money movement behind a succeeded PaymentIntent; refunds and
//! disputes change it. Rendered as API version 2022-11-15 and later do: no `refunds` list on
//! the charge (list refunds with `charge=` instead).
use super::cards::{AfterSuccess, Card};
use super::payment_intent::PaymentIntent;
use crate::stripe::simulator::wire::{now, object};
use serde::Serialize;
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
    pub billing_details: BillingDetails,
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
    pub outcome: Outcome,
    pub paid: bool,
    pub payment_intent: String,
    pub payment_method: Option<String>,
    pub payment_method_details: PaymentMethodDetails,
    pub receipt_url: Option<String>,
    /// Fully refunded.
    pub refunded: bool,
    pub status: &'static str,
    /// What the card does later (a refund that fails, say).
    #[serde(skip)]
    pub after_success: AfterSuccess,
    /// The dispute on this charge, if any (Stripe allows one).
    #[serde(skip)]
    pub dispute: Option<String>,
}
object!(Charge);

#[derive(Debug, Clone, Default, Serialize)]
pub struct BillingDetails {
    address: Option<String>,
    email: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    tax_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    network_status: &'static str,
    reason: Option<String>,
    risk_level: &'static str,
    seller_message: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentMethodDetails {
    #[serde(rename = "type")]
    kind: &'static str,
    card: CardDetails,
}

#[derive(Debug, Clone, Serialize)]
pub struct CardDetails {
    brand: &'static str,
    country: &'static str,
    exp_month: i64,
    exp_year: i64,
    funding: &'static str,
    last4: String,
    network: &'static str,
}

impl Charge {
    /// The charge of a PaymentIntent that has just succeeded.
    pub fn for_payment(pi: &PaymentIntent, id: String, card: &Card) -> Self {
        let brand = if card.last4 == "4444" { "mastercard" } else { "visa" };
        Self {
            id,
            object: "charge",
            amount: pi.amount,
            amount_captured: pi.amount,
            amount_refunded: 0,
            balance_transaction: None,
            billing_details: BillingDetails::default(),
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
            outcome: Outcome {
                network_status: "approved_by_network",
                reason: None,
                risk_level: "normal",
                seller_message: "Payment complete.",
                kind: "authorized",
            },
            paid: true,
            payment_intent: pi.id.clone(),
            payment_method: pi.payment_method.clone(),
            payment_method_details: PaymentMethodDetails {
                kind: "card",
                card: CardDetails {
                    brand,
                    country: "US",
                    exp_month: 12,
                    exp_year: chrono::Datelike::year(&chrono::Utc::now()) as i64 + 3,
                    funding: "credit",
                    last4: card.last4.clone(),
                    network: brand,
                },
            },
            receipt_url: None,
            refunded: false,
            status: "succeeded",
            after_success: card.after_success,
            dispute: None,
        }
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
