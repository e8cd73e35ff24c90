//! The server's own routes, one file per resource, each with its `router()`. Pages and server
//! functions are leptos' (`app::web`), added by `application::router`.
pub mod admin;
pub mod api;
pub mod destinations;
pub mod health;
pub mod metrics;
pub mod people;
pub mod revisions;
pub mod slack;
pub mod webhook;

use crate::AppState;
use axum::Router;

/// Form posts and downloads of people using the pages: with the pages, they get sessions and the
/// cross-site check.
pub fn site() -> Router<AppState> {
    Router::new()
        .merge(revisions::router())
        .merge(admin::router())
        .merge(destinations::router())
        .merge(people::router())
}

/// Called by machines (Stripe, scripts, Slack, load balancers, scrapers): never a session.
pub fn machines() -> Router<AppState> {
    Router::new()
        .merge(webhook::router())
        .merge(metrics::router())
        .merge(api::router())
        .merge(slack::router())
        .merge(health::router())
}
