//! The revision ledger: `contract_revisions` (credited packs) and `revision_requests` (credits
//! consumed), and the balance derived from them.
use super::{on, Db, Dialect, StoreResult, Tx};
use crate::domain::events::Credit;
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

#[derive(sqlx::FromRow)]
struct BalanceRow {
    base: i64,
    purchased: i64,
    revoked: i64,
    requested: i64,
    disputed: i64,
    refunding: i64,
}

/// The inputs of `RevisionBalance`, summed from rows by the `contract_balance_inputs` view
/// (migration 0017); the rules that combine them are the domain's.
const BALANCE_SQL: &str = "SELECT base, purchased, revoked, requested, disputed, refunding \
     FROM contract_balance_inputs WHERE contract_id = $1";

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
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, BalanceRow>(BALANCE_SQL)
        .bind(contract_id)
        .fetch_optional(c)
        .await?
        .map(RevisionBalance::from)))
}

pub async fn credits(db: &Db, contract_id: i64) -> StoreResult<Vec<LedgerCredit>> {
    const SQL: &str = "SELECT id, contract_id, payment_id, revisions, amount, currency, livemode, stripe_event_id, \
         created_at, credited_by FROM contract_revisions WHERE contract_id = $1 ORDER BY id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, LedgerCredit>(SQL).bind(contract_id).fetch_all(c).await?))
}

pub async fn credit_for_payment(db: &Db, payment_id: &str) -> StoreResult<Option<LedgerCredit>> {
    const SQL: &str = "SELECT id, contract_id, payment_id, revisions, amount, currency, livemode, stripe_event_id, \
         created_at, credited_by FROM contract_revisions WHERE payment_id = $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, LedgerCredit>(SQL).bind(payment_id).fetch_optional(c).await?))
}

/// Credits booked in [from, to], for reconciliation.
pub async fn credits_between(db: &Db, from: DateTime<Utc>, to: DateTime<Utc>) -> StoreResult<Vec<LedgerCredit>> {
    const SQL: &str = "SELECT id, contract_id, payment_id, revisions, amount, currency, livemode, stripe_event_id, \
         created_at, credited_by FROM contract_revisions WHERE created_at >= $1 AND created_at <= $2 ORDER BY id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, LedgerCredit>(SQL).bind(from).bind(to).fetch_all(c).await?))
}

/// One revision request of a contract (None: no such request on that contract).
pub async fn request(db: &Db, contract_id: i64, request_id: i64) -> StoreResult<Option<RevisionRequest>> {
    const SQL: &str = "SELECT id, contract_id, requested_by, notes, artwork_path, artwork_name, artwork_type, \
         artwork_size, created_at FROM revision_requests WHERE id = $1 AND contract_id = $2";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, RevisionRequest>(SQL)
        .bind(request_id)
        .bind(contract_id)
        .fetch_optional(c)
        .await?))
}

pub async fn requests(db: &Db, contract_id: i64) -> StoreResult<Vec<RevisionRequest>> {
    const SQL: &str = "SELECT id, contract_id, requested_by, notes, artwork_path, artwork_name, artwork_type, \
         artwork_size, created_at FROM revision_requests WHERE contract_id = $1 ORDER BY id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, RevisionRequest>(SQL).bind(contract_id).fetch_all(c).await?))
}

