//! `event_search` (and, on SQLite, its FTS5 table `event_search_text`): the index that event
//! search reads, derived from `stripe_events` by `index_pending`, and the search itself.
//!
//! The index is filled off the webhook's path (by the worker, and by each search before it
//! reads): intake keeps answering Stripe at the speed of one insert, and a search never misses
//! what was stored before it started unless a backlog is larger than one batch (then the page
//! says how many are still waiting).
use super::{on, Db, Dialect, StoreResult, Tx};
use crate::domain::event_search::{Cursor, EventFilter, Facts, Hit};
use chrono::{DateTime, Duration, Utc};
use sqlx::QueryBuilder;

/// Events are found for indexing by time, not by a scan of the whole store: those received at
/// most this long before the newest indexed one and not indexed yet. Commits land in received
/// order give or take a batch (milliseconds), so ten minutes is far more than the widest gap.
const LOOK_BACK_MINUTES: i64 = 10;

/// The most payload text a row's word index covers.
const TEXT_INDEX_MAX: usize = 256 * 1024;

/// Index rows written per transaction.
const COMMIT_ROWS: usize = 250;

#[derive(sqlx::FromRow)]
struct Unindexed {
    event_id: String,
    received_at: DateTime<Utc>,
    event_type: String,
    livemode: bool,
    payload: Vec<u8>,
}

/// Indexes up to `batch` stored events that are not indexed yet, oldest first; how many it
/// indexed. Safe beside another indexer: a row is insert-or-nothing on the event id.
pub async fn index_pending(db: &Db, batch: i64) -> StoreResult<usize> {
    let since = look_back(db).await?;
    index_since(db, since, batch).await
}

/// Indexes up to `batch` stored events that are not indexed, however long ago they were
/// received: the worker's occasional sweep for what `index_pending`'s look-back cannot see (a
/// delivery committed very late, a clock stepped back, events restored from a backup). Reads
/// the whole store, so it runs every few minutes, not on a search's path.
pub async fn index_missed(db: &Db, batch: i64) -> StoreResult<usize> {
    if let Some(since) = look_back(db).await? {
        if all_indexed_before(db, since).await? {
            return Ok(0); // what came after `since` is `index_pending`'s
        }
    }
    index_since(db, None, batch).await
}

/// Whether every event received before `since` is indexed, told by counting instead of by
/// looking for each one's index row. It is exact: an index row exists only for a stored event
/// (foreign key), one per event id (primary key), with that event's `received_at`, so the two
/// counts match exactly when none is missing. Both are range scans of an index on
/// `received_at` (one statement, one snapshot), about a quarter of the anti-join's time over
/// 440,000 events (BENCHMARKS.md), and this runs every ten minutes over the whole store.
async fn all_indexed_before(db: &Db, since: DateTime<Utc>) -> StoreResult<bool> {
    const SQL: &str = "SELECT (SELECT COUNT(*) FROM stripe_events WHERE received_at < $1) \
        = (SELECT COUNT(*) FROM event_search WHERE received_at < $1)";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, bool>(SQL).bind(since).fetch_one(c).await?))
}

async fn index_since(db: &Db, since: Option<DateTime<Utc>>, batch: i64) -> StoreResult<usize> {
    // Two whole statements rather than `$1 IS NULL OR …`: see `UNINDEXED_SINCE`.
    const SINCE: &str = "SELECT e.event_id, e.received_at, e.event_type, e.livemode, e.payload FROM stripe_events e \
         WHERE e.received_at >= $1 AND NOT EXISTS (SELECT 1 FROM event_search s WHERE s.event_id = e.event_id) \
         ORDER BY e.received_at, e.event_id LIMIT $2";
    const EVER: &str = "SELECT e.event_id, e.received_at, e.event_type, e.livemode, e.payload FROM stripe_events e \
         WHERE NOT EXISTS (SELECT 1 FROM event_search s WHERE s.event_id = e.event_id) \
         ORDER BY e.received_at, e.event_id LIMIT $1";
    let rows: Vec<Unindexed> = on!(db.reader(), |c| match since {
        Some(since) => sqlx::query_as(SINCE).bind(since).bind(batch).fetch_all(c).await?,
        None => sqlx::query_as(EVER).bind(batch).fetch_all(c).await?,
    });
    if rows.is_empty() {
        return Ok(0);
    }
    // Read outside the transaction: parsing is the slow part, the write lock is held only to insert.
    let rows: Vec<(Unindexed, Facts, String)> = rows
        .into_iter()
        .map(|r| {
            let facts = Facts::of(&r.payload);
            let text = searchable_text(&r.payload);
            (r, facts, text)
        })
        .collect();
    // A few hundred rows a commit: on SQLite the index shares the one writer with intake, which
    // must not wait behind a long catch-up.
    for chunk in rows.chunks(COMMIT_ROWS) {
        let mut tx = db.begin().await?;
        for (r, f, text) in chunk {
            index_row(&mut tx, r, f, text).await?;
        }
        tx.commit().await?;
    }
    Ok(rows.len())
}

