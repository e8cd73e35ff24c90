//! Revenue's one read: every money movement in a date range summed per UTC day, currency,
//! source, direction, mode and owner flag, in one statement over the ledger, the Rate Card
//! payments, refunds and lost disputes. The domain (`domain::revenue`) turns these totals into
//! the report; nothing here decides what counts.
use super::{on, Db, On, StoreResult};
use crate::domain::revenue::{Class, DayTotal, Movement, Source};
use chrono::{DateTime, NaiveDate, Utc};

// Refunds and disputes are joined to the credit they take back, so `cr` names the contract in
// every branch. Each branch sums its own rows by day first, so the outer grouping sees a few rows
// a day instead of every payment (a year of 100,000 payments on SQLite: about half the time).
//
// The two dialects' statements differ in two places only:
// - The UTC calendar day of a stored time. SQLite keeps times as RFC 3339 text in UTC, so the day
//   is its first ten characters; PostgreSQL takes the date of the instant in UTC (a date, not
//   text: formatting every row cost more than the rest of the query, so only the grouped days
//   are formatted, by the outer `to_char`).
// - Whether a contract is one of the owner's ($3, the owner's contract ids, bound, never written
//   into the text): PostgreSQL compares with an array, SQLite, which has none, with the ids
//   given as a JSON array. An empty list matches no contract (and NULL, a refund of no credit,
//   is never the owner's).

/// SQLite's statement ($3: the owner's contract ids as a JSON array).
const SQLITE: &str = "SELECT day, currency, source, movement, livemode, owner, matched, \
        CAST(SUM(amount) AS BIGINT) AS amount, CAST(SUM(n) AS BIGINT) AS n FROM ( \
   SELECT substr(cr.created_at, 1, 10) AS day, cr.currency AS currency, 'pack' AS source, 'payment' AS movement, \
          cr.livemode AS livemode, COALESCE(cr.contract_id IN (SELECT value FROM json_each($3)), FALSE) AS owner, \
          TRUE AS matched, SUM(cr.amount) AS amount, COUNT(*) AS n \
     FROM contract_revisions cr WHERE cr.created_at >= $1 AND cr.created_at < $2 GROUP BY 1, 2, 5, 6 \
   UNION ALL \
   SELECT substr(ep.created_at, 1, 10), ep.currency, 'rate_card', 'payment', ep.livemode, FALSE, TRUE, \
          SUM(ep.amount), COUNT(*) \
     FROM external_payments ep WHERE ep.created_at >= $1 AND ep.created_at < $2 GROUP BY 1, 2, 5 \
   UNION ALL \
   SELECT substr(r.first_seen, 1, 10), r.currency, \
          CASE WHEN ep.payment_id IS NOT NULL THEN 'rate_card' ELSE 'pack' END, 'refund', r.livemode, \
          COALESCE(cr.contract_id IN (SELECT value FROM json_each($3)), FALSE), \
          (cr.payment_id IS NOT NULL OR ep.payment_id IS NOT NULL), SUM(r.amount), COUNT(*) \
     FROM payment_refunds r \
     LEFT JOIN contract_revisions cr ON cr.payment_id = r.payment_id \
     LEFT JOIN external_payments ep ON ep.payment_id = r.payment_id \
    WHERE r.status = 'succeeded' AND r.first_seen >= $1 AND r.first_seen < $2 GROUP BY 1, 2, 3, 5, 6, 7 \
   UNION ALL \
   SELECT substr(d.updated_at, 1, 10), d.currency, \
          CASE WHEN ep.payment_id IS NOT NULL THEN 'rate_card' ELSE 'pack' END, 'dispute_lost', d.livemode, \
          COALESCE(cr.contract_id IN (SELECT value FROM json_each($3)), FALSE), \
          (cr.payment_id IS NOT NULL OR ep.payment_id IS NOT NULL), SUM(d.amount), COUNT(*) \
     FROM payment_disputes d \
     LEFT JOIN contract_revisions cr ON cr.payment_id = d.payment_id \
     LEFT JOIN external_payments ep ON ep.payment_id = d.payment_id \
    WHERE d.status = 'lost' AND d.updated_at >= $1 AND d.updated_at < $2 GROUP BY 1, 2, 3, 5, 6, 7 \
 ) m GROUP BY day, currency, source, movement, livemode, owner, matched ORDER BY day";

