//! `deployment_modes`: the Stripe modes this database has been served in, newest last. Only
//! appended to; `seq` is the primary key, so of two processes recording the same next entry,
//! one insert wins and the other reads again.
use super::{on, Db, StoreResult};
use crate::domain::deployment::DeploymentMode;
use chrono::{DateTime, Utc};

/// The newest entry: (seq, mode); None for a database never served.
pub async fn current(db: &Db) -> StoreResult<Option<(i64, DeploymentMode)>> {
    const SQL: &str = "SELECT seq, mode FROM deployment_modes ORDER BY seq DESC LIMIT 1";
    let row: Option<(i64, String)> = on!(db.reader(), |c| sqlx::query_as(SQL).fetch_optional(c).await?);
    // The CHECK constraint admits only the three modes, so a parse failure is a corrupt row.
    Ok(row.map(|(seq, mode)| (seq, DeploymentMode::parse(&mode).expect("deployment_modes.mode is CHECKed"))))
}

/// Appends `mode` as entry `seq` (1 for the first); false when another process recorded that
/// entry first.
pub async fn record(
    db: &Db,
    seq: i64,
    mode: DeploymentMode,
    switched_from: Option<DeploymentMode>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    const SQL: &str = "INSERT INTO deployment_modes (seq, mode, switched_from, recorded_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (seq) DO NOTHING";
    let inserted = on!(db.writer(), |c| sqlx::query(SQL)
        .bind(seq)
        .bind(mode.as_str())
        .bind(switched_from.map(DeploymentMode::as_str))
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(inserted == 1)
}
