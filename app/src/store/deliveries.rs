//! `deliveries`: one row per (destination, stored event) to forward, made by the fan-out
//! (insert-or-nothing), claimed by a sender with a lease (a conditional UPDATE), settled with
//! its attempt logged in the same transaction.
use super::delivery_attempts::{self, NewAttempt};
use super::{on, Db, StoreResult};
use chrono::{DateTime, Utc};

/// A stored event the fan-out may deliver: Stripe's (`source` = `stripe`) or a gateway source's.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Candidate {
    pub source: String,
    pub event_id: String,
    pub event_type: Option<String>,
    pub received_at: DateTime<Utc>,
    pub payload: Vec<u8>,
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub destination_id: i64,
    pub source: String,
    pub event_id: String,
    pub event_type: Option<String>,
    pub received_at: DateTime<Utc>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A delivery a sender claimed: what to send, and how many attempts came before.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub source: String,
    pub event_id: String,
    pub attempts: i64,
}

/// Stored events received in (`after`, `up_to`] (no upper end when None) that destination `id`
/// has no delivery for, oldest first, at most `limit`: Stripe's when `stripe`, the gateway's when
/// `gateway`. The caller's filter decides which of them to deliver.
pub async fn candidates(
    db: &Db,
    id: i64,
    (stripe, gateway): (bool, bool),
    after: DateTime<Utc>,
    up_to: Option<DateTime<Utc>>,
    limit: i64,
) -> StoreResult<Vec<Candidate>> {
    // Each table's branch takes its own first `limit` in its index's order, and only those are
    // merged and sorted (sorted whole, the union would read and sort every event after the
    // cursor, payload included, to return the first few). Each branch's order is the outer
    // order within that table (`source` is constant in the first), so the outer first `limit`
    // are among them.
    //
    // PostgreSQL: "has no delivery yet" is a LATERAL probe with LIMIT 1, one index lookup per
    // event whatever the statistics say. As NOT EXISTS, the planner, holding the statistics of
    // a `deliveries` still empty when last analysed (a new destination's table fills by
    // thousands between autovacuum's looks), chose to compare every event with every delivery:
    // 500 × 16,000 comparisons, 0.9 s a batch, and a backlog of 20,000 went out at 350/s.
    const PG: &str = "SELECT source, event_id, event_type, received_at, payload FROM ( \
           SELECT * FROM (SELECT 'stripe' AS source, e.event_id, e.event_type, e.received_at, e.payload \
             FROM stripe_events e LEFT JOIN LATERAL (SELECT 1 AS made FROM deliveries d \
               WHERE d.destination_id = $1 AND d.source = 'stripe' AND d.event_id = e.event_id LIMIT 1) AS d ON true \
            WHERE $2 AND e.received_at > $4 AND ($5 IS NULL OR e.received_at <= $5) AND d.made IS NULL \
            ORDER BY e.received_at, e.event_id LIMIT $6) AS s \
           UNION ALL \
           SELECT * FROM (SELECT g.source, g.event_id, g.event_type, g.received_at, g.payload \
             FROM gateway_events g LEFT JOIN LATERAL (SELECT 1 AS made FROM deliveries d \
               WHERE d.destination_id = $1 AND d.source = g.source AND d.event_id = g.event_id LIMIT 1) AS d ON true \
            WHERE $3 AND g.received_at > $4 AND ($5 IS NULL OR g.received_at <= $5) AND d.made IS NULL \
            ORDER BY g.received_at, g.source, g.event_id LIMIT $6) AS g \
         ) AS c ORDER BY received_at, source, event_id LIMIT $6";
    // SQLite runs a correlated NOT EXISTS as a lookup per event.
    const SQLITE: &str = "SELECT source, event_id, event_type, received_at, payload FROM ( \
           SELECT * FROM (SELECT 'stripe' AS source, e.event_id, e.event_type, e.received_at, e.payload \
             FROM stripe_events e \
            WHERE $2 AND e.received_at > $4 AND ($5 IS NULL OR e.received_at <= $5) AND NOT EXISTS \
              (SELECT 1 FROM deliveries d WHERE d.destination_id = $1 AND d.source = 'stripe' AND d.event_id = e.event_id) \
            ORDER BY e.received_at, e.event_id LIMIT $6) AS s \
           UNION ALL \
           SELECT * FROM (SELECT g.source, g.event_id, g.event_type, g.received_at, g.payload FROM gateway_events g \
            WHERE $3 AND g.received_at > $4 AND ($5 IS NULL OR g.received_at <= $5) AND NOT EXISTS \
              (SELECT 1 FROM deliveries d WHERE d.destination_id = $1 AND d.source = g.source AND d.event_id = g.event_id) \
            ORDER BY g.received_at, g.source, g.event_id LIMIT $6) AS g \
         ) AS c ORDER BY received_at, source, event_id LIMIT $6";
    let sql = match db {
        Db::Postgres(_) => PG,
        Db::Sqlite(_) => SQLITE,
    };
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Candidate>(sql)
        .bind(id)
        .bind(stripe)
        .bind(gateway)
        .bind(after)
        .bind(up_to)
        .bind(limit)
        .fetch_all(c)
        .await?))
}

