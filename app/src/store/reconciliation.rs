//! `reconciliation_runs` and `reconciliation_findings`: each comparison of Stripe with our books,
//! and what it found. One run at a time across every process: a unique partial index on the
//! `running` status refuses the second, and a run whose process died (no heartbeat for
//! `STALE_AFTER`) is marked abandoned so it cannot block the schedule for ever.
use super::{on, ConstraintKind, Db, StoreError, StoreResult};
use chrono::{DateTime, Duration, Utc};

/// A running run that has not said it is alive for this long is taken as dead.
pub const STALE_AFTER_SECS: i64 = 600;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Run {
    pub id: i64,
    pub started_by: String,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    pub dry_run: bool,
    pub status: String,
    pub api_calls: i64,
    pub payments_checked: i64,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Starts a run, or returns None when another one is running.
pub async fn start(
    db: &Db,
    started_by: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    dry_run: bool,
    now: DateTime<Utc>,
) -> StoreResult<Option<i64>> {
    const ABANDON_STALE: &str = "UPDATE reconciliation_runs SET status = 'abandoned', finished_at = $2, \
         error = 'no heartbeat: its process stopped' WHERE status = 'running' AND heartbeat_at < $1";
    const INSERT: &str = "INSERT INTO reconciliation_runs (started_by, window_from, window_to, dry_run, status, \
         started_at, heartbeat_at) VALUES ($1, $2, $3, $4, 'running', $5, $5) RETURNING id";
    // Two statements, each its own transaction: a stale run is given up whether or not this one
    // may start.
    let inserted = on!(db.writer(), |c| {
        sqlx::query(ABANDON_STALE).bind(now - Duration::seconds(STALE_AFTER_SECS)).bind(now).execute(c).await?;
        sqlx::query_scalar::<_, i64>(INSERT)
            .bind(started_by)
            .bind(from)
            .bind(to)
            .bind(dry_run)
            .bind(now)
            .fetch_one(c)
            .await
    });
    match inserted.map_err(StoreError::from) {
        Ok(id) => Ok(Some(id)),
        Err(e) if e.is_constraint(ConstraintKind::Unique) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Says the run is alive, with its progress; false when it is no longer `running` (another
/// process marked it abandoned), so it must stop.
pub async fn heartbeat(db: &Db, run_id: i64, api_calls: i64, payments: i64, now: DateTime<Utc>) -> StoreResult<bool> {
    const SQL: &str = "UPDATE reconciliation_runs SET heartbeat_at = $2, api_calls = $3, payments_checked = $4 \
         WHERE id = $1 AND status = 'running'";
    on!(db.writer(), |c| Ok(sqlx::query(SQL)
        .bind(run_id)
        .bind(now)
        .bind(api_calls)
        .bind(payments)
        .execute(c)
        .await?
        .rows_affected()
        == 1))
}

/// Ends a run this process will not finish (the server is stopping), with the reason: unlike
/// a dead process's run, it need not wait out `STALE_AFTER_SECS` before the next may start.
pub async fn abandon(
    db: &Db,
    run_id: i64,
    reason: &str,
    api_calls: i64,
    payments: i64,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    // The figures only grow: a caller that no longer knows them passes 0.
    const SQL: &str = "UPDATE reconciliation_runs SET status = 'abandoned', error = $2, \
         api_calls = CASE WHEN $3 > api_calls THEN $3 ELSE api_calls END, \
         payments_checked = CASE WHEN $4 > payments_checked THEN $4 ELSE payments_checked END, \
         finished_at = $5, heartbeat_at = $5 WHERE id = $1 AND status = 'running'";
    on!(db.writer(), |c| {
        sqlx::query(SQL).bind(run_id).bind(reason).bind(api_calls).bind(payments).bind(now).execute(c).await?;
    });
    Ok(())
}

pub async fn finish(
    db: &Db,
    run_id: i64,
    error: Option<&str>,
    api_calls: i64,
    payments: i64,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE reconciliation_runs SET status = $2, error = $3, api_calls = $4, payments_checked = $5, \
         finished_at = $6, heartbeat_at = $6 WHERE id = $1 AND status = 'running'";
    on!(db.writer(), |c| {
        sqlx::query(SQL)
            .bind(run_id)
            .bind(if error.is_some() { "failed" } else { "finished" })
            .bind(error)
            .bind(api_calls)
            .bind(payments)
            .bind(now)
            .execute(c)
            .await?;
    });
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct FindingRow {
    pub id: i64,
    pub run_id: i64,
    pub category: String,
    pub state: String,
    pub payment_id: Option<String>,
    pub object_id: Option<String>,
    pub contract_id: Option<i64>,
    pub detail: String,
    pub evidence: String,
    pub created_at: DateTime<Utc>,
}

pub struct NewFinding<'a> {
    pub category: &'a str,
    pub state: &'a str,
    pub payment_id: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub contract_id: Option<i64>,
    pub detail: &'a str,
    pub evidence: &'a str,
}

pub async fn add_finding(db: &Db, run_id: i64, f: &NewFinding<'_>, now: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO reconciliation_findings (run_id, category, state, payment_id, object_id, \
         contract_id, detail, evidence, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    on!(db.writer(), |c| {
        sqlx::query(SQL)
            .bind(run_id)
            .bind(f.category)
            .bind(f.state)
            .bind(f.payment_id)
            .bind(f.object_id)
            .bind(f.contract_id)
            .bind(f.detail)
            .bind(f.evidence)
            .bind(now)
            .execute(c)
            .await?;
    });
    Ok(())
}

/// The most recent runs first.
pub async fn runs(db: &Db, limit: i64) -> StoreResult<Vec<Run>> {
    const SQL: &str = "SELECT id, started_by, window_from, window_to, dry_run, status, api_calls, payments_checked, \
         error, started_at, heartbeat_at, finished_at FROM reconciliation_runs ORDER BY id DESC LIMIT $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Run>(SQL).bind(limit).fetch_all(c).await?))
}

pub async fn run(db: &Db, id: i64) -> StoreResult<Option<Run>> {
    const SQL: &str = "SELECT id, started_by, window_from, window_to, dry_run, status, api_calls, payments_checked, \
         error, started_at, heartbeat_at, finished_at FROM reconciliation_runs WHERE id = $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Run>(SQL).bind(id).fetch_optional(c).await?))
}

pub async fn findings(db: &Db, run_id: i64) -> StoreResult<Vec<FindingRow>> {
    const SQL: &str = "SELECT id, run_id, category, state, payment_id, object_id, contract_id, detail, evidence, \
         created_at FROM reconciliation_findings WHERE run_id = $1 ORDER BY id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, FindingRow>(SQL).bind(run_id).fetch_all(c).await?))
}

/// Findings of a run counted by (category, state).
pub async fn counts(db: &Db, run_id: i64) -> StoreResult<Vec<(String, String, i64)>> {
    const SQL: &str = "SELECT category, state, CAST(COUNT(*) AS BIGINT) FROM reconciliation_findings \
         WHERE run_id = $1 GROUP BY category, state ORDER BY category, state";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, (String, String, i64)>(SQL).bind(run_id).fetch_all(c).await?))
}

