//! `sessions`: tower-sessions records in the app's own database.
//!
//! Our own `SessionStore` rather than tower-sessions-sqlx-store: that crate brings its own
//! schema and pool per dialect, while this one goes through the same `Db` as everything else
//! (SQLite's single writer, both dialects, our migrations) in about sixty lines.
use super::{read_pool, write_pool, ConstraintKind, Db, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result, SessionStore};

fn backend(e: StoreError) -> Error {
    Error::Backend(e.to_string())
}

fn expires_at(record: &Record) -> DateTime<Utc> {
    DateTime::from_timestamp(record.expiry_date.unix_timestamp(), 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The record's key for the signed-in user's id (the web layer's `USER_KEY`). Stored in a column
/// of its own too, so that every session of one person can be ended at once.
pub const USER_KEY: &str = "user_id";

const INSERT: &str = "INSERT INTO sessions (id, data, expires_at, user_id) VALUES ($1, $2, $3, $4)";
/// Saving changes a session that exists and never brings one back: a session ended meanwhile
/// (deactivation, a password change, sign-out elsewhere) stays ended even when a request that
/// loaded it before then saves it afterwards. tower-sessions creates new sessions with
/// `create`, so `save` only ever meets records it loaded.
const UPDATE: &str = "UPDATE sessions SET data = $2, expires_at = $3, user_id = $4 WHERE id = $1";

fn encode(record: &Record) -> Result<String> {
    serde_json::to_string(record).map_err(|e| Error::Encode(e.to_string()))
}

async fn write(db: &Db, sql: &str, record: &Record, data: &str) -> StoreResult<u64> {
    let user_id = record.data.get(USER_KEY).and_then(serde_json::Value::as_i64);
    write_pool!(db, |pool| Ok(sqlx::query(sql)
        .bind(record.id.to_string())
        .bind(data)
        .bind(expires_at(record))
        .bind(user_id)
        .execute(pool)
        .await?
        .rows_affected()))
}

async fn read(db: &Db, id: &Id) -> StoreResult<Option<String>> {
    read_pool!(db, |pool| Ok(sqlx::query_scalar("SELECT data FROM sessions WHERE id = $1 AND expires_at > $2")
        .bind(id.to_string())
        .bind(Utc::now())
        .fetch_optional(pool)
        .await?))
}

async fn remove(db: &Db, id: &Id) -> StoreResult<u64> {
    write_pool!(db, |pool| Ok(sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id.to_string())
        .execute(pool)
        .await?
        .rows_affected()))
}

#[async_trait::async_trait]
impl SessionStore for Db {
    /// A new session: insert, and pick a fresh id in the (astronomically unlikely) event of a
    /// collision, so one user can never be handed another's session.
    async fn create(&self, record: &mut Record) -> Result<()> {
        loop {
            let data = encode(record)?;
            match write(self, INSERT, record, &data).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_constraint(ConstraintKind::Unique) => record.id = Id::default(),
                Err(e) => return Err(backend(e)),
            }
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        write(self, UPDATE, record, &encode(record)?).await.map(|_| ()).map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        match read(self, id).await.map_err(backend)? {
            Some(data) => serde_json::from_str(&data).map(Some).map_err(|e| Error::Decode(e.to_string())),
            None => Ok(None),
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        remove(self, id).await.map(|_| ()).map_err(backend)
    }
}

/// Removes expired sessions (the worker calls this now and then); returns how many.
pub async fn delete_expired(db: &Db, now: DateTime<Utc>) -> super::StoreResult<u64> {
    write_pool!(db, |pool| Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()))
}
