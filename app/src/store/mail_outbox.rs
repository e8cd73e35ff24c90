//! `mail_outbox`: email waiting to be sent, being sent, sent, or given up; and `mail_state`, since
//! when ledger rows are mailed about. A message is claimed for sending with a lease (a
//! conditional UPDATE that re-checks its own WHERE, so two processes never send one message at
//! once), then marked sent, or failed with its next attempt's time.
use super::{on, Db, StoreResult, Tx};
use chrono::{DateTime, Utc};

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewMail<'a> {
    pub kind: &'a str,
    /// The ledger row or alert episode it is about: with kind and recipient, it is mailed once.
    pub ref_id: Option<i64>,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct OutboxMail {
    pub id: i64,
    pub kind: String,
    pub ref_id: Option<i64>,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

const INSERT: &str = "INSERT INTO mail_outbox (kind, ref_id, recipient, subject, text_body, html_body, \
    next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING";

/// Queues a message, due now; false when this (kind, ref_id, recipient) is queued already.
pub async fn enqueue(db: &Db, mail: &NewMail<'_>, now: DateTime<Utc>) -> StoreResult<bool> {
    on!(db.writer(), |c| Ok(bind_insert(sqlx::query(INSERT), mail, now).execute(c).await?.rows_affected() == 1))
}

/// The same, in the caller's transaction: the message exists if and only if its cause commits.
pub async fn enqueue_in(tx: &mut Tx, mail: &NewMail<'_>, now: DateTime<Utc>) -> StoreResult<bool> {
    on!(tx.conn(), |c| Ok(bind_insert(sqlx::query(INSERT), mail, now).execute(c).await?.rows_affected() == 1))
}

fn bind_insert<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    mail: &NewMail<'q>,
    now: DateTime<Utc>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.bind(mail.kind)
        .bind(mail.ref_id)
        .bind(mail.recipient)
        .bind(mail.subject)
        .bind(mail.text)
        .bind(mail.html)
        .bind(now)
}

/// Claims up to `limit` due messages until `lease_until`: queued ones whose time has come, and
/// ones whose sender's lease ran out (it died mid-send; the message may go twice then, which
/// SMTP cannot rule out anyway, but never by two live senders).
pub async fn claim_due(
    db: &Db,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<OutboxMail>> {
    // The outer WHERE repeats the inner one: a row another process claimed between the two is
    // re-checked against its new version (PostgreSQL) or was never visible (SQLite's one writer).
    const SQL: &str = "UPDATE mail_outbox SET status = 'sending', attempts = attempts + 1, lease_until = $2 \
         WHERE id IN (SELECT id FROM mail_outbox WHERE status IN ('queued', 'sending') AND next_attempt_at <= $1 \
                        AND (status = 'queued' OR lease_until < $1) ORDER BY next_attempt_at LIMIT $3) \
           AND status IN ('queued', 'sending') AND next_attempt_at <= $1 AND (status = 'queued' OR lease_until < $1) \
         RETURNING id, kind, ref_id, recipient, subject, text_body, html_body, status, attempts, next_attempt_at, \
                   last_error, created_at, sent_at";
    on!(db.writer(), |c| Ok(sqlx::query_as::<_, OutboxMail>(SQL)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(c)
        .await?))
}

pub async fn mark_sent(db: &Db, id: i64, now: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "UPDATE mail_outbox SET status = 'sent', sent_at = $2, lease_until = NULL, last_error = NULL \
        WHERE id = $1 AND status = 'sending'";
    on!(db.writer(), |c| {
        sqlx::query(SQL).bind(id).bind(now).execute(c).await?;
    });
    Ok(())
}

/// A failed attempt: queued again for `next_attempt_at`, or given up (`failed`) when None.
pub async fn mark_failed(db: &Db, id: i64, error: &str, next_attempt_at: Option<DateTime<Utc>>) -> StoreResult<()> {
    const RETRY: &str = "UPDATE mail_outbox SET status = 'queued', last_error = $2, next_attempt_at = $3, \
        lease_until = NULL WHERE id = $1 AND status = 'sending'";
    const GIVE_UP: &str = "UPDATE mail_outbox SET status = 'failed', last_error = $2, lease_until = NULL \
        WHERE id = $1 AND status = 'sending'";
    on!(db.writer(), |c| {
        match next_attempt_at {
            Some(at) => sqlx::query(RETRY).bind(id).bind(error).bind(at).execute(c).await?,
            None => sqlx::query(GIVE_UP).bind(id).bind(error).execute(c).await?,
        };
    });
    Ok(())
}

/// The newest messages, for the admin page.
pub async fn recent(db: &Db, limit: i64) -> StoreResult<Vec<OutboxMail>> {
    const SQL: &str = "SELECT id, kind, ref_id, recipient, subject, text_body, html_body, status, attempts, \
        next_attempt_at, last_error, created_at, sent_at FROM mail_outbox ORDER BY id DESC LIMIT $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, OutboxMail>(SQL).bind(limit).fetch_all(c).await?))
}

/// Messages by status (`queued`, `sending`, `sent`, `failed`).
pub async fn counts(db: &Db) -> StoreResult<Vec<(String, i64)>> {
    const SQL: &str = "SELECT status, COUNT(*) FROM mail_outbox GROUP BY status ORDER BY status";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, (String, i64)>(SQL).fetch_all(c).await?))
}

