//! `sign_in_throttle`: the counters of `domain::throttle`, in the database so that every
//! process shares them. On PostgreSQL, checking and counting an attempt is one transaction
//! holding its rows (FOR UPDATE under READ COMMITTED, set here for the reason given at
//! `ledger::request_revision`), so parallel guesses are counted one after another. SQLite's one
//! process keeps them in memory and writes them now and then (`services::sign_in_throttle`,
//! through `load` and `save`), so a flood of refused sign-ins never queues on the write lock.
use super::{on, Db, Dialect, StoreResult, Tx};
use crate::domain::throttle::{Counter, Policy};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// The keys of one sign-in attempt, hashed: its (email, address) pair, its address and, for a
/// browser without the account's device cookie, the account (its email).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub(crate) pair: String,
    pub(crate) address: String,
    pub(crate) account: Option<String>,
}

impl Keys {
    /// `address`: the client's `domain::throttle::address_group`. `known_device`: the browser
    /// carries the account's device cookie, so the account's ceiling does not apply to it.
    pub fn new(email: &str, address: &str, known_device: bool) -> Self {
        let hash = |s: String| hex::encode(Sha256::digest(s.as_bytes()));
        let email = email.trim().to_lowercase();
        Self {
            pair: hash(format!("pair\n{email}\n{address}")),
            address: hash(format!("address\n{address}")),
            account: (!known_device).then(|| hash(format!("account\n{email}"))),
        }
    }

    /// Every key the attempt counts on, in key order (the order rows are locked in).
    pub(crate) fn all(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = [Some(&self.address), Some(&self.pair), self.account.as_ref()]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }
}

