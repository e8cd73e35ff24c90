//! `stripe_events` (the evidence, append-only) and `stripe_event_processing` (what we did with
//! it). An event row and its processing row are written together, so every stored event is
//! either finished or visibly pending.
use super::{on, Db, Dialect, StoreResult, Tx};
use chrono::{DateTime, Utc};

mod intake;
pub use intake::{store, store_batch, StoreJob, Stored};

/// An authentic event as received, ready to store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: String,
    pub event_type: String,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub stripe_created: i64,
    /// The raw request body, byte for byte.
    pub payload: Vec<u8>,
    pub signature_header: String,
    /// JSON object of the other request headers worth keeping.
    pub request_headers: String,
    pub received_at: DateTime<Utc>,
    /// SHA-256 of `payload` (hex), computed by whoever received it and stored beside it.
    pub payload_sha256: String,
}

impl NewEvent {
    /// The digest kept with a payload.
    pub fn digest(payload: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(payload))
    }
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

/// Most recent first; `status` filters when given.
pub async fn list(db: &Db, status: Option<&str>, limit: i64) -> StoreResult<Vec<EventSummary>> {
    const SQL: &str = "SELECT e.event_id, e.event_type, e.livemode, e.api_version, e.received_at, \
           p.status, p.attempts, p.next_attempt_at, p.last_error, p.outcome, p.processed_at \
         FROM stripe_events e JOIN stripe_event_processing p ON p.event_id = e.event_id \
         WHERE ($1 IS NULL OR p.status = $1) ORDER BY e.received_at DESC, e.event_id DESC LIMIT $2";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, EventSummary>(SQL).bind(status).bind(limit).fetch_all(c).await?))
}

pub async fn summary(db: &Db, event_id: &str) -> StoreResult<Option<EventSummary>> {
    const SQL: &str = "SELECT e.event_id, e.event_type, e.livemode, e.api_version, e.received_at, \
           p.status, p.attempts, p.next_attempt_at, p.last_error, p.outcome, p.processed_at \
         FROM stripe_events e JOIN stripe_event_processing p ON p.event_id = e.event_id WHERE e.event_id = $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, EventSummary>(SQL).bind(event_id).fetch_optional(c).await?))
}

/// The evidence as received.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RawEvidence {
    pub payload: Vec<u8>,
    pub signature_header: String,
    pub request_headers: String,
}

pub async fn evidence(db: &Db, event_id: &str) -> StoreResult<Option<RawEvidence>> {
    const SQL: &str = "SELECT payload, signature_header, request_headers FROM stripe_events WHERE event_id = $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, RawEvidence>(SQL).bind(event_id).fetch_optional(c).await?))
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
    const SQL: &str = "UPDATE stripe_event_processing SET next_attempt_at = $2 \
         WHERE status = 'pending' AND (next_attempt_at <= $1 OR (attempts = 0 AND $4)) AND event_id IN \
         (SELECT event_id FROM stripe_event_processing \
           WHERE status = 'pending' AND (next_attempt_at <= $1 OR (attempts = 0 AND $4)) \
           ORDER BY next_attempt_at LIMIT $3) \
         RETURNING event_id";
    on!(db.writer(), |c| Ok(sqlx::query_scalar::<_, String>(SQL)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .bind(include_fresh)
        .fetch_all(c)
        .await?))
}

/// When the oldest event still waiting to be processed was received (None: none waits).
pub async fn oldest_pending(db: &Db) -> StoreResult<Option<DateTime<Utc>>> {
    const SQL: &str = "SELECT MIN(e.received_at) FROM stripe_event_processing p \
         JOIN stripe_events e ON e.event_id = p.event_id WHERE p.status = 'pending'";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, Option<DateTime<Utc>>>(SQL).fetch_one(c).await?))
}

