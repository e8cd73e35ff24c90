//! Webhook intake: bytes in, a stored event out. Verify first (nothing unsigned is trusted or
//! stored), store durably before answering 2xx, then process inline.
use super::event_writer::WriteError;
use super::fulfil::credited_outcome;
use super::processing::{apply, Processed};
use super::stats::Stats;
use super::Services;
use super::DELIVERY_LOG;
use crate::domain::events::{route, Action, StripeEvent};
use crate::store::events::{NewEvent, StoreJob, Stored};
use crate::stripe::signature::{verify, SignatureError, DEFAULT_TOLERANCE_SECS};
use chrono::{DateTime, Utc};

pub struct Delivery<'a> {
    pub body: &'a [u8],
    pub signature: Option<&'a str>,
    /// JSON object of the request headers kept as evidence (never secrets).
    pub headers_json: String,
}

#[derive(Debug)]
pub enum Intake {
    /// New event, stored; `processed` says what inline processing did (None: it failed and the
    /// worker will retry once the lease runs out — the event is safe either way).
    Stored { event_id: String, processed: Option<Processed> },
    /// We already hold this event id.
    Duplicate { event_id: String },
    /// Not signed by Stripe with one of our secrets: 400, nothing stored.
    Unauthentic(SignatureError),
    /// Signed, but not a Stripe event: 400, nothing stored.
    Malformed(String),
    /// The event could not be stored: 503 so Stripe retries. Never 2xx.
    Unavailable(WriteError),
}

pub async fn receive(svc: &Services, delivery: Delivery<'_>, now: DateTime<Utc>) -> Intake {
    Stats::inc(&svc.stats.deliveries);
    // Forwarding's senders hold back while this runs: intake comes first.
    let _taking_in = svc.forwarding.taking_in();
    let event = match authenticate(svc, &delivery, now) {
        Ok(event) => event,
        Err(refused) => return refused,
    };
    let route = route(&event, svc.mode, &svc.terms);
    let job = store_job(svc, &event, &route, delivery, now);
    // While the database is down the writer answers everything queued as soon as a batch fails,
    // so a delivery gets its 503 within about the database timeout. This bound is only a safety
    // net for a writer that stops answering at all: healthy but busy queues must not turn into
    // 503s. The writer drops a job whose request has gone; one it had already started to write
    // may still be stored, and Stripe's retry of it is then a duplicate, answered 200.
    let patience = (svc.settings.db_timeout * 3).max(std::time::Duration::from_secs(10));
    let stored = tokio::time::timeout(patience, svc.event_writer().store(job)).await.unwrap_or_else(|_| {
        Err(super::event_writer::WriteError::Unavailable(format!(
            "no answer from the event writer within {patience:?}"
        )))
    });
    answer(svc, event, route, stored, now).await
}

/// The delivery's event, if Stripe signed it with one of our secrets and it is an event; else
/// the refusal, counted.
fn authenticate(svc: &Services, delivery: &Delivery<'_>, now: DateTime<Utc>) -> Result<StripeEvent, Intake> {
    if let Err(e) =
        verify(delivery.body, delivery.signature, &svc.webhook_secrets, now.timestamp(), DEFAULT_TOLERANCE_SECS)
    {
        use crate::domain::alerts::Fault;
        svc.stats.fault(match e {
            SignatureError::MissingHeader => Fault::MissingHeader,
            SignatureError::MalformedHeader(_) => Fault::MalformedHeader,
            SignatureError::NoMatch => Fault::NoMatch,
            SignatureError::OutsideTolerance => Fault::OutsideTolerance,
        });
        tracing::warn!(reason = e.label(), bytes = delivery.body.len(), "webhook signature rejected");
        return Err(Intake::Unauthentic(e));
    }
    StripeEvent::parse(delivery.body).map_err(|reason| {
        Stats::inc(&svc.stats.rejected_malformed_body);
        tracing::warn!(%reason, bytes = delivery.body.len(), "signed webhook body is not a Stripe event");
        Intake::Malformed(reason)
    })
}

/// What the writer stores for this delivery: the raw event, and for the common case (a new
/// payment for a pack) the credit, so both are stored, credited and finished in one commit.
fn store_job(
    svc: &Services,
    event: &StripeEvent,
    route: &Action,
    delivery: Delivery<'_>,
    now: DateTime<Utc>,
) -> StoreJob {
    let credit = match route {
        Action::Credit(credit) => Some((credit.clone(), credited_outcome(credit))),
        _ => None,
    };
    StoreJob {
        event: NewEvent {
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            livemode: event.livemode,
            api_version: event.api_version.clone(),
            stripe_created: event.created,
            payload: delivery.body.to_vec(),
            payload_sha256: NewEvent::digest(delivery.body),
            signature_header: delivery.signature.unwrap_or_default().to_string(),
            request_headers: delivery.headers_json,
            received_at: now,
        },
        credit,
        lease_until: svc.lease_until(now),
    }
}

/// What became of a stored delivery: counted, logged, and for a pending event processed now.
async fn answer(
    svc: &Services,
    event: StripeEvent,
    route: Action,
    stored: Result<Stored, super::event_writer::WriteError>,
    now: DateTime<Utc>,
) -> Intake {
    match stored {
        Ok(Stored::Duplicate) => {
            Stats::inc(&svc.stats.duplicates);
            tracing::info!(target: DELIVERY_LOG, event_id = %event.id, event_type = %event.event_type, "duplicate delivery");
            Intake::Duplicate { event_id: event.id }
        }
        Ok(Stored::Credited { ledger_id, earlier_facts }) => {
            Stats::inc(&svc.stats.stored);
            Stats::inc(&svc.stats.credited);
            let Action::Credit(credit) = route else { unreachable!("only credit jobs credit") };
            tracing::info!(target: DELIVERY_LOG, event_id = %event.id, payment_id = %credit.payment_id, contract_id = credit.contract_id, ledger_id, "credited revision pack");
            // The credit is committed and answered for; refunds or disputes that were reported
            // before it (the writer looked after the commit) are booked now. Failing here loses
            // nothing: the facts stay stored and reconciliation books them.
            if earlier_facts {
                if let Err(e) = super::adjustments::settle(&svc.db, &credit.payment_id, now).await {
                    tracing::error!(payment_id = %credit.payment_id, error = %e, "settling earlier refunds or disputes failed");
                }
            }
            let detail = credited_outcome(&credit);
            Intake::Stored { event_id: event.id, processed: Some(Processed::Finished { status: "processed", detail }) }
        }
        Ok(Stored::Pending) => {
            Stats::inc(&svc.stats.stored);
            let processed = match apply(svc, &event, now).await {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(event_id = %event.id, error = %e, "stored event not processed yet; the worker will retry");
                    None
                }
            };
            Intake::Stored { event_id: event.id, processed }
        }
        Err(e) => {
            svc.stats.fault(crate::domain::alerts::Fault::StoreUnavailable);
            tracing::error!(event_id = %event.id, error = %e, "could not store webhook event; answering 503");
            Intake::Unavailable(e)
        }
    }
}
