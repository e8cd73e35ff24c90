//! The revision ledger: `contract_revisions` (credited packs) and `revision_requests` (credits
//! consumed), and the balance derived from them.
use super::{read_pool, write_tx, Db, Dialect, StoreResult};
use crate::domain::{NoRevisionsLeft, RevisionBalance};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct LedgerCredit {
    pub id: i64,
    pub contract_id: i64,
    pub payment_id: String,
    pub revisions: i64,
    pub amount: i64,
    pub currency: String,
    pub livemode: bool,
    pub stripe_event_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `webhook`, `return_page` or `reconciliation` (None: credited before this was recorded).
    pub credited_by: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct RevisionRequest {
    pub id: i64,
    pub contract_id: i64,
    pub requested_by: i64,
    pub notes: String,
    pub artwork_path: Option<String>,
    pub artwork_name: Option<String>,
    pub artwork_type: Option<String>,
    pub artwork_size: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// An uploaded artwork file, already written under the data directory.
#[derive(Debug, Clone)]
pub struct Artwork {
    /// Relative to the data directory; chosen by the server.
    pub path: String,
    /// What the uploader called it (display only).
    pub name: String,
    pub content_type: String,
    pub size: i64,
}

const REQUEST_COLUMNS: &str =
    "id, contract_id, requested_by, notes, artwork_path, artwork_name, artwork_type, artwork_size, created_at";

#[derive(sqlx::FromRow)]
struct BalanceRow {
    base: i64,
    purchased: i64,
    revoked: i64,
    requested: i64,
    disputed: i64,
    refunding: i64,
}

/// The inputs of `RevisionBalance`, summed from rows (the rules that combine them are the
/// domain's). `disputed`: revisions of payments with an open dispute not already revoked;
/// `refunding`: revisions pending refunds hold (`refund_holds`, the domain's figure).
/// CASTs because PostgreSQL's SUM(bigint) is numeric.
pub(crate) const BALANCE_COLUMNS: &str = "c.base_revisions AS base, \
     CAST(COALESCE((SELECT SUM(r.revisions) FROM contract_revisions r WHERE r.contract_id = c.id), 0) AS BIGINT) AS purchased, \
     CAST(COALESCE((SELECT SUM(a.revoked) FROM revision_adjustments a WHERE a.contract_id = c.id), 0) AS BIGINT) AS revoked, \
     CAST((SELECT COUNT(*) FROM revision_requests q WHERE q.contract_id = c.id) AS BIGINT) AS requested, \
     CAST(COALESCE((SELECT SUM(r.revisions - COALESCE((SELECT SUM(a.revoked) FROM revision_adjustments a \
         WHERE a.payment_id = r.payment_id), 0)) FROM contract_revisions r WHERE r.contract_id = c.id \
         AND EXISTS (SELECT 1 FROM payment_disputes d WHERE d.payment_id = r.payment_id AND d.is_open)), 0) AS BIGINT) AS disputed, \
     CAST(COALESCE((SELECT SUM(h.revisions) FROM refund_holds h WHERE h.contract_id = c.id), 0) AS BIGINT) AS refunding";

fn balance_sql() -> String {
    format!("SELECT {BALANCE_COLUMNS} FROM contracts c WHERE c.id = $1")
}

impl From<BalanceRow> for RevisionBalance {
    fn from(r: BalanceRow) -> Self {
        RevisionBalance {
            base: r.base,
            purchased: r.purchased,
            revoked: r.revoked,
            requested: r.requested,
            disputed: r.disputed,
            refunding: r.refunding,
        }
    }
}

/// The contract's balance, or None if there is no such contract.
pub async fn balance(db: &Db, contract_id: i64) -> StoreResult<Option<RevisionBalance>> {
    let sql = balance_sql();
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, BalanceRow>(&sql)
        .bind(contract_id)
        .fetch_optional(pool)
        .await?
        .map(RevisionBalance::from)))
}

const CREDIT_COLUMNS: &str =
    "id, contract_id, payment_id, revisions, amount, currency, livemode, stripe_event_id, created_at, credited_by";

pub async fn credits(db: &Db, contract_id: i64) -> StoreResult<Vec<LedgerCredit>> {
    let sql = format!("SELECT {CREDIT_COLUMNS} FROM contract_revisions WHERE contract_id = $1 ORDER BY id");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, LedgerCredit>(&sql).bind(contract_id).fetch_all(pool).await?))
}

