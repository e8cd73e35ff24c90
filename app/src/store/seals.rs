//! `event_seals`: each closed hour of received events, sealed with a digest chained to the seal
//! before it (see `services::seals` for how the digest is made). Append-only.
use super::{on, Db, StoreResult};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Seal {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub event_count: i64,
    pub digest: String,
    pub previous: Option<String>,
    pub chained: String,
    pub sealed_at: DateTime<Utc>,
}

/// The latest seal.
pub async fn last(db: &Db) -> StoreResult<Option<Seal>> {
    const SQL: &str = "SELECT period_start, period_end, event_count, digest, previous, chained, sealed_at \
        FROM event_seals ORDER BY period_start DESC LIMIT 1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Seal>(SQL).fetch_optional(c).await?))
}

/// Seals from `since` on (all when None), oldest first.
pub async fn since(db: &Db, since: Option<DateTime<Utc>>) -> StoreResult<Vec<Seal>> {
    const SQL: &str = "SELECT period_start, period_end, event_count, digest, previous, chained, sealed_at \
        FROM event_seals WHERE ($1 IS NULL OR period_end > $1) ORDER BY period_start";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Seal>(SQL).bind(since).fetch_all(c).await?))
}

/// The seal whose period holds `received_at`, if that period is sealed.
pub async fn covering(db: &Db, received_at: DateTime<Utc>) -> StoreResult<Option<Seal>> {
    const SQL: &str = "SELECT period_start, period_end, event_count, digest, previous, chained, sealed_at \
        FROM event_seals WHERE period_start <= $1 AND period_end > $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Seal>(SQL).bind(received_at).fetch_optional(c).await?))
}

/// Writes a seal; false when the period was sealed already (by another process: the same
/// events give the same digest, so either row is the truth).
pub async fn insert(db: &Db, s: &Seal) -> StoreResult<bool> {
    const SQL: &str = "INSERT INTO event_seals \
         (period_start, period_end, event_count, digest, previous, chained, sealed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (period_start) DO NOTHING";
    let inserted = on!(db.writer(), |c| sqlx::query(SQL)
        .bind(s.period_start)
        .bind(s.period_end)
        .bind(s.event_count)
        .bind(&s.digest)
        .bind(&s.previous)
        .bind(&s.chained)
        .bind(s.sealed_at)
        .execute(c)
        .await?
        .rows_affected());
    Ok(inserted == 1)
}

/// When the first event was received (where sealing starts).
pub async fn first_event_at(db: &Db) -> StoreResult<Option<DateTime<Utc>>> {
    const SQL: &str = "SELECT MIN(received_at) FROM (SELECT MIN(received_at) AS received_at FROM stripe_events \
         UNION ALL SELECT MIN(received_at) FROM gateway_events) AS firsts";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, Option<DateTime<Utc>>>(SQL).fetch_one(c).await?))
}

/// What a seal covers of one event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedFields {
    pub event_id: String,
    pub event_type: String,
    pub received_at: DateTime<Utc>,
    pub payload: Vec<u8>,
}

/// Feeds every event received in `[start, end)` to `each`, in the seal's fixed order
/// (received_at, then event id), streamed: one row in memory at a time. The gateway's other
/// sources are sealed with Stripe's, each event under `{source}:{its id}` (a Stripe id never
/// holds a colon, so the two never meet); hours sealed before the gateway existed hold none of
/// them and keep their digests.
pub async fn for_each_in_period(
    db: &Db,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    each: &mut (dyn FnMut(SealedFields) + Send),
) -> StoreResult<()> {
    const SQL: &str = "SELECT event_id, event_type, received_at, payload FROM ( \
           SELECT event_id, event_type, received_at, payload FROM stripe_events \
             WHERE received_at >= $1 AND received_at < $2 \
           UNION ALL \
           SELECT source || ':' || event_id, COALESCE(event_type, ''), received_at, payload FROM gateway_events \
             WHERE received_at >= $1 AND received_at < $2) AS sealed \
         ORDER BY received_at, event_id";
    on!(db.reader(), |c| {
        let mut rows = sqlx::query_as::<_, SealedFields>(SQL).bind(start).bind(end).fetch(c);
        while let Some(row) = rows.try_next().await? {
            each(row);
        }
    });
    Ok(())
}
