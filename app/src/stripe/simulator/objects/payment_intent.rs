//! The PaymentIntent object: a payment's life from creation to `succeeded` or `canceled`, and
//! the steps it takes on the way.
use super::cards::Card;
use crate::stripe::simulator::wire::{new_id, now, object, random_token, ApiError, Params};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Stripe's minimum charge in USD-like currencies is 50 minor units; the maximum is 8 digits.
const MIN_AMOUNT: i64 = 50;
const MAX_AMOUNT: i64 = 99_999_999;

#[derive(Debug, Clone, Serialize)]
pub struct PaymentIntent {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub amount_capturable: i64,
    pub amount_details: AmountDetails,
    pub amount_received: i64,
    pub application: Option<String>,
    pub automatic_payment_methods: Option<AutomaticPaymentMethods>,
    pub canceled_at: Option<i64>,
    pub cancellation_reason: Option<String>,
    pub capture_method: &'static str,
    pub client_secret: String,
    pub confirmation_method: &'static str,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub description: Option<String>,
    pub last_payment_error: Option<PaymentError>,
    /// The charge's id (the Charge itself when expanded).
    pub latest_charge: Option<String>,
    pub livemode: bool,
    pub metadata: BTreeMap<String, String>,
    pub next_action: Option<NextAction>,
    pub payment_method: Option<String>,
    pub payment_method_configuration_details: Option<Value>,
    pub payment_method_options: Value,
    pub payment_method_types: Vec<&'static str>,
    /// What a `processing` payment is waiting on; null otherwise.
    pub processing: Option<Value>,
    pub receipt_email: Option<String>,
    pub statement_descriptor: Option<String>,
    pub statement_descriptor_suffix: Option<String>,
    pub status: Status,
    /// Stripe's keys for what the simulator never does (Connect, customers, shipping, saved
    /// payment methods, Radar reviews), null as Stripe sends them then.
    #[serde(flatten)]
    pub not_simulated: Map<String, Value>,
    /// The card it was last confirmed with.
    #[serde(skip)]
    pub card: Card,
}
object!(PaymentIntent);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    RequiresPaymentMethod,
    RequiresAction,
    Processing,
    Succeeded,
    Canceled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AmountDetails {
    tip: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AutomaticPaymentMethods {
    allow_redirects: &'static str,
    enabled: bool,
}

/// Stripe's error object as `last_payment_error` carries it.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentError {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    decline_code: Option<&'static str>,
    message: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct NextAction {
    #[serde(rename = "type")]
    kind: &'static str,
    use_stripe_sdk: UseStripeSdk,
}

#[derive(Debug, Clone, Serialize)]
pub struct UseStripeSdk {
    #[serde(rename = "type")]
    kind: &'static str,
    stripe_js: String,
}

impl PaymentIntent {
    /// A new PaymentIntent from the create parameters, or Stripe's error for the parameter at
    /// fault.
    pub fn create(fields: &Params) -> Result<Self, ApiError> {
        let (amount, currency) = amount_and_currency(fields)?;
        let metadata = fields.metadata()?;
        let automatic = fields.get("automatic_payment_methods[enabled]") == Some("true");
        let text = |name: &str| fields.get(name).filter(|v| !v.is_empty()).map(str::to_string);
        let id = new_id("pi");
        let client_secret = format!("{id}_secret_{}", random_token(24));
        Ok(Self {
            id,
            object: "payment_intent",
            amount,
            amount_capturable: 0,
            amount_details: AmountDetails::default(),
            amount_received: 0,
            application: None,
            automatic_payment_methods: automatic
                .then_some(AutomaticPaymentMethods { allow_redirects: "always", enabled: true }),
            canceled_at: None,
            cancellation_reason: None,
            capture_method: "automatic",
            client_secret,
            confirmation_method: "automatic",
            created: now(),
            currency,
            customer: None,
            description: fields.get("description").map(str::to_string),
            last_payment_error: None,
            latest_charge: None,
            livemode: false,
            metadata,
            next_action: None,
            payment_method: None,
            // The account's default configuration chose the methods when Stripe was left to.
            payment_method_configuration_details: automatic
                .then(|| json!({"id": DEFAULT_PAYMENT_METHOD_CONFIGURATION, "parent": null})),
            payment_method_options: json!({
                "card": {"installments": null, "mandate_options": null, "network": null, "request_three_d_secure": "automatic"}
            }),
            payment_method_types: vec!["card"],
            processing: None,
            receipt_email: text("receipt_email"),
            statement_descriptor: text("statement_descriptor"),
            statement_descriptor_suffix: text("statement_descriptor_suffix"),
            status: Status::RequiresPaymentMethod,
            not_simulated: not_simulated(),
            card: Card::default(),
        })
    }

    /// Stripe's error for a step this PaymentIntent's status does not allow.
    pub fn unexpected_state(&self, action: &str) -> ApiError {
        ApiError::invalid(
            Some("payment_intent_unexpected_state"),
            format!("You cannot {action} this PaymentIntent because it has a status of {}.", self.status.as_str()),
            None,
        )
    }

    /// Confirmed with `card`, as a new PaymentMethod.
    pub fn confirm_with(&mut self, card: Card) {
        self.card = card;
        self.payment_method = Some(new_id("pm"));
        self.last_payment_error = None;
    }

    /// The card asks for 3-D Secure: the simulator's challenge is the next action.
    pub fn require_action(&mut self) {
        self.status = Status::RequiresAction;
        self.next_action = Some(NextAction {
            kind: "use_stripe_sdk",
            use_stripe_sdk: UseStripeSdk {
                kind: "three_d_secure_redirect",
                stripe_js: format!("/_simulator/payment_intents/{}/authenticate", self.id),
            },
        });
    }

    /// The card declined: back to `requires_payment_method`; returns the error it carries.
    pub fn decline(&mut self, decline_code: &'static str, message: &'static str) -> PaymentError {
        let error =
            PaymentError { kind: "card_error", code: "card_declined", decline_code: Some(decline_code), message };
        self.status = Status::RequiresPaymentMethod;
        self.last_payment_error = Some(error.clone());
        error
    }

    /// The cardholder failed 3-D Secure: back to `requires_payment_method`.
    pub fn fail_authentication(&mut self) {
        self.status = Status::RequiresPaymentMethod;
        self.next_action = None;
        self.last_payment_error = Some(PaymentError {
            kind: "invalid_request_error",
            code: "payment_intent_authentication_failure",
            decline_code: None,
            message: "We are unable to authenticate your payment method. Please choose a different payment method and try again.",
        });
    }

    pub fn cancel(&mut self, reason: &str) {
        self.status = Status::Canceled;
        self.processing = None;
        self.canceled_at = Some(now());
        self.cancellation_reason = Some(reason.to_string());
        self.next_action = None;
    }

    /// Accepted, settling later.
    pub fn start_processing(&mut self) {
        self.status = Status::Processing;
        self.processing = Some(json!({"type": "card"}));
        self.next_action = None;
    }

    /// Settled, with its charge `charge_id`.
    pub fn succeed(&mut self, charge_id: &str) {
        self.status = Status::Succeeded;
        self.processing = None;
        self.amount_received = self.amount;
        self.latest_charge = Some(charge_id.to_string());
        self.next_action = None;
    }
}

/// The account's default payment method configuration, as the simulator names it.
const DEFAULT_PAYMENT_METHOD_CONFIGURATION: &str = "pmc_simulator_default";

/// The amount and currency a create asks for, or Stripe's error for the one at fault.
fn amount_and_currency(fields: &Params) -> Result<(i64, String), ApiError> {
    let raw_amount = fields.get("amount").ok_or_else(|| ApiError::missing("amount"))?;
    let amount: i64 = raw_amount.parse().map_err(|_| ApiError::invalid_integer("amount", raw_amount))?;
    if !(MIN_AMOUNT..=MAX_AMOUNT).contains(&amount) {
        return Err(ApiError::invalid(
            Some(if amount < MIN_AMOUNT { "amount_too_small" } else { "amount_too_large" }),
            format!("Amount must be between {MIN_AMOUNT} and {MAX_AMOUNT} in the currency's minor unit."),
            Some("amount"),
        ));
    }
    let currency = fields.get("currency").ok_or_else(|| ApiError::missing("currency"))?.to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(ApiError::invalid(
            Some("parameter_invalid_string"),
            format!("Invalid currency: {currency}."),
            Some("currency"),
        ));
    }
    Ok((amount, currency))
}

/// Stripe's keys for what the simulator never does, each null.
fn not_simulated() -> Map<String, Value> {
    let keys = [
        "application_fee_amount",
        "customer_account",
        "excluded_payment_method_types",
        "managed_payments",
        "on_behalf_of",
        "review",
        "setup_future_usage",
        "shipping",
        "source",
        "transfer_data",
        "transfer_group",
    ];
    keys.into_iter().map(|k| (k.to_string(), Value::Null)).collect()
}