/// Since when ledger rows are mailed about: the first caller's `now`, kept.
pub async fn receipts_from(db: &Db, now: DateTime<Utc>) -> StoreResult<DateTime<Utc>> {
    const INSERT: &str = "INSERT INTO mail_state (id, receipts_from) VALUES (1, $1) ON CONFLICT (id) DO NOTHING";
    const SELECT: &str = "SELECT receipts_from FROM mail_state WHERE id = 1";
    on!(db.writer(), |c| {
        sqlx::query(INSERT).bind(now).execute(c).await?;
        Ok(sqlx::query_scalar::<_, DateTime<Utc>>(SELECT).fetch_one(c).await?)
    })
}

/// A ledger row (a credit, or revisions taken back) no message has been queued for, with what
/// its message says: the contract, its owner's address, and the revisions available right after
/// it (the balance's inputs counted up to the row's own moment).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LedgerMove {
    pub id: i64,
    /// `credit`, or the adjustment's kind (`refund`, `dispute_lost`).
    pub kind: String,
    pub contract_id: i64,
    pub publication: String,
    pub ad_size: String,
    pub recipient: String,
    pub payment_id: String,
    pub revisions: i64,
    pub amount: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub available_after: i64,
}

/// Credits since `since` without a receipt queued, oldest first, with the revisions available
/// right after each (base + purchased − revoked − requested, each counted up to the credit's
/// own moment: the sums `contract_balance_inputs` makes for now). Only live accounts are mailed.
pub async fn credits_without_receipt(db: &Db, since: DateTime<Utc>, limit: i64) -> StoreResult<Vec<LedgerMove>> {
    const SQL: &str = "SELECT r.id, 'credit' AS kind, c.id AS contract_id, c.publication, c.ad_size, \
            u.email AS recipient, r.payment_id, r.revisions, r.amount, r.currency, r.created_at, \
            CAST(c.base_revisions \
              + COALESCE((SELECT SUM(r2.revisions) FROM contract_revisions r2 \
                          WHERE r2.contract_id = c.id AND r2.created_at <= r.created_at), 0) \
              - COALESCE((SELECT SUM(a2.revoked) FROM revision_adjustments a2 \
                          WHERE a2.contract_id = c.id AND a2.created_at <= r.created_at), 0) \
              - (SELECT COUNT(*) FROM revision_requests q WHERE q.contract_id = c.id AND q.created_at <= r.created_at) \
            AS BIGINT) AS available_after \
         FROM contract_revisions r JOIN contracts c ON c.id = r.contract_id JOIN users u ON u.id = c.advertiser_id \
         WHERE r.created_at >= $1 AND u.deactivated_at IS NULL \
           AND NOT EXISTS (SELECT 1 FROM mail_outbox m WHERE m.kind = 'receipt' AND m.ref_id = r.id) \
         ORDER BY r.created_at, r.id LIMIT $2";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, LedgerMove>(SQL).bind(since).bind(limit).fetch_all(c).await?))
}

/// Refunds and lost disputes that took revisions back since `since`, without a notice queued,
/// with the revisions available right after each (as above).
pub async fn revocations_without_notice(db: &Db, since: DateTime<Utc>, limit: i64) -> StoreResult<Vec<LedgerMove>> {
    const SQL: &str = "SELECT a.id, a.kind, c.id AS contract_id, c.publication, c.ad_size, \
            u.email AS recipient, a.payment_id, a.revoked AS revisions, a.amount, a.currency, a.created_at, \
            CAST(c.base_revisions \
              + COALESCE((SELECT SUM(r2.revisions) FROM contract_revisions r2 \
                          WHERE r2.contract_id = c.id AND r2.created_at <= a.created_at), 0) \
              - COALESCE((SELECT SUM(a2.revoked) FROM revision_adjustments a2 \
                          WHERE a2.contract_id = c.id AND a2.created_at <= a.created_at), 0) \
              - (SELECT COUNT(*) FROM revision_requests q WHERE q.contract_id = c.id AND q.created_at <= a.created_at) \
            AS BIGINT) AS available_after \
         FROM revision_adjustments a JOIN contracts c ON c.id = a.contract_id JOIN users u ON u.id = c.advertiser_id \
         WHERE a.created_at >= $1 AND a.revoked > 0 AND a.kind IN ('refund', 'dispute_lost') \
           AND u.deactivated_at IS NULL \
           AND NOT EXISTS (SELECT 1 FROM mail_outbox m WHERE m.kind = 'revoked' AND m.ref_id = a.id) \
         ORDER BY a.created_at, a.id LIMIT $2";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, LedgerMove>(SQL).bind(since).bind(limit).fetch_all(c).await?))
}
