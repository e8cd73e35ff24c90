//! Intake: storing webhook deliveries as they arrive, many to a commit, and crediting a new pack
//! payment's pack in the same commit.
use super::NewEvent;
use crate::domain::events::Credit;
use crate::store::{Db, StoreResult};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

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

/// PostgreSQL's batch statement (`store_batch_pg`). i: the batch's rows. ev: the events,
/// insert-or-nothing. credit: for a new event carrying a credit, the ledger row,
/// insert-or-nothing on its payment id, only if the contract exists and no purchase of ours
/// disagrees with it (`PURCHASE_DIFFERS` says why), in contract order: the kept balances it
/// moves (`contract_balances`) are locked in one order, so two batches crediting the same
/// contracts never deadlock (the trigger moves them once per statement, itself in contract
/// order: migration 0014). purchase: the credited payments' purchases become `succeeded`.
/// processing: the new events' rows, finished where credited. facts: the credited payments
/// that had refunds or disputes stored (migration 0013).
const BATCH_PG: &str = "WITH i AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::bool[], $4::text[], \
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
    let jobs: Vec<&StoreJob> = order.iter().map(|&i| jobs[i]).collect();
    let event = |f: fn(&NewEvent) -> String| jobs.iter().map(|j| f(&j.event)).collect::<Vec<_>>();
    let credit = |f: fn(&(Credit, String)) -> String| jobs.iter().map(|j| j.credit.as_ref().map(f)).collect::<Vec<_>>();
    let rows: Vec<(String, bool, Option<i64>, bool)> = sqlx::query_as(BATCH_PG)
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
    let jobs: Vec<&StoreJob> = order.iter().map(|&i| jobs[i]).collect();
    let new = insert_events_sqlite(&mut *conn, &jobs).await?;
    let fresh: Vec<&StoreJob> = jobs.iter().copied().filter(|j| new.contains(&j.event.event_id)).collect();
    let credited = credit_sqlite(&mut *conn, &fresh).await?;
    insert_processing_sqlite(&mut *conn, &fresh, &credited).await?;
    Ok(jobs
        .iter()
        .map(|j| match credited.get(&j.event.event_id) {
            Some(&(ledger_id, earlier_facts)) => Stored::Credited { ledger_id, earlier_facts },
            None if new.contains(&j.event.event_id) => Stored::Pending,
            None => Stored::Duplicate,
        })
        .collect())
}

/// `store_batch_sqlite`'s events, insert-or-nothing; the ids that were new. Each statement is
/// written whole; only its VALUES list has one row per job (a text per batch size, each prepared
/// once: `Db::connect` sizes the statement cache for them).
async fn insert_events_sqlite(conn: &mut sqlx::SqliteConnection, jobs: &[&StoreJob]) -> StoreResult<HashSet<String>> {
    let rows = placeholder_rows(jobs.len(), 10);
    let sql = format!(
        "INSERT INTO stripe_events (event_id, event_type, livemode, api_version, stripe_created, payload, \
           signature_header, request_headers, received_at, payload_sha256) \
         VALUES {rows} ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    );
    let mut insert = sqlx::query_scalar::<_, String>(&sql);
    for j in jobs {
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
    Ok(insert.fetch_all(&mut *conn).await?.into_iter().collect())
}

/// `store_batch_sqlite`'s credits of the new events that carry one, and their purchases moved
/// to `succeeded`: event id → (ledger row, whether earlier refunds or disputes must be settled).
async fn credit_sqlite(
    conn: &mut sqlx::SqliteConnection,
    fresh: &[&StoreJob],
) -> StoreResult<HashMap<String, (i64, bool)>> {
    let crediting: Vec<(&StoreJob, &Credit)> =
        fresh.iter().filter_map(|j| j.credit.as_ref().map(|(c, _)| (*j, c))).collect();
    if crediting.is_empty() {
        return Ok(HashMap::new());
    }
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
    Ok(rows.into_iter().map(|(ledger_id, event_id, _, facts)| (event_id, (ledger_id, facts))).collect())
}

/// `store_batch_sqlite`'s processing rows of the new events, finished where credited.
async fn insert_processing_sqlite(
    conn: &mut sqlx::SqliteConnection,
    fresh: &[&StoreJob],
    credited: &HashMap<String, (i64, bool)>,
) -> StoreResult<()> {
    if !fresh.is_empty() {
        let rows = placeholder_rows(fresh.len(), 6);
        let sql = format!(
            "INSERT INTO stripe_event_processing (event_id, status, attempts, next_attempt_at, processed_at, outcome) \
             VALUES {rows}"
        );
        let mut insert = sqlx::query(&sql);
        for j in fresh {
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
    Ok(())
}