/// Finishes a pending event in the caller's transaction, beside the work it did. Only a
/// pending row changes, so of two processors racing on one event exactly one finishes it; the
/// other sees `false` and must roll its work back (drop its transaction uncommitted).
pub async fn finish(
    tx: &mut Tx,
    event_id: &str,
    status: &str,
    error: Option<&str>,
    outcome: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    const SQL: &str = "UPDATE stripe_event_processing SET status = $2, attempts = attempts + 1, \
        processed_at = $3, last_error = $4, outcome = $5 WHERE event_id = $1 AND status = 'pending'";
    let done = on!(tx.conn(), |c| sqlx::query(SQL)
        .bind(event_id)
        .bind(status)
        .bind(now)
        .bind(error)
        .bind(outcome)
        .execute(c)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// Records a failed attempt that may succeed later; the event stays pending until `next_at`.
pub async fn retry_later(db: &Db, event_id: &str, error: &str, next_at: DateTime<Utc>) -> StoreResult<bool> {
    const SQL: &str = "UPDATE stripe_event_processing SET attempts = attempts + 1, next_attempt_at = $2, \
         last_error = $3 WHERE event_id = $1 AND status = 'pending'";
    on!(db.writer(), |c| Ok(sqlx::query(SQL)
        .bind(event_id)
        .bind(next_at)
        .bind(error)
        .execute(c)
        .await?
        .rows_affected()
        == 1))
}

/// Marks an event for processing again now, whatever its state (an operator's replay). Safe:
/// crediting is insert-or-nothing on the payment id.
pub async fn reset_for_replay(db: &Db, event_id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
    const SQL: &str = "UPDATE stripe_event_processing SET status = 'pending', next_attempt_at = $2, \
         processed_at = NULL, outcome = 'replay requested' WHERE event_id = $1";
    on!(db.writer(), |c| Ok(sqlx::query(SQL).bind(event_id).bind(now).execute(c).await?.rows_affected() == 1))
}

/// Counts by status, for `events list` and the admin pages.
pub async fn counts(db: &Db) -> StoreResult<Vec<(String, i64)>> {
    const SQL: &str =
        "SELECT status, CAST(COUNT(*) AS BIGINT) FROM stripe_event_processing GROUP BY status ORDER BY status";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, (String, i64)>(SQL).fetch_all(c).await?))
}

/// The LIKE pattern of a Stripe id as a JSON string inside a payload; None for anything that is
/// not shaped like a Stripe id (ASCII letters, digits, underscores), which matches nothing.
fn mention_pattern(object_id: &str) -> Option<String> {
    (!object_id.is_empty() && object_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| format!("%\"{}\"%", object_id.replace('_', "\\_")))
}

/// Everything kept about one event: the bytes, how they reached us, what we did with them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub event_id: String,
    pub event_type: String,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub stripe_created: i64,
    pub payload: Vec<u8>,
    pub signature_header: String,
    pub request_headers: String,
    pub received_at: DateTime<Utc>,
    pub verified_by: String,
    pub payload_sha256: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub outcome: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

/// Every stored event whose payload names `object_id` (a PaymentIntent: its own events and
/// those of its charges, refunds, disputes and fraud warnings), oldest first.
pub async fn stored_mentioning(db: &Db, object_id: &str) -> StoreResult<Vec<StoredEvent>> {
    let Some(pattern) = mention_pattern(object_id) else { return Ok(vec![]) };
    // The payload is bytes, read as text differently in each dialect.
    const SQLITE: &str = "SELECT e.event_id, e.event_type, e.livemode, e.api_version, e.stripe_created, e.payload, \
           e.signature_header, e.request_headers, e.received_at, e.verified_by, e.payload_sha256, \
           p.status, p.attempts, p.last_error, p.outcome, p.processed_at \
         FROM stripe_events e JOIN stripe_event_processing p ON p.event_id = e.event_id \
         WHERE CAST(e.payload AS TEXT) LIKE $1 ESCAPE '\\' ORDER BY e.received_at, e.event_id";
    const POSTGRES: &str = "SELECT e.event_id, e.event_type, e.livemode, e.api_version, e.stripe_created, e.payload, \
           e.signature_header, e.request_headers, e.received_at, e.verified_by, e.payload_sha256, \
           p.status, p.attempts, p.last_error, p.outcome, p.processed_at \
         FROM stripe_events e JOIN stripe_event_processing p ON p.event_id = e.event_id \
         WHERE convert_from(e.payload, 'UTF8') LIKE $1 ESCAPE '\\' ORDER BY e.received_at, e.event_id";
    let sql = match db.sql_dialect() {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    };
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, StoredEvent>(sql).bind(pattern).fetch_all(c).await?))
}

