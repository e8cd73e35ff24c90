//! `sessions`: tower-sessions records in the app's own database.
//!
//! Our own `SessionStore` rather than tower-sessions-sqlx-store: that crate brings its own
//! schema and pool per dialect, while this one goes through the same `Db` as everything else
//! (SQLite's single writer, both dialects, our migrations) in about sixty lines.
use super::{on, ConstraintKind, Db, StoreError, StoreResult};
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
/// The account's `credential_version` that the sign-in verified (a column too: the load checks it).
pub const VERSION_KEY: &str = "credential_version";
/// When the person signed in (unix seconds; a column too: the absolute lifetime counts from it).
pub const SIGNED_IN_KEY: &str = "signed_in_at";

/// The longest a signed-in session lives, however often it is used: the idle expiry is extended
/// by use, so without this a session (or a stolen cookie) kept busy would never end.
pub fn max_lifetime() -> chrono::Duration {
    chrono::Duration::days(30)
}

const INSERT: &str = "INSERT INTO sessions (id, data, expires_at, user_id, credential_version, signed_in_at) \
                      VALUES ($1, $2, $3, $4, $5, $6)";
/// Saving changes a session that exists and never brings one back: a session ended meanwhile
/// (deactivation, a password change, sign-out elsewhere) stays ended even when a request that
/// loaded it before then saves it afterwards. tower-sessions creates new sessions with
/// `create`, so `save` only ever meets records it loaded.
const UPDATE: &str = "UPDATE sessions SET data = $2, expires_at = $3, user_id = $4, credential_version = $5, \
                      signed_in_at = $6 WHERE id = $1";

fn encode(record: &Record) -> Result<String> {
    serde_json::to_string(record).map_err(|e| Error::Encode(e.to_string()))
}

async fn write(db: &Db, sql: &str, record: &Record, data: &str) -> StoreResult<u64> {
    let number = |key: &str| record.data.get(key).and_then(serde_json::Value::as_i64);
    let user_id = number(USER_KEY);
    let signed_in_at = number(SIGNED_IN_KEY).and_then(|t| DateTime::from_timestamp(t, 0));
    on!(db.writer(), |c| Ok(sqlx::query(sql)
        .bind(record.id.to_string())
        .bind(data)
        .bind(expires_at(record))
        .bind(user_id)
        .bind(number(VERSION_KEY))
        .bind(signed_in_at)
        .execute(c)
        .await?
        .rows_affected()))
}

/// A session is loaded only while it is good: not idle past its expiry, and, when someone is
/// signed in, their account still active, its credentials unchanged since the sign-in (a reset,
/// a new password or a deactivation moves `credential_version` on) and the sign-in no older than
/// `max_lifetime`. Checked here, on every request's load, so no handler can forget it, and in the
/// same query, so it costs no extra round trip.
const READ: &str = "SELECT s.data FROM sessions s LEFT JOIN users u ON u.id = s.user_id \
                    WHERE s.id = $1 AND s.expires_at > $2 AND (s.user_id IS NULL OR ( \
                      u.deactivated_at IS NULL AND u.credential_version = s.credential_version \
                      AND s.signed_in_at > $3))";

async fn read(db: &Db, id: &Id, now: DateTime<Utc>) -> StoreResult<Option<String>> {
    on!(db.reader(), |c| Ok(sqlx::query_scalar(READ)
        .bind(id.to_string())
        .bind(now)
        .bind(now - max_lifetime())
        .fetch_optional(c)
        .await?))
}

async fn remove(db: &Db, id: &Id) -> StoreResult<u64> {
    on!(db.writer(), |c| Ok(sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id.to_string())
        .execute(c)
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
        match read(self, id, Utc::now()).await.map_err(backend)? {
            Some(data) => serde_json::from_str(&data).map(Some).map_err(|e| Error::Decode(e.to_string())),
            None => Ok(None),
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        remove(self, id).await.map(|_| ()).map_err(backend)
    }
}

/// Removes expired sessions, idle or past their absolute lifetime (the worker calls this now
/// and then); returns how many.
pub async fn delete_expired(db: &Db, now: DateTime<Utc>) -> super::StoreResult<u64> {
    on!(db.writer(), |c| Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR signed_in_at <= $2")
        .bind(now)
        .bind(now - max_lifetime())
        .execute(c)
        .await?
        .rows_affected()))
}
