//! Storage: one module per table, each query written for both SQLite and PostgreSQL.
//! Every function is a plain `async fn` over the database (`&Db`, for a read or a write of one
//! statement) or over a write transaction (`&mut Tx`, which knows its dialect; the caller begins
//! and commits it). Statements are written out whole. Most are the same text in both dialects
//! (`$1` placeholders work in SQLite too) and `on!` compiles it for each; where the dialects
//! differ, each gets its own whole statement and the function says why.
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

pub mod adjustments;
pub mod alerts;
pub mod api_keys;
pub mod balances;
pub mod contracts;
pub mod deliveries;
pub mod delivery_attempts;
pub mod deployment;
pub mod event_search;
pub mod events;
pub mod external_payments;
pub mod forward_destinations;
pub mod gateway_events;
pub mod ledger;
pub mod mail_outbox;
pub mod password_requests;
pub mod people;
pub mod purchases;
pub mod reconciliation;
pub mod refund_quotes;
pub mod revenue;
pub mod seals;
pub mod server_keys;
pub mod sessions;
pub mod sign_in_throttle;
pub mod slack;
pub mod users;
pub mod webhook_faults;
pub mod webhook_sources;

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// SQLite allows one writer at a time. Writes go through a one-connection pool, so they queue
/// fairly in-process instead of spinning on SQLITE_BUSY; reads use a pool of their own (WAL lets
/// them run beside the writer). Write transactions still BEGIN IMMEDIATE, which keeps other
/// processes (the CLI) from interleaving a read-then-write.
#[derive(Clone, Debug)]
pub struct SqliteDb {
    pub writer: SqlitePool,
    pub reader: SqlitePool,
}

#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    /// How long a request waits for a connection (or, on SQLite, for the write lock) before the
    /// database counts as unavailable.
    pub acquire_timeout: Duration,
    /// How long start-up waits for the database's first connection. Kept apart from
    /// `acquire_timeout`, which is short so that an outage answers 503 quickly: a PostgreSQL that
    /// is still starting, or a busy disk creating a SQLite file, must not stop the app starting.
    pub open_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(5), open_timeout: Duration::from_secs(30) }
    }
}

/// Waits for `pool`'s first connection, for up to `within`. Each attempt is bounded by the
/// pool's (short) acquire timeout; only a timeout is tried again, any other error is final.
/// A pooled connection that was in use this recently is handed out without a ping...
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);
/// ...unless the database was unavailable this recently: then every connection is pinged.
const PING_ALL_AFTER_OUTAGE: Duration = Duration::from_secs(60);

/// When a query last failed because the database was unavailable (milliseconds since the unix
/// epoch; 0: never in this process).
static LAST_OUTAGE_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn outage_seen() {
    LAST_OUTAGE_MS.store(chrono::Utc::now().timestamp_millis(), std::sync::atomic::Ordering::Relaxed);
}

fn outage_within(window: Duration) -> bool {
    recent(LAST_OUTAGE_MS.load(std::sync::atomic::Ordering::Relaxed), chrono::Utc::now().timestamp_millis(), window)
}

/// Whether `last_ms` (0: never) is no more than `window` before `now_ms`.
fn recent(last_ms: i64, now_ms: i64, window: Duration) -> bool {
    last_ms != 0 && now_ms - last_ms <= window.as_millis() as i64
}

/// How old a connection may grow before it is closed and replaced (sqlx's default
/// `max_lifetime`): checked when it is next taken, see [`pool_rules`].
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(30 * 60);

