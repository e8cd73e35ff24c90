//! Revision Store: sell ad-artwork revision packs through Stripe, and never lose or double a
//! paid credit.
//!
//! Rooms (see ARCHITECTURE.md): `domain` (pure rules, compiled for the browser too), and behind
//! the `ssr` feature `store` (SQL per table, SQLite and PostgreSQL), `stripe` (signatures and
//! the API client), `slack` (request signatures and incoming webhooks), `mail` (SMTP), `signing` (the HMAC the senders sign
//! with), `senders` (the webhook gateway's verification schemes: Standard Webhooks, Square,
//! PayPal, generic HMAC) and `services` (use cases). `web` holds the Leptos pages, on both sides.
pub mod domain;
pub mod web;

#[cfg(feature = "ssr")]
pub mod mail;
#[cfg(feature = "ssr")]
pub mod senders;
#[cfg(feature = "ssr")]
pub mod services;
#[cfg(feature = "ssr")]
pub mod signing;
#[cfg(feature = "ssr")]
pub mod slack;
#[cfg(feature = "ssr")]
pub mod store;
#[cfg(feature = "ssr")]
pub mod stripe;