/// The artwork files a contract's requests reference (paths relative to the data directory),
/// for the sweep that removes files no request kept. Asked per contract, on its index: a
/// contract's requests are few, and their files all live in that contract's folder.
pub async fn artwork_paths(db: &Db, contract_id: i64) -> StoreResult<std::collections::HashSet<String>> {
    const SQL: &str = "SELECT artwork_path FROM revision_requests WHERE contract_id = $1 AND artwork_path IS NOT NULL";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, String>(SQL)
        .bind(contract_id)
        .fetch_all(c)
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

/// Inserts a pack's credit if its payment has none yet, and moves our purchase record of the
/// payment to `succeeded` (never from it), in the caller's transaction.
///
/// Insert-or-nothing on the UNIQUE payment_id, so any number of concurrent callers for one
/// payment produce exactly one row. The contract's existence is part of the same statement (no
/// foreign-key error, which would abort a PostgreSQL transaction). Intake's batch statements
/// (`store::events`) follow the same rules for the common case of a new payment.
pub async fn insert_credit(
    tx: &mut Tx,
    credit: &Credit,
    event_id: Option<&str>,
    credited_by: &str,
    now: DateTime<Utc>,
) -> StoreResult<CreditInsert> {
    const INSERT: &str = "INSERT INTO contract_revisions (contract_id, payment_id, revisions, amount, currency, \
           livemode, stripe_event_id, created_at, credited_by) \
         SELECT c.id, $2, $3, $4, $5, $6, $7, $8, $9 FROM contracts c WHERE c.id = $1 \
         ON CONFLICT (payment_id) DO NOTHING RETURNING id";
    const PURCHASE_SUCCEEDED: &str = "UPDATE purchases SET status = 'succeeded', updated_at = $2 \
         WHERE payment_intent_id = $1 AND status <> 'succeeded'";
    const EXISTING: &str = "SELECT id, contract_id FROM contract_revisions WHERE payment_id = $1";
    let (inserted, existing): (Option<i64>, Option<(i64, i64)>) = on!(tx.conn(), |c| {
        let inserted = sqlx::query_scalar(INSERT)
            .bind(credit.contract_id)
            .bind(&credit.payment_id)
            .bind(credit.revisions)
            .bind(credit.amount.minor)
            .bind(credit.amount.currency.as_str())
            .bind(credit.livemode)
            .bind(event_id)
            .bind(now)
            .bind(credited_by)
            .fetch_optional(&mut *c)
            .await?;
        sqlx::query(PURCHASE_SUCCEEDED).bind(&credit.payment_id).bind(now).execute(&mut *c).await?;
        let existing = match inserted {
            Some(_) => None,
            None => sqlx::query_as(EXISTING).bind(&credit.payment_id).fetch_optional(&mut *c).await?,
        };
        (inserted, existing)
    });
    Ok(match (inserted, existing) {
        (Some(ledger_id), _) => CreditInsert::Credited { ledger_id },
        (None, Some((ledger_id, contract_id))) => CreditInsert::AlreadyCredited { ledger_id, contract_id },
        (None, None) => CreditInsert::UnknownContract,
    })
}

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
    const INSERT: &str = "INSERT INTO revision_requests \
         (contract_id, requested_by, notes, artwork_path, artwork_name, artwork_type, artwork_size, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, contract_id, requested_by, notes, artwork_path, \
         artwork_name, artwork_type, artwork_size, created_at";
    let mut tx = db.begin().await?;
    if tx.dialect() == Dialect::Postgres {
        lock_contract_read_committed(&mut tx, contract_id).await?;
    }
    let balance: RevisionBalance =
        on!(tx.conn(), |c| sqlx::query_as::<_, BalanceRow>(BALANCE_SQL).bind(contract_id).fetch_optional(c).await?)
            .ok_or(RequestError::NotFound)?
            .into();
    balance.check_can_request()?;
    let request = on!(tx.conn(), |c| sqlx::query_as::<_, RevisionRequest>(INSERT)
        .bind(contract_id)
        .bind(requested_by)
        .bind(notes)
        .bind(artwork.map(|a| a.path.as_str()))
        .bind(artwork.map(|a| a.name.as_str()))
        .bind(artwork.map(|a| a.content_type.as_str()))
        .bind(artwork.map(|a| a.size))
        .bind(now)
        .fetch_one(c)
        .await?);
    tx.commit().await?;
    Ok(request)
}

/// PostgreSQL only: this transaction reads what committed before each statement (READ
/// COMMITTED, whatever the server's default: see `request_revision`) and holds the contract's
/// row lock until it ends.
async fn lock_contract_read_committed(tx: &mut Tx, contract_id: i64) -> StoreResult<()> {
    on!(tx.conn(), |c| {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").execute(&mut *c).await?;
        sqlx::query("SELECT id FROM contracts WHERE id = $1 FOR UPDATE").bind(contract_id).execute(&mut *c).await?;
    });
    Ok(())
}

/// One contract with its owner and its balance inputs summed from the ledger rows (the view,
/// not the kept sums the admin list sorts by): the head of a contract's statement. None: no
/// such contract, or (with `advertiser_id`) not that advertiser's.
pub async fn contract_with_balance(
    db: &Db,
    contract_id: i64,
    advertiser_id: Option<i64>,
) -> StoreResult<Option<super::contracts::ContractBalanceRow>> {
    const SQL: &str = "SELECT c.id, c.advertiser_id, u.email AS advertiser_email, c.publication, c.ad_size, \
           i.base, i.purchased, i.revoked, i.requested, i.disputed, i.refunding \
         FROM contracts c JOIN users u ON u.id = c.advertiser_id \
           JOIN contract_balance_inputs i ON i.contract_id = c.id \
         WHERE c.id = $1 AND ($2 IS NULL OR c.advertiser_id = $2)";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, super::contracts::ContractBalanceRow>(SQL)
        .bind(contract_id)
        .bind(advertiser_id)
        .fetch_optional(c)
        .await?))
}

/// Payments the buyer's return page credited in [from, to), oldest first, at most `limit`.
pub async fn credited_by_return_page(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<String>> {
    const SQL: &str = "SELECT payment_id FROM contract_revisions WHERE credited_by = 'return_page' \
         AND created_at >= $1 AND created_at < $2 ORDER BY created_at, id LIMIT $3";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, String>(SQL).bind(from).bind(to).bind(limit).fetch_all(c).await?))
}
