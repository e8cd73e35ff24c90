//! `password_requests`: the forgot form's requests, counted per key (the address asked about,
//! the client's address; `domain::people::forgot`) so every process shares the limits. A request
//! is written before it is counted, so of parallel requests under one key each counts those
//! before it and itself: no more than the limit get through, at any isolation level.
use super::{on, Db, StoreResult};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// What a request is counted under, hashed: the table holds no addresses.
pub fn key(kind: &str, value: &str) -> String {
    hex::encode(Sha256::digest(format!("{kind}\n{}", value.trim().to_lowercase()).as_bytes()))
}

/// Writes one request under `key`, then counts that key's requests since `since` (this one
/// included).
pub async fn record(db: &Db, key: &str, now: DateTime<Utc>, since: DateTime<Utc>) -> StoreResult<i64> {
    const INSERT: &str = "INSERT INTO password_requests (key, requested_at) VALUES ($1, $2)";
    const COUNT: &str = "SELECT COUNT(*) FROM password_requests WHERE key = $1 AND requested_at > $2";
    on!(db.writer(), |c| {
        sqlx::query(INSERT).bind(key).bind(now).execute(c).await?;
        Ok(sqlx::query_scalar::<_, i64>(COUNT).bind(key).bind(since).fetch_one(c).await?)
    })
}

/// Forgets requests older than `before` (the worker, now and then).
pub async fn delete_before(db: &Db, before: DateTime<Utc>) -> StoreResult<u64> {
    const SQL: &str = "DELETE FROM password_requests WHERE requested_at <= $1";
    on!(db.writer(), |c| Ok(sqlx::query(SQL).bind(before).execute(c).await?.rows_affected()))
}
