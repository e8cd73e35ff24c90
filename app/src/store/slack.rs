//! `slack_summaries`: one row per day whose summary was (or is being) sent. The row is the
//! once-a-day guarantee: whoever inserts it (or takes over a failed or abandoned one with a
//! conditional UPDATE) sends, everyone else does nothing.
use super::{on, Db, StoreResult};
use chrono::{DateTime, NaiveDate, Utc};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct SummaryRow {
    pub day: NaiveDate,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Claims `day` for sending until `lease_until`; the attempt number when this caller is the one
/// to send, None when the day is sent, being sent by someone else, not due for a retry, or
/// given up after `max_attempts`.
pub async fn claim(
    db: &Db,
    day: NaiveDate,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    max_attempts: i64,
) -> StoreResult<Option<i64>> {
    const INSERT: &str = "INSERT INTO slack_summaries (day, status, attempts, lease_until, next_attempt_at) \
         VALUES ($1, 'sending', 1, $2, $3) ON CONFLICT (day) DO NOTHING";
    // A failed send whose retry is due, or a send whose process died (its lease ran out).
    const TAKE_OVER: &str = "UPDATE slack_summaries SET status = 'sending', attempts = attempts + 1, lease_until = $2 \
         WHERE day = $1 AND attempts < $4 AND ((status = 'failed' AND next_attempt_at <= $3) \
            OR (status = 'sending' AND lease_until < $3)) RETURNING attempts";
    let inserted = on!(db.writer(), |c| sqlx::query(INSERT)
        .bind(day)
        .bind(lease_until)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    if inserted == 1 {
        return Ok(Some(1));
    }
    on!(db.writer(), |c| Ok(sqlx::query_scalar::<_, i64>(TAKE_OVER)
        .bind(day)
        .bind(lease_until)
        .bind(now)
        .bind(max_attempts)
        .fetch_optional(c)
        .await?))
}

pub async fn sent(db: &Db, day: NaiveDate, now: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "UPDATE slack_summaries SET status = 'sent', sent_at = $2, last_error = NULL \
        WHERE day = $1 AND status = 'sending'";
    on!(db.writer(), |c| {
        sqlx::query(SQL).bind(day).bind(now).execute(c).await?;
    });
    Ok(())
}

pub async fn failed(db: &Db, day: NaiveDate, error: &str, next_attempt_at: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "UPDATE slack_summaries SET status = 'failed', last_error = $2, next_attempt_at = $3 \
         WHERE day = $1 AND status = 'sending'";
    on!(db.writer(), |c| {
        sqlx::query(SQL).bind(day).bind(error).bind(next_attempt_at).execute(c).await?;
    });
    Ok(())
}

/// The most recent day's row: what the admin page says about the summary.
pub async fn latest(db: &Db) -> StoreResult<Option<SummaryRow>> {
    const SQL: &str = "SELECT day, status, attempts, next_attempt_at, last_error, sent_at FROM slack_summaries \
        ORDER BY day DESC LIMIT 1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, SummaryRow>(SQL).fetch_optional(c).await?))
}