/// The rules every pool follows when it hands out a connection.
///
/// **No background reaper.** sqlx 0.8.6 closes idle and old connections from a background task
/// that can spin at 100 % CPU for ever: a connection given back becomes takeable a moment before
/// the pool's idle count is raised, a take in that moment wraps the count to `usize::MAX`, and
/// the task's loop over "every idle connection" never ends (sqlx issue #3645, fixed upstream by
/// pull request #4289, in no release this build can use). It hung an integration run here, a
/// worker thread spinning and a test waiting for ever. With neither `idle_timeout` nor
/// `max_lifetime` set sqlx starts no such task; a connection's age is checked when it is taken
/// instead, and one past [`MAX_CONNECTION_AGE`] is closed and replaced then. (A pool is small, so
/// idle connections left open cost little.)
///
/// **Ping only when in doubt.** sqlx pings every connection it hands out (a round trip to
/// PostgreSQL, a hand-off to SQLite's worker thread) as well as every one given back, so a
/// one-query read cost three round trips: half of a busy contract page's waits were pings. Now a
/// connection is pinged when taken only if it sat idle for more than [`PING_IF_IDLE_FOR`], or if
/// a query found the database unavailable in the last [`PING_ALL_AFTER_OUTAGE`]: after a restart
/// the pool still holds connections to the old server, and each would otherwise fail the first
/// query that took it. Outside those, a connection used within the second is taken as alive; if
/// the database went away in that second, its query fails like any query in an outage (a
/// delivery is answered 503 and Stripe retries; a page says to try again), and from then on
/// connections are checked.
fn pool_rules<DB: sqlx::Database>(options: sqlx::pool::PoolOptions<DB>) -> sqlx::pool::PoolOptions<DB> {
    options.idle_timeout(None).max_lifetime(None).test_before_acquire(false).before_acquire(|conn, meta| {
        Box::pin(async move {
            if meta.age > MAX_CONNECTION_AGE {
                return Ok(false); // closed; the pool takes or opens another
            }
            if meta.idle_for > PING_IF_IDLE_FOR || outage_within(PING_ALL_AFTER_OUTAGE) {
                conn.ping().await?;
            }
            Ok(true)
        })
    })
}

async fn first_connection<DB: sqlx::Database>(pool: &sqlx::Pool<DB>, within: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match pool.acquire().await {
            Ok(_) => return Ok(()),
            Err(sqlx::Error::PoolTimedOut) if tokio::time::Instant::now() < deadline => continue,
            Err(sqlx::Error::PoolTimedOut) => {
                return Err(format!("no connection within {} s", within.as_secs_f64()));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or cannot write right now (down, locked, disk full).
    /// Callers answer 503 so the sender retries.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("{kind} violated{}", .constraint.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Constraint {
        kind: ConstraintKind,
        constraint: Option<String>,
        #[source]
        source: sqlx::Error,
    },
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Why the database cannot take this instance's work (`Db::ready`), in words fit for a load
/// balancer's probe: never the driver's own text, which can name hosts, users and files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// It could not be reached, or would not take a write.
    #[error("database unavailable")]
    Unavailable,
    #[error("database is at migration {applied} of {expected}: run `revision-store migrate`")]
    Behind { applied: i64, expected: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    Unique,
    ForeignKey,
    Check,
    NotNull,
}

impl std::fmt::Display for ConstraintKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unique => "unique constraint",
            Self::ForeignKey => "foreign key",
            Self::Check => "check constraint",
            Self::NotNull => "not-null constraint",
        })
    }
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
    pub fn is_constraint(&self, kind: ConstraintKind) -> bool {
        matches!(self, Self::Constraint { kind: k, .. } if *k == kind)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let converted = Self::classify(e);
        if converted.is_unavailable() {
            outage_seen();
        }
        converted
    }
}

impl StoreError {
    fn classify(e: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => Self::Unavailable(e),
            sqlx::Error::Database(db) => {
                let kind = match db.kind() {
                    ErrorKind::UniqueViolation => Some(ConstraintKind::Unique),
                    ErrorKind::ForeignKeyViolation => Some(ConstraintKind::ForeignKey),
                    ErrorKind::CheckViolation => Some(ConstraintKind::Check),
                    ErrorKind::NotNullViolation => Some(ConstraintKind::NotNull),
                    _ => None,
                };
                if let Some(kind) = kind {
                    let constraint = db.constraint().map(str::to_string);
                    return Self::Constraint { kind, constraint, source: e };
                }
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let postgres = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some();
                if unavailable_code(&code, postgres) {
                    Self::Unavailable(e)
                } else {
                    Self::Other(e)
                }
            }
            _ => Self::Other(e),
        }
    }
}

