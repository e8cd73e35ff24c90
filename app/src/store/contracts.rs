//! `contracts`: an advertiser's ad contract (publication, ad size) and the revisions it includes.
use super::{like_pattern, read_pool, write_pool, Db, Dialect, StoreResult};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Contract {
    pub id: i64,
    pub advertiser_id: i64,
    pub publication: String,
    pub ad_size: String,
    pub base_revisions: i64,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, advertiser_id, publication, ad_size, base_revisions, created_at";
/// The one INSERT of a contract, for `create` and for the audited action in `store::people`.
pub(crate) fn insert_sql() -> String {
    format!(
        "INSERT INTO contracts (advertiser_id, publication, ad_size, base_revisions, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    )
}

pub struct NewContract<'a> {
    pub advertiser_id: i64,
    pub publication: &'a str,
    pub ad_size: &'a str,
    pub base_revisions: i64,
}

pub async fn create(db: &Db, c: &NewContract<'_>, now: DateTime<Utc>) -> StoreResult<Contract> {
    let sql = insert_sql();
    write_pool!(db, |pool| Ok(sqlx::query_as::<_, Contract>(&sql)
        .bind(c.advertiser_id)
        .bind(c.publication.trim())
        .bind(c.ad_size.trim())
        .bind(c.base_revisions)
        .bind(now)
        .fetch_one(pool)
        .await?))
}

pub async fn find(db: &Db, id: i64) -> StoreResult<Option<Contract>> {
    let sql = format!("SELECT {COLUMNS} FROM contracts WHERE id = $1");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, Contract>(&sql).bind(id).fetch_optional(pool).await?))
}

pub async fn list_for_advertiser(db: &Db, advertiser_id: i64) -> StoreResult<Vec<Contract>> {
    let sql = format!("SELECT {COLUMNS} FROM contracts WHERE advertiser_id = $1 ORDER BY id");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, Contract>(&sql).bind(advertiser_id).fetch_all(pool).await?))
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

/// A fixed ORDER BY per choice over `contract_balances b`, `contracts c` and `users u`, ties
/// broken by `id` (`b.contract_id` or `c.id`, the same value): user input never reaches the
/// SQL text.
fn order_by(sort: ContractSort, id: &str) -> String {
    match sort {
        ContractSort::Id => id.to_string(),
        ContractSort::Advertiser => format!("u.email, {id}"),
        ContractSort::Publication => format!("c.publication, {id}"),
        // The kept balance's index (`contract_balances_available`) gives these in order.
        ContractSort::AvailableAsc => format!("b.available, {id}"),
        ContractSort::AvailableDesc => format!("b.available DESC, {id} DESC"),
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

/// The filter of `q` on `contracts c`, as fixed SQL fragments with numbered parameters (only
/// the filters given; user input is only ever bound): (WHERE clause, its binds in order).
/// The search finds the advertiser's email through `users` and the publication on the row; on
/// PostgreSQL both halves are trigram index scans (migration 0012), ORed as bitmaps.
fn balances_filter(q: &ContractQuery, dialect: Dialect) -> (String, Vec<Bind>) {
    let mut conds: Vec<String> = Vec::new();
    let mut binds = Vec::new();
    if let Some(a) = q.advertiser_id {
        binds.push(Bind::Int(a));
        conds.push(format!("c.advertiser_id = ${}", binds.len()));
    }
    if let Some(id) = q.contract_id {
        binds.push(Bind::Int(id));
        conds.push(format!("c.id = ${}", binds.len()));
    }
    if !q.search.trim().is_empty() {
        binds.push(Bind::Text(like_pattern(&q.search)));
        let n = binds.len();
        let emails = format!("SELECT id FROM users WHERE lower(email) LIKE ${n} ESCAPE '\\'");
        let advertiser = match dialect {
            // An array the planner can turn into an index condition, unlike IN (subquery).
            Dialect::Postgres => format!("c.advertiser_id = ANY (ARRAY({emails}))"),
            Dialect::Sqlite => format!("c.advertiser_id IN ({emails})"),
        };
        conds.push(format!("({advertiser} OR lower(c.publication) LIKE ${n} ESCAPE '\\')"));
    }
    let clause = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    (clause, binds)
}

enum Bind {
    Int(i64),
    Text(String),
}

/// Binds `binds` in order to a query of either dialect.
macro_rules! bound {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for b in $binds {
            query = match b {
                Bind::Int(i) => query.bind(*i),
                Bind::Text(t) => query.bind(t.clone()),
            };
        }
        query
    }};
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
    let (filter, binds) = balances_filter(q, db.sql_dialect());
    let users = if q.sort == ContractSort::Advertiser { " JOIN users u ON u.id = c.advertiser_id" } else { "" };
    let (limit, offset) = (binds.len() + 1, binds.len() + 2);
    // The page's ids are picked with the narrowest rows (the sort keys and the id), then only
    // those rows are read whole, joined to their advertiser and have their disputes counted.
    let rows_sql = format!(
        "SELECT c.id, c.advertiser_id, u.email AS advertiser_email, c.publication, c.ad_size, \
           b.base, b.purchased, b.revoked, b.requested, \
           CAST(COALESCE((SELECT SUM(r.revisions - COALESCE((SELECT SUM(x.revoked) FROM revision_adjustments x \
             WHERE x.payment_id = r.payment_id), 0)) FROM contract_revisions r WHERE r.contract_id = c.id \
             AND EXISTS (SELECT 1 FROM payment_disputes d WHERE d.payment_id = r.payment_id AND d.is_open)), 0) \
             AS BIGINT) AS disputed, \
           CAST(COALESCE((SELECT SUM(h.revisions) FROM refund_holds h WHERE h.contract_id = c.id), 0) AS BIGINT) \
             AS refunding \
         FROM (SELECT b.contract_id AS id \
               FROM contract_balances b JOIN contracts c ON c.id = b.contract_id{users}{filter} \
               ORDER BY {} LIMIT ${limit} OFFSET ${offset}) p \
         JOIN contracts c ON c.id = p.id JOIN contract_balances b ON b.contract_id = p.id \
         JOIN users u ON u.id = c.advertiser_id ORDER BY {}",
        order_by(q.sort, "b.contract_id"),
        order_by(q.sort, "c.id")
    );
    read_pool!(db, |pool| {
        Ok(bound!(sqlx::query_as::<_, ContractBalanceRow>(&rows_sql), &binds)
            .bind(q.limit)
            .bind(q.offset)
            .fetch_all(pool)
            .await?)
    })
}

/// How many contracts `q`'s filters match. Every contract has its kept balance (a trigger
/// makes it with the contract) and an advertiser (a foreign key), so the count needs neither
/// join.
async fn count_matching(db: &Db, q: &ContractQuery) -> StoreResult<i64> {
    let (filter, binds) = balances_filter(q, db.sql_dialect());
    let count_sql = format!("SELECT COUNT(*) FROM contracts c{filter}");
    read_pool!(db, |pool| {
        let (total,): (i64,) = bound!(sqlx::query_as(&count_sql), &binds).fetch_one(pool).await?;
        Ok(total)
    })
}