/// Makes a delivery of each event to destination `id`, due at `now`, in one transaction; each
/// insert-or-nothing on (destination, source, event id), so a fan-out racing another (or
/// looking again at what it saw) makes no second row. How many were made.
pub async fn insert_many(db: &Db, id: i64, events: &[&Candidate], now: DateTime<Utc>) -> StoreResult<u64> {
    // PostgreSQL: one statement for the batch (a round trip, not one per row).
    const PG: &str = "INSERT INTO deliveries (destination_id, source, event_id, event_type, received_at, \
         next_attempt_at, created_at) \
         SELECT $1, s, e, t, r, $6, $6 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS u(s, e, t, r) \
         ON CONFLICT (destination_id, source, event_id) DO NOTHING";
    // SQLite: a statement per row in one transaction (in process, so no round trips to save).
    const SQLITE: &str = "INSERT INTO deliveries (destination_id, source, event_id, event_type, received_at, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
         ON CONFLICT (destination_id, source, event_id) DO NOTHING";
    if events.is_empty() {
        return Ok(0);
    }
    match db {
        Db::Postgres(pool) => {
            let column = |f: fn(&Candidate) -> Option<String>| events.iter().map(|e| f(e)).collect::<Vec<_>>();
            let received: Vec<DateTime<Utc>> = events.iter().map(|e| e.received_at).collect();
            Ok(sqlx::query(PG)
                .bind(id)
                .bind(column(|e| Some(e.source.clone())))
                .bind(column(|e| Some(e.event_id.clone())))
                .bind(column(|e| e.event_type.clone()))
                .bind(received)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected())
        }
        Db::Sqlite(_) => {
            let mut tx = db.begin().await?;
            let mut made = 0;
            for e in events {
                made += on!(tx.conn(), |c| sqlx::query(SQLITE)
                    .bind(id)
                    .bind(&e.source)
                    .bind(&e.event_id)
                    .bind(&e.event_type)
                    .bind(e.received_at)
                    .bind(now)
                    .execute(c)
                    .await?
                    .rows_affected());
            }
            tx.commit().await?;
            Ok(made)
        }
    }
}

/// Claims up to `limit` of destination `id`'s due deliveries for `claim` until `lease_until`:
/// their `next_attempt_at` moves to the lease's end, so nobody else takes them meanwhile, and
/// a sender that dies leaves them due again when it runs out. The outer WHERE repeats the
/// conditions so that PostgreSQL re-checks them on a row another sender claimed meanwhile.
pub async fn claim_due(
    db: &Db,
    id: i64,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    claim: &str,
    limit: i64,
) -> StoreResult<Vec<Claimed>> {
    // The oldest due first; the outer conditions are checked again on the row as it is when
    // updated, so of two claimers racing for a row one gets it (the other's claim is the
    // smaller for it). PostgreSQL: the ids are picked first (an array, skipping rows another
    // claimer holds) and the rows then updated by primary key. As `id IN (subquery)` the
    // planner, holding the statistics of a `deliveries` still empty when last analysed, joined
    // every due row with every picked id: 0.12 s a claim at 19,000 due.
    const PG: &str = "UPDATE deliveries SET next_attempt_at = $3, claim = $4 \
         WHERE id = ANY(ARRAY(SELECT id FROM deliveries \
           WHERE status = 'pending' AND destination_id = $1 AND next_attempt_at <= $2 \
           ORDER BY next_attempt_at, id LIMIT $5 FOR UPDATE SKIP LOCKED)) \
           AND status = 'pending' AND next_attempt_at <= $2 \
         RETURNING id, source, event_id, attempts";
    const SQLITE: &str = "UPDATE deliveries SET next_attempt_at = $3, claim = $4 \
         WHERE status = 'pending' AND destination_id = $1 AND next_attempt_at <= $2 AND id IN \
         (SELECT id FROM deliveries WHERE status = 'pending' AND destination_id = $1 AND next_attempt_at <= $2 \
           ORDER BY next_attempt_at, id LIMIT $5) \
         RETURNING id, source, event_id, attempts";
    let sql = match db {
        Db::Postgres(_) => PG,
        Db::Sqlite(_) => SQLITE,
    };
    // Relaxed: a claim lost in a crash leaves the delivery due, and it is sent (again).
    let mut tx = db.begin_relaxed().await?;
    let claimed = on!(tx.conn(), |c| sqlx::query_as::<_, Claimed>(sql)
        .bind(id)
        .bind(now)
        .bind(lease_until)
        .bind(claim)
        .bind(limit)
        .fetch_all(c)
        .await?);
    tx.commit().await?;
    Ok(claimed)
}

/// When destination `id`'s next pending delivery is due (a claimed one: when its lease ends).
pub async fn next_due(db: &Db, id: i64) -> StoreResult<Option<DateTime<Utc>>> {
    const SQL: &str = "SELECT MIN(next_attempt_at) FROM deliveries WHERE destination_id = $1 AND status = 'pending'";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, Option<DateTime<Utc>>>(SQL).bind(id).fetch_one(c).await?))
}

