//! The ledger going down: `payment_refunds` and `payment_disputes` (what Stripe reports, one row
//! per refund or dispute, statuses merged forward by the domain's rules), `early_fraud_warnings`,
//! `revision_adjustments` (append-only rows that revoke or restore revisions), and `refund_holds`
//! (revisions a pending refund holds).
//!
//! `book` is the one function that changes them, whoever calls (a webhook, the admin's refund,
//! reconciliation, a late credit): in one transaction it takes the payment's lock, merges the
//! new fact, has the domain settle the payment's facts (`domain::adjustments::settlement`) and
//! books the difference with what the ledger already holds as one row keyed by its cause. The
//! lock serialises everything that moves one payment's revisions (PostgreSQL: a transaction
//! advisory lock on the payment id, which exists even when no row does yet; SQLite: the
//! database write lock of BEGIN IMMEDIATE), so concurrent events cannot book a difference twice.
use super::{on, Db, Dialect, StoreResult, Tx};
pub use crate::domain::adjustments::PaymentOwner;
use crate::domain::adjustments::{
    dispute_cause, merged_dispute_status, merged_refund_status, refund_cause, settlement, uncredited_owner, Booked,
    Cause, DisputeStatus, Entry, PaidPack, RefundFact, RefundStatus, Revocation,
};
use chrono::{DateTime, Utc};

/// A refund as reported, ready to merge into `payment_refunds`.
#[derive(Debug, Clone)]
pub struct RefundRecord {
    pub refund_id: String,
    pub payment_id: String,
    pub charge_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: RefundStatus,
    pub reason: Option<String>,
    pub livemode: bool,
    /// The admin who asked for it in this app, if one did.
    pub requested_by: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DisputeRecord {
    pub dispute_id: String,
    pub payment_id: String,
    pub charge_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: DisputeStatus,
    pub reason: Option<String>,
    pub livemode: bool,
}

/// What is being reported about a payment.
#[derive(Debug, Clone)]
pub enum Fact {
    Refund(RefundRecord),
    Dispute(DisputeRecord),
    /// Nothing new: settle what is already known (a payment credited after its refunds or
    /// disputes were reported).
    Settle {
        payment_id: String,
    },
}

impl Fact {
    pub fn payment_id(&self) -> &str {
        match self {
            Fact::Refund(r) => &r.payment_id,
            Fact::Dispute(d) => &d.payment_id,
            Fact::Settle { payment_id } => payment_id,
        }
    }
}

/// Who booked an adjustment (the row's `booked_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookedBy {
    Webhook,
    Admin,
    Reconciliation,
    /// The payment's own credit, settling facts that arrived before it.
    Payment,
    Replay,
}

impl BookedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Admin => "admin",
            Self::Reconciliation => "reconciliation",
            Self::Payment => "payment",
            Self::Replay => "replay",
        }
    }
}

/// What `book` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub owner: PaymentOwner,
    /// The payment's revocation after this booking (None unless credited to a contract).
    pub revocation: Option<Revocation>,
    /// Revisions taken back by this booking (negative: given back); 0 if nothing changed.
    pub revoked_now: i64,
    /// The adjustment row written, if one was.
    pub adjustment_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct CreditRow {
    contract_id: i64,
    revisions: i64,
    amount: i64,
    currency: String,
}

