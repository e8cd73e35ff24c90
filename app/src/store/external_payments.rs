//! `external_payments`: Rate Card Landing Page payments, recorded and acknowledged; the external
//! system fulfils them.
use super::{on, Db, StoreResult, Tx};
use crate::domain::events::ExternalPayment;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ExternalPaymentRow {
    pub payment_id: String,
    pub advertiser_ref: String,
    pub size_ref: String,
    pub publication_ref: String,
    pub amount: i64,
    pub currency: String,
    pub livemode: bool,
    pub stripe_event_id: String,
    pub created_at: DateTime<Utc>,
}

/// Records a Rate Card payment in the caller's transaction (beside finishing its event). One row
/// per PaymentIntent: a redelivery or a second event for the same payment adds nothing.
pub async fn insert(tx: &mut Tx, x: &ExternalPayment, stripe_event_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO external_payments (payment_id, advertiser_ref, size_ref, publication_ref, \
        amount, currency, livemode, stripe_event_id, created_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (payment_id) DO NOTHING";
    on!(tx.conn(), |c| {
        sqlx::query(SQL)
            .bind(&x.payment_id)
            .bind(&x.advertiser_ref)
            .bind(&x.size_ref)
            .bind(&x.publication_ref)
            .bind(x.amount)
            .bind(&x.currency)
            .bind(x.livemode)
            .bind(stripe_event_id)
            .bind(now)
            .execute(c)
            .await?;
    });
    Ok(())
}

pub async fn find(db: &Db, payment_id: &str) -> StoreResult<Option<ExternalPaymentRow>> {
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, ExternalPaymentRow>(
        "SELECT payment_id, advertiser_ref, size_ref, publication_ref, amount, currency, livemode, \
         stripe_event_id, created_at FROM external_payments WHERE payment_id = $1"
    )
    .bind(payment_id)
    .fetch_optional(c)
    .await?))
}