/// A delivery's state after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Delivered,
    /// Still pending, next tried at this time.
    RetryAt(DateTime<Utc>),
    Dead,
}

/// Logs attempts and settles their deliveries, in one transaction (a sender writes what its
/// sends came to together: one commit for many, so forwarding leaves the database's writer to
/// intake as much as it can). A delivery changes only while the attempt's `claim` still holds
/// it (a replay or a taken-over lease clears it): false for it then, and only the attempt is
/// logged, since it did happen. One bool per attempt, in order.
pub async fn settle_many(db: &Db, results: &[(&str, NewAttempt<'_>, Settle)]) -> StoreResult<Vec<bool>> {
    const SQL: &str = "UPDATE deliveries SET status = $3, attempts = attempts + 1, \
         next_attempt_at = COALESCE($4, next_attempt_at), delivered_at = $5, claim = NULL, last_error = $6 \
         WHERE id = $1 AND claim = $2 AND status = 'pending'";
    // Relaxed: results lost in a crash leave their deliveries claimed until the lease ends, and
    // they are sent again (at least once; the receiver deduplicates by webhook-id).
    let mut tx = db.begin_relaxed().await?;
    let mut changed = Vec::with_capacity(results.len());
    for (claim, attempt, to) in results {
        let (status, next, delivered_at) = match to {
            Settle::Delivered => ("delivered", None, Some(attempt.attempted_at)),
            Settle::RetryAt(at) => ("pending", Some(*at), None),
            Settle::Dead => ("dead", None, None),
        };
        let error = match (attempt.error, attempt.http_status) {
            (Some(e), _) => Some(e.to_string()),
            (None, Some(s)) if !(200..300).contains(&s) => Some(format!("answered {s}")),
            _ => None,
        };
        let n = on!(tx.conn(), |c| sqlx::query(SQL)
            .bind(attempt.delivery_id)
            .bind(*claim)
            .bind(status)
            .bind(next)
            .bind(delivered_at)
            .bind(&error)
            .execute(c)
            .await?
            .rows_affected());
        delivery_attempts::insert_in(&mut tx, attempt).await?;
        changed.push(n == 1);
    }
    tx.commit().await?;
    Ok(changed)
}

/// Destination `id`'s deliveries, newest event first, at most `limit`: of one status when given
/// (`failing`: pending after at least one failed attempt), received in [`from`, `to`).
pub async fn list(
    db: &Db,
    id: i64,
    status: Option<&str>,
    (from, to): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    limit: i64,
) -> StoreResult<Vec<DeliveryRow>> {
    const SQL: &str = "SELECT id, destination_id, source, event_id, event_type, received_at, status, attempts, \
         next_attempt_at, last_error, created_at, delivered_at FROM deliveries \
         WHERE destination_id = $1 \
           AND ($2 IS NULL OR status = $2 OR ($2 = 'failing' AND status = 'pending' AND attempts > 0)) \
           AND ($3 IS NULL OR received_at >= $3) AND ($4 IS NULL OR received_at < $4) \
         ORDER BY received_at DESC, id DESC LIMIT $5";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, DeliveryRow>(SQL)
        .bind(id)
        .bind(status)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(c)
        .await?))
}

/// One delivery.
pub async fn get(db: &Db, id: i64) -> StoreResult<Option<DeliveryRow>> {
    const SQL: &str = "SELECT id, destination_id, source, event_id, event_type, received_at, status, attempts, \
         next_attempt_at, last_error, created_at, delivered_at FROM deliveries WHERE id = $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, DeliveryRow>(SQL).bind(id).fetch_optional(c).await?))
}

/// How many deliveries each destination has in each status: (destination id, status, count).
pub async fn counts(db: &Db) -> StoreResult<Vec<(i64, String, i64)>> {
    const SQL: &str = "SELECT destination_id, status, COUNT(*) FROM deliveries \
         GROUP BY destination_id, status ORDER BY destination_id, status";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, (i64, String, i64)>(SQL).fetch_all(c).await?))
}

/// Sends delivery `id` again from the start of the schedule: due now, attempts counted from 0
/// (the log keeps the earlier ones), any claim dropped. False when there is none.
pub async fn replay(db: &Db, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
    const SQL: &str = "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2, claim = NULL, \
         delivered_at = NULL WHERE id = $1";
    on!(db.writer(), |c| Ok(sqlx::query(SQL).bind(id).bind(now).execute(c).await?.rows_affected() == 1))
}

/// Replays every dead or failing (pending after a failed attempt) delivery of destination `id`
/// whose event was received in [`from`, `to`). How many.
pub async fn replay_failed(
    db: &Db,
    id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    const SQL: &str = "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $4, claim = NULL \
         WHERE destination_id = $1 AND received_at >= $2 AND received_at < $3 \
           AND (status = 'dead' OR (status = 'pending' AND attempts > 0))";
    on!(db.writer(), |c| Ok(sqlx::query(SQL).bind(id).bind(from).bind(to).bind(now).execute(c).await?.rows_affected()))
}