/// Merges `fact` and books what it changes, in one transaction (see the module's doc): the
/// store reads the payment's facts under its lock, the domain decides (`settlement`), the store
/// writes what it decided. A fact about a payment no contract has a credit for is kept all the
/// same (committed), to be booked when the payment is credited.
pub async fn book(
    db: &Db,
    fact: &Fact,
    booked_by: BookedBy,
    event_id: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Booking> {
    let payment_id = fact.payment_id();
    let mut tx = db.begin().await?;
    lock_payment(&mut tx, payment_id).await?;
    // 1. Merge the fact: what it causes is judged by its merged status.
    let cause = match fact {
        Fact::Refund(r) => merge_refund(&mut tx, r, now).await?,
        Fact::Dispute(d) => merge_dispute(&mut tx, d, now).await?,
        Fact::Settle { .. } => None,
    };
    // 2. Whose payment is it? Only a contract's credit has a ledger to follow the facts.
    let booking = match credit(&mut tx, payment_id).await? {
        Some(credit) => settle_credit(&mut tx, payment_id, &credit, cause, booked_by, event_id, now).await?,
        None => Booking {
            owner: uncredited_owner_of(&mut tx, payment_id).await?,
            revocation: None,
            revoked_now: 0,
            adjustment_id: None,
        },
    };
    tx.commit().await?;
    Ok(booking)
}

/// Serialises everything that moves one payment's revisions until the transaction ends. On
/// PostgreSQL a transaction advisory lock on the payment id, which exists even when no row does
/// yet; SQLite's BEGIN IMMEDIATE already holds the database's write lock.
async fn lock_payment(tx: &mut Tx, payment_id: &str) -> StoreResult<()> {
    if tx.dialect() == Dialect::Postgres {
        on!(tx.conn(), |c| {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(payment_id).execute(c).await?;
        });
    }
    Ok(())
}

/// Merges a refund into `payment_refunds` (its status by the domain's rule) and returns what
/// its merged status causes.
async fn merge_refund(tx: &mut Tx, r: &RefundRecord, now: DateTime<Utc>) -> StoreResult<Option<Cause>> {
    const HELD: &str = "SELECT status FROM payment_refunds WHERE refund_id = $1";
    const UPSERT: &str = "INSERT INTO payment_refunds (refund_id, payment_id, charge_id, amount, currency, status, \
           reason, livemode, requested_by, note, first_seen, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
         ON CONFLICT (refund_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at, \
           charge_id = COALESCE(payment_refunds.charge_id, excluded.charge_id), \
           requested_by = COALESCE(payment_refunds.requested_by, excluded.requested_by), \
           note = COALESCE(payment_refunds.note, excluded.note)";
    let held: Option<String> =
        on!(tx.conn(), |c| sqlx::query_scalar(HELD).bind(&r.refund_id).fetch_optional(c).await?);
    let status = merged_refund_status(held.as_deref(), r.status);
    on!(tx.conn(), |c| {
        sqlx::query(UPSERT)
            .bind(&r.refund_id)
            .bind(&r.payment_id)
            .bind(&r.charge_id)
            .bind(r.amount)
            .bind(&r.currency)
            .bind(status.as_str())
            .bind(&r.reason)
            .bind(r.livemode)
            .bind(&r.requested_by)
            .bind(&r.note)
            .bind(now)
            .execute(c)
            .await?;
    });
    Ok(refund_cause(&r.refund_id, r.amount, status))
}

/// Merges a dispute into `payment_disputes`; its `updated_at` moves only with its status (a
/// lost dispute counts against revenue on the day it was lost).
async fn merge_dispute(tx: &mut Tx, d: &DisputeRecord, now: DateTime<Utc>) -> StoreResult<Option<Cause>> {
    const HELD: &str = "SELECT status FROM payment_disputes WHERE dispute_id = $1";
    const UPSERT: &str = "INSERT INTO payment_disputes (dispute_id, payment_id, charge_id, amount, currency, status, \
           is_open, reason, livemode, first_seen, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
         ON CONFLICT (dispute_id) DO UPDATE SET status = excluded.status, is_open = excluded.is_open, \
           amount = excluded.amount, \
           updated_at = CASE WHEN payment_disputes.status = excluded.status \
                        THEN payment_disputes.updated_at ELSE excluded.updated_at END";
    let held: Option<String> =
        on!(tx.conn(), |c| sqlx::query_scalar(HELD).bind(&d.dispute_id).fetch_optional(c).await?);
    let status = merged_dispute_status(held.as_deref(), d.status);
    on!(tx.conn(), |c| {
        sqlx::query(UPSERT)
            .bind(&d.dispute_id)
            .bind(&d.payment_id)
            .bind(&d.charge_id)
            .bind(d.amount)
            .bind(&d.currency)
            .bind(status.as_str())
            .bind(status.is_open())
            .bind(&d.reason)
            .bind(d.livemode)
            .bind(now)
            .execute(c)
            .await?;
    });
    Ok(dispute_cause(&d.dispute_id, d.amount, status, d.reason.as_deref()))
}

async fn credit(tx: &mut Tx, payment_id: &str) -> StoreResult<Option<CreditRow>> {
    const SQL: &str = "SELECT contract_id, revisions, amount, currency FROM contract_revisions WHERE payment_id = $1";
    Ok(on!(tx.conn(), |c| sqlx::query_as::<_, CreditRow>(SQL).bind(payment_id).fetch_optional(c).await?))
}

/// Whose a payment without a credit is (the domain's `uncredited_owner`).
async fn uncredited_owner_of(tx: &mut Tx, payment_id: &str) -> StoreResult<PaymentOwner> {
    const RATE_CARD: &str = "SELECT payment_id FROM external_payments WHERE payment_id = $1";
    const PURCHASE: &str = "SELECT contract_id FROM purchases WHERE payment_intent_id = $1";
    let (rate_card, purchase): (Option<String>, Option<i64>) = on!(tx.conn(), |c| (
        sqlx::query_scalar(RATE_CARD).bind(payment_id).fetch_optional(&mut *c).await?,
        sqlx::query_scalar(PURCHASE).bind(payment_id).fetch_optional(&mut *c).await?,
    ));
    Ok(uncredited_owner(rate_card.is_some(), purchase))
}

/// 3 and 4: for a credited payment, reads all its facts and what its ledger holds, and writes
/// what the domain's `settlement` of them says: the pending refunds' hold, and the difference
/// booked as one row keyed by its cause.
async fn settle_credit(
    tx: &mut Tx,
    payment_id: &str,
    credit: &CreditRow,
    cause: Option<Cause>,
    booked_by: BookedBy,
    event_id: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Booking> {
    let (refunds, disputes) = facts(tx, payment_id).await?;
    let booked = booked(tx, payment_id).await?;
    let pack = PaidPack { amount: credit.amount, revisions: credit.revisions };
    let settled = settlement(payment_id, &pack, &refunds, &disputes, cause, booked);
    write_hold(tx, payment_id, credit.contract_id, settled.hold, now).await?;
    let adjustment_id = match &settled.entry {
        Some(entry) => {
            let row = AdjustmentRow { contract_id: credit.contract_id, payment_id, currency: &credit.currency };
            insert_adjustment(tx, &row, entry, booked_by, event_id, now).await?
        }
        None => None,
    };
    Ok(Booking {
        owner: PaymentOwner::Contract(credit.contract_id),
        revocation: Some(settled.revocation),
        revoked_now: match (&settled.entry, adjustment_id) {
            (Some(entry), Some(_)) => entry.revoked,
            _ => 0,
        },
        adjustment_id,
    })
}

/// A payment's refunds and disputes as stored (a status this build cannot read is left out).
async fn facts(tx: &mut Tx, payment_id: &str) -> StoreResult<(Vec<RefundFact>, Vec<DisputeStatus>)> {
    const REFUNDS: &str = "SELECT amount, status FROM payment_refunds WHERE payment_id = $1";
    const DISPUTES: &str = "SELECT status FROM payment_disputes WHERE payment_id = $1";
    let (refunds, disputes): (Vec<(i64, String)>, Vec<String>) = on!(tx.conn(), |c| (
        sqlx::query_as(REFUNDS).bind(payment_id).fetch_all(&mut *c).await?,
        sqlx::query_scalar(DISPUTES).bind(payment_id).fetch_all(&mut *c).await?,
    ));
    let refunds = refunds
        .into_iter()
        .filter_map(|(amount, s)| RefundStatus::parse(&s).ok().map(|status| RefundFact { amount, status }))
        .collect();
    let disputes = disputes.iter().filter_map(|s| DisputeStatus::parse(s).ok()).collect();
    Ok((refunds, disputes))
}

/// What the payment's adjustment rows already revoke, and how many there are.
async fn booked(tx: &mut Tx, payment_id: &str) -> StoreResult<Booked> {
    const SQL: &str = "SELECT CAST(COALESCE(SUM(revoked), 0) AS BIGINT), CAST(COUNT(*) AS BIGINT) \
         FROM revision_adjustments WHERE payment_id = $1";
    let (revoked, rows): (i64, i64) = on!(tx.conn(), |c| sqlx::query_as(SQL).bind(payment_id).fetch_one(c).await?);
    Ok(Booked { revoked, rows })
}

/// Keeps what pending refunds hold beside the payment (`Settlement::hold`), or removes the hold
/// when they hold nothing: rewritten under the payment's lock, here only.
async fn write_hold(
    tx: &mut Tx,
    payment_id: &str,
    contract_id: i64,
    hold: Option<i64>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    const UPSERT: &str = "INSERT INTO refund_holds (payment_id, contract_id, revisions, updated_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (payment_id) DO UPDATE SET revisions = excluded.revisions, updated_at = excluded.updated_at";
    const DELETE: &str = "DELETE FROM refund_holds WHERE payment_id = $1";
    on!(tx.conn(), |c| {
        match hold {
            Some(revisions) => {
                sqlx::query(UPSERT).bind(payment_id).bind(contract_id).bind(revisions).bind(now).execute(c).await?
            }
            None => sqlx::query(DELETE).bind(payment_id).execute(c).await?,
        };
    });
    Ok(())
}

/// Whose ledger an adjustment row goes to.
struct AdjustmentRow<'a> {
    contract_id: i64,
    payment_id: &'a str,
    currency: &'a str,
}

/// Books `entry` under the first of its keys not yet booked (insert-or-nothing on the UNIQUE
/// cause key); the row's id, or None when every key was booked before.
async fn insert_adjustment(
    tx: &mut Tx,
    row: &AdjustmentRow<'_>,
    entry: &Entry,
    booked_by: BookedBy,
    event_id: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Option<i64>> {
    const SQL: &str = "INSERT INTO revision_adjustments (contract_id, payment_id, cause_key, kind, revoked, amount, \
           currency, booked_by, stripe_event_id, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (cause_key) DO NOTHING RETURNING id";
    for key in &entry.keys {
        let id: Option<i64> = on!(tx.conn(), |c| sqlx::query_scalar(SQL)
            .bind(row.contract_id)
            .bind(row.payment_id)
            .bind(key)
            .bind(entry.kind.as_str())
            .bind(entry.revoked)
            .bind(entry.amount)
            .bind(row.currency)
            .bind(booked_by.as_str())
            .bind(event_id)
            .bind(&entry.note)
            .bind(now)
            .fetch_optional(c)
            .await?);
        if id.is_some() {
            return Ok(id);
        }
    }
    Ok(None)
}

/// Whether refunds or disputes are known for a payment (so a new credit must settle them).
/// Intake's batch statements ask the same of the payments they credit (`store::events`; on
/// PostgreSQL through `facts_for_new_credits`, migration 0013).
pub async fn has_facts(db: &Db, payment_id: &str) -> StoreResult<bool> {
    const SQL: &str = "SELECT EXISTS (SELECT payment_id FROM payment_refunds WHERE payment_id = $1 \
         UNION SELECT payment_id FROM payment_disputes WHERE payment_id = $1)";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, bool>(SQL).bind(payment_id).fetch_one(c).await?))
}

/// Records (or updates) a Radar early fraud warning.
#[allow(clippy::too_many_arguments)]
pub async fn record_fraud_warning(
    db: &Db,
    warning_id: &str,
    payment_id: Option<&str>,
    charge_id: &str,
    fraud_type: &str,
    actionable: bool,
    livemode: bool,
    event_id: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO early_fraud_warnings (warning_id, payment_id, charge_id, fraud_type, actionable, \
           livemode, stripe_event_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         ON CONFLICT (warning_id) DO UPDATE SET actionable = excluded.actionable, updated_at = excluded.updated_at";
    on!(db.writer(), |c| {
        sqlx::query(SQL)
            .bind(warning_id)
            .bind(payment_id)
            .bind(charge_id)
            .bind(fraud_type)
            .bind(actionable)
            .bind(livemode)
            .bind(event_id)
            .bind(now)
            .execute(c)
            .await?;
    });
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Adjustment {
    pub id: i64,
    pub contract_id: i64,
    pub payment_id: String,
    pub cause_key: String,
    pub kind: String,
    pub revoked: i64,
    pub amount: i64,
    pub currency: String,
    pub booked_by: String,
    pub stripe_event_id: Option<String>,
    pub note: String,
    pub created_at: DateTime<Utc>,
}

pub async fn for_contract(db: &Db, contract_id: i64) -> StoreResult<Vec<Adjustment>> {
    const SQL: &str = "SELECT id, contract_id, payment_id, cause_key, kind, revoked, amount, currency, booked_by, \
         stripe_event_id, note, created_at FROM revision_adjustments WHERE contract_id = $1 ORDER BY id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Adjustment>(SQL).bind(contract_id).fetch_all(c).await?))
}

pub async fn for_payment(db: &Db, payment_id: &str) -> StoreResult<Vec<Adjustment>> {
    const SQL: &str = "SELECT id, contract_id, payment_id, cause_key, kind, revoked, amount, currency, booked_by, \
         stripe_event_id, note, created_at FROM revision_adjustments WHERE payment_id = $1 ORDER BY id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Adjustment>(SQL).bind(payment_id).fetch_all(c).await?))
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct RefundRow {
    pub refund_id: String,
    pub payment_id: String,
    pub charge_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    pub livemode: bool,
    pub requested_by: Option<String>,
    pub note: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn refunds_for_payment(db: &Db, payment_id: &str) -> StoreResult<Vec<RefundRow>> {
    const SQL: &str = "SELECT refund_id, payment_id, charge_id, amount, currency, status, reason, livemode, \
         requested_by, note, first_seen, updated_at FROM payment_refunds WHERE payment_id = $1 \
         ORDER BY first_seen, refund_id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, RefundRow>(SQL).bind(payment_id).fetch_all(c).await?))
}

/// Refunds of the payments credited to (or bought for) a contract.
pub async fn refunds_for_contract(db: &Db, contract_id: i64) -> StoreResult<Vec<RefundRow>> {
    const SQL: &str = "SELECT refund_id, payment_id, charge_id, amount, currency, status, reason, livemode, \
         requested_by, note, first_seen, updated_at FROM payment_refunds WHERE payment_id IN \
         (SELECT payment_id FROM contract_revisions WHERE contract_id = $1 \
          UNION SELECT payment_intent_id FROM purchases WHERE contract_id = $1) ORDER BY first_seen, refund_id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, RefundRow>(SQL).bind(contract_id).fetch_all(c).await?))
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct DisputeRow {
    pub dispute_id: String,
    pub payment_id: String,
    pub charge_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub is_open: bool,
    pub reason: Option<String>,
    pub livemode: bool,
    pub first_seen: DateTime<Utc>,
    /// When the dispute reached its current status (a repeated report does not move it): a lost
    /// dispute counts against revenue on this day.
    pub updated_at: DateTime<Utc>,
}

pub async fn disputes_for_payment(db: &Db, payment_id: &str) -> StoreResult<Vec<DisputeRow>> {
    const SQL: &str = "SELECT dispute_id, payment_id, charge_id, amount, currency, status, is_open, reason, livemode, \
         first_seen, updated_at FROM payment_disputes WHERE payment_id = $1 ORDER BY first_seen, dispute_id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, DisputeRow>(SQL).bind(payment_id).fetch_all(c).await?))
}

pub async fn disputes_for_contract(db: &Db, contract_id: i64) -> StoreResult<Vec<DisputeRow>> {
    const SQL: &str = "SELECT dispute_id, payment_id, charge_id, amount, currency, status, is_open, reason, livemode, \
         first_seen, updated_at FROM payment_disputes WHERE payment_id IN \
         (SELECT payment_id FROM contract_revisions WHERE contract_id = $1 \
          UNION SELECT payment_intent_id FROM purchases WHERE contract_id = $1) ORDER BY first_seen, dispute_id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, DisputeRow>(SQL).bind(contract_id).fetch_all(c).await?))
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct FraudWarningRow {
    pub warning_id: String,
    pub payment_id: Option<String>,
    pub charge_id: String,
    pub fraud_type: String,
    pub actionable: bool,
    pub livemode: bool,
    pub created_at: DateTime<Utc>,
}

pub async fn fraud_warnings_for_contract(db: &Db, contract_id: i64) -> StoreResult<Vec<FraudWarningRow>> {
    const SQL: &str = "SELECT warning_id, payment_id, charge_id, fraud_type, actionable, livemode, created_at \
         FROM early_fraud_warnings WHERE payment_id IN \
         (SELECT payment_id FROM contract_revisions WHERE contract_id = $1 \
          UNION SELECT payment_intent_id FROM purchases WHERE contract_id = $1) ORDER BY created_at, warning_id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, FraudWarningRow>(SQL).bind(contract_id).fetch_all(c).await?))
}
