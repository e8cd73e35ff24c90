//! The evidence bundle of one payment: one tar file holding every stored event about it byte
//! for byte (as its own file), what we know of each (headers, signature header, how it reached
//! us, when it was received and processed, the SHA-256 recorded when it was stored and the one
//! the bytes have now), and the payment's purchase, credit, adjustments, refunds, disputes and
//! reconciliation findings. `SHA256SUMS` lists every file, so `sha256sum -c SHA256SUMS` checks the
//! bundle itself; the recorded digests check the events against the day they arrived.
use super::Services;
use crate::store::{self, StoreError};
use serde_json::{json, Value};
use store::events::NewEvent;

/// Every SHA-256 here is the one intake records for a payload.
fn sha256_hex(bytes: &[u8]) -> String {
    NewEvent::digest(bytes)
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("`{0}` is not a PaymentIntent id (pi_…)")]
    NotAPayment(String),
    #[error("we hold nothing about {0}")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the bundle could not be written: {0}")]
    Write(#[from] std::io::Error),
    #[error("more than {MAX_SOURCE_EVENTS} events in that window: ask for a shorter one")]
    TooMany,
}

/// What the bundle says about one event, beside its bytes.
fn event_meta(e: &store::events::StoredEvent, file: &str, seal: Option<&store::seals::Seal>) -> Value {
    let now = sha256_hex(&e.payload);
    json!({
        "event_id": e.event_id,
        "type": e.event_type,
        "livemode": e.livemode,
        "api_version": e.api_version,
        "stripe_created": e.stripe_created,
        "received_at": e.received_at.to_rfc3339(),
        "verified_by": e.verified_by,
        "signature_header": e.signature_header,
        "request_headers": serde_json::from_str::<Value>(&e.request_headers).unwrap_or(Value::String(e.request_headers.clone())),
        "payload_file": file,
        "payload_bytes": e.payload.len(),
        "payload_sha256_recorded": e.payload_sha256,
        "payload_sha256_now": now,
        "unchanged_since_stored": e.payload_sha256.as_ref().map(|r| *r == now),
        // The hour's seal (services::seals): `revision-store evidence verify` recomputes it.
        "seal": seal.map(|s| json!({
            "period_start": s.period_start.to_rfc3339(),
            "period_end": s.period_end.to_rfc3339(),
            "event_count": s.event_count,
            "digest": s.digest,
            "previous": s.previous,
            "chained": s.chained,
            "sealed_at": s.sealed_at.to_rfc3339(),
        })),
        "processing": {
            "status": e.status,
            "attempts": e.attempts,
            "processed_at": e.processed_at.map(|t| t.to_rfc3339()),
            "outcome": e.outcome,
            "last_error": e.last_error,
        },
    })
}

struct Tar {
    builder: tar::Builder<Vec<u8>>,
    sums: String,
    mtime: u64,
}

impl Tar {
    /// Adds a file to the archive (and not to the sums: `SHA256SUMS` itself goes in this way).
    fn append(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        self.builder.append_data(&mut header, path, bytes)
    }

    /// Adds a file and lists its SHA-256 for `SHA256SUMS`.
    fn add(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.append(path, bytes)?;
        self.sums.push_str(&format!("{}  {path}\n", sha256_hex(bytes)));
        Ok(())
    }
}

const README: &str = "Evidence bundle of one payment, exported by Revision Store.\n\n\
events/*.json       each stored Stripe event about the payment, byte for byte as received\n\
events/*.meta.json  its headers, signature header, how it reached us (signature: a verified\n\
                    webhook delivery; api_fetch: fetched by our authenticated API call),\n\
                    received and processed times, and the SHA-256 recorded when it was stored\n\
                    beside the SHA-256 of the bytes here (unchanged_since_stored), and the\n\
                    seal of the hour it was received in (null until that hour is sealed)\n\
payment.json        the purchase, the ledger credit, revisions taken back, refunds, disputes,\n\
                    the Rate Card record and reconciliation findings\n\
SHA256SUMS          every file's SHA-256: check with `sha256sum -c SHA256SUMS`\n";

