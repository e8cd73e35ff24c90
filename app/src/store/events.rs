//! `stripe_events` (the evidence, append-only) and `stripe_event_processing` (what we did with
//! it). An event row and its processing row are written together, so every stored event is
//! either finished or visibly pending.
use super::{on, read_pool, write_pool, write_tx, Db, StoreResult, Tx};
use crate::domain::events::Credit;
use chrono::{DateTime, Utc};

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

/// One event to store, and, for the common case of a new pack payment, the credit to write in
/// the same commit (with the outcome text its processing row gets).
#[derive(Debug, Clone)]
pub struct StoreJob {
    pub event: NewEvent,
    pub credit: Option<(Credit, String)>,
    /// The lease the storing request holds on the pending row while it processes the event.
    pub lease_until: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// We already hold this event id; nothing was written.
    Duplicate,
    /// Event stored, pack credited and the event finished, all in one commit. `earlier_facts`:
    /// refunds or disputes of this payment were stored before the credit, so they must be booked
    /// against it now. Looked up so that a refund stored at the same moment is never missed by
    /// both sides: on PostgreSQL inside the batch's statement under the payment's lock
    /// (migration 0013), on SQLite inside the batch's transaction (its one writer stores refunds
    /// too, never at the same time).
    Credited { ledger_id: i64, earlier_facts: bool },
    /// Event stored with a pending processing row, leased to the caller, who processes it the
    /// ordinary way (for a credit job: the payment was credited before, or the contract is
    /// unknown, and ordinary processing says which).
    Pending,
}

/// Stores events in one transaction: one commit (one fsync) for the whole batch, all or
/// nothing. Duplicate ids are stopped by the primary key with insert-or-nothing, not by a
/// look-up that could race; a duplicate within the batch is seen as one too.
pub async fn store_batch(db: &Db, jobs: &[&StoreJob]) -> StoreResult<Vec<Stored>> {
    // Copies of one event arrive at the same moment (Stripe after a timeout; one delivery to each
    // of two instances behind a load balancer), and a batch holds each event id's index entry
    // from its insert until its commit. Two batches inserting the same ids in different orders
    // could each wait for the other: a deadlock, which PostgreSQL breaks by failing one batch
    // after a second. Inserting in event-id order gives every batch the same order, so a batch
    // meeting another's id only waits for that commit and then sees a duplicate.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| jobs[a].event.event_id.cmp(&jobs[b].event.event_id));
    // A copy within the batch is a duplicate of the first: only firsts reach the statements
    // (one row per id, as their results are matched by id).
    order.dedup_by(|later, first| jobs[*later].event.event_id == jobs[*first].event.event_id);
    let stored = match db {
        // One statement is its own transaction: all of it commits, or none. Without BEGIN and
        // COMMIT the batch costs one round trip instead of three; the look-up for earlier refunds
        // and disputes is inside it too (`facts_for_new_credits`, migration 0013).
        Db::Postgres(pool) => store_batch_pg(&mut *pool.acquire().await?, jobs, &order).await?,
        Db::Sqlite(s) => {
            let mut conn = s.writer.acquire().await?;
            let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
            let stored = store_batch_sqlite(&mut tx, jobs, &order).await?;
            tx.commit().await?;
            stored
        }
    };
    let mut out = vec![Stored::Duplicate; jobs.len()];
    for (i, s) in order.into_iter().zip(stored) {
        out[i] = s;
    }
    Ok(out)
}

/// Stores one event in its own transaction.
pub async fn store(db: &Db, job: &StoreJob) -> StoreResult<Stored> {
    Ok(store_batch(db, &[job]).await?[0])
}

