//! `contract_balances`: every contract's balance inputs, kept by the database's triggers in the
//! transaction of each ledger insert (migration 0011 says why), so the admin balances page can
//! sort 100,000 contracts by available through an index. The ledger rows stay the truth: this
//! module recomputes the kept sums from them (the `contract_balance_inputs` view, the one SQL
//! for a balance from its rows), reports any contract whose kept sums differ, and rewrites them.
use super::{on, Db, Dialect, StoreResult};

/// A contract whose kept balance differs from its ledger rows.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Drift {
    pub contract_id: i64,
    /// What `contract_balances` holds (None: no row at all).
    pub kept_base: Option<i64>,
    pub kept_purchased: Option<i64>,
    pub kept_revoked: Option<i64>,
    pub kept_requested: Option<i64>,
    /// What the ledger rows add up to.
    pub base: i64,
    pub purchased: i64,
    pub revoked: i64,
    pub requested: i64,
}

/// Every contract whose kept sums differ from its rows (at most `limit`, by id). Reads every
/// ledger row: for the daily check and the command line, not for pages.
pub async fn drift(db: &Db, limit: i64) -> StoreResult<Vec<Drift>> {
    const SQL: &str = "SELECT i.contract_id, b.base AS kept_base, b.purchased AS kept_purchased, \
           b.revoked AS kept_revoked, b.requested AS kept_requested, \
           i.base, i.purchased, i.revoked, i.requested \
         FROM contract_balance_inputs i LEFT JOIN contract_balances b ON b.contract_id = i.contract_id \
         WHERE b.base IS NULL OR b.base <> i.base OR b.purchased <> i.purchased \
           OR b.revoked <> i.revoked OR b.requested <> i.requested \
         ORDER BY i.contract_id LIMIT $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Drift>(SQL).bind(limit).fetch_all(c).await?))
}

/// Rewrites a contract's kept sums from its rows. Under the contract's lock, as a revision
/// request takes it: on PostgreSQL a ledger insert for the contract checks its foreign key
/// with a share lock this waits for (and blocks), so no row lands between the sums read here
/// and the write; SQLite's one writer gives the same.
pub async fn rebuild(db: &Db, contract_id: i64) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO contract_balances (contract_id, base, purchased, revoked, requested) \
         SELECT contract_id, base, purchased, revoked, requested FROM contract_balance_inputs \
           WHERE contract_id = $1 \
         ON CONFLICT (contract_id) DO UPDATE SET base = excluded.base, purchased = excluded.purchased, \
           revoked = excluded.revoked, requested = excluded.requested";
    let mut tx = db.begin().await?;
    if tx.dialect() == Dialect::Postgres {
        on!(tx.conn(), |c| {
            sqlx::query("SELECT id FROM contracts WHERE id = $1 FOR UPDATE").bind(contract_id).execute(c).await?;
        });
    }
    on!(tx.conn(), |c| {
        sqlx::query(SQL).bind(contract_id).execute(c).await?;
    });
    tx.commit().await
}
