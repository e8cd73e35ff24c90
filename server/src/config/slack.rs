//! Slack: the daily revenue summary and the `/revenue` slash command.
use app::services::slack::SlackConfig;

#[derive(clap::Args, Clone)]
pub struct SlackArgs {
    /// Slack incoming-webhook URL for the daily revenue summary (unset: no summary).
    #[arg(long, env = "SLACK_WEBHOOK_URL", hide_env_values = true, global = true)]
    pub slack_webhook_url: Option<String>,
    /// When (HH:MM, UTC) yesterday's summary is sent.
    #[arg(long, env = "SLACK_SUMMARY_AT", default_value = "08:00", global = true)]
    pub slack_summary_at: String,
    /// Slack app signing secret: verifies `/revenue` slash commands (unset: the command is off).
    #[arg(long, env = "SLACK_SIGNING_SECRET", hide_env_values = true, global = true)]
    pub slack_signing_secret: Option<String>,
    /// The Slack workspace (team id, T...) whose `/revenue` commands are answered; required with
    /// SLACK_SIGNING_SECRET. Commands from any other workspace get a refusal.
    #[arg(long, env = "SLACK_TEAM_ID", global = true)]
    pub slack_team_id: Option<String>,
    /// Slack member ids (U... or W..., comma-separated) who may ask `/revenue`; unset, every
    /// member of SLACK_TEAM_ID may.
    #[arg(long, env = "SLACK_ALLOWED_USERS", value_delimiter = ',', global = true)]
    pub slack_allowed_users: Vec<String>,
}

impl SlackArgs {
    pub fn check(&self) -> Result<SlackConfig, String> {
        Ok(SlackConfig {
            webhook: self
                .slack_webhook_url
                .as_deref()
                .filter(|u| !u.trim().is_empty())
                .map(app::slack::WebhookUrl::parse)
                .transpose()?,
            summary_at: app::domain::slack::parse_time(&self.slack_summary_at)
                .map_err(|e| format!("SLACK_SUMMARY_AT: {e}"))?,
            signing_secret: self
                .slack_signing_secret
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(app::slack::SigningSecret::new)
                .transpose()?,
            askers: askers(self)?,
        })
    }
}

/// Whose `/revenue` commands are answered. A signing secret without a workspace is refused at
/// start-up: the signature alone admits every workspace the Slack app is installed in.
fn askers(c: &SlackArgs) -> Result<app::domain::slack::Askers, String> {
    use app::domain::slack::parse_slack_id;
    let team_id = c
        .slack_team_id
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(|t| parse_slack_id(t, "workspace", &['T']).map_err(|e| format!("SLACK_TEAM_ID: {e}")))
        .transpose()?;
    let signing = c.slack_signing_secret.as_deref().is_some_and(|s| !s.trim().is_empty());
    if signing && team_id.is_none() {
        return Err("SLACK_TEAM_ID is required with SLACK_SIGNING_SECRET: the workspace whose /revenue commands \
                    are answered (Slack app → Basic Information, or the T... in the workspace's URL)"
            .into());
    }
    let users = c
        .slack_allowed_users
        .iter()
        .filter(|u| !u.trim().is_empty())
        .map(|u| parse_slack_id(u, "member", &['U', 'W']).map_err(|e| format!("SLACK_ALLOWED_USERS: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(app::domain::slack::Askers { team_id, users })
}
