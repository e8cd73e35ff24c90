//! The ledger going down: `payment_refunds` and `payment_disputes` (what Stripe reports, one row
//! per refund or dispute, statuses merged forward by the domain's rules), `early_fraud_warnings`,
//! `revision_adjustments` (append-only rows that revoke or restore revisions), and `refund_holds`
//! (revisions a pending refund holds).
//!
//! `book` is the one function that changes them, whoever calls (a webhook, the admin's refund,
//! reconciliation, a late credit): in one transaction it takes the payment's lock, merges the
//! new fact, recomputes what the payment's facts revoke (`domain::adjustments::revocation`) and
//! books the difference with what the ledger already holds as one row keyed by its cause. The
//! lock serialises everything that moves one payment's revisions (PostgreSQL: a transaction
//! advisory lock on the payment id, which exists even when no row does yet; SQLite: the
//! database write lock of BEGIN IMMEDIATE), so concurrent events cannot book a difference twice.
use super::{read_pool, write_tx, Db, Dialect, StoreResult};
use crate::domain::adjustments::{
    dispute_cause, entry, refund_cause, revocation, Cause, DisputeStatus, PaidPack, RefundFact, RefundStatus,
    Revocation,
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

/// Whose payment a fact is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOwner {
    /// Credited to this contract: its ledger follows the facts.
    Contract(i64),
    /// A Rate Card Landing Page payment: recorded against it, never a contract.
    RateCard,
    /// One of our purchases, not credited yet: booked when it is.
    Uncredited(i64),
    /// Not a payment we know.
    Unknown,
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

/// Merges `fact` and books what it changes, in one transaction (see the module's doc).
pub async fn book(
    db: &Db,
    fact: &Fact,
    booked_by: BookedBy,
    event_id: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Booking> {
    let payment_id = fact.payment_id().to_string();
    // The body is a labelled block: an early answer `break`s out of it and still commits the
    // fact merged above (a `return` would leave the transaction uncommitted).
    write_tx!(db, |tx, dialect| 'book: {
        if dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(&payment_id)
                .execute(&mut *tx)
                .await?;
        }
        // 1. Merge the fact. A status only moves forward, decided by the domain, so a late or
        //    repeated event cannot undo a later one.
        let cause: Option<Cause> = match fact {
            Fact::Refund(r) => {
                let held: Option<String> =
                    sqlx::query_scalar("SELECT status FROM payment_refunds WHERE refund_id = $1")
                        .bind(&r.refund_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let status = match held.as_deref().map(RefundStatus::parse) {
                    Some(Ok(held)) => held.merge(r.status),
                    _ => r.status,
                };
                sqlx::query(
                    "INSERT INTO payment_refunds (refund_id, payment_id, charge_id, amount, currency, status, reason, \
                     livemode, requested_by, note, first_seen, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
                     ON CONFLICT (refund_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at, \
                     charge_id = COALESCE(payment_refunds.charge_id, excluded.charge_id), \
                     requested_by = COALESCE(payment_refunds.requested_by, excluded.requested_by), \
                     note = COALESCE(payment_refunds.note, excluded.note)",
                )
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
                .execute(&mut *tx)
                .await?;
                refund_cause(&r.refund_id, r.amount, status)
            }
            Fact::Dispute(d) => {
                let held: Option<String> =
                    sqlx::query_scalar("SELECT status FROM payment_disputes WHERE dispute_id = $1")
                        .bind(&d.dispute_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let status = match held.as_deref().map(DisputeStatus::parse) {
                    Some(Ok(held)) => held.merge(d.status),
                    _ => d.status,
                };
                sqlx::query(
                    "INSERT INTO payment_disputes (dispute_id, payment_id, charge_id, amount, currency, status, is_open, \
                     reason, livemode, first_seen, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                     ON CONFLICT (dispute_id) DO UPDATE SET status = excluded.status, is_open = excluded.is_open, \
                     amount = excluded.amount, \
                     updated_at = CASE WHEN payment_disputes.status = excluded.status \
                                  THEN payment_disputes.updated_at ELSE excluded.updated_at END",
                )
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
                .execute(&mut *tx)
                .await?;
                dispute_cause(&d.dispute_id, d.amount, status, d.reason.as_deref())
            }
            Fact::Settle { .. } => None,
        };

        // 2. Whose payment is it?
        let credit: Option<CreditRow> = sqlx::query_as(
            "SELECT contract_id, revisions, amount, currency FROM contract_revisions WHERE payment_id = $1",
        )
        .bind(&payment_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(credit) = credit else {
            let external: Option<String> =
                sqlx::query_scalar("SELECT payment_id FROM external_payments WHERE payment_id = $1")
                    .bind(&payment_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let purchase: Option<i64> =
                sqlx::query_scalar("SELECT contract_id FROM purchases WHERE payment_intent_id = $1")
                    .bind(&payment_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let owner = match (external, purchase) {
                (Some(_), _) => PaymentOwner::RateCard,
                (None, Some(contract)) => PaymentOwner::Uncredited(contract),
                (None, None) => PaymentOwner::Unknown,
            };
            break 'book Ok(Booking { owner, revocation: None, revoked_now: 0, adjustment_id: None });
        };

        // 3. What all the facts revoke now, against what the ledger already holds.
        let refunds: Vec<(i64, String)> =
            sqlx::query_as("SELECT amount, status FROM payment_refunds WHERE payment_id = $1")
                .bind(&payment_id)
                .fetch_all(&mut *tx)
                .await?;
        let disputes: Vec<String> = sqlx::query_scalar("SELECT status FROM payment_disputes WHERE payment_id = $1")
            .bind(&payment_id)
            .fetch_all(&mut *tx)
            .await?;
        let refunds: Vec<RefundFact> = refunds
            .into_iter()
            .filter_map(|(amount, s)| RefundStatus::parse(&s).ok().map(|status| RefundFact { amount, status }))
            .collect();
        let disputes: Vec<DisputeStatus> = disputes.iter().filter_map(|s| DisputeStatus::parse(s).ok()).collect();
        let pack = PaidPack { amount: credit.amount, revisions: credit.revisions };
        let target = revocation(&pack, &refunds, &disputes);
        // What pending refunds hold is the domain's figure, kept beside the payment so a
        // balance sums it like an open dispute's; rewritten under the payment's lock, here only.
        if target.refunding > 0 {
            sqlx::query(
                "INSERT INTO refund_holds (payment_id, contract_id, revisions, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (payment_id) DO UPDATE SET revisions = excluded.revisions, updated_at = excluded.updated_at",
            )
            .bind(&payment_id)
            .bind(credit.contract_id)
            .bind(target.refunding)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("DELETE FROM refund_holds WHERE payment_id = $1").bind(&payment_id).execute(&mut *tx).await?;
        }
        let (held, booked): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(revoked), 0) AS BIGINT), CAST(COUNT(*) AS BIGINT) \
             FROM revision_adjustments WHERE payment_id = $1",
        )
        .bind(&payment_id)
        .fetch_one(&mut *tx)
        .await?;
        // 4. Book the difference as one row keyed by its cause (the domain's `entry`).
        let Some(entry) = entry(&payment_id, cause, target.revoked, held, booked, credit.revisions) else {
            break 'book Ok(Booking {
                owner: PaymentOwner::Contract(credit.contract_id),
                revocation: Some(target),
                revoked_now: 0,
                adjustment_id: None,
            });
        };
        let insert = "INSERT INTO revision_adjustments (contract_id, payment_id, cause_key, kind, revoked, amount, \
             currency, booked_by, stripe_event_id, note, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (cause_key) DO NOTHING RETURNING id";
        let mut adjustment_id: Option<i64> = None;
        for key in &entry.keys {
            adjustment_id = sqlx::query_scalar(insert)
                .bind(credit.contract_id)
                .bind(&payment_id)
                .bind(key)
                .bind(entry.kind.as_str())
                .bind(entry.revoked)
                .bind(entry.amount)
                .bind(&credit.currency)
                .bind(booked_by.as_str())
                .bind(event_id)
                .bind(&entry.note)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            if adjustment_id.is_some() {
                break;
            }
        }
        let delta = entry.revoked;
        Ok(Booking {
            owner: PaymentOwner::Contract(credit.contract_id),
            revocation: Some(target),
            revoked_now: if adjustment_id.is_some() { delta } else { 0 },
            adjustment_id,
        })
    })
}

/// The payments, of those `matching` (the rest of a condition on `payment_id`: `"= $1"`,
/// `"= contract_revisions.payment_id"`), that have refunds or disputes stored: a new credit for
/// one must settle them. PostgreSQL's intake reads the same in `facts_for_new_credits`
/// (migration 0013), which needs a function of its own for its fresh snapshot.
pub(crate) fn known_facts_sql(matching: &str) -> String {
    format!(
        "SELECT payment_id FROM payment_refunds WHERE payment_id {matching} \
         UNION SELECT payment_id FROM payment_disputes WHERE payment_id {matching}"
    )
}

/// Whether refunds or disputes are known for a payment (so a new credit must settle them).
pub async fn has_facts(db: &Db, payment_id: &str) -> StoreResult<bool> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("SELECT EXISTS ({})", known_facts_sql("= $1")));
    read_pool!(db, |pool| Ok(sqlx::query_scalar::<_, bool>(&SQL).bind(payment_id).fetch_one(pool).await?))
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
    super::write_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO early_fraud_warnings (warning_id, payment_id, charge_id, fraud_type, actionable, livemode, \
             stripe_event_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             ON CONFLICT (warning_id) DO UPDATE SET actionable = excluded.actionable, updated_at = excluded.updated_at",
        )
        .bind(warning_id)
        .bind(payment_id)
        .bind(charge_id)
        .bind(fraud_type)
        .bind(actionable)
        .bind(livemode)
        .bind(event_id)
        .bind(now)
        .execute(pool)
        .await?;
        Ok(())
    })
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

