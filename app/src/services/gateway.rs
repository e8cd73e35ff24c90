//! The webhook gateway's intake for senders other than Stripe (`POST /webhooks/{source}`): the
//! same guarantees as Stripe's. The signature is checked before anything is trusted
//! (`senders::verify`, every active secret of the source); the raw bytes, the headers and what
//! the check found are stored before any 2xx; a copy of a stored event (the same source and
//! sender's event id) is stopped by the UNIQUE key, not by a lookup two copies could both pass;
//! a write that fails is answered 503, so the sender retries and nothing is lost quietly.
use super::Services;
use crate::domain::gateway::{check_event_fields, SourceName};
use crate::senders::{self, Delivery, Refusal, Scheme, Secret};
use crate::store::gateway_events::{self, NewGatewayEvent};
use crate::store::webhook_sources;
use crate::store::StoreError;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};

/// What became of one delivery.
#[derive(Debug)]
pub enum Received {
    /// Verified and stored now: `id` is our row, `event_id` the sender's.
    Stored { id: i64, event_id: String },
    /// Verified, and stored before (a retry or a copy): nothing written.
    Duplicate { event_id: String },
    /// No enabled source of that name: nothing read beyond the name.
    UnknownSource,
    /// Not trusted, or not an event we can key: nothing stored. Counted by reason.
    Refused(Refusal),
    /// The source's settings cannot be read as a scheme (edited by hand?): 503 and logged, so
    /// the sender keeps the event and retries once it is fixed.
    Misconfigured(String),
    /// The database could not take it: 503, so the sender retries.
    Unavailable(StoreError),
}

/// Headers never kept: they carry credentials of someone's, not evidence of the sender's.
const DROPPED_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// Receives one delivery to `source` at `now`.
pub async fn receive(svc: &Services, source: &str, headers: &HeaderMap, body: &[u8], now: DateTime<Utc>) -> Received {
    // Forwarding's senders hold back while this runs: intake comes first.
    let _taking_in = svc.forwarding.taking_in();
    let Ok(name) = SourceName::parse(source) else { return Received::UnknownSource };
    let (scheme, secrets) = match load(svc, &name, now).await {
        Ok(Some(found)) => found,
        Ok(None) => return Received::UnknownSource,
        Err(received) => return counted(svc, &name, received),
    };
    let delivery = Delivery { headers, body, now: now.timestamp() };
    let verified = match senders::verify(&scheme, &secrets, &delivery, &svc.certs).await {
        Ok(v) => v,
        Err(refusal) => return refused(svc, &name, refusal),
    };
    if let Err(reason) = check_event_fields(&verified.event_id, verified.event_type.as_deref()) {
        return refused(svc, &name, Refusal::NotAnEvent(reason));
    }
    let kept = kept_headers(headers);
    let verification = serde_json::json!({
        "scheme": verified.scheme_label,
        "verified_at": now.to_rfc3339(),
        "active_secrets": secrets.len(),
    })
    .to_string();
    let event = NewGatewayEvent {
        source: name.as_str(),
        event_id: &verified.event_id,
        event_type: verified.event_type.as_deref(),
        occurred_at: verified.occurred_at.and_then(|t| DateTime::from_timestamp(t, 0)),
        received_at: now,
        payload: body,
        headers: &kept,
        verification: &verification,
    };
    match gateway_events::insert(&svc.db, &event).await {
        Ok(Some(id)) => {
            svc.stats.gateway_delivery(name.as_str(), "stored");
            Received::Stored { id, event_id: verified.event_id }
        }
        Ok(None) => {
            svc.stats.gateway_delivery(name.as_str(), "duplicate");
            Received::Duplicate { event_id: verified.event_id }
        }
        Err(e) => counted(svc, &name, Received::Unavailable(e)),
    }
}

/// A delivery the store could not take is counted (by source, and for the alert on deliveries
/// answered 503, as Stripe's are) and logged; other outcomes pass through as they are.
fn counted(svc: &Services, name: &SourceName, received: Received) -> Received {
    if let Received::Unavailable(e) = &received {
        svc.stats.gateway_delivery(name.as_str(), "unavailable");
        svc.stats.tally(crate::domain::alerts::Fault::StoreUnavailable);
        tracing::error!(source = name.as_str(), error = %e, "gateway event not stored; answered 503");
    }
    received
}

/// The source's scheme and active secrets; None when there is no enabled source of that name.
async fn load(
    svc: &Services,
    name: &SourceName,
    now: DateTime<Utc>,
) -> Result<Option<(Scheme, Vec<Secret>)>, Received> {
    let row = match webhook_sources::get(&svc.db, name.as_str()).await {
        Ok(Some(row)) if row.disabled_at.is_none() => row,
        Ok(_) => return Ok(None),
        Err(e) => return Err(Received::Unavailable(e)),
    };
    let scheme: Scheme = serde_json::from_str(&row.scheme).map_err(|e| {
        tracing::error!(source = name.as_str(), error = %e, "a source's scheme cannot be read; answered 503");
        Received::Misconfigured(e.to_string())
    })?;
    let secrets = webhook_sources::active_secrets(&svc.db, name.as_str(), now)
        .await
        .map_err(Received::Unavailable)?
        .into_iter()
        .map(|s| Secret::new(s.secret))
        .collect();
    Ok(Some((scheme, secrets)))
}

fn refused(svc: &Services, name: &SourceName, refusal: Refusal) -> Received {
    svc.stats.gateway_delivery(name.as_str(), refusal_outcome(&refusal));
    tracing::info!(source = name.as_str(), reason = refusal.label(), "gateway delivery refused");
    Received::Refused(refusal)
}

/// The metric outcome of a refusal: its label, as a static name.
fn refusal_outcome(refusal: &Refusal) -> &'static str {
    match refusal.label() {
        "missing_header" => "refused_missing_header",
        "malformed_header" => "refused_malformed_header",
        "no_secret" => "refused_no_secret",
        "no_match" => "refused_no_match",
        "outside_tolerance" => "refused_outside_tolerance",
        "unsupported_algorithm" => "refused_unsupported_algorithm",
        "untrusted_cert_url" => "refused_untrusted_cert_url",
        "cert_unavailable" => "refused_cert_unavailable",
        "cert_invalid" => "refused_cert_invalid",
        _ => "refused_not_an_event",
    }
}

/// Every header but credentials, as a JSON object (a header sent twice keeps both, joined by
/// ", " as HTTP allows): the signature headers are the evidence a later check needs.
fn kept_headers(headers: &HeaderMap) -> String {
    let mut kept = serde_json::Map::new();
    for name in headers.keys() {
        if DROPPED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let values: Vec<String> =
            headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
        kept.insert(name.as_str().to_string(), serde_json::Value::String(values.join(", ")));
    }
    serde_json::Value::Object(kept).to_string()
}
