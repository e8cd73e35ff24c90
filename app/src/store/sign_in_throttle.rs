//! `sign_in_throttle`: the counters of `domain::throttle`, in the database so that every
//! process shares them. Checking and counting an attempt is one transaction holding both rows
//! (SQLite: the write lock; PostgreSQL: FOR UPDATE under READ COMMITTED, set here for the reason
//! given at `ledger::request_revision`), so parallel guesses are counted one after another.
use super::{write_pool, write_tx, Db, Dialect, StoreResult};
use crate::domain::throttle::{Counter, Policy};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// The keys of one sign-in attempt: its (email, address) pair and its address, hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pair: String,
    address: String,
}

impl Keys {
    pub fn new(email: &str, address: &str) -> Self {
        let hash = |s: String| hex::encode(Sha256::digest(s.as_bytes()));
        Self {
            pair: hash(format!("pair\n{}\n{address}", email.trim().to_lowercase())),
            address: hash(format!("address\n{address}")),
        }
    }
}

type Row = (String, i64, DateTime<Utc>, DateTime<Utc>, DateTime<Utc>);

fn counter(rows: &[Row], key: &str) -> Option<Counter> {
    rows.iter().find(|r| r.0 == key).map(|r| Counter {
        failures: r.1,
        first_at: r.2,
        last_at: r.3,
        next_allowed_at: r.4,
    })
}

const UPDATE: &str =
    "UPDATE sign_in_throttle SET failures = $2, first_at = $3, last_at = $4, next_allowed_at = $5 WHERE key = $1";

/// Checks an attempt and counts it as a failure: Ok(Err(wait)) when the pair's delay or the
/// address's cap says not yet (nothing is counted then).
pub async fn attempt(db: &Db, keys: &Keys, policy: &Policy, now: DateTime<Utc>) -> StoreResult<Result<(), Duration>> {
    // A placeholder long expired, so the rows exist to be locked; the rules read it as no count.
    let never = now - policy.window - policy.max_delay - Duration::days(1);
    write_tx!(db, |tx, dialect| {
        let lock = if dialect == Dialect::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").execute(&mut *tx).await?;
            " FOR UPDATE"
        } else {
            ""
        };
        for key in [&keys.address, &keys.pair] {
            sqlx::query(
                "INSERT INTO sign_in_throttle (key, failures, first_at, last_at, next_allowed_at) \
                 VALUES ($1, 0, $2, $2, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(never)
            .execute(&mut *tx)
            .await?;
        }
        // In key order, so two attempts never wait on each other's second row.
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT key, failures, first_at, last_at, next_allowed_at FROM sign_in_throttle \
             WHERE key IN ($1, $2) ORDER BY key{lock}"
        ))
        .bind(&keys.address)
        .bind(&keys.pair)
        .fetch_all(&mut *tx)
        .await?;
        let decided = policy
            .address_attempt(counter(&rows, &keys.address), now)
            .and_then(|a| policy.pair_attempt(counter(&rows, &keys.pair), now).map(|p| (a, p)));
        let (address, pair) = match decided {
            Ok(both) => both,
            Err(wait) => return Ok(Err(wait)), // nothing written worth keeping: roll back
        };
        for (key, c) in [(&keys.address, address), (&keys.pair, pair)] {
            sqlx::query(UPDATE)
                .bind(key)
                .bind(c.failures)
                .bind(c.first_at)
                .bind(c.last_at)
                .bind(c.next_allowed_at)
                .execute(&mut *tx)
                .await?;
        }
        StoreResult::Ok(Ok(()))
    })
}

/// The attempt succeeded: the pair starts again from nothing, the address gets its attempt back.
pub async fn succeeded(db: &Db, keys: &Keys, policy: &Policy) -> StoreResult<()> {
    write_tx!(db, |tx, dialect| {
        let lock = if dialect == Dialect::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").execute(&mut *tx).await?;
            " FOR UPDATE"
        } else {
            ""
        };
        sqlx::query("DELETE FROM sign_in_throttle WHERE key = $1").bind(&keys.pair).execute(&mut *tx).await?;
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT key, failures, first_at, last_at, next_allowed_at FROM sign_in_throttle WHERE key = $1{lock}"
        ))
        .bind(&keys.address)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(c) = counter(&rows, &keys.address) {
            let c = policy.address_success(c);
            sqlx::query(UPDATE)
                .bind(&keys.address)
                .bind(c.failures)
                .bind(c.first_at)
                .bind(c.last_at)
                .bind(c.next_allowed_at)
                .execute(&mut *tx)
                .await?;
        }
        StoreResult::Ok(())
    })
}

/// Removes counters that no longer hold anything back (`Policy::expired`, as SQL): keeps the
/// table to about a window of attempts. How many went.
pub async fn delete_expired(db: &Db, policy: &Policy, now: DateTime<Utc>) -> StoreResult<u64> {
    write_pool!(db, |pool| Ok(sqlx::query(
        "DELETE FROM sign_in_throttle WHERE last_at <= $1 AND next_allowed_at <= $2"
    )
    .bind(now - policy.window)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected()))
}
