//! `purchases`: the PaymentIntents we created, recorded before the browser ever sees them, so
//! every payment that can reach the webhook is known locally with who started it.
use super::{on, Db, StoreResult, Tx};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Purchase {
    pub payment_intent_id: String,
    pub contract_id: i64,
    pub created_by: i64,
    pub amount: i64,
    pub currency: String,
    pub revisions: i64,
    pub status: String,
    pub idempotency_key: String,
    pub livemode: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Purchase {
    /// The terms this purchase was sold at (what its payment is checked against).
    pub fn terms(&self, base_revisions: i64) -> Result<crate::domain::PackTerms, String> {
        let currency = crate::domain::Currency::parse(&self.currency)?;
        crate::domain::PackTerms::new(crate::domain::Money::new(self.amount, currency), self.revisions, base_revisions)
    }
}

/// Stripe's PaymentIntent statuses, as the `purchases.status` column allows.
pub const STATUSES: [&str; 7] = [
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "canceled",
    "succeeded",
];

/// Records a purchase. A PaymentIntent recorded twice (a replayed idempotent create) keeps the
/// first row.
pub async fn record(db: &Db, p: &Purchase) -> StoreResult<()> {
    const SQL: &str =
        "INSERT INTO purchases (payment_intent_id, contract_id, created_by, amount, currency, revisions, \
           status, idempotency_key, livemode, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (payment_intent_id) DO NOTHING";
    on!(db.writer(), |c| {
        sqlx::query(SQL)
            .bind(&p.payment_intent_id)
            .bind(p.contract_id)
            .bind(p.created_by)
            .bind(p.amount)
            .bind(&p.currency)
            .bind(p.revisions)
            .bind(&p.status)
            .bind(&p.idempotency_key)
            .bind(p.livemode)
            .bind(p.created_at)
            .bind(p.updated_at)
            .execute(c)
            .await?;
    });
    Ok(())
}

pub async fn find(db: &Db, payment_intent_id: &str) -> StoreResult<Option<Purchase>> {
    const SQL: &str = "SELECT payment_intent_id, contract_id, created_by, amount, currency, revisions, status, \
         idempotency_key, livemode, created_at, updated_at FROM purchases WHERE payment_intent_id = $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Purchase>(SQL).bind(payment_intent_id).fetch_optional(c).await?))
}

pub async fn for_contract(db: &Db, contract_id: i64) -> StoreResult<Vec<Purchase>> {
    const SQL: &str = "SELECT payment_intent_id, contract_id, created_by, amount, currency, revisions, status, \
         idempotency_key, livemode, created_at, updated_at FROM purchases WHERE contract_id = $1 \
         ORDER BY created_at, payment_intent_id";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Purchase>(SQL).bind(contract_id).fetch_all(c).await?))
}

/// Moves an open purchase to the status Stripe reports. Succeeded and canceled are final, so a
/// stale report can never move a purchase out of them.
pub async fn refresh_status(db: &Db, payment_intent_id: &str, status: &str, now: DateTime<Utc>) -> StoreResult<bool> {
    if !STATUSES.contains(&status) {
        return Ok(false);
    }
    on!(db.writer(), |c| Ok(sqlx::query(MOVE_STATUS_SQL)
        .bind(payment_intent_id)
        .bind(status)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected()
        == 1))
}

/// Stripe does not guarantee order: succeeded and canceled are final, so a late event can never
/// move a purchase out of them.
const MOVE_STATUS_SQL: &str = "UPDATE purchases SET status = $2, updated_at = $3 \
     WHERE payment_intent_id = $1 AND status NOT IN ('succeeded', 'canceled')";

/// `refresh_status` in the caller's transaction, for a status an event of Stripe's reports
/// (finished in the same transaction). Whether an open purchase of ours moved.
pub async fn move_status(tx: &mut Tx, payment_intent_id: &str, status: &str, now: DateTime<Utc>) -> StoreResult<bool> {
    let moved = on!(tx.conn(), |c| sqlx::query(MOVE_STATUS_SQL)
        .bind(payment_intent_id)
        .bind(status)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(moved == 1)
}

/// Purchases started (PaymentIntents we created) from `from` on.
pub async fn started_since(db: &Db, from: DateTime<Utc>) -> StoreResult<i64> {
    const SQL: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM purchases WHERE created_at >= $1";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, i64>(SQL).bind(from).fetch_one(c).await?))
}
