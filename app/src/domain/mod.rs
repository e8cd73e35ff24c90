//! The business, as plain data and pure functions: no I/O, no async, no database.
//! Everything here compiles for the browser too, so the UI and the server share one set of rules.
pub mod accounting;
pub mod adjustments;
pub mod alerts;
pub mod artwork;
pub mod deployment;
pub mod event_search;
pub mod events;
pub mod forwarding;
pub mod gateway;
pub mod listing;
pub mod mail;
pub mod money;
pub mod people;
pub mod revenue;
pub mod slack;
pub mod throttle;
pub mod users;

pub use accounting::{NoRevisionsLeft, RevisionBalance};
pub use money::{Currency, Money, PackTerms};
