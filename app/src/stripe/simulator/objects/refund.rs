//! The Refund object: money going back to the card, all or part of a charge; `pending` until
//! the bank settles it for some test cards, and `failed` when the card refuses it.
use super::cards::AfterSuccess;
use super::charge::Charge;
use crate::stripe::simulator::wire::{new_id, now, object, ApiError};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    pub id: String,
    pub object: &'static str,
    pub amount: i64,
    pub balance_transaction: Option<String>,
    pub charge: String,
    pub created: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub customer_account: Option<String>,
    pub destination_details: DestinationDetails,
    pub failure_reason: Option<&'static str>,
    pub metadata: BTreeMap<String, String>,
    pub payment_intent: String,
    pub payment_method: Option<String>,
    pub reason: Option<String>,
    pub receipt_number: Option<String>,
    pub source_transfer_reversal: Option<String>,
    pub status: Status,
    pub transfer_reversal: Option<String>,
}
object!(Refund);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Succeeded,
    Failed,
}

/// How a pending refund ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundSettlement {
    Succeeded,
    Failed,
}

/// Where the money goes back to: the card, as a reversal.
#[derive(Debug, Clone, Serialize)]
pub struct DestinationDetails {
    #[serde(rename = "type")]
    kind: &'static str,
    card: CardDestination,
}

#[derive(Debug, Clone, Serialize)]
struct CardDestination {
    #[serde(rename = "type")]
    kind: &'static str,
}

impl Refund {
    /// A refund of `amount` of `charge`: `pending` for the 4000 0000 0000 7726 card, which
    /// settles later, `succeeded` at once otherwise.
    pub fn of_charge(charge: &Charge, amount: i64, reason: Option<String>, metadata: BTreeMap<String, String>) -> Self {
        Self {
            id: new_id("re"),
            object: "refund",
            amount,
            balance_transaction: None,
            charge: charge.id.clone(),
            created: now(),
            currency: charge.currency.clone(),
            customer: None,
            customer_account: None,
            destination_details: DestinationDetails { kind: "card", card: CardDestination { kind: "reversal" } },
            failure_reason: None,
            metadata,
            payment_intent: charge.payment_intent.clone(),
            payment_method: charge.payment_method.clone(),
            reason,
            receipt_number: None,
            source_transfer_reversal: None,
            status: if charge.after_success == AfterSuccess::RefundsPending {
                Status::Pending
            } else {
                Status::Succeeded
            },
            transfer_reversal: None,
        }
    }

    /// A pending refund ends as `outcome` says (a failed one for a lost or stolen card).
    pub fn settle(&mut self, outcome: RefundSettlement) -> Result<(), ApiError> {
        if self.status != Status::Pending {
            return Err(ApiError::invalid(None, format!("Refund {} is not pending.", self.id), None));
        }
        self.status = match outcome {
            RefundSettlement::Succeeded => Status::Succeeded,
            RefundSettlement::Failed => Status::Failed,
        };
        if outcome == RefundSettlement::Failed {
            self.failure_reason = Some("lost_or_stolen_card");
        }
        Ok(())
    }

    /// A succeeded refund the card refused after all (the card was closed). False if it had
    /// not succeeded, so nothing changed.
    pub fn fail(&mut self) -> bool {
        if self.status != Status::Succeeded {
            return false;
        }
        self.status = Status::Failed;
        self.failure_reason = Some("expired_or_canceled_card");
        true
    }
}
