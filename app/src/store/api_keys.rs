//! `api_keys`: the keys that may read the totals-only API. Only a SHA-256 of each key is kept
//! (the key itself is shown once, when made); a key is found by its hash, so the lookup needs
//! no constant-time compare (an attacker controls the key, never the stored hash).
use super::{on, Db, StoreResult};
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ApiKeyRow {
    pub id: i64,
    pub name: String,
    /// The key's first characters, so a person can tell keys apart in a list.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// What the key may read: `revenue` (totals only) or `events` (event search and export).
    pub scope: String,
}

pub async fn create(
    db: &Db,
    name: &str,
    key_hash: &str,
    prefix: &str,
    scope: &str,
    now: DateTime<Utc>,
) -> StoreResult<i64> {
    const SQL: &str =
        "INSERT INTO api_keys (name, key_hash, prefix, created_at, scope) VALUES ($1, $2, $3, $4, $5) RETURNING id";
    on!(db.writer(), |c| Ok(sqlx::query_scalar::<_, i64>(SQL)
        .bind(name)
        .bind(key_hash)
        .bind(prefix)
        .bind(now)
        .bind(scope)
        .fetch_one(c)
        .await?))
}

pub async fn list(db: &Db) -> StoreResult<Vec<ApiKeyRow>> {
    const SQL: &str = "SELECT id, name, prefix, created_at, last_used_at, revoked_at, scope FROM api_keys ORDER BY id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, ApiKeyRow>(SQL).fetch_all(c).await?))
}

/// Revokes a key for good; false when there is no such key or it was already revoked.
pub async fn revoke(db: &Db, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
    const SQL: &str = "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
    let revoked = on!(db.writer(), |c| sqlx::query(SQL).bind(id).bind(now).execute(c).await?.rows_affected());
    Ok(revoked == 1)
}

/// The live (not revoked) key with this hash, marking it used. The mark is written at most once
/// a minute per key, so a busy client does not turn every read into a write.
pub async fn authenticate(db: &Db, key_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<ApiKeyRow>> {
    const FIND: &str = "SELECT id, name, prefix, created_at, last_used_at, revoked_at, scope FROM api_keys \
        WHERE key_hash = $1 AND revoked_at IS NULL";
    const MARK_USED: &str =
        "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";
    let found: Option<ApiKeyRow> =
        on!(db.reader(), |c| sqlx::query_as::<_, ApiKeyRow>(FIND).bind(key_hash).fetch_optional(c).await?);
    let Some(key) = found else { return Ok(None) };
    if key.last_used_at.is_none_or(|t| t < now - Duration::seconds(60)) {
        on!(db.writer(), |c| {
            sqlx::query(MARK_USED).bind(key.id).bind(now).execute(c).await?;
        });
    }
    Ok(Some(key))
}
