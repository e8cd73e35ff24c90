//! Fulfilment: turning a paid PaymentIntent into one ledger credit. The one function both the
//! webhook and the browser's return page call; safe to call any number of times, concurrently,
//! for the same payment (insert-or-nothing on the UNIQUE payment_id).
use crate::domain::events::Credit;
use crate::store::ledger::{self, CreditInsert};
use crate::store::{events, Db, StoreResult};
use chrono::{DateTime, Utc};

/// Who asks for the credit, and so what else the same transaction records.
#[derive(Debug, Clone, Copy)]
pub enum Evidence<'a> {
    /// A stored Stripe event: its processing row is finished in the same transaction, so the
    /// credit and "this event was processed" commit together or not at all.
    Event(&'a str),
    /// The server confirmed the payment with Stripe itself (the return page).
    Confirmed,
    /// Reconciliation found it paid at Stripe and never credited (its event lost for good).
    Reconciled,
}

impl Evidence<'_> {
    /// The ledger row's `credited_by`.
    fn credited_by(&self) -> &'static str {
        match self {
            Evidence::Event(_) => "webhook",
            Evidence::Confirmed => "return_page",
            Evidence::Reconciled => "reconciliation",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fulfilled {
    Credited {
        ledger_id: i64,
    },
    AlreadyCredited {
        ledger_id: i64,
    },
    /// No such contract: nothing written. The caller decides whether to retry.
    UnknownContract,
    /// Another processor finished this event first; this attempt rolled back.
    EventAlreadyFinished,
}

/// What a processed event's outcome says when it credited a pack.
pub fn credited_outcome(credit: &Credit) -> String {
    format!(
        "credited {} revisions to contract {} for payment {}",
        credit.revisions, credit.contract_id, credit.payment_id
    )
}

pub async fn fulfil(db: &Db, credit: &Credit, evidence: Evidence<'_>, now: DateTime<Utc>) -> StoreResult<Fulfilled> {
    let event_id = match evidence {
        Evidence::Event(id) => Some(id),
        Evidence::Confirmed | Evidence::Reconciled => None,
    };
    let credited_by = evidence.credited_by();
    let mut tx = db.begin().await?;
    let (result, outcome) = match ledger::insert_credit(&mut tx, credit, event_id, credited_by, now).await? {
        CreditInsert::Credited { ledger_id } => (Fulfilled::Credited { ledger_id }, credited_outcome(credit)),
        CreditInsert::AlreadyCredited { ledger_id, contract_id } => (
            Fulfilled::AlreadyCredited { ledger_id },
            format!(
                "payment {} was already credited to contract {contract_id} (ledger row {ledger_id})",
                credit.payment_id
            ),
        ),
        // Nothing was written; no processing row to finish either.
        CreditInsert::UnknownContract => return Ok(Fulfilled::UnknownContract),
    };
    if let Some(event_id) = event_id {
        if !events::finish(&mut tx, event_id, "processed", None, &outcome, now).await? {
            // Another processor finished the event first: this transaction is dropped
            // uncommitted, so the credit it inserted rolls back.
            return Ok(Fulfilled::EventAlreadyFinished);
        }
    }
    tx.commit().await?;
    if let Fulfilled::Credited { .. } = result {
        // Refunds or disputes reported before this credit are booked now (see
        // services::adjustments for why this look happens after the commit).
        // The credit is committed either way; a failure here leaves the facts stored, and
        // reconciliation books facts that are stored but not booked.
        if let Err(e) = super::adjustments::settle_after_credit(db, &credit.payment_id, now).await {
            tracing::error!(payment_id = %credit.payment_id, error = %e, "settling earlier refunds or disputes failed");
        }
    }
    Ok(result)
}
