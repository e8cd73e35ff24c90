//! Email, through the outbox: messages are queued in `mail_outbox` (links by the action that made
//! them; receipts and revocation notices by the worker, from the ledger rows themselves) and sent
//! by the worker afterwards, retried with backoff. Nothing here runs on a webhook's request: a
//! credit is mailed about because its ledger row exists, found by the worker's next look, and
//! the outbox's UNIQUE (kind, ref_id, recipient) makes that once per row however often it looks.
use super::Services;
use crate::domain::mail::{self as words, ContractName, Kind, Letter, Receipt, Revocation, RevokedBy};
use crate::store::mail_outbox::{self as store, LedgerMove, NewMail};
use crate::store::StoreError;
use chrono::{DateTime, Duration, Utc};

/// How far back the worker looks for ledger rows without their message: a process that was
/// down for a day still mails what happened meanwhile; older rows are history, not news.
const LOOK_BACK_HOURS: i64 = 48;
/// Ledger rows turned into messages per look, and messages sent per look, at most.
const BATCH: i64 = 50;
/// A claimed message is its sender's for this long: longer than one SMTP conversation's own
/// timeout, so a live sender is never overtaken.
const LEASE_SECS: i64 = 120;
/// A credit's receipt waits this long at most for Stripe's receipt link (Stripe unreachable):
/// after that it goes without it rather than not at all.
const RECEIPT_LINK_PATIENCE_MINUTES: i64 = 15;

/// Whether email is on (`SMTP_URL` set).
pub fn enabled(svc: &Services) -> bool {
    svc.settings.mail.is_some()
}

/// Queues `letter` for `to`; false when mail is off (nothing queued: the caller shows what it
/// would have sent) or this (kind, ref_id, recipient) was queued already.
pub async fn queue(
    svc: &Services,
    kind: Kind,
    ref_id: Option<i64>,
    to: &str,
    letter: &Letter,
) -> Result<bool, StoreError> {
    if !enabled(svc) {
        return Ok(false);
    }
    let mail = NewMail {
        kind: kind.as_str(),
        ref_id,
        recipient: to,
        subject: &letter.subject,
        text: &letter.text,
        html: &letter.html,
    };
    store::enqueue(&svc.db, &mail, Utc::now()).await
}

/// The store's address as its emails link to it: `PUBLIC_URL` (required with `SMTP_URL`).
fn origin(svc: &Services) -> &str {
    svc.settings.web.public_origin.as_deref().unwrap_or("").trim_end_matches('/')
}

/// What one look did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    pub queued: usize,
    pub sent: usize,
    pub failed: usize,
}

/// One look by the worker: messages for new ledger rows queued, then due messages sent.
pub async fn work(svc: &Services, now: DateTime<Utc>) -> Result<Look, StoreError> {
    if !enabled(svc) {
        return Ok(Look::default());
    }
    let queued = queue_ledger_mail(svc, now).await?;
    let (sent, failed) = send_due(svc, now).await?;
    Ok(Look { queued, sent, failed })
}

/// Receipts for new credits and notices for revisions taken back, each once (its ledger row is
/// its key in the outbox).
pub async fn queue_ledger_mail(svc: &Services, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let since = store::receipts_from(&svc.db, now).await?.max(now - Duration::hours(LOOK_BACK_HOURS));
    let mut queued = 0;
    for credit in store::credits_without_receipt(&svc.db, since, BATCH).await? {
        let Some(stripe_receipt_url) = stripe_receipt(svc, &credit, now).await else { continue };
        let letter = words::receipt(&Receipt {
            contract: contract_name(&credit),
            amount: credit.amount,
            currency: credit.currency.clone(),
            revisions: credit.revisions,
            available_after: credit.available_after,
            payment_id: credit.payment_id.clone(),
            credited_at: credit.created_at,
            stripe_receipt_url,
            contract_url: contract_url(svc, credit.contract_id),
        });
        queued += usize::from(queue(svc, Kind::Receipt, Some(credit.id), &credit.recipient, &letter).await?);
    }
    for moved in store::revocations_without_notice(&svc.db, since, BATCH).await? {
        let by = if moved.kind == "dispute_lost" { RevokedBy::DisputeLost } else { RevokedBy::Refund };
        let letter = words::revocation(&Revocation {
            contract: contract_name(&moved),
            by,
            revisions: moved.revisions,
            amount: moved.amount,
            currency: moved.currency.clone(),
            available_after: moved.available_after,
            payment_id: moved.payment_id.clone(),
            contract_url: contract_url(svc, moved.contract_id),
        });
        queued += usize::from(queue(svc, Kind::Revoked, Some(moved.id), &moved.recipient, &letter).await?);
    }
    Ok(queued)
}

