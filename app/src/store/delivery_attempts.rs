//! `delivery_attempts`: every attempt to deliver a forwarded event, kept when the delivery is
//! replayed: when, what was answered (or why nothing was), how long it took, the answer's head.
use super::{on, Db, StoreResult, Tx};
use chrono::{DateTime, Utc};

/// An attempt to log.
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    pub delivery_id: i64,
    pub attempted_at: DateTime<Utc>,
    pub http_status: Option<u16>,
    pub error: Option<&'a str>,
    pub latency_ms: i64,
    pub answer: &'a str,
}

/// A logged attempt.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct AttemptRow {
    pub id: i64,
    pub delivery_id: i64,
    pub attempted_at: DateTime<Utc>,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    pub latency_ms: i64,
    pub answer: String,
}

/// Logs an attempt in the caller's transaction, beside the delivery's new state.
pub async fn insert_in(tx: &mut Tx, a: &NewAttempt<'_>) -> StoreResult<()> {
    const SQL: &str =
        "INSERT INTO delivery_attempts (delivery_id, attempted_at, http_status, error, latency_ms, answer) \
         VALUES ($1, $2, $3, $4, $5, $6)";
    on!(tx.conn(), |c| {
        sqlx::query(SQL)
            .bind(a.delivery_id)
            .bind(a.attempted_at)
            .bind(a.http_status.map(i64::from))
            .bind(a.error)
            .bind(a.latency_ms.max(0))
            .bind(a.answer)
            .execute(c)
            .await?;
    });
    Ok(())
}

/// A delivery's attempts, oldest first.
pub async fn for_delivery(db: &Db, delivery_id: i64) -> StoreResult<Vec<AttemptRow>> {
    const SQL: &str = "SELECT id, delivery_id, attempted_at, http_status, error, latency_ms, answer \
         FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempted_at, id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, AttemptRow>(SQL).bind(delivery_id).fetch_all(c).await?))
}
