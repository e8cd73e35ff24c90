//! Sending an alert's notice to the team: the one function every notice goes through, whatever
//! the channel. Slack today (the incoming webhook of the daily summary); email is added here.
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
    // Email to the admins who opted in (`store::users::alert_email_recipients`) goes here,
    // through the email outbox, with `notice.subject()`, `text` and `notice.key()`.
    Ok(delivered)
}
