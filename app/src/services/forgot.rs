//! "Forgot your password?": anyone may ask for a set-password link for an address; the person
//! with that address gets it by email, valid once for an hour (`LinkPurpose::Forgot`), and their
//! password keeps working until they set a new one (setting it ends every session:
//! `store::people::redeem_link`). Whoever asked is told the same words whatever happened
//! (`domain::people::forgot::ANSWER`), so the form says nothing about who has an account.
use super::people::{link_for, PeopleError};
use super::Services;
use crate::domain::mail::{self as words, Kind};
use crate::domain::people::{forgot, LinkPurpose};
use crate::domain::users::Email;
use crate::store::{password_requests, people as store, users};
use chrono::{DateTime, Utc};

/// What became of a request: for logs and tests only. The person asking sees the same page for
/// every one of these but `MailOff`, which is true for every address alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A link was made and its email queued.
    Sent,
    /// Too many requests for the address or from the client: nothing sent.
    Throttled,
    /// No active account has that address: nothing sent.
    NoAccount,
    /// Email is off: nothing counted or sent (the page says to ask the publisher).
    MailOff,
}

/// One request of the form, for `email`, from the client `address`
/// (`domain::throttle::address_group`, or "unknown").
///
/// The answer's timing: a known and an unknown address take the same steps up to the decision
/// (the lookup of the account, both counters written and read); a known one then writes its link
/// and queues its email, two small writes of a millisecond or so, while the email itself is sent
/// later by the worker. That difference is within a network's jitter, and with ten requests an
/// hour per client address nobody can average it out over enough tries to learn anything.
pub async fn request_link(
    svc: &Services,
    email: &str,
    address: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, PeopleError> {
    if !super::mail::enabled(svc) {
        return Ok(Outcome::MailOff);
    }
    let since = now - forgot::WINDOW;
    let user = match Email::parse(email) {
        Ok(e) => users::find_by_email(&svc.db, &e).await?,
        Err(_) => None,
    };
    let for_account = password_requests::record(&svc.db, &password_requests::key("account", email), now, since).await?;
    let from_address =
        password_requests::record(&svc.db, &password_requests::key("address", address), now, since).await?;
    if !forgot::allowed(for_account, from_address) {
        return Ok(Outcome::Throttled);
    }
    let Some(user) = user.filter(|u| u.is_active()) else {
        return Ok(Outcome::NoAccount);
    };
    // PUBLIC_URL is required with SMTP_URL, so a link always has the address users reach.
    let origin = svc.settings.web.public_origin.as_deref().unwrap_or_default();
    let (url, link) = link_for(origin, LinkPurpose::Forgot, now);
    let Some(user) = store::issue_forgot_link(&svc.db, user.id, &link, now).await? else {
        return Ok(Outcome::NoAccount); // deactivated a moment ago
    };
    let letter = words::link(Kind::Forgot, &url, link.expires_at);
    super::mail::queue(svc, Kind::Forgot, None, &user.email, &letter).await?;
    Ok(Outcome::Sent)
}

/// Forgets requests that no longer count (the worker, now and then).
pub async fn clean_up(svc: &Services, now: DateTime<Utc>) -> Result<u64, crate::store::StoreError> {
    password_requests::delete_before(&svc.db, now - forgot::WINDOW).await
}