/// PostgreSQL: the whole batch in one statement, its rows passed as arrays (one round trip, one
/// plan, set-based index work, instead of a statement per event). Data-modifying CTEs share a
/// snapshot and commit together; foreign keys to the event rows inserted by `ev` are checked at
/// the end of the statement, when they exist. For a new pack payment the same statement also
/// inserts the credit insert-or-nothing, moves the purchase to `succeeded` and finishes the
/// processing row: evidence and credit in one commit; and it names the credited payments that
/// already had refunds or disputes stored (`facts_for_new_credits`). `order`: the jobs to
/// store, one per event id, in id order. Returns what became of each, in that order.
async fn store_batch_pg(
    conn: &mut sqlx::PgConnection,
    jobs: &[&StoreJob],
    order: &[usize],
) -> StoreResult<Vec<Stored>> {
    // i: the batch's rows. ev: the events, insert-or-nothing. credit: for a new event carrying
    // a credit, the ledger row, insert-or-nothing on its payment id, only if the contract exists
    // and no purchase of ours disagrees with it (`PURCHASE_DIFFERS` says why), in contract
    // order: the kept balances it moves (`contract_balances`) are locked in one order, so two
    // batches crediting the same contracts never deadlock (the trigger moves them once per
    // statement, itself in contract order: migration 0014). purchase: the credited payments'
    // purchases become `succeeded`. processing: the new events' rows, finished where credited.
    // facts: the credited payments that had refunds or disputes stored (migration 0013).
    const SQL: &str = "WITH i AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::bool[], $4::text[], \
           $5::bigint[], $6::bytea[], $7::text[], $8::text[], $9::timestamptz[], $10::text[], $11::timestamptz[], \
           $12::bigint[], $13::text[], $14::bigint[], $15::bigint[], $16::text[], $17::text[]) \
         AS t(event_id, event_type, livemode, api_version, stripe_created, payload, signature_header, \
           request_headers, received_at, payload_sha256, lease_until, contract_id, payment_id, revisions, \
           amount, currency, outcome)), \
       ev AS (INSERT INTO stripe_events (event_id, event_type, livemode, api_version, stripe_created, \
           payload, signature_header, request_headers, received_at, payload_sha256) \
         SELECT event_id, event_type, livemode, api_version, stripe_created, payload, signature_header, \
           request_headers, received_at, payload_sha256 FROM i ORDER BY event_id \
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id), \
       credit AS (INSERT INTO contract_revisions (contract_id, payment_id, revisions, amount, currency, \
           livemode, stripe_event_id, created_at, credited_by) \
         SELECT c.id, i.payment_id, i.revisions, i.amount, i.currency, i.livemode, ev.event_id, i.received_at, \
           'webhook' \
         FROM i JOIN ev ON ev.event_id = i.event_id, contracts c \
         WHERE c.id = i.contract_id AND NOT EXISTS (SELECT 1 FROM purchases p \
           WHERE p.payment_intent_id = i.payment_id AND (p.revisions <> i.revisions OR p.amount <> i.amount \
             OR p.currency <> i.currency OR p.contract_id <> i.contract_id)) \
         ORDER BY c.id ON CONFLICT (payment_id) DO NOTHING RETURNING id, stripe_event_id, payment_id), \
       purchase AS (UPDATE purchases SET status = 'succeeded', updated_at = (SELECT MAX(received_at) FROM i) \
         WHERE payment_intent_id = ANY (SELECT payment_id FROM credit) AND status <> 'succeeded'), \
       processing AS (INSERT INTO stripe_event_processing \
           (event_id, status, attempts, next_attempt_at, processed_at, outcome) \
         SELECT ev.event_id, CASE WHEN credit.id IS NULL THEN 'pending' ELSE 'processed' END, \
           CASE WHEN credit.id IS NULL THEN 0 ELSE 1 END, i.lease_until, \
           CASE WHEN credit.id IS NOT NULL THEN i.received_at END, \
           CASE WHEN credit.id IS NOT NULL THEN i.outcome END \
         FROM ev JOIN i ON i.event_id = ev.event_id LEFT JOIN credit ON credit.stripe_event_id = ev.event_id), \
       facts AS MATERIALIZED (SELECT f.payment_id \
         FROM facts_for_new_credits(ARRAY(SELECT payment_id FROM credit)) AS f(payment_id)) \
     SELECT i.event_id, ev.event_id IS NOT NULL, credit.id, facts.payment_id IS NOT NULL FROM i \
       LEFT JOIN ev ON ev.event_id = i.event_id LEFT JOIN credit ON credit.stripe_event_id = i.event_id \
       LEFT JOIN facts ON facts.payment_id = credit.payment_id";
    let jobs: Vec<&StoreJob> = order.iter().map(|&i| jobs[i]).collect();
    let event = |f: fn(&NewEvent) -> String| jobs.iter().map(|j| f(&j.event)).collect::<Vec<_>>();
    let credit = |f: fn(&(crate::domain::events::Credit, String)) -> String| {
        jobs.iter().map(|j| j.credit.as_ref().map(f)).collect::<Vec<_>>()
    };
    let rows: Vec<(String, bool, Option<i64>, bool)> = sqlx::query_as(SQL)
        .bind(event(|e| e.event_id.clone()))
        .bind(event(|e| e.event_type.clone()))
        .bind(jobs.iter().map(|j| j.event.livemode).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| j.event.api_version.clone()).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| j.event.stripe_created).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| j.event.payload.clone()).collect::<Vec<_>>())
        .bind(event(|e| e.signature_header.clone()))
        .bind(event(|e| e.request_headers.clone()))
        .bind(jobs.iter().map(|j| j.event.received_at).collect::<Vec<_>>())
        .bind(event(|e| e.payload_sha256.clone()))
        .bind(jobs.iter().map(|j| j.lease_until).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| j.credit.as_ref().map(|(c, _)| c.contract_id)).collect::<Vec<_>>())
        .bind(credit(|(c, _)| c.payment_id.clone()))
        .bind(jobs.iter().map(|j| j.credit.as_ref().map(|(c, _)| c.revisions)).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| j.credit.as_ref().map(|(c, _)| c.amount.minor)).collect::<Vec<_>>())
        .bind(credit(|(c, _)| c.amount.currency.as_str().to_string()))
        .bind(credit(|(_, outcome)| outcome.clone()))
        .fetch_all(&mut *conn)
        .await?;
    let by_id: std::collections::HashMap<String, (bool, Option<i64>, bool)> =
        rows.into_iter().map(|(id, stored, ledger_id, facts)| (id, (stored, ledger_id, facts))).collect();
    Ok(jobs
        .iter()
        .map(|j| match by_id.get(&j.event.event_id) {
            Some((true, Some(ledger_id), earlier_facts)) => {
                Stored::Credited { ledger_id: *ledger_id, earlier_facts: *earlier_facts }
            }
            Some((true, None, _)) => Stored::Pending,
            _ => Stored::Duplicate,
        })
        .collect())
}

