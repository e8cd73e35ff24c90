//! `server_keys`: secrets the server makes for itself, once per database, so every process of
//! one deployment signs and seals alike and a restart keeps what was signed before it.
use super::{on, Db, StoreResult};
use chrono::{DateTime, Utc};

/// The secret called `name`: the one stored, or else `fresh` (64 hex characters), stored now.
/// Two processes starting at once both offer theirs; the first insert wins and both read it.
pub async fn get_or_create(db: &Db, name: &str, fresh: &str, now: DateTime<Utc>) -> StoreResult<String> {
    const OFFER: &str =
        "INSERT INTO server_keys (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
    const STORED: &str = "SELECT secret FROM server_keys WHERE name = $1";
    on!(db.writer(), |c| {
        sqlx::query(OFFER).bind(name).bind(fresh).bind(now).execute(c).await?;
    });
    on!(db.reader(), |c| Ok(sqlx::query_scalar(STORED).bind(name).fetch_one(c).await?))
}
