//! `gateway_events`: what the gateway's other sources sent, byte for byte. Append-only (triggers
//! in both dialects); one row per (source, the sender's event id).
use super::{on, Db, StoreResult};
use chrono::{DateTime, Utc};

/// An event to store, as received and verified.
#[derive(Debug, Clone)]
pub struct NewGatewayEvent<'a> {
    pub source: &'a str,
    pub event_id: &'a str,
    pub event_type: Option<&'a str>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub payload: &'a [u8],
    pub headers: &'a str,
    pub verification: &'a str,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct GatewayEvent {
    pub id: i64,
    pub source: String,
    pub event_id: String,
    pub event_type: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub payload_sha256: String,
    pub headers: String,
    pub verification: String,
}

/// Stores `e` unless its (source, event id) is stored already: `Some(row id)` when this call
/// stored it, `None` for a copy. The UNIQUE key decides, so two copies arriving at once (at one
/// process or two) store one row and neither waits on a check the other could pass too.
pub async fn insert(db: &Db, e: &NewGatewayEvent<'_>) -> StoreResult<Option<i64>> {
    const SQL: &str = "INSERT INTO gateway_events (source, event_id, event_type, occurred_at, received_at, \
         payload, payload_sha256, headers, verification) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (source, event_id) DO NOTHING RETURNING id";
    let sha = crate::store::events::NewEvent::digest(e.payload);
    on!(db.writer(), |c| Ok(sqlx::query_scalar::<_, i64>(SQL)
        .bind(e.source)
        .bind(e.event_id)
        .bind(e.event_type)
        .bind(e.occurred_at)
        .bind(e.received_at)
        .bind(e.payload)
        .bind(&sha)
        .bind(e.headers)
        .bind(e.verification)
        .fetch_optional(c)
        .await?))
}

/// The stored event of `source` with the sender's id `event_id`.
pub async fn get(db: &Db, source: &str, event_id: &str) -> StoreResult<Option<GatewayEvent>> {
    const SQL: &str = "SELECT id, source, event_id, event_type, occurred_at, received_at, payload, payload_sha256, \
         headers, verification FROM gateway_events WHERE source = $1 AND event_id = $2";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, GatewayEvent>(SQL)
        .bind(source)
        .bind(event_id)
        .fetch_optional(c)
        .await?))
}

/// The newest events of `source` (every source when None), at most `limit`, newest first.
pub async fn recent(db: &Db, source: Option<&str>, limit: i64) -> StoreResult<Vec<GatewayEvent>> {
    const SQL: &str = "SELECT id, source, event_id, event_type, occurred_at, received_at, payload, payload_sha256, \
         headers, verification FROM gateway_events WHERE ($1 IS NULL OR source = $1) \
         ORDER BY received_at DESC, id DESC LIMIT $2";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, GatewayEvent>(SQL).bind(source).bind(limit).fetch_all(c).await?))
}

/// The events of `source` received in `[from, to)`, oldest first, at most `limit`.
pub async fn in_window(
    db: &Db,
    source: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<GatewayEvent>> {
    const SQL: &str = "SELECT id, source, event_id, event_type, occurred_at, received_at, payload, payload_sha256, \
         headers, verification FROM gateway_events WHERE source = $1 AND received_at >= $2 AND received_at < $3 \
         ORDER BY received_at, id LIMIT $4";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, GatewayEvent>(SQL)
        .bind(source)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(c)
        .await?))
}

/// How many events `source` sent that were stored.
pub async fn count(db: &Db, source: &str) -> StoreResult<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM gateway_events WHERE source = $1";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, i64>(SQL).bind(source).fetch_one(c).await?))
}

/// The newest `limit` events of the gateway source `f.source` matching `f` (received time,
/// type prefix, words in the payload), after `after` when given, as search hits. Read straight
/// from the table, not an index like Stripe's: a sender's events carry no facts to index beyond
/// these, and the (source, received_at) index bounds every search to one sender.
pub async fn search(
    db: &Db,
    f: &crate::domain::event_search::EventFilter,
    after: Option<&crate::domain::event_search::Cursor>,
    limit: i64,
) -> StoreResult<Vec<crate::domain::event_search::Hit>> {
    const SELECT: &str = "SELECT source, event_id, event_type, received_at FROM gateway_events WHERE source = ";
    // The payload is bytes: each dialect looks for the text's UTF-8 bytes in it.
    let (text_before, text_after) = match db.sql_dialect() {
        super::Dialect::Sqlite => (" AND instr(payload, CAST(", " AS BLOB)) > 0"),
        super::Dialect::Postgres => (" AND position(convert_to(", ", 'UTF8') in payload) > 0"),
    };
    let source = f.source.clone().unwrap_or_default();
    let rows: Vec<(String, String, Option<String>, DateTime<Utc>)> = on!(db.reader(), |c| {
        let mut qb = sqlx::QueryBuilder::new(SELECT);
        qb.push_bind(source.clone());
        if let Some(t) = f.from {
            qb.push(" AND received_at >= ").push_bind(t);
        }
        if let Some(t) = f.to {
            qb.push(" AND received_at < ").push_bind(t);
        }
        if let Some(p) = f.type_pattern() {
            qb.push(" AND event_type LIKE ").push_bind(p).push(" ESCAPE '\\'");
        }
        if let Some(text) = &f.text {
            qb.push(text_before).push_bind(text.clone()).push(text_after);
        }
        if let Some(c) = after {
            qb.push(" AND (received_at, event_id) < (").push_bind(c.received_at).push(", ");
            qb.push_bind(c.event_id.clone()).push(")");
        }
        qb.push(" ORDER BY received_at DESC, event_id DESC LIMIT ").push_bind(limit);
        qb.build_query_as().fetch_all(c).await?
    });
    Ok(rows
        .into_iter()
        .map(|(source, event_id, event_type, received_at)| crate::domain::event_search::Hit {
            event_id,
            event_type: event_type.unwrap_or_default(),
            livemode: true,
            received_at,
            status: "stored".into(),
            payment_intent: None,
            amount: None,
            currency: None,
            contract_id: None,
            note: None,
            source,
        })
        .collect())
}
