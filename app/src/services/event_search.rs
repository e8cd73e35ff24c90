//! Event search and export over the index (`store::event_search`), or over a gateway source's
//! events (`store::gateway_events`) when the search names one, for the admin's Events page,
//! `revision-store events search` and `GET /api/v1/events`.
use crate::domain::event_search::{Cursor, EventFilter, ExportFormat, Hit};
use crate::store::{event_search, gateway_events, Db, StoreResult};

/// Events a search indexes before it reads, so what was stored just before is found. A larger
/// backlog (a first start on a big store) is the worker's to work through; the page says so.
/// Small, because it runs on the asker's time (on SQLite, beside intake on the one writer).
const CATCH_UP: i64 = 500;
/// Batches an export indexes before it starts, so a file is complete whenever it can be.
const EXPORT_CATCH_UP_BATCHES: usize = 20;
/// Rows an export reads per query: its memory is one such page, whatever the export's length.
pub const EXPORT_PAGE: i64 = 1_000;

/// One page of results.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Page {
    pub hits: Vec<Hit>,
    /// Where the next page starts; None on the last page.
    pub next: Option<Cursor>,
    /// Stored events the index has not reached yet (they are not in these results).
    pub unindexed: i64,
}

impl Page {
    /// The page as the API and the CLI answer it: `next` is the text to send back as `after`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "events": self.hits,
            "next": self.next.as_ref().map(Cursor::encode),
            "unindexed": self.unindexed,
        })
    }
}

/// Brings the index up to date (`batches` of `CATCH_UP` at most) so a search sees what is
/// stored; how many stored events it still lacks. Indexing failing is logged, not passed on:
/// the index is derived data, and search must keep working on what it holds (the count says
/// what is missing).
pub async fn catch_up(db: &Db, batches: usize) -> StoreResult<i64> {
    for _ in 0..batches {
        match event_search::index_pending(db, CATCH_UP).await {
            Ok(n) if (n as i64) < CATCH_UP => break,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "indexing events for search failed; searching what is indexed");
                break;
            }
        }
    }
    event_search::unindexed(db).await
}

/// The search's rows: Stripe's events from their index, a gateway source's from its own table.
async fn hits(db: &Db, f: &EventFilter, after: Option<&Cursor>, limit: i64) -> StoreResult<Vec<Hit>> {
    match f.source {
        Some(_) => gateway_events::search(db, f, after, limit).await,
        None => event_search::search(db, f, after, limit).await,
    }
}

/// What the index still lacks for this search (a gateway source's search reads no index).
async fn catch_up_for(db: &Db, f: &EventFilter, batches: usize) -> StoreResult<i64> {
    match f.source {
        Some(_) => Ok(0),
        None => catch_up(db, batches).await,
    }
}

/// The page of `limit` results after `after`.
pub async fn page(db: &Db, f: &EventFilter, after: Option<&Cursor>, limit: i64) -> StoreResult<Page> {
    let unindexed = catch_up_for(db, f, 1).await?;
    // One row more than asked says whether there is a next page without a count.
    let mut hits = hits(db, f, after, limit + 1).await?;
    let next = (hits.len() as i64 > limit).then(|| {
        hits.truncate(limit as usize);
        hits.last().expect("a full page").cursor()
    });
    Ok(Page { hits, next, unindexed })
}

/// A search written out in full, a page of rows at a time: the caller sends each chunk on
/// (a response body, standard output) before asking for the next, so memory stays one page
/// however many rows match. The rows are those the search's pages show, in the same order.
pub struct Export {
    /// Stored events the index lacked when the export started (not in the file).
    pub unindexed: i64,
    db: Db,
    filter: EventFilter,
    format: ExportFormat,
    after: Option<Cursor>,
    started: bool,
    done: bool,
}

impl Export {
    pub async fn start(db: Db, filter: EventFilter, format: ExportFormat) -> StoreResult<Self> {
        let unindexed = catch_up_for(&db, &filter, EXPORT_CATCH_UP_BATCHES).await?;
        Ok(Self { unindexed, db, filter, format, after: None, started: false, done: false })
    }

    /// The next chunk of the file, or None when it is complete.
    pub async fn next_chunk(&mut self) -> StoreResult<Option<String>> {
        if self.done {
            return Ok(None);
        }
        let hits = hits(&self.db, &self.filter, self.after.as_ref(), EXPORT_PAGE).await?;
        let mut out = if self.started { String::new() } else { self.format.header() };
        self.started = true;
        for h in &hits {
            out.push_str(&self.format.record(h));
        }
        self.done = (hits.len() as i64) < EXPORT_PAGE;
        self.after = hits.last().map(Hit::cursor);
        if out.is_empty() && self.done {
            return Ok(None);
        }
        Ok(Some(out))
    }
}