// PURCHASE_DIFFERS, in both dialects' batch statements: a credit is not written at intake
// when we recorded a purchase for the payment on other terms than the credit: the purchase's
// own terms decide (a price changed between purchase and webhook), so intake's shortcut must
// not credit and ordinary processing routes it against the purchase. A purchase for another
// contract than the metadata names is such a row too: `apply` then follows
// `domain::events::credit_target` and dead-letters it, so the shortcut credits only what that
// rule would (its SQL form: no purchase, or the purchase's own contract).

/// `count` numbered placeholders from `$first` on, `$3, $4, $5`.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// `rows` rows of `width` numbered placeholders each, `($1, $2), ($3, $4)`, for a multi-row
/// VALUES list.
fn placeholder_rows(rows: usize, width: usize) -> String {
    (0..rows).map(|r| format!("({})", placeholders(r * width + 1, width))).collect::<Vec<_>>().join(", ")
}

/// SQLite has no data-modifying CTEs: the batch is at most four multi-row statements inside the
/// caller's transaction, whatever its size (events insert-or-nothing; credits of the new ones;
/// their purchases; the new events' processing rows). SQLite runs each statement on its own
/// worker thread, and the hand-off between threads, five times per event when each event had
/// its own statements, was the writer's bound rather than the disk. Same rules as PostgreSQL's
/// one statement: a duplicate stores nothing else, a credit goes in only when no purchase of
/// ours disagrees with it and the contract exists, insert-or-nothing on its payment id, and it
/// says whether its payment had refunds or disputes stored before. `order`: the jobs to store,
/// one per event id, in id order. Returns what became of each.
async fn store_batch_sqlite(
    conn: &mut sqlx::SqliteConnection,
    jobs: &[&StoreJob],
    order: &[usize],
) -> StoreResult<Vec<Stored>> {
    use std::collections::{HashMap, HashSet};
    let jobs: Vec<&StoreJob> = order.iter().map(|&i| jobs[i]).collect();

    // Each statement is written whole; only its VALUES list has one row per job (a text per
    // batch size, each prepared once: `Db::connect` sizes the statement cache for them).
    let rows = placeholder_rows(jobs.len(), 10);
    let sql = format!(
        "INSERT INTO stripe_events (event_id, event_type, livemode, api_version, stripe_created, payload, \
           signature_header, request_headers, received_at, payload_sha256) \
         VALUES {rows} ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    );
    let mut insert = sqlx::query_scalar::<_, String>(&sql);
    for j in &jobs {
        let e = &j.event;
        insert = insert
            .bind(&e.event_id)
            .bind(&e.event_type)
            .bind(e.livemode)
            .bind(&e.api_version)
            .bind(e.stripe_created)
            .bind(&e.payload)
            .bind(&e.signature_header)
            .bind(&e.request_headers)
            .bind(e.received_at)
            .bind(&e.payload_sha256);
    }
    let new: HashSet<String> = insert.fetch_all(&mut *conn).await?.into_iter().collect();
    let fresh: Vec<&StoreJob> = jobs.iter().copied().filter(|j| new.contains(&j.event.event_id)).collect();

    let crediting: Vec<(&StoreJob, &crate::domain::events::Credit)> =
        fresh.iter().filter_map(|j| j.credit.as_ref().map(|(c, _)| (*j, c))).collect();
    // Event id → (ledger row, whether earlier refunds or disputes must be settled).
    let mut credited: HashMap<String, (i64, bool)> = HashMap::new();
    if !crediting.is_empty() {
        // As PostgreSQL's `credit` (PURCHASE_DIFFERS above; contract order), returning whether
        // refunds or disputes of the payment were stored before: read in this transaction,
        // which is race-free here because SQLite's one writer stores refunds too, one
        // transaction after another.
        let rows = placeholder_rows(crediting.len(), 8);
        let sql = format!(
            "WITH i (contract_id, payment_id, revisions, amount, currency, livemode, event_id, received_at) \
               AS (VALUES {rows}) \
             INSERT INTO contract_revisions (contract_id, payment_id, revisions, amount, currency, livemode, \
               stripe_event_id, created_at, credited_by) \
             SELECT c.id, i.payment_id, i.revisions, i.amount, i.currency, i.livemode, i.event_id, i.received_at, \
               'webhook' \
             FROM i, contracts c \
             WHERE c.id = i.contract_id AND NOT EXISTS (SELECT 1 FROM purchases p \
               WHERE p.payment_intent_id = i.payment_id AND (p.revisions <> i.revisions OR p.amount <> i.amount \
                 OR p.currency <> i.currency OR p.contract_id <> i.contract_id)) \
             ORDER BY c.id ON CONFLICT (payment_id) DO NOTHING \
             RETURNING id, stripe_event_id, payment_id, EXISTS ( \
               SELECT payment_id FROM payment_refunds WHERE payment_id = contract_revisions.payment_id \
               UNION SELECT payment_id FROM payment_disputes WHERE payment_id = contract_revisions.payment_id)"
        );
        let mut insert = sqlx::query_as::<_, (i64, String, String, bool)>(&sql);
        for (j, c) in &crediting {
            insert = insert
                .bind(c.contract_id)
                .bind(&c.payment_id)
                .bind(c.revisions)
                .bind(c.amount.minor)
                .bind(c.amount.currency.as_str())
                .bind(c.livemode)
                .bind(&j.event.event_id)
                .bind(j.event.received_at);
        }
        let rows = insert.fetch_all(&mut *conn).await?;
        if !rows.is_empty() {
            let payments = placeholders(2, rows.len());
            let sql = format!(
                "UPDATE purchases SET status = 'succeeded', updated_at = $1 \
                 WHERE payment_intent_id IN ({payments}) AND status <> 'succeeded'"
            );
            let now = crediting.iter().map(|(j, _)| j.event.received_at).max();
            let mut update = sqlx::query(&sql).bind(now);
            for (_, _, payment_id, _) in &rows {
                update = update.bind(payment_id);
            }
            update.execute(&mut *conn).await?;
        }
        credited = rows.into_iter().map(|(ledger_id, event_id, _, facts)| (event_id, (ledger_id, facts))).collect();
    }

    if !fresh.is_empty() {
        let rows = placeholder_rows(fresh.len(), 6);
        let sql = format!(
            "INSERT INTO stripe_event_processing (event_id, status, attempts, next_attempt_at, processed_at, outcome) \
             VALUES {rows}"
        );
        let mut insert = sqlx::query(&sql);
        for j in &fresh {
            let done = credited.contains_key(&j.event.event_id);
            insert = insert
                .bind(&j.event.event_id)
                .bind(if done { "processed" } else { "pending" })
                .bind(i64::from(done))
                .bind(j.lease_until)
                .bind(done.then_some(j.event.received_at))
                .bind(j.credit.as_ref().filter(|_| done).map(|(_, outcome)| outcome.as_str()));
        }
        insert.execute(&mut *conn).await?;
    }
    Ok(jobs
        .iter()
        .map(|j| match credited.get(&j.event.event_id) {
            Some(&(ledger_id, earlier_facts)) => Stored::Credited { ledger_id, earlier_facts },
            None if new.contains(&j.event.event_id) => Stored::Pending,
            None => Stored::Duplicate,
        })
        .collect())
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
    let sql =
        format!("{SUMMARY} WHERE ($1 IS NULL OR p.status = $1) ORDER BY e.received_at DESC, e.event_id DESC LIMIT $2");
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

/// When the oldest event still waiting to be processed was received (None: none waits).
pub async fn oldest_pending(db: &Db) -> StoreResult<Option<DateTime<Utc>>> {
    read_pool!(db, |pool| Ok(sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
        "SELECT MIN(e.received_at) FROM stripe_event_processing p JOIN stripe_events e ON e.event_id = p.event_id \
         WHERE p.status = 'pending'"
    )
    .fetch_one(pool)
    .await?))
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

/// Events about PaymentIntent `payment_id`, most recent first, at most `limit`: those the search
/// index has reached, through its payment column (an index seek, whatever the store's size),
/// and those stored since the indexer's look-back that it has not reached yet, found by the id
/// in their raw payload (a scan bounded by the received-time index to those few minutes). Once
/// this read every payload in the store for each payment, so an admin's contract page grew with
/// the whole event store.
pub async fn about_payment(db: &Db, payment_id: &str, limit: i64) -> StoreResult<Vec<EventSummary>> {
    let Some(pattern) = mention_pattern(payment_id) else { return Ok(vec![]) };
    let indexed = format!(
        "{SUMMARY} JOIN event_search s ON s.event_id = e.event_id WHERE s.payment_intent = $1 \
         ORDER BY s.received_at DESC, s.event_id DESC LIMIT $2"
    );
    let since = super::event_search::look_back(db).await?;
    let recent = format!(
        "{SUMMARY} WHERE {} AND {} ORDER BY e.received_at DESC, e.event_id DESC LIMIT $3",
        super::event_search::not_indexed(since.is_some()),
        mentions(db, "$2"),
    );
    let mut found: Vec<EventSummary> = read_pool!(db, |pool| {
        let mut a = sqlx::query_as::<_, EventSummary>(&indexed).bind(payment_id).bind(limit).fetch_all(pool).await?;
        let b =
            sqlx::query_as::<_, EventSummary>(&recent).bind(since).bind(&pattern).bind(limit).fetch_all(pool).await?;
        a.extend(b);
        a
    });
    found.sort_by(|x, y| (y.received_at, &y.event_id).cmp(&(x.received_at, &x.event_id)));
    found.dedup_by(|x, y| x.event_id == y.event_id);
    found.truncate(limit as usize);
    Ok(found)
}

/// The LIKE pattern of a Stripe id as a JSON string inside a payload; None for anything that is
/// not shaped like a Stripe id (ASCII letters, digits, underscores), which matches nothing.
fn mention_pattern(object_id: &str) -> Option<String> {
    (!object_id.is_empty() && object_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| format!("%\"{}\"%", object_id.replace('_', "\\_")))
}

/// The condition "the payload mentions the pattern bound at `pattern`" in each dialect (the
/// payload is bytes).
fn mentions(db: &Db, pattern: &str) -> String {
    match db {
        Db::Sqlite(_) => format!("CAST(e.payload AS TEXT) LIKE {pattern} ESCAPE '\\'"),
        Db::Postgres(_) => format!("convert_from(e.payload, 'UTF8') LIKE {pattern} ESCAPE '\\'"),
    }
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
    let sql = format!(
        "SELECT e.event_id, e.event_type, e.livemode, e.api_version, e.stripe_created, e.payload, \
         e.signature_header, e.request_headers, e.received_at, e.verified_by, e.payload_sha256, \
         p.status, p.attempts, p.last_error, p.outcome, p.processed_at \
         FROM stripe_events e JOIN stripe_event_processing p ON p.event_id = e.event_id \
         WHERE {} ORDER BY e.received_at, e.event_id",
        mentions(db, "$1")
    );
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, StoredEvent>(&sql).bind(pattern).fetch_all(pool).await?))
}