const ADJUSTMENT_COLUMNS: &str = "id, contract_id, payment_id, cause_key, kind, revoked, amount, currency, booked_by, \
     stripe_event_id, note, created_at";

pub async fn for_contract(db: &Db, contract_id: i64) -> StoreResult<Vec<Adjustment>> {
    let sql = format!("SELECT {ADJUSTMENT_COLUMNS} FROM revision_adjustments WHERE contract_id = $1 ORDER BY id");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, Adjustment>(&sql).bind(contract_id).fetch_all(pool).await?))
}

pub async fn for_payment(db: &Db, payment_id: &str) -> StoreResult<Vec<Adjustment>> {
    let sql = format!("SELECT {ADJUSTMENT_COLUMNS} FROM revision_adjustments WHERE payment_id = $1 ORDER BY id");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, Adjustment>(&sql).bind(payment_id).fetch_all(pool).await?))
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

const REFUND_COLUMNS: &str = "refund_id, payment_id, charge_id, amount, currency, status, reason, livemode, \
     requested_by, note, first_seen, updated_at";

pub async fn refunds_for_payment(db: &Db, payment_id: &str) -> StoreResult<Vec<RefundRow>> {
    let sql =
        format!("SELECT {REFUND_COLUMNS} FROM payment_refunds WHERE payment_id = $1 ORDER BY first_seen, refund_id");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, RefundRow>(&sql).bind(payment_id).fetch_all(pool).await?))
}

