//! The Dispute object: a cardholder's chargeback on a charge, from `needs_response` through
//! the evidence we send to the bank's decision.
use super::charge::Charge;
use crate::stripe::simulator::wire::{new_id, now, object, ApiError};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Dispute {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    /// Stripe lists the withdrawal and reinstatement here; the simulator keeps no balance.
    pub balance_transactions: Vec<String>,
    pub charge: String,
    pub created: i64,
    pub currency: String,
    pub enhanced_eligibility_types: Vec<String>,
    pub evidence: Evidence,
    pub evidence_details: EvidenceDetails,
    pub is_charge_refundable: bool,
    pub livemode: bool,
    pub metadata: BTreeMap<String, String>,
    pub payment_intent: String,
    pub payment_method_details: PaymentMethodDetails,
    pub reason: String,
    pub status: Status,
}
object!(Dispute);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    WarningNeedsResponse,
    WarningUnderReview,
    WarningClosed,
    NeedsResponse,
    UnderReview,
    Won,
    Lost,
}

impl Status {
    fn is_open(self) -> bool {
        matches!(self, Self::WarningNeedsResponse | Self::WarningUnderReview | Self::NeedsResponse | Self::UnderReview)
    }
}

/// How the bank decides a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeOutcome {
    Won,
    Lost,
    /// An inquiry that closed without becoming a chargeback.
    WarningClosed,
}

impl std::str::FromStr for DisputeOutcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "won" => Ok(Self::Won),
            "lost" => Ok(Self::Lost),
            "warning_closed" => Ok(Self::WarningClosed),
            other => Err(format!("outcome must be won, lost or warning_closed, not {other:?}")),
        }
    }
}

/// The evidence fields Stripe's Dispute has, each null until given.
const EVIDENCE_FIELDS: [&str; 27] = [
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
];

/// The reasons a dispute may carry (Stripe's list).
const REASONS: [&str; 15] = [
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "noncompliant",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
];

#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    #[serde(flatten)]
    fields: BTreeMap<&'static str, Option<String>>,
    enhanced_evidence: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceDetails {
    due_by: i64,
    enhanced_eligibility: BTreeMap<String, String>,
    has_evidence: bool,
    past_due: bool,
    submission_count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentMethodDetails {
    #[serde(rename = "type")]
    kind: &'static str,
    card: DisputeCard,
}

#[derive(Debug, Clone, Serialize)]
struct DisputeCard {
    brand: String,
    case_type: &'static str,
    network: String,
    network_reason_code: Option<String>,
}

/// Stripe gives about three weeks to answer.
const RESPONSE_WINDOW_SECS: i64 = 21 * 24 * 3600;

impl Dispute {
    /// A dispute of `amount` of `charge` the cardholder's bank has just opened: `needs_response`.
    pub fn open(charge: &Charge, amount: i64, reason: &str) -> Self {
        let mut dispute = Self::new(charge, amount, reason);
        dispute.set_status(Status::NeedsResponse);
        dispute
    }

    /// A dispute as Stripe shows one just opened by the cardholder's bank, awaiting our evidence.
    fn new(charge: &Charge, amount: i64, reason: &str) -> Self {
        let created = now();
        Self {
            id: new_id("du"),
            object: "dispute",
            amount,
            balance_transactions: Vec::new(),
            charge: charge.id.clone(),
            created,
            currency: charge.currency.clone(),
            enhanced_eligibility_types: Vec::new(),
            evidence: Evidence {
                fields: EVIDENCE_FIELDS.iter().map(|f| (*f, None)).collect(),
                enhanced_evidence: BTreeMap::new(),
            },
            evidence_details: EvidenceDetails {
                due_by: created + RESPONSE_WINDOW_SECS,
                enhanced_eligibility: BTreeMap::new(),
                has_evidence: false,
                past_due: false,
                submission_count: 0,
            },
            is_charge_refundable: false,
            livemode: false,
            metadata: BTreeMap::new(),
            payment_intent: charge.payment_intent.clone(),
            payment_method_details: PaymentMethodDetails {
                kind: "card",
                card: DisputeCard {
                    brand: charge.brand().to_string(),
                    case_type: "chargeback",
                    network: charge.brand().to_string(),
                    network_reason_code: None,
                },
            },
            reason: reason.to_string(),
            status: Status::NeedsResponse,
        }
    }

    /// Whether `reason` is one a dispute may carry.
    pub fn is_reason(reason: &str) -> bool {
        REASONS.contains(&reason)
    }

    /// The evidence field named `key`, if Stripe's Dispute has one.
    pub fn evidence_field(key: &str) -> Option<&'static str> {
        EVIDENCE_FIELDS.iter().find(|f| **f == key).copied()
    }

    /// Whether the charge may still be refunded: not while the bank decides, nor once the
    /// money went back to the cardholder through the dispute.
    pub fn allows_refund(&self) -> bool {
        matches!(self.status, Status::WarningNeedsResponse | Status::WarningClosed | Status::Won)
    }

    fn set_status(&mut self, status: Status) {
        self.status = status;
        self.is_charge_refundable = self.allows_refund();
    }

    /// The bank decides: `won`, `lost` or `warning_closed`.
    pub fn close(&mut self, outcome: DisputeOutcome) -> Result<(), ApiError> {
        if !self.status.is_open() {
            return Err(ApiError::invalid(None, format!("Dispute {} is already closed.", self.id), Some("dispute")));
        }
        self.set_status(match outcome {
            DisputeOutcome::Won => Status::Won,
            DisputeOutcome::Lost => Status::Lost,
            DisputeOutcome::WarningClosed => Status::WarningClosed,
        });
        Ok(())
    }

    /// Stages `evidence` and `metadata`, and with `submit` sends the evidence to the bank:
    /// `under_review` (`warning_under_review` for an inquiry). Returns what changed as it was
    /// before (`previous_attributes` holds only that, as Stripe sends it).
    pub fn update(
        &mut self,
        evidence: Vec<(&'static str, &str)>,
        metadata: BTreeMap<String, String>,
        submit: bool,
    ) -> Result<Value, ApiError> {
        if !matches!(self.status, Status::NeedsResponse | Status::WarningNeedsResponse) {
            return Err(ApiError::invalid(
                None,
                format!(
                    "This dispute is {}: evidence can no longer be changed.",
                    json!(self.status).as_str().unwrap_or_default()
                ),
                Some("evidence"),
            ));
        }
        let before = self.changeable();
        for (field, value) in evidence {
            self.evidence.fields.insert(field, Some(value.to_string()));
            self.evidence_details.has_evidence = true;
        }
        self.metadata.extend(metadata);
        if submit {
            self.evidence_details.submission_count += 1;
            self.set_status(if self.status == Status::WarningNeedsResponse {
                Status::WarningUnderReview
            } else {
                Status::UnderReview
            });
        }
        let after = self.changeable();
        let previous: Map<String, Value> = before
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| after[k.as_str()] != **v)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(previous.into())
    }

    /// What an update may change.
    fn changeable(&self) -> Value {
        json!({"status": self.status, "metadata": self.metadata, "evidence_details": self.evidence_details})
    }
}
