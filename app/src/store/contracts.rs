//! `contracts`: an advertiser's ad contract (publication, ad size) and the revisions it includes.
use super::{like_pattern, on, Db, Dialect, StoreResult, Tx};
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Contract {
    pub id: i64,
    pub advertiser_id: i64,
    pub publication: String,
    pub ad_size: String,
    pub base_revisions: i64,
    pub created_at: DateTime<Utc>,
}

/// The one INSERT of a contract, for `create` and for the audited action in `store::people`.
const INSERT: &str = "INSERT INTO contracts (advertiser_id, publication, ad_size, base_revisions, created_at) \
    VALUES ($1, $2, $3, $4, $5) RETURNING id, advertiser_id, publication, ad_size, base_revisions, created_at";

pub struct NewContract<'a> {
    pub advertiser_id: i64,
    pub publication: &'a str,
    pub ad_size: &'a str,
    pub base_revisions: i64,
}

pub async fn create(db: &Db, c: &NewContract<'_>, now: DateTime<Utc>) -> StoreResult<Contract> {
    on!(db.writer(), |pool| Ok(sqlx::query_as::<_, Contract>(INSERT)
        .bind(c.advertiser_id)
        .bind(c.publication.trim())
        .bind(c.ad_size.trim())
        .bind(c.base_revisions)
        .bind(now)
        .fetch_one(pool)
        .await?))
}

/// Stores a contract as given (no trimming: the caller's terms are checked already), in the
/// caller's transaction: the audited action in `store::people`.
pub(crate) async fn insert(tx: &mut Tx, c: &NewContract<'_>, now: DateTime<Utc>) -> StoreResult<Contract> {
    on!(tx.conn(), |conn| Ok(sqlx::query_as::<_, Contract>(INSERT)
        .bind(c.advertiser_id)
        .bind(c.publication)
        .bind(c.ad_size)
        .bind(c.base_revisions)
        .bind(now)
        .fetch_one(conn)
        .await?))
}

pub async fn find(db: &Db, id: i64) -> StoreResult<Option<Contract>> {
    const SQL: &str =
        "SELECT id, advertiser_id, publication, ad_size, base_revisions, created_at FROM contracts WHERE id = $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Contract>(SQL).bind(id).fetch_optional(c).await?))
}

pub async fn list_for_advertiser(db: &Db, advertiser_id: i64) -> StoreResult<Vec<Contract>> {
    const SQL: &str = "SELECT id, advertiser_id, publication, ad_size, base_revisions, created_at FROM contracts \
        WHERE advertiser_id = $1 ORDER BY id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Contract>(SQL).bind(advertiser_id).fetch_all(c).await?))
}

/// A contract with its advertiser and the sums its balance is made of.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContractBalanceRow {
    pub id: i64,
    pub advertiser_id: i64,
    pub advertiser_email: String,
    pub publication: String,
    pub ad_size: String,
    pub base: i64,
    pub purchased: i64,
    pub revoked: i64,
    pub requested: i64,
    pub disputed: i64,
    pub refunding: i64,
}

impl ContractBalanceRow {
    pub fn balance(&self) -> crate::domain::RevisionBalance {
        crate::domain::RevisionBalance {
            base: self.base,
            purchased: self.purchased,
            revoked: self.revoked,
            requested: self.requested,
            disputed: self.disputed,
            refunding: self.refunding,
        }
    }
}

pub use crate::domain::listing::ContractSort;