pub async fn credit_for_payment(db: &Db, payment_id: &str) -> StoreResult<Option<LedgerCredit>> {
    let sql = format!("SELECT {CREDIT_COLUMNS} FROM contract_revisions WHERE payment_id = $1");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, LedgerCredit>(&sql).bind(payment_id).fetch_optional(pool).await?))
}

/// Credits booked in [from, to], for reconciliation.
pub async fn credits_between(db: &Db, from: DateTime<Utc>, to: DateTime<Utc>) -> StoreResult<Vec<LedgerCredit>> {
    let sql = format!(
        "SELECT {CREDIT_COLUMNS} FROM contract_revisions WHERE created_at >= $1 AND created_at <= $2 ORDER BY id"
    );
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, LedgerCredit>(&sql).bind(from).bind(to).fetch_all(pool).await?))
}

/// One revision request of a contract (None: no such request on that contract).
pub async fn request(db: &Db, contract_id: i64, request_id: i64) -> StoreResult<Option<RevisionRequest>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM revision_requests WHERE id = $1 AND contract_id = $2");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, RevisionRequest>(&sql)
        .bind(request_id)
        .bind(contract_id)
        .fetch_optional(pool)
        .await?))
}

pub async fn requests(db: &Db, contract_id: i64) -> StoreResult<Vec<RevisionRequest>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM revision_requests WHERE contract_id = $1 ORDER BY id");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, RevisionRequest>(&sql).bind(contract_id).fetch_all(pool).await?))
}

/// The artwork files a contract's requests reference (paths relative to the data directory),
/// for the sweep that removes files no request kept. Asked per contract, on its index: a
/// contract's requests are few, and their files all live in that contract's folder.
pub async fn artwork_paths(db: &Db, contract_id: i64) -> StoreResult<std::collections::HashSet<String>> {
    let sql = "SELECT artwork_path FROM revision_requests WHERE contract_id = $1 AND artwork_path IS NOT NULL";
    read_pool!(db, |pool| Ok(sqlx::query_scalar::<_, String>(sql)
        .bind(contract_id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect()))
}

/// What inserting a credit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditInsert {
    /// A new ledger row: the pack is credited now.
    Credited { ledger_id: i64 },
    /// The payment was credited before (UNIQUE payment_id); nothing changed.
    AlreadyCredited { ledger_id: i64, contract_id: i64 },
    /// No such contract; nothing written.
    UnknownContract,
}

/// The credit's SQL, written once for both dialects and both paths that book one (the
/// statements `fulfil` runs, and PostgreSQL intake's one-statement CTE, which passes its own
/// placeholders and conditions).
///
/// Inserts the credit if the payment has none yet: insert-or-nothing on the UNIQUE payment_id,
/// so any number of concurrent callers for one payment produce exactly one row. The contract's
/// existence is part of the same statement (no foreign-key error, which would abort a
/// PostgreSQL transaction). `values`: the eight values after the contract, in column order;
/// `also_from`: other relations the values come from (`"ev, "`); `condition`: `" AND ..."`;
/// `returning`: the inserted row's columns to return (`"id"`). Rows go in in contract order,
/// as the kept balances they move (`contract_balances`) must be locked in one order for two
/// batches crediting the same contracts never to deadlock: PostgreSQL's trigger moves them
/// once per statement, itself in contract order (migration 0014); a row trigger (SQLite's,
/// whose one writer could not deadlock anyway) follows the insert's order.
pub(crate) fn credit_insert_sql(
    contract: &str,
    values: &str,
    also_from: &str,
    condition: &str,
    returning: &str,
) -> String {
    format!(
        "INSERT INTO contract_revisions \
         (contract_id, payment_id, revisions, amount, currency, livemode, stripe_event_id, created_at, credited_by) \
         SELECT c.id, {values} FROM {also_from}contracts c WHERE c.id = {contract}{condition} \
         ORDER BY c.id ON CONFLICT (payment_id) DO NOTHING RETURNING {returning}"
    )
}

/// Our purchase record of a credited payment moves to `succeeded` (never from it). `matching`:
/// which payments, as the rest of a condition on `payment_intent_id` (`"= $1"`, `"IN (...)"`).
pub(crate) fn purchase_succeeded_sql(matching: &str, now: &str, condition: &str) -> String {
    format!(
        "UPDATE purchases SET status = 'succeeded', updated_at = {now} \
         WHERE payment_intent_id {matching} AND status <> 'succeeded'{condition}"
    )
}

