//! `stripe_events` (the evidence, append-only) and `stripe_event_processing` (what we did with
//! it). An event row and its processing row are written together, so every stored event is
//! either finished or visibly pending.
use super::{read_pool, write_pool, write_tx, Db, StoreResult};
use chrono::{DateTime, Utc};

/// Binds a `NewEvent` to `INSERT_EVENT`'s $1..$9 (a macro: the query type differs per dialect).
macro_rules! bind_event {
    ($q:expr, $e:expr) => {
        $q.bind($e.event_id)
            .bind($e.event_type)
            .bind($e.livemode)
            .bind($e.api_version)
            .bind($e.stripe_created)
            .bind($e.payload)
            .bind($e.signature_header)
            .bind($e.request_headers)
            .bind($e.received_at)
    };
}

pub struct NewEvent<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub livemode: bool,
    pub api_version: Option<&'a str>,
    pub stripe_created: i64,
    /// The raw request body, byte for byte.
    pub payload: &'a [u8],
    pub signature_header: &'a str,
    /// JSON object of the other request headers worth keeping.
    pub request_headers: &'a str,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// First delivery: the event and a pending processing row now exist.
    New,
    /// We already hold this event id; nothing was written.
    Duplicate,
}

/// Stores an authentic event with a pending processing row whose lease (`lease_until`) belongs
/// to the caller, who is about to process it. Duplicate ids are stopped by the primary key with
/// insert-or-nothing, not by a look-up that could race.
pub async fn store(db: &Db, e: &NewEvent<'_>, lease_until: DateTime<Utc>) -> StoreResult<Stored> {
    const INSERT_EVENT: &str = "INSERT INTO stripe_events (event_id, event_type, livemode, api_version, \
        stripe_created, payload, signature_header, request_headers, received_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING";
    let inserted = match db {
        // PostgreSQL: one statement, one round trip; the processing row is inserted only if the
        // event row was (data-modifying CTEs run in one snapshot and commit together).
        Db::Postgres(pool) => {
            let sql = format!(
                "WITH ev AS ({INSERT_EVENT} RETURNING event_id) \
                 INSERT INTO stripe_event_processing (event_id, status, attempts, next_attempt_at) \
                 SELECT event_id, 'pending', 0, $10 FROM ev"
            );
            bind_event!(sqlx::query(&sql), e).bind(lease_until).execute(pool).await?.rows_affected()
        }
        // SQLite has no data-modifying CTEs; two statements in one local transaction.
        Db::Sqlite(s) => {
            let mut tx = s.writer.begin_with("BEGIN IMMEDIATE").await?;
            let n = bind_event!(sqlx::query(INSERT_EVENT), e).execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                sqlx::query(
                    "INSERT INTO stripe_event_processing (event_id, status, attempts, next_attempt_at) \
                     VALUES ($1, 'pending', 0, $2)",
                )
                .bind(e.event_id)
                .bind(lease_until)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            n
        }
    };
    Ok(if inserted == 1 { Stored::New } else { Stored::Duplicate })
}


/// An event with its processing state, for lists and the CLI.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct EventSummary {
    pub event_id: String,
    pub event_type: String,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub received_at: DateTime<Utc>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub outcome: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

const SUMMARY: &str = "SELECT e.event_id, e.event_type, e.livemode, e.api_version, e.received_at, \
    p.status, p.attempts, p.next_attempt_at, p.last_error, p.outcome, p.processed_at \
    FROM stripe_events e JOIN stripe_event_processing p ON p.event_id = e.event_id";

/// Most recent first; `status` filters when given.
pub async fn list(db: &Db, status: Option<&str>, limit: i64) -> StoreResult<Vec<EventSummary>> {
    let sql = format!("{SUMMARY} WHERE ($1 IS NULL OR p.status = $1) ORDER BY e.received_at DESC, e.event_id DESC LIMIT $2");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, EventSummary>(&sql).bind(status).bind(limit).fetch_all(pool).await?))
}

pub async fn summary(db: &Db, event_id: &str) -> StoreResult<Option<EventSummary>> {
    let sql = format!("{SUMMARY} WHERE e.event_id = $1");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, EventSummary>(&sql).bind(event_id).fetch_optional(pool).await?))
}

/// The evidence as received.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RawEvidence {
    pub payload: Vec<u8>,
    pub signature_header: String,
    pub request_headers: String,
}

pub async fn evidence(db: &Db, event_id: &str) -> StoreResult<Option<RawEvidence>> {
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, RawEvidence>(
        "SELECT payload, signature_header, request_headers FROM stripe_events WHERE event_id = $1"
    )
    .bind(event_id)
    .fetch_optional(pool)
    .await?))
}

/// Claims up to `limit` pending events that are due, taking a lease on each until
/// `lease_until`. `include_fresh` also claims events never attempted whose lease has not run
/// out: at start-up those were left by a process that stopped between storing and processing.
/// The outer WHERE repeats the conditions so that PostgreSQL re-checks them on a row another
/// worker changed meanwhile; two workers never hold the same lease.
pub async fn claim_due(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
    include_fresh: bool,
) -> StoreResult<Vec<String>> {
    const DUE: &str = "status = 'pending' AND (next_attempt_at <= $1 OR (attempts = 0 AND $4))";
    let sql = format!(
        "UPDATE stripe_event_processing SET next_attempt_at = $2 WHERE {DUE} AND event_id IN \
         (SELECT event_id FROM stripe_event_processing WHERE {DUE} ORDER BY next_attempt_at LIMIT $3) \
         RETURNING event_id"
    );
    write_pool!(db, |pool| Ok(sqlx::query_scalar::<_, String>(&sql)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .bind(include_fresh)
        .fetch_all(pool)
        .await?))
}

/// Finishes a pending event. Only a pending row changes, so of two processors racing on one
/// event exactly one finishes it; the other sees `false` and must roll back its work.
pub(crate) const FINISH_SQL: &str = "UPDATE stripe_event_processing SET status = $2, attempts = attempts + 1, \
    processed_at = $3, last_error = $4, outcome = $5 WHERE event_id = $1 AND status = 'pending'";

/// Records a failed attempt that may succeed later; the event stays pending until `next_at`.
pub async fn retry_later(db: &Db, event_id: &str, error: &str, next_at: DateTime<Utc>) -> StoreResult<bool> {
    write_pool!(db, |pool| Ok(sqlx::query(
        "UPDATE stripe_event_processing SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 \
         WHERE event_id = $1 AND status = 'pending'"
    )
    .bind(event_id)
    .bind(next_at)
    .bind(error)
    .execute(pool)
    .await?
    .rows_affected()
        == 1))
}

/// Marks an event for processing again now, whatever its state (an operator's replay). Safe:
/// crediting is insert-or-nothing on the payment id.
pub async fn reset_for_replay(db: &Db, event_id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
    write_tx!(db, |tx| {
        let n = sqlx::query(
            "UPDATE stripe_event_processing SET status = 'pending', next_attempt_at = $2, processed_at = NULL, \
             outcome = 'replay requested' WHERE event_id = $1",
        )
        .bind(event_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    })
}

/// Counts by status, for `events list` and the admin pages.
pub async fn counts(db: &Db) -> StoreResult<Vec<(String, i64)>> {
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, (String, i64)>(
        "SELECT status, CAST(COUNT(*) AS BIGINT) FROM stripe_event_processing GROUP BY status ORDER BY status"
    )
    .fetch_all(pool)
    .await?))
}