/// Writes one event's index row, insert-or-nothing on its id. The contract is the metadata's,
/// else that of the purchase or credit of the PaymentIntent (a refund or dispute names only the
/// payment). The word index differs per dialect: PostgreSQL keeps a tsvector in the row itself;
/// SQLite keeps the text in its FTS5 table, under the new row's id.
async fn index_row(tx: &mut Tx, r: &Unindexed, f: &Facts, text: &str) -> StoreResult<()> {
    const POSTGRES: &str = "INSERT INTO event_search (event_id, received_at, event_type, livemode, payment_intent, \
         amount, currency, contract_id, body) VALUES ($1, $2, $3, $4, $5, $6, $8, \
         COALESCE($7, (SELECT contract_id FROM purchases WHERE payment_intent_id = $5), \
           (SELECT contract_id FROM contract_revisions WHERE payment_id = $5)), \
         to_tsvector('simple', $9)) \
         ON CONFLICT (event_id) DO NOTHING";
    const SQLITE: &str = "INSERT INTO event_search (event_id, received_at, event_type, livemode, payment_intent, \
         amount, currency, contract_id) VALUES ($1, $2, $3, $4, $5, $6, $8, \
         COALESCE($7, (SELECT contract_id FROM purchases WHERE payment_intent_id = $5), \
           (SELECT contract_id FROM contract_revisions WHERE payment_id = $5))) \
         ON CONFLICT (event_id) DO NOTHING RETURNING id";
    const SQLITE_TEXT: &str = "INSERT INTO event_search_text (rowid, body) VALUES ($1, $2)";
    match tx.conn() {
        super::On::Postgres(c) => {
            sqlx::query(POSTGRES)
                .bind(&r.event_id)
                .bind(r.received_at)
                .bind(&r.event_type)
                .bind(r.livemode)
                .bind(&f.payment_intent)
                .bind(f.amount)
                .bind(f.contract_id)
                .bind(&f.currency)
                .bind(text)
                .execute(c)
                .await?;
        }
        super::On::Sqlite(c) => {
            let id: Option<i64> = sqlx::query_scalar(SQLITE)
                .bind(&r.event_id)
                .bind(r.received_at)
                .bind(&r.event_type)
                .bind(r.livemode)
                .bind(&f.payment_intent)
                .bind(f.amount)
                .bind(f.contract_id)
                .bind(&f.currency)
                .fetch_optional(&mut *c)
                .await?;
            if let Some(id) = id {
                sqlx::query(SQLITE_TEXT).bind(id).bind(text).execute(&mut *c).await?;
            }
        }
    }
    Ok(())
}