/// PostgreSQL's statement ($3: the owner's contract ids as an array).
const POSTGRES: &str = "SELECT to_char(day, 'YYYY-MM-DD') AS day, currency, source, movement, livemode, owner, \
        matched, CAST(SUM(amount) AS BIGINT) AS amount, CAST(SUM(n) AS BIGINT) AS n FROM ( \
   SELECT (cr.created_at AT TIME ZONE 'UTC')::date AS day, cr.currency AS currency, 'pack' AS source, \
          'payment' AS movement, cr.livemode AS livemode, COALESCE(cr.contract_id = ANY($3), FALSE) AS owner, \
          TRUE AS matched, SUM(cr.amount) AS amount, COUNT(*) AS n \
     FROM contract_revisions cr WHERE cr.created_at >= $1 AND cr.created_at < $2 GROUP BY 1, 2, 5, 6 \
   UNION ALL \
   SELECT (ep.created_at AT TIME ZONE 'UTC')::date, ep.currency, 'rate_card', 'payment', ep.livemode, FALSE, TRUE, \
          SUM(ep.amount), COUNT(*) \
     FROM external_payments ep WHERE ep.created_at >= $1 AND ep.created_at < $2 GROUP BY 1, 2, 5 \
   UNION ALL \
   SELECT (r.first_seen AT TIME ZONE 'UTC')::date, r.currency, \
          CASE WHEN ep.payment_id IS NOT NULL THEN 'rate_card' ELSE 'pack' END, 'refund', r.livemode, \
          COALESCE(cr.contract_id = ANY($3), FALSE), \
          (cr.payment_id IS NOT NULL OR ep.payment_id IS NOT NULL), SUM(r.amount), COUNT(*) \
     FROM payment_refunds r \
     LEFT JOIN contract_revisions cr ON cr.payment_id = r.payment_id \
     LEFT JOIN external_payments ep ON ep.payment_id = r.payment_id \
    WHERE r.status = 'succeeded' AND r.first_seen >= $1 AND r.first_seen < $2 GROUP BY 1, 2, 3, 5, 6, 7 \
   UNION ALL \
   SELECT (d.updated_at AT TIME ZONE 'UTC')::date, d.currency, \
          CASE WHEN ep.payment_id IS NOT NULL THEN 'rate_card' ELSE 'pack' END, 'dispute_lost', d.livemode, \
          COALESCE(cr.contract_id = ANY($3), FALSE), \
          (cr.payment_id IS NOT NULL OR ep.payment_id IS NOT NULL), SUM(d.amount), COUNT(*) \
     FROM payment_disputes d \
     LEFT JOIN contract_revisions cr ON cr.payment_id = d.payment_id \
     LEFT JOIN external_payments ep ON ep.payment_id = d.payment_id \
    WHERE d.status = 'lost' AND d.updated_at >= $1 AND d.updated_at < $2 GROUP BY 1, 2, 3, 5, 6, 7 \
 ) m GROUP BY day, currency, source, movement, livemode, owner, matched ORDER BY day";

#[derive(sqlx::FromRow)]
struct Row {
    day: String,
    currency: String,
    source: String,
    movement: String,
    livemode: bool,
    owner: bool,
    matched: bool,
    amount: i64,
    n: i64,
}

/// Day totals for the inclusive UTC date range, classified for a deployment in `live` mode
/// with the owner's test contracts `owner_contracts`.
pub async fn day_totals(
    db: &Db,
    from: NaiveDate,
    to: NaiveDate,
    live: bool,
    owner_contracts: &[i64],
) -> StoreResult<Vec<DayTotal>> {
    let start: DateTime<Utc> = from.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    let end: DateTime<Utc> = (to + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    let rows: Vec<Row> = match db.reader() {
        On::Sqlite(c) => {
            let owners = serde_json::to_string(owner_contracts).expect("a list of integers is JSON");
            sqlx::query_as::<_, Row>(SQLITE).bind(start).bind(end).bind(owners).fetch_all(c).await?
        }
        On::Postgres(c) => {
            sqlx::query_as::<_, Row>(POSTGRES).bind(start).bind(end).bind(owner_contracts).fetch_all(c).await?
        }
    };
    let bad = |what: String| super::StoreError::Other(sqlx::Error::Decode(what.into()));
    rows.into_iter()
        .map(|r| {
            Ok(DayTotal {
                day: NaiveDate::parse_from_str(&r.day, "%Y-%m-%d").map_err(|e| bad(format!("day {}: {e}", r.day)))?,
                currency: r.currency,
                source: Source::parse(&r.source).map_err(bad)?,
                movement: Movement::parse(&r.movement).map_err(bad)?,
                class: Class::of(r.livemode, live, r.owner, r.matched),
                amount: r.amount,
                count: r.n,
            })
        })
        .collect()
}

/// The contracts of the configured owner emails and ids that exist: their purchases are the
/// owner's own tests.
pub async fn owner_contracts(db: &Db, emails: &[String], ids: &[i64]) -> StoreResult<Vec<i64>> {
    const OF_EMAIL: &str = "SELECT c.id FROM contracts c JOIN users u ON u.id = c.advertiser_id WHERE u.email = $1";
    let mut out: Vec<i64> = Vec::new();
    for email in emails {
        let found: Vec<i64> = on!(db.reader(), |c| sqlx::query_scalar::<_, i64>(OF_EMAIL)
            .bind(email.to_lowercase())
            .fetch_all(c)
            .await?);
        out.extend(found);
    }
    out.extend_from_slice(ids);
    out.sort_unstable();
    out.dedup();
    Ok(out)
}
