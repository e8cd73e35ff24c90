//! The Stripe layer: signatures (pure), and the API client (async-stripe).
pub mod client;
pub mod signature;
pub mod simulator;

pub use client::{PaymentIntentInfo, StripeApi, StripeApiError};
pub use signature::{SignatureError, WebhookSecret};