/// Stores an event that reconciliation fetched from Stripe with our own authenticated API call
/// (Stripe reported it undelivered), marked `api_fetch` instead of `signature`, with a pending
/// processing row leased to the caller: from here it travels as a webhook delivery does.
pub async fn store_fetched(db: &Db, event: &NewEvent, lease_until: DateTime<Utc>) -> StoreResult<Stored> {
    const EVENT: &str = "INSERT INTO stripe_events (event_id, event_type, livemode, api_version, stripe_created, \
           payload, signature_header, request_headers, received_at, payload_sha256, verified_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'api_fetch') ON CONFLICT (event_id) DO NOTHING";
    const PROCESSING: &str = "INSERT INTO stripe_event_processing (event_id, status, attempts, next_attempt_at) \
         VALUES ($1, 'pending', 0, $2)";
    let mut tx = db.begin().await?;
    let inserted = on!(tx.conn(), |c| sqlx::query(EVENT)
        .bind(&event.event_id)
        .bind(&event.event_type)
        .bind(event.livemode)
        .bind(&event.api_version)
        .bind(event.stripe_created)
        .bind(&event.payload)
        .bind(&event.signature_header)
        .bind(&event.request_headers)
        .bind(event.received_at)
        .bind(&event.payload_sha256)
        .execute(c)
        .await?
        .rows_affected());
    if inserted == 0 {
        return Ok(Stored::Duplicate); // nothing written: the transaction is dropped
    }
    on!(tx.conn(), |c| {
        sqlx::query(PROCESSING).bind(&event.event_id).bind(lease_until).execute(c).await?;
    });
    tx.commit().await?;
    Ok(Stored::Pending)
}

/// The events about one payment, most recent first, at most `limit` (`about_payments` for one).
pub async fn about_payment(db: &Db, payment_id: &str, limit: i64) -> StoreResult<Vec<EventSummary>> {
    let mut found = about_payments(db, &[payment_id.to_string()], limit).await?;
    Ok(found.remove(payment_id).unwrap_or_default())
}

/// The events about each of `payment_ids` (PaymentIntents), in three queries whatever their number (a
/// contract's statement lists every attempt with its events): the indexer's look-back, the
/// indexed events of all the payments (at most `limit` each, newest first), and the few stored
/// since the look-back that the indexer has not reached, found by any payment's id in their
/// payload. Payment id → its events, most recent first.
pub async fn about_payments(
    db: &Db,
    payment_ids: &[String],
    limit: i64,
) -> StoreResult<std::collections::HashMap<String, Vec<EventSummary>>> {
    use std::collections::HashMap;
    let patterns: HashMap<String, &String> =
        payment_ids.iter().filter_map(|id| mention_pattern(id).map(|p| (p, id))).collect();
    let mut found: HashMap<String, Vec<EventSummary>> = HashMap::new();
    if patterns.is_empty() {
        return Ok(found);
    }
    let ids: Vec<&String> = patterns.values().copied().collect();
    let since = super::event_search::look_back(db).await?;
    for (about, event) in indexed_about(db, &ids, limit).await? {
        found.entry(about).or_default().push(event);
    }
    let pattern_list: Vec<&String> = patterns.keys().collect();
    for (pattern, event) in recent_about(db, since, &pattern_list).await? {
        if let Some(id) = patterns.get(&pattern) {
            found.entry((*id).clone()).or_default().push(event);
        }
    }
    for events in found.values_mut() {
        events.sort_by(|x, y| (y.received_at, &y.event_id).cmp(&(x.received_at, &x.event_id)));
        events.dedup_by(|x, y| x.event_id == y.event_id);
        events.truncate(limit as usize);
    }
    Ok(found)
}

