//! `alert_state`, `alert_history` and `alert_lease`: each rule's state between evaluations, every
//! episode it had, and the one row that lets one evaluation run at a time across every process
//! (claimed with a conditional UPDATE once its lease ran out, like `store::slack::claim`).
use super::{on, Db, StoreResult};
use crate::domain::alerts::{NoticeKind, Rule, State};
use chrono::{DateTime, Utc};

/// Claims the evaluation until `lease_until`: the lease's generation when this caller may
/// evaluate, None while another holds it.
pub async fn claim(db: &Db, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> StoreResult<Option<i64>> {
    const SQL: &str = "UPDATE alert_lease SET lease_until = $2, generation = generation + 1 \
         WHERE id = 1 AND lease_until <= $1 RETURNING generation";
    on!(db.writer(), |c| Ok(sqlx::query_scalar::<_, i64>(SQL).bind(now).bind(lease_until).fetch_optional(c).await?))
}

/// Gives the lease back (only the holder of `generation` can), so the next evaluation need not
/// wait for it to run out, whatever clock that one is read with.
pub async fn release(db: &Db, generation: i64) -> StoreResult<()> {
    const SQL: &str = "UPDATE alert_lease SET lease_until = $2 WHERE id = 1 AND generation = $1";
    on!(db.writer(), |c| {
        sqlx::query(SQL).bind(generation).bind(DateTime::<Utc>::UNIX_EPOCH).execute(c).await?;
    });
    Ok(())
}

/// A rule's row, as the pages and the CLI show it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct StateRow {
    pub rule: String,
    pub firing_since: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub count: i64,
    pub peak: i64,
    pub detail: String,
    pub owed: Option<String>,
    pub last_notified_at: Option<DateTime<Utc>>,
    pub notify_error: Option<String>,
    pub evaluated_at: DateTime<Utc>,
}

impl StateRow {
    /// The domain's state (a rule this build does not know: None).
    pub fn state(&self) -> Option<(Rule, State)> {
        let rule = Rule::parse(&self.rule)?;
        Some((
            rule,
            State {
                firing_since: self.firing_since,
                resolved_at: self.resolved_at,
                count: self.count,
                peak: self.peak,
                detail: self.detail.clone(),
                owed: self.owed.as_deref().and_then(NoticeKind::parse),
                last_notified_at: self.last_notified_at,
            },
        ))
    }

    pub fn firing(&self) -> bool {
        self.firing_since.is_some() && self.resolved_at.is_none()
    }
}

pub async fn states(db: &Db) -> StoreResult<Vec<StateRow>> {
    const SQL: &str = "SELECT rule, firing_since, resolved_at, count, peak, detail, owed, last_notified_at, \
         notify_error, evaluated_at FROM alert_state ORDER BY rule";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, StateRow>(SQL).fetch_all(c).await?))
}

/// Writes `rule`'s state after an evaluation at `now`, and its episode (if it ever fired) into
/// the history, in one transaction.
pub async fn save(db: &Db, rule: Rule, s: &State, now: DateTime<Utc>) -> StoreResult<()> {
    const STATE: &str = "INSERT INTO alert_state (rule, firing_since, resolved_at, count, peak, detail, owed, \
           last_notified_at, evaluated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (rule) DO UPDATE SET firing_since = excluded.firing_since, resolved_at = excluded.resolved_at, \
           count = excluded.count, peak = excluded.peak, detail = excluded.detail, owed = excluded.owed, \
           last_notified_at = excluded.last_notified_at, evaluated_at = excluded.evaluated_at";
    const EPISODE: &str = "INSERT INTO alert_history (rule, started_at, resolved_at, peak, detail) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (rule, started_at) DO UPDATE SET \
           resolved_at = excluded.resolved_at, peak = excluded.peak, detail = excluded.detail";
    let mut tx = db.begin().await?;
    on!(tx.conn(), |c| {
        sqlx::query(STATE)
            .bind(rule.name())
            .bind(s.firing_since)
            .bind(s.resolved_at)
            .bind(s.count)
            .bind(s.peak)
            .bind(&s.detail)
            .bind(s.owed.map(NoticeKind::as_str))
            .bind(s.last_notified_at)
            .bind(now)
            .execute(&mut *c)
            .await?;
        if let Some(started) = s.firing_since {
            sqlx::query(EPISODE)
                .bind(rule.name())
                .bind(started)
                .bind(s.resolved_at)
                .bind(s.peak)
                .bind(&s.detail)
                .execute(&mut *c)
                .await?;
        }
    });
    tx.commit().await?;
    Ok(())
}

/// Says every rule was evaluated at `now` (one statement, whatever changed).
pub async fn touch(db: &Db, now: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "UPDATE alert_state SET evaluated_at = $1";
    on!(db.writer(), |c| {
        sqlx::query(SQL).bind(now).execute(c).await?;
    });
    Ok(())
}

/// Records that the notice of `kind` for the episode that started at `since` is settled: only
/// if the rule still owes exactly that one. `at`: when it went out (None: no channel is
/// configured, so it went nowhere and is not kept for one).
pub async fn notified(
    db: &Db,
    rule: Rule,
    kind: NoticeKind,
    since: DateTime<Utc>,
    at: Option<DateTime<Utc>>,
) -> StoreResult<bool> {
    const SQL: &str = "UPDATE alert_state SET owed = NULL, last_notified_at = COALESCE($4, last_notified_at), \
         notify_error = NULL \
         WHERE rule = $1 AND owed = $2 AND firing_since = $3";
    on!(db.writer(), |c| Ok(sqlx::query(SQL)
        .bind(rule.name())
        .bind(kind.as_str())
        .bind(since)
        .bind(at)
        .execute(c)
        .await?
        .rows_affected()
        == 1))
}

/// Why the owed notice could not be sent (it stays owed).
pub async fn notify_failed(db: &Db, rule: Rule, error: &str) -> StoreResult<()> {
    const SQL: &str = "UPDATE alert_state SET notify_error = $2 WHERE rule = $1";
    on!(db.writer(), |c| {
        sqlx::query(SQL).bind(rule.name()).bind(error).execute(c).await?;
    });
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Episode {
    pub rule: String,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub peak: i64,
    pub detail: String,
}

/// The latest episodes first, at most `limit`.
pub async fn history(db: &Db, limit: i64) -> StoreResult<Vec<Episode>> {
    const SQL: &str = "SELECT rule, started_at, resolved_at, peak, detail FROM alert_history \
         ORDER BY started_at DESC, id DESC LIMIT $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Episode>(SQL).bind(limit).fetch_all(c).await?))
}

/// Episodes that fired at some time in [from, to): started before its end and not resolved
/// before its start; oldest first.
pub async fn episodes_between(db: &Db, from: DateTime<Utc>, to: DateTime<Utc>) -> StoreResult<Vec<Episode>> {
    const SQL: &str = "SELECT rule, started_at, resolved_at, peak, detail FROM alert_history \
         WHERE started_at < $2 AND (resolved_at IS NULL OR resolved_at >= $1) ORDER BY started_at, id LIMIT 100";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Episode>(SQL).bind(from).bind(to).fetch_all(c).await?))
}
