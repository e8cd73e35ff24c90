//! `forward_destinations` and `forward_destination_secrets`: where forwarded events go, which
//! ones, how fast, whether paused or disabled, the fan-out's cursor, and our signing secrets for
//! each (several active while one is rotated).
use super::{on, Db, StoreResult};
use chrono::{DateTime, Utc};

/// A destination as stored; `filter` is `domain::forwarding::Filter` as JSON.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct DestinationRow {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub filter: String,
    pub rate_per_second: i64,
    pub max_in_flight: i64,
    pub created_at: DateTime<Utc>,
    pub fanned_to: DateTime<Utc>,
    pub paused_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
}

impl DestinationRow {
    /// Whether deliveries may be sent to it now: neither paused nor disabled.
    pub fn sending(&self) -> bool {
        self.paused_at.is_none() && self.disabled_at.is_none()
    }
}

/// A destination to add.
#[derive(Debug, Clone)]
pub struct NewDestination<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub filter: &'a str,
    pub rate_per_second: i64,
    pub max_in_flight: i64,
}

/// Adds a destination with its first secret, in one transaction: its id, or None when one of
/// that name exists (nothing is changed). Its cursor starts now: it takes events from here on.
pub async fn create(db: &Db, d: &NewDestination<'_>, secret: &str, now: DateTime<Utc>) -> StoreResult<Option<i64>> {
    const DESTINATION: &str = "INSERT INTO forward_destinations (name, url, filter, rate_per_second, max_in_flight, \
         created_at, fanned_to) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (name) DO NOTHING RETURNING id";
    const SECRET: &str =
        "INSERT INTO forward_destination_secrets (destination_id, secret, added_at) VALUES ($1, $2, $3)";
    let mut tx = db.begin().await?;
    let id = on!(tx.conn(), |c| sqlx::query_scalar::<_, i64>(DESTINATION)
        .bind(d.name)
        .bind(d.url)
        .bind(d.filter)
        .bind(d.rate_per_second)
        .bind(d.max_in_flight)
        .bind(now)
        .fetch_optional(c)
        .await?);
    let Some(id) = id else { return Ok(None) };
    on!(tx.conn(), |c| {
        sqlx::query(SECRET).bind(id).bind(secret).bind(now).execute(c).await?;
    });
    tx.commit().await?;
    Ok(Some(id))
}

/// The destination of that name.
pub async fn by_name(db: &Db, name: &str) -> StoreResult<Option<DestinationRow>> {
    const SQL: &str =
        "SELECT id, name, url, filter, rate_per_second, max_in_flight, created_at, fanned_to, paused_at, \
         disabled_at, disabled_reason FROM forward_destinations WHERE name = $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, DestinationRow>(SQL).bind(name).fetch_optional(c).await?))
}

/// The destination with that id.
pub async fn get(db: &Db, id: i64) -> StoreResult<Option<DestinationRow>> {
    const SQL: &str =
        "SELECT id, name, url, filter, rate_per_second, max_in_flight, created_at, fanned_to, paused_at, \
         disabled_at, disabled_reason FROM forward_destinations WHERE id = $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, DestinationRow>(SQL).bind(id).fetch_optional(c).await?))
}

/// Every destination, by name.
pub async fn list(db: &Db) -> StoreResult<Vec<DestinationRow>> {
    const SQL: &str =
        "SELECT id, name, url, filter, rate_per_second, max_in_flight, created_at, fanned_to, paused_at, \
         disabled_at, disabled_reason FROM forward_destinations ORDER BY name";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, DestinationRow>(SQL).fetch_all(c).await?))
}

/// The secrets of destination `id` still active at `now`, newest first: a delivery is signed
/// with each.
pub async fn active_secrets(db: &Db, id: i64, now: DateTime<Utc>) -> StoreResult<Vec<String>> {
    const SQL: &str = "SELECT secret FROM forward_destination_secrets \
         WHERE destination_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY added_at DESC, id DESC";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, String>(SQL).bind(id).bind(now).fetch_all(c).await?))
}

/// Rotates: every active secret without an earlier end gets `old_until` as its end, and
/// `secret` is added, in one transaction, so for the overlap deliveries carry both signatures.
pub async fn rotate(db: &Db, id: i64, secret: &str, now: DateTime<Utc>, old_until: DateTime<Utc>) -> StoreResult<()> {
    const EXPIRE: &str = "UPDATE forward_destination_secrets SET expires_at = $2 \
         WHERE destination_id = $1 AND (expires_at IS NULL OR expires_at > $2)";
    const ADD: &str = "INSERT INTO forward_destination_secrets (destination_id, secret, added_at) VALUES ($1, $2, $3)";
    let mut tx = db.begin().await?;
    on!(tx.conn(), |c| {
        sqlx::query(EXPIRE).bind(id).bind(old_until).execute(c).await?;
    });
    on!(tx.conn(), |c| {
        sqlx::query(ADD).bind(id).bind(secret).bind(now).execute(c).await?;
    });
    tx.commit().await
}

/// Pauses (`Some(now)`) or resumes (`None`) a destination by name; false when there is none.
pub async fn set_paused(db: &Db, name: &str, paused_at: Option<DateTime<Utc>>) -> StoreResult<bool> {
    const SQL: &str = "UPDATE forward_destinations SET paused_at = $2 WHERE name = $1";
    on!(db.writer(), |c| Ok(sqlx::query(SQL).bind(name).bind(paused_at).execute(c).await?.rows_affected() == 1))
}

/// Disables a destination with the reason (its receiver answered 410 Gone), unless it is
/// disabled already (the first reason is kept).
pub async fn disable(db: &Db, id: i64, reason: &str, now: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "UPDATE forward_destinations SET disabled_at = $2, disabled_reason = $3 \
         WHERE id = $1 AND disabled_at IS NULL";
    on!(db.writer(), |c| {
        sqlx::query(SQL).bind(id).bind(now).bind(reason).execute(c).await?;
    });
    Ok(())
}

/// Enables a disabled destination by name; false when there is none.
pub async fn enable(db: &Db, name: &str) -> StoreResult<bool> {
    const SQL: &str = "UPDATE forward_destinations SET disabled_at = NULL, disabled_reason = NULL WHERE name = $1";
    on!(db.writer(), |c| Ok(sqlx::query(SQL).bind(name).execute(c).await?.rows_affected() == 1))
}

/// Moves the fan-out's cursor forward to `to` (never back: two processes fanning out at once
/// may finish in either order).
pub async fn advance_cursor(db: &Db, id: i64, to: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "UPDATE forward_destinations SET fanned_to = $2 WHERE id = $1 AND fanned_to < $2";
    on!(db.writer(), |c| {
        sqlx::query(SQL).bind(id).bind(to).execute(c).await?;
    });
    Ok(())
}
