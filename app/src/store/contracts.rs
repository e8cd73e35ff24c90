//! `contracts`: an advertiser's ad contract (publication, ad size) and the revisions it includes.
use super::{like_pattern, read_pool, write_pool, Db, StoreResult};
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
}

impl ContractBalanceRow {
    pub fn balance(&self) -> crate::domain::RevisionBalance {
        crate::domain::RevisionBalance {
            base: self.base,
            purchased: self.purchased,
            revoked: self.revoked,
            requested: self.requested,
            disputed: self.disputed,
        }
    }
}

pub use crate::domain::listing::ContractSort;

/// A fixed ORDER BY per choice: user input never reaches the SQL text.
fn order_by(sort: ContractSort) -> &'static str {
    match sort {
        ContractSort::Id => "c.id",
        ContractSort::Advertiser => "u.email, c.id",
        ContractSort::Publication => "c.publication, c.id",
        // The kept balance's index (`contract_balances_available`) gives these in order.
        ContractSort::AvailableAsc => "b.available, b.contract_id",
        ContractSort::AvailableDesc => "b.available DESC, b.contract_id DESC",
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

/// Balances come from `contract_balances`, kept by the database in the transaction of every
/// ledger insert (migration 0011 says why): a page costs its own rows, not the whole ledger.
const BALANCES_FROM: &str = "FROM contracts c JOIN users u ON u.id = c.advertiser_id \
     JOIN contract_balances b ON b.contract_id = c.id \
     WHERE (CAST($1 AS BIGINT) IS NULL OR c.advertiser_id = $1) \
       AND (CAST($2 AS BIGINT) IS NULL OR c.id = $2) \
       AND ($3 = '' OR lower(u.email) LIKE $3 ESCAPE '\\' OR lower(c.publication) LIKE $3 ESCAPE '\\')";

/// Contracts with their balances, filtered, sorted and paged; and how many match in all.
pub async fn balances(db: &Db, q: &ContractQuery) -> StoreResult<(Vec<ContractBalanceRow>, i64)> {
    let pattern = like_pattern(&q.search);
    let rows_sql = format!(
        "SELECT c.id, c.advertiser_id, u.email AS advertiser_email, c.publication, c.ad_size, \
         b.base, b.purchased, b.revoked, b.requested, \
         CAST(COALESCE((SELECT SUM(r.revisions - COALESCE((SELECT SUM(x.revoked) FROM revision_adjustments x \
             WHERE x.payment_id = r.payment_id), 0)) FROM contract_revisions r WHERE r.contract_id = c.id \
             AND EXISTS (SELECT 1 FROM payment_disputes d WHERE d.payment_id = r.payment_id AND d.is_open)), 0) AS BIGINT) AS disputed \
         {BALANCES_FROM} ORDER BY {} LIMIT $4 OFFSET $5",
        order_by(q.sort)
    );
    let count_sql = format!("SELECT COUNT(*) {BALANCES_FROM}");
    read_pool!(db, |pool| {
        let rows = sqlx::query_as::<_, ContractBalanceRow>(&rows_sql)
            .bind(q.advertiser_id)
            .bind(q.contract_id)
            .bind(&pattern)
            .bind(q.limit)
            .bind(q.offset)
            .fetch_all(pool)
            .await?;
        let (total,): (i64,) =
            sqlx::query_as(&count_sql).bind(q.advertiser_id).bind(q.contract_id).bind(&pattern).fetch_one(pool).await?;
        Ok((rows, total))
    })
}
