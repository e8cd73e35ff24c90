//! The Radar EarlyFraudWarning object: a card network's notice that a charge looks
//! fraudulent, often ahead of a dispute.
use super::charge::Charge;
use crate::stripe::simulator::wire::{new_id, now, object};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct EarlyFraudWarning {
    pub id: String,
    pub object: &'static str,
    pub actionable: bool,
    pub charge: String,
    pub created: i64,
    pub fraud_type: &'static str,
    pub livemode: bool,
    pub payment_intent: String,
}
object!(EarlyFraudWarning);

impl EarlyFraudWarning {
    /// The network's warning that `charge` was made with a stolen card.
    pub fn on(charge: &Charge) -> Self {
        Self {
            id: new_id("issfr"),
            object: "radar.early_fraud_warning",
            // Actionable while the charge can still be refunded to head off a dispute.
            actionable: charge.dispute.is_none() && charge.refundable() > 0,
            charge: charge.id.clone(),
            created: now(),
            fraud_type: "made_with_stolen_card",
            livemode: false,
            payment_intent: charge.payment_intent.clone(),
        }
    }
}