/// The indexed events of each payment (its id in the search index's payment column, an index
/// seek each), at most `limit` per payment: (payment id, event).
async fn indexed_about(db: &Db, ids: &[&String], limit: i64) -> StoreResult<Vec<(String, EventSummary)>> {
    // The ids are passed as one JSON array (SQLite: json_each) or one array (PostgreSQL), so
    // the statement's text is the same whatever their number.
    const SQLITE: &str = "SELECT * FROM (SELECT s.payment_intent AS about, e.event_id, e.event_type, e.livemode, \
           e.api_version, e.received_at, p.status, p.attempts, p.next_attempt_at, p.last_error, p.outcome, \
           p.processed_at, ROW_NUMBER() OVER (PARTITION BY s.payment_intent \
             ORDER BY s.received_at DESC, s.event_id DESC) AS n \
         FROM event_search s JOIN stripe_events e ON e.event_id = s.event_id \
           JOIN stripe_event_processing p ON p.event_id = e.event_id \
         WHERE s.payment_intent IN (SELECT value FROM json_each($1))) x WHERE n <= $2";
    const POSTGRES: &str = "SELECT * FROM (SELECT s.payment_intent AS about, e.event_id, e.event_type, e.livemode, \
           e.api_version, e.received_at, p.status, p.attempts, p.next_attempt_at, p.last_error, p.outcome, \
           p.processed_at, ROW_NUMBER() OVER (PARTITION BY s.payment_intent \
             ORDER BY s.received_at DESC, s.event_id DESC) AS n \
         FROM event_search s JOIN stripe_events e ON e.event_id = s.event_id \
           JOIN stripe_event_processing p ON p.event_id = e.event_id \
         WHERE s.payment_intent = ANY($1)) x WHERE n <= $2";
    let rows: Vec<AboutRow> = match db.reader() {
        super::On::Sqlite(c) => {
            let json = serde_json::to_string(ids).expect("strings serialize");
            sqlx::query_as(SQLITE).bind(json).bind(limit).fetch_all(c).await?
        }
        super::On::Postgres(c) => sqlx::query_as(POSTGRES).bind(ids).bind(limit).fetch_all(c).await?,
    };
    Ok(rows.into_iter().map(AboutRow::split).collect())
}

/// Events stored since the indexer's look-back and not indexed yet whose payload mentions one of
/// `patterns` (`mention_pattern`s): (the pattern, event). A scan bounded by the received-time
/// index to those few minutes; without a look-back (nothing indexed yet), every unindexed event.
async fn recent_about(
    db: &Db,
    since: Option<DateTime<Utc>>,
    patterns: &[&String],
) -> StoreResult<Vec<(String, EventSummary)>> {
    // The range on the received time is written out only when there is one, rather than as
    // `$1 IS NULL OR …`, which hides it from the planner (SQLite would then walk the whole
    // received-time index instead of seeking to the last minutes: see `event_search`).
    const SQLITE_SINCE: &str = "SELECT m.value AS about, e.event_id, e.event_type, e.livemode, e.api_version, \
           e.received_at, p.status, p.attempts, p.next_attempt_at, p.last_error, p.outcome, p.processed_at \
         FROM stripe_events e JOIN stripe_event_processing p ON p.event_id = e.event_id \
           JOIN json_each($2) m ON CAST(e.payload AS TEXT) LIKE m.value ESCAPE '\\' \
         WHERE e.received_at >= $1 AND NOT EXISTS (SELECT 1 FROM event_search s WHERE s.event_id = e.event_id)";
    const SQLITE_EVER: &str = "SELECT m.value AS about, e.event_id, e.event_type, e.livemode, e.api_version, \
           e.received_at, p.status, p.attempts, p.next_attempt_at, p.last_error, p.outcome, p.processed_at \
         FROM stripe_events e JOIN stripe_event_processing p ON p.event_id = e.event_id \
           JOIN json_each($1) m ON CAST(e.payload AS TEXT) LIKE m.value ESCAPE '\\' \
         WHERE NOT EXISTS (SELECT 1 FROM event_search s WHERE s.event_id = e.event_id)";
    const POSTGRES_SINCE: &str = "SELECT m AS about, e.event_id, e.event_type, e.livemode, e.api_version, \
           e.received_at, p.status, p.attempts, p.next_attempt_at, p.last_error, p.outcome, p.processed_at \
         FROM stripe_events e JOIN stripe_event_processing p ON p.event_id = e.event_id \
           JOIN UNNEST($2::text[]) m ON convert_from(e.payload, 'UTF8') LIKE m ESCAPE '\\' \
         WHERE e.received_at >= $1 AND NOT EXISTS (SELECT 1 FROM event_search s WHERE s.event_id = e.event_id)";
    const POSTGRES_EVER: &str = "SELECT m AS about, e.event_id, e.event_type, e.livemode, e.api_version, \
           e.received_at, p.status, p.attempts, p.next_attempt_at, p.last_error, p.outcome, p.processed_at \
         FROM stripe_events e JOIN stripe_event_processing p ON p.event_id = e.event_id \
           JOIN UNNEST($1::text[]) m ON convert_from(e.payload, 'UTF8') LIKE m ESCAPE '\\' \
         WHERE NOT EXISTS (SELECT 1 FROM event_search s WHERE s.event_id = e.event_id)";
    let rows: Vec<AboutRow> = match (db.reader(), since) {
        (super::On::Sqlite(c), since) => {
            let json = serde_json::to_string(patterns).expect("strings serialize");
            match since {
                Some(t) => sqlx::query_as(SQLITE_SINCE).bind(t).bind(json).fetch_all(c).await?,
                None => sqlx::query_as(SQLITE_EVER).bind(json).fetch_all(c).await?,
            }
        }
        (super::On::Postgres(c), Some(t)) => sqlx::query_as(POSTGRES_SINCE).bind(t).bind(patterns).fetch_all(c).await?,
        (super::On::Postgres(c), None) => sqlx::query_as(POSTGRES_EVER).bind(patterns).fetch_all(c).await?,
    };
    Ok(rows.into_iter().map(AboutRow::split).collect())
}