/// The payload's text for the word index, cut at `TEXT_INDEX_MAX` bytes (on a character
/// boundary): PostgreSQL refuses a tsvector over 1 MB, and one event that cannot be indexed
/// would hold up every one after it. Stripe's events are a few KB; the cut never bites them.
fn searchable_text(payload: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(payload).into_owned();
    if text.len() > TEXT_INDEX_MAX {
        let mut end = TEXT_INDEX_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Contracts learned after their events were indexed: a refund or dispute indexed before the
/// credit or purchase that names its contract (Stripe does not promise order) gets the
/// contract once it is known. Looks at events received since `since` only.
pub async fn fill_contracts(db: &Db, since: DateTime<Utc>) -> StoreResult<u64> {
    const SQL: &str = "UPDATE event_search SET contract_id = COALESCE( \
             (SELECT contract_id FROM purchases WHERE payment_intent_id = event_search.payment_intent), \
             (SELECT contract_id FROM contract_revisions WHERE payment_id = event_search.payment_intent)) \
         WHERE contract_id IS NULL AND payment_intent IS NOT NULL AND received_at >= $1 \
         AND (EXISTS (SELECT 1 FROM purchases WHERE payment_intent_id = event_search.payment_intent) \
              OR EXISTS (SELECT 1 FROM contract_revisions WHERE payment_id = event_search.payment_intent))";
    on!(db.writer(), |c| Ok(sqlx::query(SQL).bind(since).execute(c).await?.rows_affected()))
}

/// Stored events not indexed yet: what a search cannot see until the indexer reaches them.
/// "Received since $1" (or ever, with no look-back) is written out per case rather than as
/// `$1 IS NULL OR …`: that form hides the range from the planner, and SQLite then walks the
/// whole received-time index on every call (250 ms at a million events, measured) instead of
/// seeking to the last ten minutes.
pub async fn unindexed(db: &Db) -> StoreResult<i64> {
    const SINCE: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM stripe_events e WHERE e.received_at >= $1 \
         AND NOT EXISTS (SELECT 1 FROM event_search s WHERE s.event_id = e.event_id)";
    const EVER: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM stripe_events e \
         WHERE NOT EXISTS (SELECT 1 FROM event_search s WHERE s.event_id = e.event_id)";
    let since = look_back(db).await?;
    on!(db.reader(), |c| Ok(match since {
        Some(since) => sqlx::query_scalar::<_, i64>(SINCE).bind(since).fetch_one(c).await?,
        None => sqlx::query_scalar::<_, i64>(EVER).fetch_one(c).await?,
    }))
}

/// Where the indexer starts looking: `LOOK_BACK_MINUTES` before the newest indexed event, or
/// the beginning when nothing is indexed.
pub(crate) async fn look_back(db: &Db) -> StoreResult<Option<DateTime<Utc>>> {
    const SQL: &str = "SELECT MAX(received_at) FROM event_search";
    let newest: Option<DateTime<Utc>> = on!(db.reader(), |c| sqlx::query_scalar(SQL).fetch_one(c).await?);
    Ok(newest.map(|t| t - Duration::minutes(LOOK_BACK_MINUTES)))
}

/// Matches of a text search (SQLite) above which walking the newest-first index beats fetching
/// and sorting every match.
const FEW_MATCHES: i64 = 2_000;

#[derive(sqlx::FromRow)]
struct HitRow {
    event_id: String,
    event_type: String,
    livemode: bool,
    received_at: DateTime<Utc>,
    status: String,
    payment_intent: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    contract_id: Option<i64>,
    note: Option<String>,
}

impl From<HitRow> for Hit {
    fn from(r: HitRow) -> Self {
        Self {
            event_id: r.event_id,
            event_type: r.event_type,
            livemode: r.livemode,
            received_at: r.received_at,
            status: r.status,
            payment_intent: r.payment_intent,
            amount: r.amount,
            currency: r.currency,
            contract_id: r.contract_id,
            note: r.note,
            source: "stripe".into(),
        }
    }
}

/// The newest `limit` events matching `f`, after `after` when given (the previous page's last
/// row). Only the filters given reach the SQL, so each search is planned for what it asks: the
/// statement is built here, with `QueryBuilder`, because a fixed text with `$n IS NULL OR …`
/// for each of a dozen filters would hide from the planner the one index a search relies on
/// (the received-time range, the payment, the contract) over a table of millions of events.
pub async fn search(db: &Db, f: &EventFilter, after: Option<&Cursor>, limit: i64) -> StoreResult<Vec<Hit>> {
    const SELECT: &str = "SELECT s.event_id, s.event_type, s.livemode, s.received_at, p.status, s.payment_intent, \
         s.amount, s.currency, s.contract_id, COALESCE(p.last_error, p.outcome) AS note \
         FROM event_search s JOIN stripe_event_processing p ON p.event_id = s.event_id";
    let text = match &f.text {
        Some(text) => Some(text_condition(db, f, text).await?),
        None => None,
    };
    let rows: Vec<HitRow> = on!(db.reader(), |c| {
        let mut qb = QueryBuilder::new(SELECT);
        push_conditions(&mut qb, f, text.clone(), after);
        qb.push(" ORDER BY s.received_at DESC, s.event_id DESC LIMIT ").push_bind(limit);
        qb.build_query_as::<HitRow>().fetch_all(c).await?
    });
    Ok(rows.into_iter().map(Hit::from).collect())
}

/// How a search's text is matched: the condition's text before and after its one bound value,
/// and that value.
type TextCondition = (&'static str, &'static str, String);

/// Two plans, and neither database can tell from the query which is quick (PostgreSQL misjudges
/// a phrase whose first word is everywhere, like `pi` in `pi_3Ab…`, and walked a million rows
/// for ten matches; measured): for a phrase in few events, fetch those and sort them; for one
/// in many, walk the newest-first index and keep the rows that hold it, as a page is near the
/// start. A count capped at `FEW_MATCHES` decides.
async fn text_condition(db: &Db, f: &EventFilter, text: &str) -> StoreResult<TextCondition> {
    const SQLITE_COUNT: &str =
        "SELECT COUNT(*) FROM (SELECT rowid FROM event_search_text WHERE event_search_text MATCH $1 LIMIT $2)";
    const POSTGRES_COUNT: &str = "SELECT COUNT(*) FROM \
         (SELECT 1 FROM event_search WHERE body @@ phraseto_tsquery('simple', $1) LIMIT $2) m";
    let (count, few, many, arg) = match db.sql_dialect() {
        Dialect::Sqlite => (
            SQLITE_COUNT,
            ("s.id IN (SELECT rowid FROM event_search_text WHERE event_search_text MATCH ", ")"),
            // `+` stops SQLite reading the IN list as the way into the table.
            ("+s.id IN (SELECT rowid FROM event_search_text WHERE event_search_text MATCH ", ")"),
            f.fts5_phrase().unwrap_or_default(),
        ),
        Dialect::Postgres => (
            POSTGRES_COUNT,
            // OFFSET 0 keeps the subquery apart, so its matches come from the GIN index.
            (
                "s.event_id IN (SELECT event_id FROM event_search WHERE body @@ phraseto_tsquery('simple', ",
                ") OFFSET 0)",
            ),
            ("s.body @@ phraseto_tsquery('simple', ", ")"),
            text.to_string(),
        ),
    };
    let matches: i64 =
        on!(db.reader(), |c| sqlx::query_scalar(count).bind(&arg).bind(FEW_MATCHES + 1).fetch_one(c).await?);
    let (before, after) = if matches > FEW_MATCHES { many } else { few };
    Ok((before, after, arg))
}

/// Pushes `sql`, after " WHERE " for a statement's first condition and " AND " for the rest.
fn and<'q, 'a, DB: sqlx::Database>(
    qb: &'q mut QueryBuilder<'a, DB>,
    first: &mut bool,
    sql: &str,
) -> &'q mut QueryBuilder<'a, DB> {
    qb.push(if std::mem::take(first) { " WHERE " } else { " AND " }).push(sql)
}

/// The search's conditions, only those `f` gives, each value bound.
fn push_conditions<'a, DB: sqlx::Database>(
    qb: &mut QueryBuilder<'a, DB>,
    f: &EventFilter,
    text: Option<TextCondition>,
    after: Option<&Cursor>,
) where
    DateTime<Utc>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let first = &mut true;
    if let Some(t) = f.from {
        and(qb, first, "s.received_at >= ").push_bind(t);
    }
    if let Some(t) = f.to {
        and(qb, first, "s.received_at < ").push_bind(t);
    }
    if let Some(p) = f.type_pattern() {
        and(qb, first, "s.event_type LIKE ").push_bind(p).push(" ESCAPE '\\'");
    }
    if let Some(s) = &f.status {
        and(qb, first, "p.status = ").push_bind(s.clone());
    }
    if let Some(n) = f.min_amount {
        and(qb, first, "s.amount >= ").push_bind(n);
    }
    if let Some(n) = f.max_amount {
        and(qb, first, "s.amount <= ").push_bind(n);
    }
    if let Some(c) = &f.currency {
        and(qb, first, "s.currency = ").push_bind(c.clone());
    }
    if let Some(l) = f.livemode {
        and(qb, first, "s.livemode = ").push_bind(l);
    }
    if let Some(pi) = &f.payment_intent {
        and(qb, first, "s.payment_intent = ").push_bind(pi.clone());
    }
    if let Some(c) = f.contract_id {
        and(qb, first, "s.contract_id = ").push_bind(c);
    }
    if let Some(e) = &f.email {
        and(
            qb,
            first,
            "s.contract_id IN (SELECT c.id FROM contracts c JOIN users u ON u.id = c.advertiser_id WHERE u.email = ",
        )
        .push_bind(e.clone())
        .push(")");
    }
    if let Some((before, after, arg)) = text {
        and(qb, first, before).push_bind(arg).push(after);
    }
    if let Some(c) = after {
        // Row values: the index on (received_at, event_id) serves the seek in both dialects.
        and(qb, first, "(s.received_at, s.event_id) < (").push_bind(c.received_at).push(", ");
        qb.push_bind(c.event_id.clone()).push(")");
    }
}
