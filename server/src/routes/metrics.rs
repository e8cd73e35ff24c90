//! `GET /metrics`: the figures in Prometheus' text format, for the scraper holding METRICS_TOKEN.
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// GET /metrics: for the scraper holding METRICS_TOKEN; 404 for anyone else (and for everyone
/// when no token is set), since the figures (payments, failures) are not for the public.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| app::services::api_keys::hash(t.trim()));
    // Digests compared, never the token itself: how much of a guess matches tells nothing.
    if state.metrics_token_hash.as_deref().is_none_or(|expected| given.as_deref() != Some(expected)) {
        return (StatusCode::NOT_FOUND, "Not found.").into_response();
    }
    let svc = &state.services;
    match app::store::events::oldest_pending(&svc.db).await {
        Ok(oldest) => svc
            .stats
            .processing_lag
            .set(oldest.map_or(0.0, |t| (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)),
        // The figures still render; the lag keeps its last value.
        Err(e) => tracing::warn!(error = %e, "reading the processing lag failed"),
    }
    if let Err(e) = app::services::alerts::publish_gauges(svc).await {
        tracing::warn!(error = %e, "reading the alerts' state for the metrics failed");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], svc.stats.render()).into_response()
}
