//! What every handler can reach.
use app::services::Services;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

/// What every handler can reach: one shared value behind an `Arc`. axum clones the state for
/// every request (into the handler's service, again for its `State` extractor), and a plain
/// struct made each of those copy the configuration's strings and free them again (`perf` at 8
/// connections: `Services`' and `LeptosOptions`' clones and drops were among the server's
/// busiest symbols, besides the allocator).
#[derive(Clone)]
pub struct AppState(std::sync::Arc<AppStateInner>);

impl AppState {
    pub fn new(inner: AppStateInner) -> Self {
        Self(std::sync::Arc::new(inner))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// Leptos' handlers take the options from the state (and clone them only there).
/// How the callers' extractors (`app::web::access`: `AdminUser`, `SignedIn`) reach the services
/// they read the account with.
impl AsRef<Services> for AppState {
    fn as_ref(&self) -> &Services {
        &self.services
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

pub struct AppStateInner {
    pub leptos_options: LeptosOptions,
    pub services: Services,
    /// Per-key request limits of the totals-only API.
    pub api_limits: crate::routes::api::ApiLimits,
    /// SHA-256 (hex) of the token /metrics requires; None: /metrics is not served.
    pub metrics_token_hash: Option<std::sync::Arc<str>>,
    /// Where uploaded artwork is kept.
    pub artwork: crate::artwork::store::ArtworkStore,
    /// `/readyz`'s last answer (a check at most once a second).
    pub readiness: crate::routes::health::Readiness,
    /// Artwork uploads in progress, per uploader.
    pub uploads: crate::routes::revisions::UploadSlots,
}
