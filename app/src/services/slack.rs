//! Slack: the daily summary, sent once per day across every process (the `slack_summaries` row
//! decides who sends), retried with backoff; and the answer to a verified `/revenue` command.
use super::Services;
use crate::domain::revenue::Period;
use crate::domain::slack::{self as words, Ask};
use crate::slack::{SigningSecret, WebhookUrl};
use crate::store::{self, StoreError};
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};

/// How long a claimed send is ours: longer than the post's own 10 s timeout, so a live sender
/// is never overtaken, and short enough that a crashed one is retried within minutes.
const LEASE_SECS: i64 = 60;

#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// `SLACK_WEBHOOK_URL`: where the daily summary goes (None: no summary).
    pub webhook: Option<WebhookUrl>,
    /// `SLACK_SUMMARY_AT`: when (UTC) yesterday's summary is sent.
    pub summary_at: NaiveTime,
    /// `SLACK_SIGNING_SECRET`: verifies `/revenue` commands (None: the route answers 404).
    pub signing_secret: Option<SigningSecret>,
    /// `SLACK_TEAM_ID` and `SLACK_ALLOWED_USERS`: whose verified commands are answered.
    pub askers: words::Askers,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            webhook: None,
            summary_at: NaiveTime::from_hms_opt(8, 0, 0).expect("a time"),
            signing_secret: None,
            askers: words::Askers::default(),
        }
    }
}

/// What a call to `send_daily_if_due` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// This process sent the summary of the day.
    Sent(NaiveDate),
    /// This process tried and failed; the next try is at the given time.
    Failed { day: NaiveDate, error: String, next_at: DateTime<Utc> },
}

/// The summary's text for `day`: that day, the month to date, open findings, failed events, and
/// the alerts that fired that day.
pub async fn summary(svc: &Services, day: NaiveDate) -> Result<String, StoreError> {
    let yesterday = super::revenue::report(svc, day, day, Period::Day).await?;
    let first = day.with_day(1).expect("every month has a first day");
    let month = super::revenue::report(svc, first, day, Period::Day).await?;
    let open = store::reconciliation::open_findings(&svc.db).await?;
    let failed = store::events::counts(&svc.db).await?.into_iter().find(|(s, _)| s == "failed").map_or(0, |(_, n)| n);
    let start = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let alerts: Vec<_> = store::alerts::episodes_between(&svc.db, start, start + chrono::Duration::days(1))
        .await?
        .into_iter()
        .filter_map(|e| {
            let rule = crate::domain::alerts::Rule::parse(&e.rule)?;
            Some(crate::domain::alerts::OfTheDay { rule, started_at: e.started_at, resolved_at: e.resolved_at })
        })
        .collect();
    Ok(words::summary_text(day, &yesterday, &month, open, failed, &alerts, svc.mode.as_str()))
}

/// Sends yesterday's summary if its time has come and no process has sent it; None when there
/// was nothing for this process to do.
pub async fn send_daily_if_due(svc: &Services, now: DateTime<Utc>) -> Result<Option<Sent>, StoreError> {
    let Some(url) = &svc.settings.slack.webhook else { return Ok(None) };
    let Some(day) = words::day_due(now, svc.settings.slack.summary_at) else { return Ok(None) };
    let lease = now + chrono::Duration::seconds(LEASE_SECS);
    let Some(attempt) = store::slack::claim(&svc.db, day, now, lease, words::MAX_ATTEMPTS).await? else {
        return Ok(None);
    };
    let posted = match summary(svc, day).await {
        Ok(text) => crate::slack::post(url, &text).await,
        Err(e) => Err(format!("the figures could not be read: {e}")),
    };
    use crate::services::stats::Stats;
    match posted {
        Ok(()) => {
            store::slack::sent(&svc.db, day, chrono::Utc::now()).await?;
            Stats::inc(&svc.stats.slack_summaries_sent);
            tracing::info!(%day, attempt, "daily Slack summary sent");
            Ok(Some(Sent::Sent(day)))
        }
        Err(error) => {
            let next_at = now + words::retry_after(attempt);
            store::slack::failed(&svc.db, day, &error, next_at).await?;
            Stats::inc(&svc.stats.slack_summary_failures);
            tracing::warn!(%day, attempt, %error, "daily Slack summary failed; retrying later");
            Ok(Some(Sent::Failed { day, error, next_at }))
        }
    }
}

/// The admin page's line about the summary.
pub async fn status_line(svc: &Services) -> Result<String, StoreError> {
    if svc.settings.slack.webhook.is_none() {
        return Ok("Daily Slack summary: off (set SLACK_WEBHOOK_URL to turn it on).".into());
    }
    let at = svc.settings.slack.summary_at.format("%H:%M");
    Ok(match store::slack::latest(&svc.db).await? {
        None => format!("Daily Slack summary: sent at {at} UTC; none sent yet."),
        Some(r) if r.status == "sent" => format!(
            "Daily Slack summary: sent at {at} UTC; the last, for {}, went out {}.",
            r.day,
            r.sent_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
        ),
        Some(r) if r.status == "failed" && r.attempts >= words::MAX_ATTEMPTS => format!(
            "Daily Slack summary FAILED for {} after {} attempts, given up: {}",
            r.day,
            r.attempts,
            r.last_error.unwrap_or_default()
        ),
        Some(r) if r.status == "failed" => format!(
            "Daily Slack summary FAILED for {} (attempt {}): {}; next try {}.",
            r.day,
            r.attempts,
            r.last_error.unwrap_or_default(),
            r.next_attempt_at.format("%Y-%m-%d %H:%M UTC")
        ),
        Some(r) => format!("Daily Slack summary for {} is being sent (attempt {}).", r.day, r.attempts),
    })
}

/// The answer to a `/revenue` command whose request was verified: the figures asked for, the
/// usage line for an argument we do not know, or why this asker is not answered.
pub async fn answer(svc: &Services, form_body: &[u8], today: NaiveDate) -> Result<String, StoreError> {
    let field = |name: &str| form_urlencoded::parse(form_body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    if let Err(refused) =
        words::may_ask(&svc.settings.slack.askers, field("team_id").as_deref(), field("user_id").as_deref())
    {
        // Ids only: they name a workspace and a member, not a customer.
        tracing::warn!(team_id = field("team_id"), user_id = field("user_id"), %refused, "Slack command not answered");
        return Ok(refused.to_string());
    }
    let text = field("text").unwrap_or_default();
    let Some(ask): Option<Ask> = words::parse_ask(&text, today) else {
        return Ok(format!("`{}` is not something I can count. {}", text.trim(), words::USAGE));
    };
    let report = super::revenue::report(svc, ask.from, ask.to, Period::Day).await?;
    Ok(words::answer_text(&ask, &report))
}
