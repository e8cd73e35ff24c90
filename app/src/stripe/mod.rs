//! The Stripe layer: signatures (pure), and the API client (async-stripe).
pub mod client;
pub mod signature;
pub mod simulator;

pub use client::{Pacer, PaymentIntentInfo, PaymentSnapshot, StripeApi, StripeApiError};
pub use signature::{SignatureError, WebhookSecret};
