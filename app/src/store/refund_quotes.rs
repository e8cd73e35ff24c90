//! `refund_quotes`: an admin's refund confirmations, kept server-side until a submit consumes
//! one (migration 0015 says why each column and constraint is there).
use super::{on, ConstraintKind, Db, StoreError, StoreResult};
use chrono::{DateTime, Utc};

/// A confirmation as quoted.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundQuoteRow {
    pub token: String,
    pub payment_id: String,
    pub contract_id: i64,
    /// `all`, or a number of revisions.
    pub ask: String,
    pub amount: i64,
    /// `domain::adjustments::PaymentMoment::fingerprint` when quoted.
    pub moment: String,
    pub quoted_by: String,
}

pub async fn insert(db: &Db, q: &RefundQuoteRow, now: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO refund_quotes (token, payment_id, contract_id, ask, amount, moment, quoted_by, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    on!(db.writer(), |c| {
        sqlx::query(SQL)
            .bind(&q.token)
            .bind(&q.payment_id)
            .bind(q.contract_id)
            .bind(&q.ask)
            .bind(q.amount)
            .bind(&q.moment)
            .bind(&q.quoted_by)
            .bind(now)
            .execute(c)
            .await?;
    });
    Ok(())
}

/// What consuming a confirmation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// Consumed now, by this call: the refund may go ahead.
    Now(RefundQuoteRow),
    /// Consumed before (a reload, a second submit).
    Already,
    /// The payment is not at the quoted moment any more.
    Changed,
    /// Another confirmation of this same moment holds its claim: consumed first (its refund is
    /// what changes the payment), or given back after Stripe's answer to it was lost and what
    /// Stripe holds could not be learnt (`reopen`): `unsettled` names that one.
    Claimed { unsettled: Option<String> },
    /// No such confirmation (of this payment).
    Unknown,
}

/// Consumes confirmation `token` of `payment_id` if it is unused and the payment is still at
/// its quoted `moment` (now). One conditional UPDATE: of two submits of one confirmation, one
/// consumes it; of two confirmations of one moment, the UNIQUE `claim` lets one through.
pub async fn consume(
    db: &Db,
    token: &str,
    payment_id: &str,
    moment: &str,
    now: DateTime<Utc>,
) -> StoreResult<Consumed> {
    const CONSUME: &str = "UPDATE refund_quotes SET consumed_at = $4, claim = payment_id || ' ' || moment \
         WHERE token = $1 AND payment_id = $2 AND consumed_at IS NULL AND moment = $3 \
         RETURNING token, payment_id, contract_id, ask, amount, moment, quoted_by";
    const CLAIMED_BY: &str = "SELECT token FROM refund_quotes \
         WHERE claim = payment_id || ' ' || moment AND payment_id = $1 AND moment = $2 AND consumed_at IS NULL";
    const CONSUMED: &str = "SELECT consumed_at IS NOT NULL FROM refund_quotes WHERE token = $1 AND payment_id = $2";
    let updated = on!(db.writer(), |c| sqlx::query_as::<_, RefundQuoteRow>(CONSUME)
        .bind(token)
        .bind(payment_id)
        .bind(moment)
        .bind(now)
        .fetch_optional(c)
        .await);
    match updated {
        Ok(Some(row)) => return Ok(Consumed::Now(row)),
        Ok(None) => {}
        Err(e) => {
            let e = StoreError::from(e);
            if !e.is_constraint(ConstraintKind::Unique) {
                return Err(e);
            }
            let unsettled: Option<String> = on!(db.reader(), |c| sqlx::query_scalar(CLAIMED_BY)
                .bind(payment_id)
                .bind(moment)
                .fetch_optional(c)
                .await?);
            return Ok(Consumed::Claimed { unsettled });
        }
    }
    let consumed: Option<bool> =
        on!(db.reader(), |c| sqlx::query_scalar(CONSUMED).bind(token).bind(payment_id).fetch_optional(c).await?);
    Ok(match consumed {
        None => Consumed::Unknown,
        Some(true) => Consumed::Already,
        Some(false) => Consumed::Changed,
    })
}

/// Gives a consumed confirmation back after Stripe refused its refund (or could not be
/// reached): the same confirmation may be submitted again, with the same idempotency key, so
/// even a refund Stripe made without our hearing of it is not made twice.
pub async fn release(db: &Db, token: &str) -> StoreResult<()> {
    const SQL: &str = "UPDATE refund_quotes SET consumed_at = NULL, claim = NULL WHERE token = $1";
    on!(db.writer(), |c| {
        sqlx::query(SQL).bind(token).execute(c).await?;
    });
    Ok(())
}

/// Gives a consumed confirmation back but keeps its claim on the payment's moment: Stripe's
/// answer to its refund was lost and what Stripe holds could not be learnt, so the refund may
/// exist. Only this confirmation (the same idempotency key) may be submitted again; another of
/// the same moment is held off until Stripe's refunds are known (`release` then frees it).
pub async fn reopen(db: &Db, token: &str) -> StoreResult<()> {
    const SQL: &str = "UPDATE refund_quotes SET consumed_at = NULL WHERE token = $1";
    on!(db.writer(), |c| {
        sqlx::query(SQL).bind(token).execute(c).await?;
    });
    Ok(())
}

/// How long an unused confirmation is kept: an admin answers a confirmation page within
/// minutes; one older than this is removed (a submit of it is told to start again), so the
/// table does not grow by every page view. Consumed confirmations are kept as the record of
/// who confirmed which refund, and one holding a claim (`reopen`) until Stripe is heard.
pub const UNUSED_KEPT: chrono::Duration = chrono::Duration::days(1);

/// Removes confirmations never used that were quoted before `before`; returns how many.
pub async fn delete_unused(db: &Db, before: DateTime<Utc>) -> StoreResult<u64> {
    const SQL: &str = "DELETE FROM refund_quotes WHERE consumed_at IS NULL AND claim IS NULL AND created_at < $1";
    on!(db.writer(), |c| Ok(sqlx::query(SQL).bind(before).execute(c).await?.rows_affected()))
}
