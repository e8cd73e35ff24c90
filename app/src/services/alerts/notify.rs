//! Sending an alert's notice to the team: the one function every notice goes through, whatever
//! the channel: Slack (the incoming webhook of the daily summary) and email to the admins who opted
//! in (through the outbox).
use crate::domain::alerts::Notice;
use crate::services::Services;

/// Where a notice went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    pub channels: Vec<&'static str>,
}

/// Sends `notice` to every channel configured: Ok when each took it (none configured: Ok with no
/// channel, and the notice is settled, not kept for a channel that may never come), else the
/// first failure in words, and the caller keeps the notice owed to try again at the next
/// evaluation. A channel that queues rather than posts should take `notice.key()` as its
/// idempotency key: after another channel's failure the same notice is handed over again.
pub async fn send(svc: &Services, notice: &Notice) -> Result<Delivered, String> {
    let origin = svc.settings.web.public_origin.as_deref().unwrap_or_default();
    let text = notice.body(origin);
    let mut delivered = Delivered::default();
    if let Some(url) = &svc.settings.slack.webhook {
        crate::slack::post(url, &text).await.map_err(|e| format!("Slack: {e}"))?;
        delivered.channels.push("slack");
    }
    if crate::services::mail::enabled(svc) {
        // Queued, not sent: the outbox sends it after this, retried with backoff. Keyed by the
        // notice (rule, start or end, episode), so a notice handed over again after Slack
        // refused it is not queued twice.
        let letter = crate::domain::mail::from_lines(&notice.subject(), &text);
        let recipients =
            crate::store::users::alert_email_recipients(&svc.db).await.map_err(|e| format!("email: {e}"))?;
        for to in recipients {
            crate::services::mail::queue(svc, mail_kind(notice), Some(episode_ref(&notice.key())), &to, &letter)
                .await
                .map_err(|e| format!("email: {e}"))?;
        }
        delivered.channels.push("email");
    }
    Ok(delivered)
}

fn mail_kind(notice: &Notice) -> crate::domain::mail::Kind {
    match notice.kind {
        crate::domain::alerts::NoticeKind::Started => crate::domain::mail::Kind::AlertStarted,
        crate::domain::alerts::NoticeKind::Resolved => crate::domain::mail::Kind::AlertResolved,
    }
}

/// The outbox keys a message by a number: a notice's key (rule, start or end, episode) hashed
/// to 63 bits, where two notices colliding is as likely as guessing a SHA-256 prefix.
fn episode_ref(key: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) & i64::MAX
}