/// An event summary with what it is about (a payment id, or the pattern that found it).
#[derive(sqlx::FromRow)]
struct AboutRow {
    about: String,
    #[sqlx(flatten)]
    event: EventSummary,
}

impl AboutRow {
    fn split(self) -> (String, EventSummary) {
        (self.about, self.event)
    }
}

/// The raw payloads of the given events (those that exist): event id → bytes.
pub async fn payloads(db: &Db, event_ids: &[String]) -> StoreResult<std::collections::HashMap<String, Vec<u8>>> {
    const SQLITE: &str =
        "SELECT event_id, payload FROM stripe_events WHERE event_id IN (SELECT value FROM json_each($1))";
    const POSTGRES: &str = "SELECT event_id, payload FROM stripe_events WHERE event_id = ANY($1)";
    if event_ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(String, Vec<u8>)> = match db.reader() {
        super::On::Sqlite(c) => {
            let json = serde_json::to_string(event_ids).expect("strings serialize");
            sqlx::query_as(SQLITE).bind(json).fetch_all(c).await?
        }
        super::On::Postgres(c) => sqlx::query_as(POSTGRES).bind(event_ids).fetch_all(c).await?,
    };
    Ok(rows.into_iter().collect())
}

/// When the newest event that came with a valid signature (a delivery, not a fetch) arrived:
/// the received-time index walked from its newest end.
pub async fn last_delivered(db: &Db) -> StoreResult<Option<DateTime<Utc>>> {
    const SQL: &str = "SELECT received_at FROM stripe_events WHERE verified_by = 'signature' \
         ORDER BY received_at DESC, event_id DESC LIMIT 1";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, DateTime<Utc>>(SQL).fetch_optional(c).await?))
}

/// Events dead-lettered (processing `failed`) from `from` on.
pub async fn dead_lettered_since(db: &Db, from: DateTime<Utc>) -> StoreResult<i64> {
    const SQL: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM stripe_event_processing \
         WHERE status = 'failed' AND processed_at >= $1";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, i64>(SQL).bind(from).fetch_one(c).await?))
}

/// Events still pending that were received before `before`.
pub async fn pending_received_before(db: &Db, before: DateTime<Utc>) -> StoreResult<i64> {
    const SQL: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM stripe_event_processing p \
         JOIN stripe_events e ON e.event_id = p.event_id WHERE p.status = 'pending' AND e.received_at < $1";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, i64>(SQL).bind(before).fetch_one(c).await?))
}
