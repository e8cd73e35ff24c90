//! A contract's statement: the one read model of a contract that its advertiser's page, the
//! admin's contract page and `revision-store contract show` all present. The contract with its
//! owner and its balance summed from the ledger rows; the credited packs; the purchases started;
//! the revision requests; and, for an admin, the money that went back (refunds, disputes, fraud
//! warnings, what they revoked) and every payment attempt with its events and why it failed.
//!
//! It is read in a fixed number of queries whatever the number of purchases (4 for the
//! advertiser, 12 for an admin: see `contract_statement`), run side by side on their own
//! connections, so a page waits for the slowest read rather than their sum.
use crate::domain::events::payment_failure;
use crate::domain::RevisionBalance;
use crate::store::adjustments::{self, Adjustment, DisputeRow, FraudWarningRow, RefundRow};
use crate::store::contracts::ContractBalanceRow;
use crate::store::events::{self, EventSummary};
use crate::store::ledger::{self, LedgerCredit, RevisionRequest};
use crate::store::purchases::{self, Purchase};
use crate::store::{Db, StoreResult};
use std::collections::HashMap;

/// Who the statement is for, which decides what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The contract's advertiser: found only if they own it; no money-back detail or attempts.
    Owner(i64),
    /// An admin or the command line: everything.
    Admin,
}

/// The events of a payment attempt shown to an admin, at most this many per attempt.
pub const EVENTS_PER_ATTEMPT: i64 = 50;

#[derive(Debug, Clone)]
pub struct ContractStatement {
    /// The contract, its owner's email and its balance inputs (from the ledger rows).
    pub contract: ContractBalanceRow,
    pub credits: Vec<LedgerCredit>,
    /// Oldest first.
    pub purchases: Vec<Purchase>,
    /// Oldest first.
    pub requests: Vec<RevisionRequest>,
    /// For an admin (`Reader::Admin`); None for the owner.
    pub admin: Option<AdminDetail>,
}

/// What only an admin sees of a contract.
#[derive(Debug, Clone)]
pub struct AdminDetail {
    pub adjustments: Vec<Adjustment>,
    pub refunds: Vec<RefundRow>,
    pub disputes: Vec<DisputeRow>,
    pub warnings: Vec<FraudWarningRow>,
    /// Payment id → the events about it, most recent first.
    pub events: HashMap<String, Vec<EventSummary>>,
    /// Payment id → why its newest failed attempt failed (Stripe's words), for attempts that
    /// were never paid after it.
    pub failures: HashMap<String, String>,
}

impl ContractStatement {
    pub fn balance(&self) -> RevisionBalance {
        self.contract.balance()
    }

    /// Whether this payment was credited to the contract.
    pub fn credited(&self, payment_id: &str) -> bool {
        self.credits.iter().any(|c| c.payment_id == payment_id)
    }

    /// Revisions refunds and lost disputes revoked from this payment's pack.
    pub fn revoked(&self, payment_id: &str) -> i64 {
        self.admin
            .as_ref()
            .map_or(0, |a| a.adjustments.iter().filter(|x| x.payment_id == payment_id).map(|x| x.revoked).sum())
    }

    /// Whether this payment has an open dispute.
    pub fn disputed(&self, payment_id: &str) -> bool {
        self.admin.as_ref().is_some_and(|a| a.disputes.iter().any(|d| d.payment_id == payment_id && d.is_open))
    }
}

/// The statement of `contract_id` for `reader`; None if there is no such contract (or, for an
/// owner, it is not theirs). The owner's reads: the contract with its balance, credits,
/// purchases, requests (4 queries). An admin's add the adjustments, refunds, disputes and
/// fraud warnings (4), the events of every attempt (`events::about_payments`, 3) and the
/// payloads of the failed ones (1).
pub async fn contract_statement(db: &Db, contract_id: i64, reader: Reader) -> StoreResult<Option<ContractStatement>> {
    let owner = match reader {
        Reader::Owner(id) => Some(id),
        Reader::Admin => None,
    };
    // The history is read before ownership is known, but it is returned only if the contract
    // was found for this reader.
    let (contract, credits, purchases, requests) = tokio::try_join!(
        ledger::contract_with_balance(db, contract_id, owner),
        ledger::credits(db, contract_id),
        purchases::for_contract(db, contract_id),
        ledger::requests(db, contract_id),
    )?;
    let Some(contract) = contract else { return Ok(None) };
    let admin = match reader {
        Reader::Admin => Some(admin_detail(db, contract_id, &purchases, &credits).await?),
        Reader::Owner(_) => None,
    };
    Ok(Some(ContractStatement { contract, credits, purchases, requests, admin }))
}

async fn admin_detail(
    db: &Db,
    contract_id: i64,
    purchases: &[Purchase],
    credits: &[LedgerCredit],
) -> StoreResult<AdminDetail> {
    let payment_ids: Vec<String> = purchases.iter().map(|p| p.payment_intent_id.clone()).collect();
    let (adjustments, refunds, disputes, warnings, events) = tokio::try_join!(
        adjustments::for_contract(db, contract_id),
        adjustments::refunds_for_contract(db, contract_id),
        adjustments::disputes_for_contract(db, contract_id),
        adjustments::fraud_warnings_for_contract(db, contract_id),
        events::about_payments(db, &payment_ids, EVENTS_PER_ATTEMPT),
    )?;
    // The newest failure of each attempt says why, unless the attempt was paid after it.
    let failed: HashMap<String, String> = purchases
        .iter()
        .filter(|p| p.status != "succeeded" && !credits.iter().any(|c| c.payment_id == p.payment_intent_id))
        .filter_map(|p| {
            let newest =
                events.get(&p.payment_intent_id)?.iter().find(|e| e.event_type == "payment_intent.payment_failed")?;
            Some((newest.event_id.clone(), p.payment_intent_id.clone()))
        })
        .collect();
    let event_ids: Vec<String> = failed.keys().cloned().collect();
    let failures = events::payloads(db, &event_ids)
        .await?
        .into_iter()
        .filter_map(|(event_id, payload)| Some((failed.get(&event_id)?.clone(), payment_failure(&payload)?)))
        .collect();
    Ok(AdminDetail { adjustments, refunds, disputes, warnings, events, failures })
}
