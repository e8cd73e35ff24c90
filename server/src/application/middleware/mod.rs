//! What every request passes through: its id and span (`request_id`), its timing, the body's
//! deadlines (`body_deadline`), the cross-site check and session snapshot (`guard`) and the
//! security headers.
pub mod body_deadline;
pub mod guard;
pub mod request_id;

use axum::Router;

/// Records how long each request took: webhook deliveries apart from everything else people and
/// scripts ask for; static files are not counted.
pub(crate) async fn timed(
    axum::extract::State(stats): axum::extract::State<std::sync::Arc<app::services::stats::Stats>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path();
    let histogram = if path == "/webhooks/stripe" {
        Some(&stats.webhook_seconds)
    } else if path.starts_with("/pkg/") || path.starts_with(app::stripe::simulator::MOUNT) || path == "/favicon.svg" {
        None
    } else {
        Some(&stats.page_seconds)
    }
    .cloned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    if let Some(h) = histogram {
        h.record(started.elapsed().as_secs_f64());
    }
    response
}

/// Headers every response carries. Pages set their own Content-Security-Policy (with their
/// scripts' nonce, `app::web::security`); anything else gets the inert one. HSTS only when the
/// app is reached over https (`SECURE_COOKIES`): sent over plain http it would be ignored at
/// best, and it cannot be taken back for its max-age.
pub(crate) fn security_headers(router: Router, https: bool) -> Router {
    use axum::http::{header, HeaderValue};
    use tower_http::set_header::SetResponseHeaderLayer;
    let router = router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(app::web::security::INERT_POLICY),
        ))
        // Never guess a type: an uploaded file is never run as a script or page.
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        // frame-ancestors for browsers that predate it.
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        // Other sites learn our origin, never a page's path (contract ids, search filters).
        // Stripe.js needs the origin.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ));
    if https {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
    } else {
        router
    }
}
