//! `webhook_faults`: per-minute tallies of what went wrong at webhook intake (a 503 answer, a
//! refused signature), gathered from each process's memory by its worker, summed by the alerts.
use super::{on, Db, StoreResult};
use chrono::{DateTime, Utc};

/// Adds `counts` (kind, n) to `minute`'s tallies: one upsert per kind, in one transaction.
pub async fn add(db: &Db, minute: DateTime<Utc>, counts: &[(&str, i64)]) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO webhook_faults (minute, kind, count) VALUES ($1, $2, $3) \
         ON CONFLICT (minute, kind) DO UPDATE SET count = webhook_faults.count + excluded.count";
    if counts.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    for (kind, n) in counts {
        on!(tx.conn(), |c| {
            sqlx::query(SQL).bind(minute).bind(*kind).bind(*n).execute(c).await?;
        });
    }
    tx.commit().await?;
    Ok(())
}

/// Every process's tallies of minutes from `from` on, summed by kind.
pub async fn since(db: &Db, from: DateTime<Utc>) -> StoreResult<Vec<(String, i64)>> {
    const SQL: &str = "SELECT kind, CAST(SUM(count) AS BIGINT) FROM webhook_faults WHERE minute >= $1 GROUP BY kind";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, (String, i64)>(SQL).bind(from).fetch_all(c).await?))
}

/// Removes the minutes before `before` (no rule looks back that far).
pub async fn delete_before(db: &Db, before: DateTime<Utc>) -> StoreResult<u64> {
    const SQL: &str = "DELETE FROM webhook_faults WHERE minute < $1";
    on!(db.writer(), |c| Ok(sqlx::query(SQL).bind(before).execute(c).await?.rows_affected()))
}