pub(crate) static INSERT_CREDIT_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| credit_insert_sql("$1", "$2, $3, $4, $5, $6, $7, $8, $9", "", "", "id"));
pub(crate) static PURCHASE_SUCCEEDED_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| purchase_succeeded_sql("= $1", "$2", ""));

/// Binds a credit's first six columns in `contract_revisions` order (contract, payment,
/// revisions, amount, currency, livemode): the order `credit_insert_sql`'s callers list them.
macro_rules! bind_credit {
    ($q:expr, $c:expr) => {
        $q.bind($c.contract_id)
            .bind(&$c.payment_id)
            .bind($c.revisions)
            .bind($c.amount.minor)
            .bind($c.amount.currency.as_str())
            .bind($c.livemode)
    };
}
pub(crate) use bind_credit;

macro_rules! insert_credit_in {
    ($tx:expr, $credit:expr, $event_id:expr, $credited_by:expr, $now:expr) => {{
        let credit: &$crate::domain::events::Credit = $credit;
        let inserted: Option<i64> =
            $crate::store::ledger::bind_credit!(sqlx::query_scalar(&$crate::store::ledger::INSERT_CREDIT_SQL), credit)
                .bind($event_id)
                .bind($now)
                .bind($credited_by)
                .fetch_optional(&mut *$tx)
                .await?;
        sqlx::query(&$crate::store::ledger::PURCHASE_SUCCEEDED_SQL)
            .bind(&credit.payment_id)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        match inserted {
            Some(ledger_id) => $crate::store::ledger::CreditInsert::Credited { ledger_id },
            None => {
                let existing: Option<(i64, i64)> =
                    sqlx::query_as("SELECT id, contract_id FROM contract_revisions WHERE payment_id = $1")
                        .bind(&credit.payment_id)
                        .fetch_optional(&mut *$tx)
                        .await?;
                match existing {
                    Some((ledger_id, contract_id)) => {
                        $crate::store::ledger::CreditInsert::AlreadyCredited { ledger_id, contract_id }
                    }
                    None => $crate::store::ledger::CreditInsert::UnknownContract,
                }
            }
        }
    }};
}
pub(crate) use insert_credit_in;

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no such contract")]
    NotFound,
    #[error(transparent)]
    NoRevisionsLeft(#[from] NoRevisionsLeft),
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

impl From<sqlx::Error> for RequestError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Records a revision request if the contract has a credit left. The balance check and the
/// insert happen under the contract's lock (PostgreSQL: FOR UPDATE on the contract row; SQLite:
/// the database write lock taken by BEGIN IMMEDIATE), so two concurrent requests at
/// available = 1 cannot both pass.
///
/// On PostgreSQL that argument needs each statement to see what committed before it started
/// (READ COMMITTED): under REPEATABLE READ or SERIALIZABLE the transaction's snapshot is taken
/// by its first statement, before the lock is granted, so the balance read after the lock would
/// miss the request whose commit released it, and two requests at available = 1 could both
/// pass (or fail with serialization errors). The transaction therefore sets its own isolation
/// level instead of taking the server's default, whatever an operator configured.
pub async fn request_revision(
    db: &Db,
    contract_id: i64,
    requested_by: i64,
    notes: &str,
    artwork: Option<&Artwork>,
    now: DateTime<Utc>,
) -> Result<RevisionRequest, RequestError> {
    let insert = format!(
        "INSERT INTO revision_requests \
         (contract_id, requested_by, notes, artwork_path, artwork_name, artwork_type, artwork_size, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {REQUEST_COLUMNS}"
    );
    let balance_sql = balance_sql();
    write_tx!(db, |tx, dialect| {
        if dialect == Dialect::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").execute(&mut *tx).await?;
            sqlx::query("SELECT id FROM contracts WHERE id = $1 FOR UPDATE")
                .bind(contract_id)
                .execute(&mut *tx)
                .await?;
        }
        let balance: RevisionBalance = sqlx::query_as::<_, BalanceRow>(&balance_sql)
            .bind(contract_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(RequestError::NotFound)?
            .into();
        balance.check_can_request()?;
        Ok(sqlx::query_as::<_, RevisionRequest>(&insert)
            .bind(contract_id)
            .bind(requested_by)
            .bind(notes)
            .bind(artwork.map(|a| a.path.as_str()))
            .bind(artwork.map(|a| a.name.as_str()))
            .bind(artwork.map(|a| a.content_type.as_str()))
            .bind(artwork.map(|a| a.size))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?)
    })
}
