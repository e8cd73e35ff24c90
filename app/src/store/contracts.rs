//! `contracts`: an advertiser's ad contract (publication, ad size) and the revisions it includes.
use super::{read_pool, write_pool, Db, StoreResult};
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

pub struct NewContract<'a> {
    pub advertiser_id: i64,
    pub publication: &'a str,
    pub ad_size: &'a str,
    pub base_revisions: i64,
}

pub async fn create(db: &Db, c: &NewContract<'_>, now: DateTime<Utc>) -> StoreResult<Contract> {
    let sql = format!(
        "INSERT INTO contracts (advertiser_id, publication, ad_size, base_revisions, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    );
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
