//! One attempt at one delivery: the stored event's bytes, exactly as the provider sent them,
//! POSTed to the destination and signed with the Standard Webhooks scheme, so a receiver's stock
//! library verifies it.
//!
//! Headers: `webhook-id` is stable across attempts and replays, so a receiver can deduplicate:
//! for Stripe's events the Stripe event id (`evt_…`); for a gateway source's,
//! `{source}:{row id}` (our `gateway_events` id: the sender's own ids may hold `.`, which the
//! specification warns lets one signed message pass for another, and may be up to 255 bytes).
//! `webhook-timestamp` is now (a receiver refuses stale ones); `webhook-signature` holds one
//! `v1,` per active secret, space-separated, so during a rotation either secret verifies;
//! `webhook-source` names where the event came from (`stripe` or the gateway source).
use crate::domain::forwarding::{answer_head, honours_retry_after, retry_after, STRIPE};
use crate::senders::{standard_webhooks, Secret};
use crate::store::forward_destinations::DestinationRow;
use crate::store::{events, gateway_events, Db, StoreError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::time::{Duration, Instant};

pub type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// The one client a process sends with (its connection pool is shared by every destination).
pub fn client() -> HttpClient {
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector)
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's status; None when it did not answer in time or could not be reached.
    pub status: Option<u16>,
    /// Why there is no status (or what else went wrong before sending).
    pub error: Option<String>,
    pub latency: Duration,
    /// The answer's first bytes, as text.
    pub answer: String,
    /// How long the receiver asked us to wait (`Retry-After` on 429 or 503).
    pub asked_wait: Option<Duration>,
}

impl Attempt {
    fn failed(error: String, started: Instant) -> Self {
        Self { status: None, error: Some(error), latency: started.elapsed(), answer: String::new(), asked_wait: None }
    }
}

/// The bytes to send and the stable id they go under, or why there are none.
pub async fn stored_event(db: &Db, source: &str, event_id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    if source == STRIPE {
        return Ok(events::evidence(db, event_id).await?.map(|e| (event_id.to_string(), e.payload)));
    }
    Ok(gateway_events::get(db, source, event_id).await?.map(|e| (format!("{source}:{}", e.id), e.payload)))
}

/// The `webhook-signature` value: one `v1,` per secret.
pub fn signatures(id: &str, timestamp: i64, body: &[u8], secrets: &[String]) -> String {
    secrets
        .iter()
        .filter_map(|s| standard_webhooks::sign(id, timestamp, body, &Secret::new(s.clone())).ok())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Makes one attempt to deliver (`source`, `event_id`) to `dest`, signed with each of
/// `secrets` (the destination's active ones), within `timeout`.
pub async fn attempt(
    db: &Db,
    client: &HttpClient,
    dest: &DestinationRow,
    (source, event_id): (&str, &str),
    secrets: &[String],
    timeout: Duration,
) -> Attempt {
    let started = Instant::now();
    let now = chrono::Utc::now();
    let (id, body) = match stored_event(db, source, event_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return Attempt::failed(format!("the stored event {source}/{event_id} is missing"), started),
        Err(e) => return Attempt::failed(format!("the stored event could not be read: {e}"), started),
    };
    if secrets.is_empty() {
        return Attempt::failed("the destination has no active secret".into(), started);
    }
    let signature = signatures(&id, now.timestamp(), &body, secrets);
    let request = hyper::Request::post(&dest.url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("revision-store/", env!("CARGO_PKG_VERSION")))
        .header("webhook-id", &id)
        .header("webhook-timestamp", now.timestamp().to_string())
        .header("webhook-signature", signature)
        .header("webhook-source", source)
        .body(Full::new(Bytes::from(body)));
    let request = match request {
        Ok(r) => r,
        Err(e) => return Attempt::failed(format!("the request could not be made: {e}"), started),
    };
    match tokio::time::timeout(timeout, exchange(client, request)).await {
        Ok(Ok((status, retry, answer))) => {
            let asked_wait = if honours_retry_after(status) {
                retry.and_then(|r| retry_after(&r, chrono::Utc::now()))
            } else {
                None
            };
            Attempt { status: Some(status), error: None, latency: started.elapsed(), answer, asked_wait }
        }
        Ok(Err(e)) => Attempt::failed(e, started),
        Err(_) => Attempt::failed(format!("no answer within {} s", timeout.as_secs_f64()), started),
    }
}

/// Sends and reads the status, `Retry-After`, and the answer's first bytes (reading stops there:
/// a receiver streaming a large page holds nothing of ours).
async fn exchange(
    client: &HttpClient,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(u16, Option<String>, String), String> {
    let res = client.request(request).await.map_err(|e| format!("unreachable: {}", error_chain(&e)))?;
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut body = res.into_body();
    let mut head = Vec::new();
    while head.len() < crate::domain::forwarding::ANSWER_KEPT {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    head.extend_from_slice(data);
                }
            }
            // The status is the answer; a body cut short is still one.
            Some(Err(_)) | None => break,
        }
    }
    Ok((status, retry, answer_head(&head)))
}

/// An error and its causes, one line (hyper's own says only "client error (Connect)").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
