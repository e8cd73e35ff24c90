//! `POST /slack/commands`: Slack's `/revenue` slash command. The request signature is checked
//! on the raw bytes before the form is read; the answer is ephemeral (only the asker sees it)
//! and comes within Slack's 3 seconds or says to ask again.
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::time::Duration;

/// A slash command's form is a few hundred bytes; anything near this is not Slack.
pub const MAX_BODY: usize = 16 * 1024;

/// Slack gives up after 3 s; we answer before that whatever the database is doing.
const ANSWER_WITHIN: Duration = Duration::from_millis(2500);

fn ephemeral(text: String) -> Response {
    Json(json!({ "response_type": "ephemeral", "text": text })).into_response()
}

pub async fn command(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let svc = &state.services;
    let Some(secret) = &svc.settings.slack.signing_secret else {
        return (StatusCode::NOT_FOUND, "Slack commands are not configured (SLACK_SIGNING_SECRET).").into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = app::slack::verify(
        secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        chrono::Utc::now().timestamp(),
    );
    if let Err(e) = verified {
        tracing::warn!(reason = %e, "Slack command refused");
        return (StatusCode::UNAUTHORIZED, "invalid Slack request signature").into_response();
    }
    let today = chrono::Utc::now().date_naive();
    match tokio::time::timeout(ANSWER_WITHIN, app::services::slack::answer(svc, &body, today)).await {
        Ok(Ok(text)) => ephemeral(text),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "Slack command could not be answered");
            ephemeral("The figures cannot be read right now; please try again in a moment.".into())
        }
        Err(_) => ephemeral("Still counting; please ask again in a moment.".into()),
    }
}

/// Called by Slack, verified by its request signature.
pub fn router() -> axum::Router<AppState> {
    use axum::routing::post;
    axum::Router::new().route("/slack/commands", post(command).layer(axum::extract::DefaultBodyLimit::max(MAX_BODY)))
}