/// Error codes that mean "cannot write now, try later" rather than "this write is wrong".
/// `postgres`: the code is a SQLSTATE. It must be told, not guessed from the code's shape: many
/// SQLSTATEs are all digits (22021, a byte sequence invalid in UTF-8, is 5 in its low byte and
/// was once read as SQLite's BUSY, so one bad row failed its whole batch as "unavailable").
fn unavailable_code(code: &str, postgres: bool) -> bool {
    // SQLite primary result codes (extended codes keep the primary in the low byte):
    // BUSY 5, LOCKED 6, NOMEM 7, READONLY 8, IOERR 10, FULL 13, CANTOPEN 14.
    if !postgres {
        return code.parse::<i64>().is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14));
    }
    // PostgreSQL SQLSTATE classes: 08 connection exception, 53 insufficient resources (disk
    // full, out of memory, too many connections), 57 operator intervention (shutdown),
    // 58 system error (I/O), 25006 read-only transaction (a standby).
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57")
        || code.starts_with("58")
        || code == "25006"
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// `%needle%` with LIKE's wildcards escaped (use with `ESCAPE '\\'`), so a search for "50%"
/// means 50%; empty for an empty search.
pub(crate) fn like_pattern(search: &str) -> String {
    let s = search.trim().to_lowercase();
    if s.is_empty() {
        return String::new();
    }
    let escaped = s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// One of the two databases' values: a pool, a connection or a transaction of SQLite, or of
/// PostgreSQL. sqlx's query types are generic over the database, so a statement is compiled for
/// the side it runs on: the store's functions take `on!` over one of these and write the same
/// (or, where the dialects differ, each side's own) whole statement in each arm.
pub(crate) enum On<S, P> {
    Sqlite(S),
    Postgres(P),
}

/// The store's one dispatch: evaluates `$body` with `$c` bound to SQLite's side of `$on`, or to
/// PostgreSQL's. It is a plain `match`: nothing is committed, returned or rolled back by it; a
/// `?` in the body returns from the enclosing function as it would anywhere.
macro_rules! on {
    ($on:expr, |$c:ident| $body:expr) => {
        match $on {
            $crate::store::On::Sqlite($c) => $body,
            $crate::store::On::Postgres($c) => $body,
        }
    };
}
pub(crate) use on;

/// A write transaction that knows its dialect: begun by [`Db::begin`], passed as `&mut Tx` to
/// the store's functions, ended by [`Tx::commit`]. Dropped without a commit (an error returned
/// with `?`, say) it rolls back, as every sqlx transaction does: a caller that wants its work
/// kept says so with `commit`, where it can be seen.
pub struct Tx(On<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Transaction<'static, sqlx::Postgres>>);

impl Tx {
    /// The connection the transaction runs on, for `on!`.
    pub(crate) fn conn(&mut self) -> On<&mut sqlx::SqliteConnection, &mut sqlx::PgConnection> {
        match &mut self.0 {
            On::Sqlite(tx) => On::Sqlite(&mut **tx),
            On::Postgres(tx) => On::Postgres(&mut **tx),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.0 {
            On::Sqlite(_) => Dialect::Sqlite,
            On::Postgres(_) => Dialect::Postgres,
        }
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self.0 {
            On::Sqlite(tx) => tx.commit().await?,
            On::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

impl Db {
    /// Begins a write transaction. SQLite takes the write lock up front (BEGIN IMMEDIATE), so a
    /// read inside the transaction cannot be overtaken by another writer (another process, the
    /// CLI, included); on PostgreSQL row locks (`FOR UPDATE`) do that where a function needs it.
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(Tx(match self {
            Db::Sqlite(s) => On::Sqlite(s.writer.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => On::Postgres(p.begin().await?),
        }))
    }

    /// A transaction for bookkeeping whose last moments may be lost in a crash without harm,
    /// such as forwarding's claims and attempt results (lost, a delivery is only sent again: at
    /// least once, as promised). On PostgreSQL it commits without waiting for the WAL to reach
    /// the disk (`synchronous_commit = off` for this transaction only: never torn, only the last
    /// fraction of a second undone after a crash), so it neither waits for nor adds to the
    /// flushes intake's commits wait on. SQLite's commits are as `begin`'s.
    pub async fn begin_relaxed(&self) -> StoreResult<Tx> {
        let mut tx = self.begin().await?;
        if let On::Postgres(t) = &mut tx.0 {
            sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut **t).await?;
        }
        Ok(tx)
    }

    /// The pools for reading: SQLite's read-only pool (WAL lets it run beside the writer), or
    /// PostgreSQL's one pool.
    pub(crate) fn reader(&self) -> On<&SqlitePool, &PgPool> {
        match self {
            Db::Sqlite(s) => On::Sqlite(&s.reader),
            Db::Postgres(p) => On::Postgres(p),
        }
    }

    /// The pools for a write of one statement (its own transaction): SQLite's one writer.
    pub(crate) fn writer(&self) -> On<&SqlitePool, &PgPool> {
        match self {
            Db::Sqlite(s) => On::Sqlite(&s.writer),
            Db::Postgres(p) => On::Postgres(p),
        }
    }

    /// Opens the database named by `url` (`sqlite:` or `postgres:`), creating a SQLite file and
    /// its folder if missing. Does not migrate.
    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Self, String> {
        if url.starts_with("sqlite:") {
            let base = SqliteConnectOptions::from_str(url)
                .map_err(|e| format!("DATABASE_URL is not a valid SQLite URL: {e}"))?;
            if url.contains(":memory:") || url.contains("mode=memory") {
                // Each pooled connection would get its own empty database.
                return Err("an in-memory SQLite database cannot be shared by the pool; use a file".into());
            }
            let path = base.get_filename().to_path_buf();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create the database folder {}: {e}", dir.display()))?;
            }
            let base = base
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                // FULL: a commit is on disk before we answer Stripe 2xx, power cut included.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(opts.acquire_timeout);
            let cannot = |e: String| format!("cannot open SQLite database {}: {e}", path.display());
            // The first connection alone creates the file and switches it to WAL (a write, which a
            // busy disk can make slow); it gets the start-up bound, and the pools' connections,
            // opened after it, find the work done.
            let first = tokio::time::timeout(opts.open_timeout, base.connect())
                .await
                .map_err(|_| cannot(format!("no connection within {} s", opts.open_timeout.as_secs_f64())))?
                .map_err(|e| cannot(e.to_string()))?;
            first.close().await.map_err(|e| cannot(e.to_string()))?;
            // Intake's multi-row statements have one text per batch size (up to 64) for each of
            // four statements: room for all of them prepared, beside everything else written.
            let writer = pool_rules(SqlitePoolOptions::new())
                .max_connections(1)
                .acquire_timeout(opts.acquire_timeout)
                .connect_lazy_with(base.clone().statement_cache_capacity(512));
            let reader = pool_rules(SqlitePoolOptions::new())
                .max_connections(opts.max_connections.max(1))
                .acquire_timeout(opts.acquire_timeout)
                .connect_lazy_with(base.read_only(true));
            first_connection(&writer, opts.open_timeout).await.map_err(cannot)?;
            first_connection(&reader, opts.open_timeout).await.map_err(cannot)?;
            Ok(Self::Sqlite(SqliteDb { writer, reader }))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))?;
            let pool = pool_rules(PgPoolOptions::new())
                .max_connections(opts.max_connections.max(1))
                .acquire_timeout(opts.acquire_timeout)
                .connect_lazy_with(options);
            first_connection(&pool, opts.open_timeout)
                .await
                .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
            Ok(Self::Postgres(pool))
        } else {
            Err("DATABASE_URL must start with sqlite: or postgres:".into())
        }
    }

    /// Applies pending migrations for this dialect. A failure must stop the program.
    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Db::Sqlite(s) => sqlx::migrate!("../migrations/sqlite").run(&s.writer).await?,
            Db::Postgres(p) => sqlx::migrate!("../migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    /// Whether this instance can do its work now (`/readyz`): the database answers, takes a
    /// write, and holds every migration this build knows. On SQLite the write lock is taken and
    /// given back, because a file another process holds locked can still be read while no
    /// webhook can be stored (so callers ask at most once a second: `server::readiness`). The
    /// driver's error goes to the log, never into the answer.
    pub async fn ready(&self) -> Result<(), NotReady> {
        const LATEST: &str = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";
        let down = |e: sqlx::Error| {
            tracing::warn!(error = %e, "readiness: the database did not answer");
            NotReady::Unavailable
        };
        let (applied, expected): (Option<i64>, Option<i64>) = match self {
            Db::Sqlite(s) => {
                let mut tx = s.writer.begin_with("BEGIN IMMEDIATE").await.map_err(down)?;
                let applied = sqlx::query_scalar(LATEST).fetch_one(&mut *tx).await.map_err(down)?;
                tx.rollback().await.map_err(down)?;
                (applied, sqlx::migrate!("../migrations/sqlite").iter().map(|m| m.version).max())
            }
            Db::Postgres(p) => (
                sqlx::query_scalar(LATEST).fetch_one(p).await.map_err(down)?,
                sqlx::migrate!("../migrations/postgres").iter().map(|m| m.version).max(),
            ),
        };
        match (applied, expected) {
            (Some(a), Some(e)) if a >= e => Ok(()),
            (a, e) => Err(NotReady::Behind { applied: a.unwrap_or(0), expected: e.unwrap_or(0) }),
        }
    }

    pub fn dialect(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Which SQL this database speaks, for statements written per dialect.
    pub(crate) fn sql_dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(s) => {
                s.writer.close().await;
                s.reader.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pools_run_no_background_reaper() {
        // Both unset is what keeps sqlx from starting the task that can spin (see `pool_rules`).
        let sqlite = super::pool_rules(sqlx::sqlite::SqlitePoolOptions::new());
        assert_eq!(
            (sqlite.get_idle_timeout(), sqlite.get_max_lifetime(), sqlite.get_min_connections()),
            (None, None, 0)
        );
        let pg = super::pool_rules(sqlx::postgres::PgPoolOptions::new());
        assert_eq!((pg.get_idle_timeout(), pg.get_max_lifetime(), pg.get_min_connections()), (None, None, 0));
    }

    #[test]
    fn a_query_finding_the_database_unavailable_has_connections_checked_again() {
        let e = super::StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(e.is_unavailable());
        assert!(super::outage_within(super::PING_ALL_AFTER_OUTAGE));
        let (now, minute) = (1_000_000_000, std::time::Duration::from_secs(60));
        assert!(super::recent(now - 59_000, now, minute));
        assert!(!super::recent(now - 61_000, now, minute), "the window closes");
        assert!(!super::recent(0, now, minute), "never");
    }

    #[test]
    fn unavailable_codes_are_read_in_their_own_dialect() {
        use super::unavailable_code;
        // SQLite: BUSY, BUSY_SNAPSHOT (517), FULL; not CONSTRAINT (19).
        assert!(unavailable_code("5", false) && unavailable_code("517", false) && unavailable_code("13", false));
        assert!(!unavailable_code("19", false));
        // PostgreSQL: connection lost, disk full, shutting down, a standby; not a bad value,
        // however its digits would read as a SQLite code (22021 & 0xff = 5, BUSY).
        for code in ["08006", "53100", "57P01", "25006"] {
            assert!(unavailable_code(code, true), "{code}");
        }
        for code in ["22021", "22001", "23505", "40001"] {
            assert!(!unavailable_code(code, true), "{code}");
        }
    }
}