fn contract_name(m: &LedgerMove) -> ContractName {
    ContractName { id: m.contract_id, publication: m.publication.clone(), ad_size: m.ad_size.clone() }
}

fn contract_url(svc: &Services, contract_id: i64) -> String {
    format!("{}/contracts/{contract_id}", origin(svc))
}

/// Stripe's receipt link for a credit: Some(None) when Stripe gives none (or no Stripe is
/// configured); None to wait for a later look (Stripe did not answer, and the credit is recent).
async fn stripe_receipt(svc: &Services, credit: &LedgerMove, now: DateTime<Utc>) -> Option<Option<String>> {
    let Some(stripe) = &svc.stripe else { return Some(None) };
    match stripe.payment_snapshot(&credit.payment_id, None).await {
        Ok(snapshot) => Some(snapshot.and_then(|s| s.receipt_url)),
        Err(e) if now - credit.created_at < Duration::minutes(RECEIPT_LINK_PATIENCE_MINUTES) => {
            tracing::info!(error = %e, credit = credit.id, "Stripe's receipt link is not to be had yet; the receipt waits");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, credit = credit.id, "sending the receipt without Stripe's receipt link");
            Some(None)
        }
    }
}

/// Sends the due messages, one SMTP conversation each; (sent, failed attempts).
pub async fn send_due(svc: &Services, now: DateTime<Utc>) -> Result<(usize, usize), StoreError> {
    let Some(mailer) = &svc.settings.mail else { return Ok((0, 0)) };
    let lease_until = now + Duration::seconds(LEASE_SECS);
    let (mut sent, mut failed) = (0, 0);
    for mail in store::claim_due(&svc.db, now, lease_until, BATCH).await? {
        let letter = Letter { subject: mail.subject, text: mail.text_body, html: mail.html_body };
        // Logs name the message's id, kind and the recipient's domain: never the address or
        // what the message says (customer data stays in the database).
        let to = words::loggable_address(&mail.recipient);
        match mailer.send(&mail.recipient, &letter).await {
            Ok(()) => {
                store::mark_sent(&svc.db, mail.id, Utc::now()).await?;
                tracing::info!(mail = mail.id, kind = %mail.kind, %to, "email sent");
                sent += 1;
            }
            Err(e) => {
                let next = (!e.permanent && mail.attempts < words::MAX_ATTEMPTS)
                    .then(|| Utc::now() + words::retry_after(mail.attempts));
                store::mark_failed(&svc.db, mail.id, &e.message, next).await?;
                match next {
                    Some(at) => tracing::warn!(mail = mail.id, kind = %mail.kind, %to, attempt = mail.attempts,
                        smtp = %e.code, next_attempt_at = %at, "email not sent; trying again later (the outbox row has the server's words)"),
                    None => tracing::error!(mail = mail.id, kind = %mail.kind, %to, attempt = mail.attempts,
                        smtp = %e.code, "email given up (the outbox row has the server's words)"),
                }
                failed += 1;
            }
        }
    }
    Ok((sent, failed))
}

/// The admin pages' line about email.
pub fn status_line(svc: &Services) -> String {
    match &svc.settings.mail {
        Some(m) => format!("Email: on, through {} from {}.", m.server(), m.from_address()),
        None => "Email: off (set SMTP_URL and MAIL_FROM to send invitations, password links and receipts by email); \
                 links are shown here to pass on by hand."
            .into(),
    }
}