/// Refunds of the payments credited to (or bought for) a contract.
pub async fn refunds_for_contract(db: &Db, contract_id: i64) -> StoreResult<Vec<RefundRow>> {
    let sql = format!(
        "SELECT {REFUND_COLUMNS} FROM payment_refunds WHERE payment_id IN \
         (SELECT payment_id FROM contract_revisions WHERE contract_id = $1 \
          UNION SELECT payment_intent_id FROM purchases WHERE contract_id = $1) ORDER BY first_seen, refund_id"
    );
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, RefundRow>(&sql).bind(contract_id).fetch_all(pool).await?))
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

const DISPUTE_COLUMNS: &str =
    "dispute_id, payment_id, charge_id, amount, currency, status, is_open, reason, livemode, first_seen, updated_at";

pub async fn disputes_for_payment(db: &Db, payment_id: &str) -> StoreResult<Vec<DisputeRow>> {
    let sql =
        format!("SELECT {DISPUTE_COLUMNS} FROM payment_disputes WHERE payment_id = $1 ORDER BY first_seen, dispute_id");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, DisputeRow>(&sql).bind(payment_id).fetch_all(pool).await?))
}

pub async fn disputes_for_contract(db: &Db, contract_id: i64) -> StoreResult<Vec<DisputeRow>> {
    let sql = format!(
        "SELECT {DISPUTE_COLUMNS} FROM payment_disputes WHERE payment_id IN \
         (SELECT payment_id FROM contract_revisions WHERE contract_id = $1 \
          UNION SELECT payment_intent_id FROM purchases WHERE contract_id = $1) ORDER BY first_seen, dispute_id"
    );
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, DisputeRow>(&sql).bind(contract_id).fetch_all(pool).await?))
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
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, FraudWarningRow>(
        "SELECT warning_id, payment_id, charge_id, fraud_type, actionable, livemode, created_at \
         FROM early_fraud_warnings WHERE payment_id IN \
         (SELECT payment_id FROM contract_revisions WHERE contract_id = $1 \
          UNION SELECT payment_intent_id FROM purchases WHERE contract_id = $1) ORDER BY created_at, warning_id"
    )
    .bind(contract_id)
    .fetch_all(pool)
    .await?))
}