/// A fixed ORDER BY per choice, ties broken by the contract's id: (the page's pick over
/// `contract_balances b`, `contracts c` and `users u`, by `b.contract_id`; the page's rows, by
/// `c.id`, the same value). User input never reaches the SQL text.
fn order_by(sort: ContractSort) -> (&'static str, &'static str) {
    match sort {
        ContractSort::Id => (" ORDER BY b.contract_id", " ORDER BY c.id"),
        ContractSort::Advertiser => (" ORDER BY u.email, b.contract_id", " ORDER BY u.email, c.id"),
        ContractSort::Publication => (" ORDER BY c.publication, b.contract_id", " ORDER BY c.publication, c.id"),
        // The kept balance's index (`contract_balances_available`) gives these in order.
        ContractSort::AvailableAsc => (" ORDER BY b.available, b.contract_id", " ORDER BY b.available, c.id"),
        ContractSort::AvailableDesc => {
            (" ORDER BY b.available DESC, b.contract_id DESC", " ORDER BY b.available DESC, c.id DESC")
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ContractQuery {
    /// Only this advertiser's contracts.
    pub advertiser_id: Option<i64>,
    /// Only this contract.
    pub contract_id: Option<i64>,
    /// Case-insensitive substring of the advertiser's email or the publication.
    pub search: String,
    pub sort: ContractSort,
    pub limit: i64,
    pub offset: i64,
}

/// Pushes the filter of `q` on `contracts c` (only the filters given; user input is only ever
/// bound). The shape of the statement varies with what is asked, on purpose: a fixed text with
/// `($1 IS NULL OR c.advertiser_id = $1)`-style conditions would hide the filter from the
/// planner, and over 100,000 contracts an advertiser's or a contract's page would walk every
/// contract instead of seeking its index. So the page and the count are built here, with
/// `QueryBuilder`, and each is planned for the filters it has.
/// The search finds the advertiser's email through `users` and the publication on the row; on
/// PostgreSQL both halves are trigram index scans (migration 0012), ORed as bitmaps.
fn push_filter<'a, DB: sqlx::Database>(qb: &mut QueryBuilder<'a, DB>, q: &ContractQuery, dialect: Dialect)
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut and = " WHERE ";
    if let Some(a) = q.advertiser_id {
        qb.push(and).push("c.advertiser_id = ").push_bind(a);
        and = " AND ";
    }
    if let Some(id) = q.contract_id {
        qb.push(and).push("c.id = ").push_bind(id);
        and = " AND ";
    }
    if !q.search.trim().is_empty() {
        let pattern = like_pattern(&q.search);
        let (advertiser, close) = match dialect {
            // An array the planner can turn into an index condition, unlike IN (subquery).
            Dialect::Postgres => {
                ("(c.advertiser_id = ANY (ARRAY(SELECT id FROM users WHERE lower(email) LIKE ", " ESCAPE '\\'))")
            }
            Dialect::Sqlite => ("(c.advertiser_id IN (SELECT id FROM users WHERE lower(email) LIKE ", " ESCAPE '\\')"),
        };
        qb.push(and).push(advertiser).push_bind(pattern.clone()).push(close);
        qb.push(" OR lower(c.publication) LIKE ").push_bind(pattern).push(" ESCAPE '\\')");
    }
}

/// Contracts with their balances, filtered, sorted and paged; and how many match in all. The
/// page and the count are asked at once, on two connections: on PostgreSQL a search's page and
/// its count each walk the trigram indexes, and one after the other they doubled the wait.
pub async fn balances(db: &Db, q: &ContractQuery) -> StoreResult<(Vec<ContractBalanceRow>, i64)> {
    tokio::try_join!(balance_rows(db, q), count_matching(db, q))
}

/// The page of [`balances`] without its count (one contract's page, an advertiser's list).
/// Balances come from `contract_balances`, kept by the database in the transaction of every
/// ledger insert (migration 0011 says why). The page is chosen from the kept balances and the
/// contract rows (an index walk when sorted by available; the advertiser's row too when sorted
/// by advertiser), and only its rows are read whole and have their disputed revisions counted.
pub async fn balance_rows(db: &Db, q: &ContractQuery) -> StoreResult<Vec<ContractBalanceRow>> {
    // The page's ids are picked with the narrowest rows (the sort keys and the id), then only
    // those rows are read whole, joined to their advertiser and have their disputes counted.
    const ROWS: &str = "SELECT c.id, c.advertiser_id, u.email AS advertiser_email, c.publication, c.ad_size, \
           b.base, b.purchased, b.revoked, b.requested, \
           CAST(COALESCE((SELECT SUM(r.revisions - COALESCE((SELECT SUM(x.revoked) FROM revision_adjustments x \
             WHERE x.payment_id = r.payment_id), 0)) FROM contract_revisions r WHERE r.contract_id = c.id \
             AND EXISTS (SELECT 1 FROM payment_disputes d WHERE d.payment_id = r.payment_id AND d.is_open)), 0) \
             AS BIGINT) AS disputed, \
           CAST(COALESCE((SELECT SUM(h.revisions) FROM refund_holds h WHERE h.contract_id = c.id), 0) AS BIGINT) \
             AS refunding \
         FROM (SELECT b.contract_id AS id \
               FROM contract_balances b JOIN contracts c ON c.id = b.contract_id";
    // Sorted by advertiser, the pick reads the advertiser's email too.
    const BY_EMAIL: &str = " JOIN users u ON u.id = c.advertiser_id";
    const PAGE_ROWS: &str = ") p JOIN contracts c ON c.id = p.id JOIN contract_balances b ON b.contract_id = p.id \
         JOIN users u ON u.id = c.advertiser_id";
    let (pick_order, rows_order) = order_by(q.sort);
    on!(db.reader(), |c| {
        let mut qb = QueryBuilder::new(ROWS);
        if q.sort == ContractSort::Advertiser {
            qb.push(BY_EMAIL);
        }
        push_filter(&mut qb, q, db.sql_dialect());
        qb.push(pick_order).push(" LIMIT ").push_bind(q.limit).push(" OFFSET ").push_bind(q.offset);
        qb.push(PAGE_ROWS).push(rows_order);
        Ok(qb.build_query_as::<ContractBalanceRow>().fetch_all(c).await?)
    })
}

/// How many contracts `q`'s filters match. Every contract has its kept balance (a trigger
/// makes it with the contract) and an advertiser (a foreign key), so the count needs neither
/// join.
async fn count_matching(db: &Db, q: &ContractQuery) -> StoreResult<i64> {
    on!(db.reader(), |c| {
        let mut qb = QueryBuilder::new("SELECT COUNT(*) FROM contracts c");
        push_filter(&mut qb, q, db.sql_dialect());
        Ok(qb.build_query_scalar::<i64>().fetch_one(c).await?)
    })
}