/// Findings left open by the latest finished run that was not a dry run: what the admin
/// banner warns of until a later run no longer finds them.
pub async fn open_findings(db: &Db) -> StoreResult<i64> {
    const SQL: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM reconciliation_findings WHERE state = 'open' AND run_id = \
         (SELECT MAX(id) FROM reconciliation_runs WHERE status = 'finished' AND NOT dry_run)";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, i64>(SQL).fetch_one(c).await?))
}

/// When the last scheduled run started (the schedule's clock is the database's, shared by
/// every process).
pub async fn last_scheduled_start(db: &Db) -> StoreResult<Option<DateTime<Utc>>> {
    const SQL: &str = "SELECT MAX(started_at) FROM reconciliation_runs WHERE started_by = 'schedule'";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, Option<DateTime<Utc>>>(SQL).fetch_one(c).await?))
}

/// The latest finished run that was not a dry run: what "reconciled" means on the revenue page.
pub async fn latest_full_run(db: &Db) -> StoreResult<Option<Run>> {
    const SQL: &str = "SELECT id, started_by, window_from, window_to, dry_run, status, api_calls, payments_checked, \
         error, started_at, heartbeat_at, finished_at FROM reconciliation_runs \
         WHERE status = 'finished' AND NOT dry_run ORDER BY id DESC LIMIT 1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Run>(SQL).fetch_optional(c).await?))
}

/// Every finding about one payment, in every run.
pub async fn findings_for_payment(db: &Db, payment_id: &str) -> StoreResult<Vec<FindingRow>> {
    const SQL: &str = "SELECT id, run_id, category, state, payment_id, object_id, contract_id, detail, evidence, \
         created_at FROM reconciliation_findings WHERE payment_id = $1 ORDER BY id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, FindingRow>(SQL).bind(payment_id).fetch_all(c).await?))
}

/// When the first reconciliation ever started (the overdue rule's clock before any completed).
pub async fn first_start(db: &Db) -> StoreResult<Option<DateTime<Utc>>> {
    const SQL: &str = "SELECT MIN(started_at) FROM reconciliation_runs";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, Option<DateTime<Utc>>>(SQL).fetch_one(c).await?))
}