/// The bundle of `payment_id` as a tar file.
pub async fn bundle(svc: &Services, payment_id: &str) -> Result<Vec<u8>, BundleError> {
    let id = payment_id.trim();
    if !id.starts_with("pi_") || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') || id.len() > 255 {
        return Err(BundleError::NotAPayment(id.to_string()));
    }
    let db = &svc.db;
    let events = store::events::stored_mentioning(db, id).await?;
    let purchase = store::purchases::find(db, id).await?;
    let credit = store::ledger::credit_for_payment(db, id).await?;
    let external = store::external_payments::find(db, id).await?;
    if events.is_empty() && purchase.is_none() && credit.is_none() && external.is_none() {
        return Err(BundleError::Unknown(id.to_string()));
    }
    let payment = json!({
        "payment_intent": id,
        "exported_at": chrono::Utc::now().to_rfc3339(),
        "purchase": purchase,
        "ledger_credit": credit,
        "rate_card_payment": external,
        "revisions_taken_back": store::adjustments::for_payment(db, id).await?,
        "refunds": store::adjustments::refunds_for_payment(db, id).await?,
        "disputes": store::adjustments::disputes_for_payment(db, id).await?,
        "reconciliation_findings": store::reconciliation::findings_for_payment(db, id).await?,
        "events": events.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>(),
    });
    let mut tar = Tar {
        builder: tar::Builder::new(Vec::new()),
        sums: String::new(),
        mtime: chrono::Utc::now().timestamp().max(0) as u64,
    };
    let dir = format!("evidence-{id}");
    tar.add(&format!("{dir}/README.txt"), README.as_bytes())?;
    for (i, e) in events.iter().enumerate() {
        // Numbered in the order received, so a listing reads as the payment's history.
        let name = format!("events/{:03}-{}", i + 1, e.event_id);
        tar.add(&format!("{dir}/{name}.json"), &e.payload)?;
        let seal = store::seals::covering(db, e.received_at).await?;
        let meta = serde_json::to_vec_pretty(&event_meta(e, &format!("{name}.json"), seal.as_ref())).expect("JSON");
        tar.add(&format!("{dir}/{name}.meta.json"), &meta)?;
    }
    tar.add(&format!("{dir}/payment.json"), &serde_json::to_vec_pretty(&payment).expect("JSON"))?;
    // The sums name files relative to the bundle's folder, as `sha256sum -c` run there expects.
    let sums = tar.sums.replace(&format!("  {dir}/"), "  ");
    tar.append(&format!("{dir}/SHA256SUMS"), sums.as_bytes())?;
    Ok(tar.builder.into_inner()?)
}

/// The most events one source bundle holds: it is built in memory, and a window holding more is
/// a question better asked in parts.
pub const MAX_SOURCE_EVENTS: i64 = 10_000;

const SOURCE_README: &str = "Evidence bundle of a webhook source's events, exported by Revision Store.\n\n\
events/*.json       each event the source sent in the window, byte for byte as received\n\
events/*.meta.json  the request's headers, what the signature check found, when it was\n\
                    received, the SHA-256 recorded when it was stored beside the SHA-256 of\n\
                    the bytes here (unchanged_since_stored), and the seal of its hour\n\
SHA256SUMS          every file's SHA-256: check with `sha256sum -c SHA256SUMS`\n";

/// The bundle of every event `source` sent in `[from, to)` (oldest first) as a tar file.
pub async fn source_bundle(
    svc: &Services,
    source: &str,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<u8>, BundleError> {
    let db = &svc.db;
    if store::webhook_sources::get(db, source).await?.is_none() {
        return Err(BundleError::Unknown(source.to_string()));
    }
    let events = store::gateway_events::in_window(db, source, from, to, MAX_SOURCE_EVENTS + 1).await?;
    if events.len() as i64 > MAX_SOURCE_EVENTS {
        return Err(BundleError::TooMany);
    }
    let mut tar = Tar {
        builder: tar::Builder::new(Vec::new()),
        sums: String::new(),
        mtime: chrono::Utc::now().timestamp().max(0) as u64,
    };
    let dir = format!("evidence-{source}-{}", from.format("%Y%m%dT%H%M%SZ"));
    tar.add(&format!("{dir}/README.txt"), SOURCE_README.as_bytes())?;
    for (i, e) in events.iter().enumerate() {
        // The sender's id may hold any character: the file is named by our row id.
        let name = format!("events/{:05}-{}", i + 1, e.id);
        tar.add(&format!("{dir}/{name}.json"), &e.payload)?;
        let seal = store::seals::covering(db, e.received_at).await?;
        let now = sha256_hex(&e.payload);
        let meta = json!({
            "source": e.source,
            "event_id": e.event_id,
            "type": e.event_type,
            "occurred_at": e.occurred_at.map(|t| t.to_rfc3339()),
            "received_at": e.received_at.to_rfc3339(),
            "request_headers": serde_json::from_str::<Value>(&e.headers).unwrap_or(Value::String(e.headers.clone())),
            "verification": serde_json::from_str::<Value>(&e.verification).unwrap_or(Value::String(e.verification.clone())),
            "payload_file": format!("{name}.json"),
            "payload_bytes": e.payload.len(),
            "payload_sha256_recorded": e.payload_sha256,
            "payload_sha256_now": now,
            "unchanged_since_stored": e.payload_sha256 == now,
            "seal": seal.map(|s| json!({"period_start": s.period_start.to_rfc3339(), "chained": s.chained})),
        });
        tar.add(&format!("{dir}/{name}.meta.json"), &serde_json::to_vec_pretty(&meta).expect("JSON"))?;
    }
    let sums = tar.sums.replace(&format!("  {dir}/"), "  ");
    tar.append(&format!("{dir}/SHA256SUMS"), sums.as_bytes())?;
    Ok(tar.builder.into_inner()?)
}