/// The rules applied to one attempt's counters: Err(wait) when any says not yet; else every
/// counter with this attempt counted, as (key, counter).
pub(crate) fn decide(
    policy: &Policy,
    keys: &Keys,
    current: impl Fn(&str) -> Option<Counter>,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Counter)>, Duration> {
    let mut counted = vec![
        (keys.address.clone(), policy.address_attempt(current(&keys.address), now)?),
        (keys.pair.clone(), policy.pair_attempt(current(&keys.pair), now)?),
    ];
    if let Some(account) = &keys.account {
        counted.push((account.clone(), policy.account_attempt(current(account), now)?));
    }
    Ok(counted)
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

const SELECT: &str = "SELECT key, failures, first_at, last_at, next_allowed_at FROM sign_in_throttle WHERE key = $1";

/// Begins an attempt's transaction. On PostgreSQL it reads what committed before each statement
/// (READ COMMITTED, whatever the server's default: see the module's comment), so a row read
/// after its lock is granted is the row the lock's holder left.
async fn begin(db: &Db) -> StoreResult<Tx> {
    let mut tx = db.begin().await?;
    if tx.dialect() == Dialect::Postgres {
        on!(tx.conn(), |c| {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").execute(c).await?;
        });
    }
    Ok(tx)
}

/// The row of `key`, held until the transaction ends: on PostgreSQL by its row lock (FOR
/// UPDATE), on SQLite by the database's write lock that BEGIN IMMEDIATE took (SQLite has no
/// FOR UPDATE, so its statement is the plain read).
async fn locked_row(tx: &mut Tx, key: &str) -> StoreResult<Option<Row>> {
    const FOR_UPDATE: &str =
        "SELECT key, failures, first_at, last_at, next_allowed_at FROM sign_in_throttle WHERE key = $1 FOR UPDATE";
    let sql = match tx.dialect() {
        Dialect::Postgres => FOR_UPDATE,
        Dialect::Sqlite => SELECT,
    };
    on!(tx.conn(), |c| Ok(sqlx::query_as(sql).bind(key).fetch_optional(c).await?))
}

/// Writes a key's counter over the row it has.
async fn update(tx: &mut Tx, key: &str, c: &Counter) -> StoreResult<()> {
    const SQL: &str =
        "UPDATE sign_in_throttle SET failures = $2, first_at = $3, last_at = $4, next_allowed_at = $5 WHERE key = $1";
    on!(tx.conn(), |conn| {
        sqlx::query(SQL)
            .bind(key)
            .bind(c.failures)
            .bind(c.first_at)
            .bind(c.last_at)
            .bind(c.next_allowed_at)
            .execute(conn)
            .await?;
    });
    Ok(())
}

/// Checks an attempt and counts it as a failure: Ok(Err(wait)) when the pair's delay or the
/// address's cap says not yet (nothing is counted then).
pub async fn attempt(db: &Db, keys: &Keys, policy: &Policy, now: DateTime<Utc>) -> StoreResult<Result<(), Duration>> {
    const PLACEHOLDER: &str = "INSERT INTO sign_in_throttle (key, failures, first_at, last_at, next_allowed_at) \
         VALUES ($1, 0, $2, $2, $2) ON CONFLICT (key) DO NOTHING";
    // A placeholder long expired, so the rows exist to be locked; the rules read it as no count.
    let never = now - policy.window - policy.max_delay - Duration::days(1);
    let mut tx = begin(db).await?;
    let all = keys.all();
    for key in &all {
        on!(tx.conn(), |c| {
            sqlx::query(PLACEHOLDER).bind(*key).bind(never).execute(c).await?;
        });
    }
    // In key order, so two attempts never wait on each other's second row.
    let mut rows: Vec<Row> = Vec::new();
    for key in &all {
        rows.extend(locked_row(&mut tx, key).await?);
    }
    let counted = match decide(policy, keys, |key| counter(&rows, key), now) {
        Ok(counted) => counted,
        Err(wait) => return Ok(Err(wait)), // nothing written worth keeping: dropped, it rolls back
    };
    for (key, c) in counted {
        update(&mut tx, &key, &c).await?;
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// The attempt succeeded: the pair starts again from nothing; the address (and the account,
/// when counted) get this attempt back.
pub async fn succeeded(db: &Db, keys: &Keys, policy: &Policy) -> StoreResult<()> {
    let mut tx = begin(db).await?;
    on!(tx.conn(), |c| {
        sqlx::query("DELETE FROM sign_in_throttle WHERE key = $1").bind(&keys.pair).execute(c).await?;
    });
    let mut shared: Vec<&String> = [Some(&keys.address), keys.account.as_ref()].into_iter().flatten().collect();
    shared.sort_unstable();
    for key in shared {
        let rows: Vec<Row> = locked_row(&mut tx, key).await?.into_iter().collect();
        if let Some(c) = counter(&rows, key) {
            update(&mut tx, key, &policy.address_success(c)).await?;
        }
    }
    tx.commit().await
}

/// The stored counters of these keys (a read: no write lock).
pub async fn load(db: &Db, keys: &[&str]) -> StoreResult<Vec<(String, Counter)>> {
    let mut found = Vec::new();
    for key in keys {
        let row: Option<Row> = on!(db.reader(), |c| sqlx::query_as(SELECT).bind(*key).fetch_optional(c).await?);
        found.extend(row.map(|r| (r.0.clone(), counter(&[r], key).expect("the row read"))));
    }
    Ok(found)
}

/// Writes counters kept in memory, in one transaction: Some(counter) stored, None deleted.
pub async fn save(db: &Db, counters: &[(String, Option<Counter>)]) -> StoreResult<()> {
    const UPSERT: &str = "INSERT INTO sign_in_throttle (key, failures, first_at, last_at, next_allowed_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, \
         first_at = excluded.first_at, last_at = excluded.last_at, next_allowed_at = excluded.next_allowed_at";
    const DELETE: &str = "DELETE FROM sign_in_throttle WHERE key = $1";
    let mut tx = db.begin().await?;
    for (key, counter) in counters {
        on!(tx.conn(), |c| {
            match counter {
                Some(n) => {
                    sqlx::query(UPSERT)
                        .bind(key)
                        .bind(n.failures)
                        .bind(n.first_at)
                        .bind(n.last_at)
                        .bind(n.next_allowed_at)
                        .execute(c)
                        .await?
                }
                None => sqlx::query(DELETE).bind(key).execute(c).await?,
            };
        });
    }
    tx.commit().await
}

/// Removes counters that no longer hold anything back (`Policy::expired`, as SQL): keeps the
/// table to about a window of attempts. How many went.
pub async fn delete_expired(db: &Db, policy: &Policy, now: DateTime<Utc>) -> StoreResult<u64> {
    const SQL: &str = "DELETE FROM sign_in_throttle WHERE last_at <= $1 AND next_allowed_at <= $2";
    on!(db.writer(), |c| Ok(sqlx::query(SQL).bind(now - policy.window).bind(now).execute(c).await?.rows_affected()))
}
