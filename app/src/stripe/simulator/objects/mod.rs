//! Stripe's objects as the simulator keeps and renders them, one file per object, with what
//! they do by themselves: how each is made from what it comes from, and the steps of its life.
//! No tables, no HTTP: those are `state`'s and the resources' handlers'. (The module is private
//! to the simulator, so `pub` here means the simulator's.)
mod cards;
mod charge;
mod dispute;
mod early_fraud_warning;
mod event;
mod payment_intent;
mod refund;

pub use cards::{card_outcome, test_payment_method_number, AfterSuccess, CardOutcome};
pub use charge::Charge;
pub use dispute::{Dispute, DisputeOutcome};
pub use early_fraud_warning::EarlyFraudWarning;
pub use event::{Event, API_VERSION};
pub use payment_intent::{PaymentIntent, Status as PaymentIntentStatus};
pub use refund::{Refund, RefundSettlement};