/// Stores an event that reconciliation fetched from Stripe with our own authenticated API call
/// (Stripe reported it undelivered), marked `api_fetch` instead of `signature`, with a pending
/// processing row leased to the caller: from here it travels as a webhook delivery does.
pub async fn store_fetched(db: &Db, event: &NewEvent, lease_until: DateTime<Utc>) -> StoreResult<Stored> {
    write_tx!(db, |tx| {
        let n = sqlx::query(
            "INSERT INTO stripe_events (event_id, event_type, livemode, api_version, stripe_created, payload, \
             signature_header, request_headers, received_at, payload_sha256, verified_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'api_fetch') ON CONFLICT (event_id) DO NOTHING",
        )
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
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(Stored::Duplicate);
        }
        sqlx::query(
            "INSERT INTO stripe_event_processing (event_id, status, attempts, next_attempt_at) VALUES ($1, 'pending', 0, $2)",
        )
        .bind(&event.event_id)
        .bind(lease_until)
        .execute(&mut *tx)
        .await?;
        Ok(Stored::Pending)
    })
}

/// `about_payment` for several payments at once, in three queries whatever their number (a
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
    const SQLITE: &str = "SELECT m.value AS about, e.event_id, e.event_type, e.livemode, e.api_version, \
           e.received_at, p.status, p.attempts, p.next_attempt_at, p.last_error, p.outcome, p.processed_at \
         FROM stripe_events e JOIN stripe_event_processing p ON p.event_id = e.event_id \
           JOIN json_each($2) m ON CAST(e.payload AS TEXT) LIKE m.value ESCAPE '\\' \
         WHERE ($1 IS NULL OR e.received_at >= $1) \
           AND NOT EXISTS (SELECT 1 FROM event_search s WHERE s.event_id = e.event_id)";
    const POSTGRES: &str = "SELECT m AS about, e.event_id, e.event_type, e.livemode, e.api_version, \
           e.received_at, p.status, p.attempts, p.next_attempt_at, p.last_error, p.outcome, p.processed_at \
         FROM stripe_events e JOIN stripe_event_processing p ON p.event_id = e.event_id \
           JOIN UNNEST($2::text[]) m ON convert_from(e.payload, 'UTF8') LIKE m ESCAPE '\\' \
         WHERE ($1::timestamptz IS NULL OR e.received_at >= $1) \
           AND NOT EXISTS (SELECT 1 FROM event_search s WHERE s.event_id = e.event_id)";
    let rows: Vec<AboutRow> = match db.reader() {
        super::On::Sqlite(c) => {
            let json = serde_json::to_string(patterns).expect("strings serialize");
            sqlx::query_as(SQLITE).bind(since).bind(json).fetch_all(c).await?
        }
        super::On::Postgres(c) => sqlx::query_as(POSTGRES).bind(since).bind(patterns).fetch_all(c).await?,
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
