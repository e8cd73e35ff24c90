//! `POST /webhooks/stripe`: a thin edge over `services::intake`; `POST /webhooks/{source}`, the
//! gateway's other senders, over `services::gateway`. Maps the outcome to the status
//! Stripe acts on: 2xx only for an event we hold; 400 for what a retry cannot fix; 413 for an
//! oversized body; 503 when we could not store it, so Stripe retries.
use crate::AppState;
use app::services::gateway::{self, Received};
use app::services::intake::{receive as intake, Delivery, Intake};
use app::services::processing::Processed;
use app::services::stats::Stats;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

/// Stripe's events are a few KB; 1 MiB leaves room and bounds what an attacker can make us hash.
pub const MAX_BODY: usize = 1 << 20;

/// Request headers kept beside the raw body as evidence (the signature has its own column).
const KEPT_HEADERS: [&str; 5] = ["user-agent", "content-type", "content-length", "x-forwarded-for", "x-request-id"];

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let svc = &state.services;
    let body = match whole_body(&svc.stats, body) {
        Ok(body) => body,
        Err((status, why)) => return error(status, &why),
    };
    let kept: serde_json::Map<String, serde_json::Value> = KEPT_HEADERS
        .iter()
        .filter_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()).map(|v| (name.to_string(), json!(v))))
        .collect();
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let delivery = Delivery { body: &body, signature, headers_json: serde_json::Value::Object(kept).to_string() };
    match intake(svc, delivery, chrono::Utc::now()).await {
        Intake::Stored { event_id, processed } => {
            let status = match processed {
                Some(Processed::Finished { status, .. }) => status,
                Some(Processed::RetryScheduled { .. }) => "retry_scheduled",
                Some(Processed::AlreadyFinished) | Some(Processed::NotFound) => "processed",
                None => "pending",
            };
            (StatusCode::OK, Json(json!({"received": true, "event_id": event_id, "status": status}))).into_response()
        }
        Intake::Duplicate { event_id } => {
            (StatusCode::OK, Json(json!({"received": true, "event_id": event_id, "duplicate": true}))).into_response()
        }
        Intake::Unauthentic(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
        Intake::Malformed(reason) => error(StatusCode::BAD_REQUEST, &format!("malformed event: {reason}")),
        Intake::Unavailable(_) => {
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "temporarily unable to store the event; retry");
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            r
        }
    }
}

/// The raw body, or the answer to a body we will not read: 413 over [`MAX_BODY`], 400 for one
/// that stopped arriving. Shared by Stripe's route and the gateway's.
fn whole_body(stats: &Stats, body: Result<Bytes, BytesRejection>) -> Result<Bytes, (StatusCode, String)> {
    match body {
        Ok(b) if b.len() <= MAX_BODY => Ok(b),
        Ok(_) | Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
            Stats::inc(&stats.rejected_too_large);
            tracing::warn!("webhook body over {MAX_BODY} bytes rejected");
            Err((StatusCode::PAYLOAD_TOO_LARGE, "body too large".into()))
        }
        // The sender went away or stalled mid-body (the body timeout): not its size. The
        // answer most likely reaches nobody; the count tells an operator which it was.
        Err(BytesRejection::FailedToBufferBody(e)) => {
            Stats::inc(&stats.rejected_incomplete);
            tracing::info!(error = %e, "webhook body incomplete");
            Err((StatusCode::BAD_REQUEST, "request body incomplete".into()))
        }
        Err(e) => Err((StatusCode::BAD_REQUEST, e.body_text())),
    }
}

/// `POST /webhooks/{source}`: a delivery from one of the gateway's other senders. 200 only for
/// an event we hold (stored now, or before: a copy); 400 for one we cannot trust or key; 404 for
/// no such source; 503 when it could not be stored, so the sender retries.
pub async fn receive_from_source(
    State(state): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let svc = &state.services;
    let body = match whole_body(&svc.stats, body) {
        Ok(body) => body,
        Err((status, why)) => return error(status, &why),
    };
    match gateway::receive(svc, &source, &headers, &body, chrono::Utc::now()).await {
        Received::Stored { id, event_id } => {
            (StatusCode::OK, Json(json!({"received": true, "event_id": event_id, "id": id}))).into_response()
        }
        Received::Duplicate { event_id } => {
            (StatusCode::OK, Json(json!({"received": true, "event_id": event_id, "duplicate": true}))).into_response()
        }
        Received::UnknownSource => error(StatusCode::NOT_FOUND, "no such webhook source"),
        Received::Refused(refusal) => error(StatusCode::BAD_REQUEST, &refusal.to_string()),
        Received::Misconfigured(_) | Received::Unavailable(_) => {
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "temporarily unable to store the event; retry");
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            r
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// Called by Stripe, not a browser: no session, its own signature check.
pub fn router() -> Router<AppState> {
    // `/webhooks/stripe` is matched before `/webhooks/{source}` (a fixed segment wins), and no
    // source may be named `stripe` (`domain::gateway::SourceName`).
    Router::new()
        .route("/webhooks/stripe", post(receive).layer(DefaultBodyLimit::max(MAX_BODY)))
        .route("/webhooks/{source}", post(receive_from_source).layer(DefaultBodyLimit::max(MAX_BODY)))
}
