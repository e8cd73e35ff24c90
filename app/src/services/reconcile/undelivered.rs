//! Step 1's events: one Stripe could not deliver, fetched with our key, stored as evidence and
//! processed like a delivery.
use super::run::Run;
use super::{Category, ReconcileError};
use crate::domain::events::{EventObject, StripeEvent};
use crate::services::processing::{apply_as, Processed};
use crate::store::adjustments::BookedBy;
use crate::store::events::{self as event_store, NewEvent, Stored};
use chrono::Utc;
use serde_json::json;

/// An event Stripe could not deliver: stored (if we do not hold it) and processed.
pub(super) async fn event(run: &mut Run<'_>, raw: Vec<u8>) -> Result<(), ReconcileError> {
    let svc = run.svc;
    let event = match StripeEvent::parse(&raw) {
        Ok(e) => e,
        Err(reason) => {
            tracing::warn!(%reason, "an event Stripe listed does not parse; skipped");
            return Ok(());
        }
    };
    if event_store::summary(&svc.db, &event.id).await?.is_some() {
        return Ok(()); // we hold it: our answer was lost, not the event
    }
    let evidence = json!({"event_id": event.id, "type": event.event_type, "created": event.created});
    let detail = format!("{} ({}) was never delivered", event.id, event.event_type);
    let payment_id = event_payment(&event);
    if run.dry_run {
        return Ok(run
            .found(Category::UndeliveredEvent, true, payment_id.as_deref(), Some(&event.id), None, &detail, evidence)
            .await?);
    }
    let now = Utc::now();
    let new = NewEvent {
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        livemode: event.livemode,
        api_version: event.api_version.clone(),
        stripe_created: event.created,
        payload_sha256: NewEvent::digest(&raw),
        payload: raw,
        signature_header: String::new(),
        request_headers: json!({"fetched": format!("GET /v1/events/{}", event.id), "reconciliation_run": run.id})
            .to_string(),
        received_at: now,
    };
    // Stored through the same event store a delivery uses; if a delivery got there first, it
    // is that delivery's to process.
    if event_store::store_fetched(&svc.db, &new, svc.lease_until(now)).await? == Stored::Duplicate {
        return Ok(());
    }
    let outcome = apply_as(svc, &event, BookedBy::Reconciliation, now).await?;
    let detail = match &outcome {
        Processed::Finished { status, detail: d } => format!("{detail}: fetched, stored and {status}: {d}"),
        other => format!("{detail}: fetched and stored; processing: {other:?}"),
    };
    run.found(Category::UndeliveredEvent, true, payment_id.as_deref(), Some(&event.id), None, &detail, evidence)
        .await?;
    Ok(())
}

fn event_payment(event: &StripeEvent) -> Option<String> {
    match &event.object {
        EventObject::PaymentIntent(pi) => Some(pi.id.clone()),
        EventObject::Charge(c) => c.payment_intent.clone(),
        EventObject::Refund(r) => r.payment_intent.clone(),
        EventObject::Dispute(d) => d.payment_intent.clone(),
        EventObject::EarlyFraudWarning(w) => w.payment_intent.clone(),
        EventObject::Unreadable { .. } | EventObject::Other(_) => None,
    }
}
