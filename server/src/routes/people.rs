//! The admin's people actions and the set-password form, as plain form posts (they work without
//! JavaScript, behind the same cross-site check as every form). The admin actions answer only an
//! admin (anyone else: 401/403 and nothing happens); outcomes reach the next page as one-time
//! messages in the session. A set-password link made by an action is emailed to the person, or,
//! with email off, shown once on the person's page; never put in an address or a log.
use crate::routes::admin::flash;
use crate::AppState;
use app::domain::people::Actor;
use app::services::people::{self, IssuedLink, PeopleError};
use app::web::access::AdminUser;
use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

/// The site's address as the people a link is passed to reach it: `PUBLIC_URL`, else the address
/// the admin's request came to (without `PUBLIC_URL` the app is reached directly, over http).
fn origin(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(o) = &state.services.settings.web.public_origin {
        return o.clone();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

fn person_page(id: i64) -> String {
    format!("/admin/people/{id}")
}

/// The answer to a refused or failed action: the reason as a one-time message on `page`. A
/// store failure is logged in full and the admin told nothing was done.
async fn refused(session: &Session, page: &str, e: PeopleError) -> Response {
    let text = match e {
        PeopleError::NotFound => return (StatusCode::NOT_FOUND, "No such person.").into_response(),
        PeopleError::EmailTaken(email) => format!("Nothing done: {email} has an account already."),
        PeopleError::Store(e) => {
            tracing::error!(error = %e, "people action failed");
            "Nothing was done: the database did not answer. Please try again.".into()
        }
        other => format!("Nothing done: {other}"),
    };
    flash(session, "error", text).await;
    Redirect::to(page).into_response()
}

/// Keeps a new link, sealed, for the person's page to show once; or, when it was emailed, says
/// so (the link itself is then the person's alone).
async fn show_once(state: &AppState, session: &Session, link: &IssuedLink) {
    let until = app::web::fmt_time(link.expires_at);
    if link.emailed {
        let text = format!("Emailed to {}: a link to set their password, valid until {until}.", link.user.email);
        flash(session, "notice", text).await;
        return;
    }
    let sealed = state.services.keys.seal(app::web::session_keys::ISSUED_LINK_PURPOSE, &link.url);
    let value = (link.user.email.clone(), sealed, until);
    if let Err(e) = session.insert(app::web::session_keys::ISSUED_LINK_KEY, value).await {
        // The link exists but the admin cannot see it: say so; a reset makes another.
        tracing::error!(error = %e, "could not keep a set-password link to show");
        flash(session, "error", "The link was made but could not be shown: use Reset password for a new one.".into())
            .await;
    }
}

fn actor(me: &app::web::auth::CurrentUser) -> Actor {
    Actor::User { id: me.id, email: me.email.clone() }
}

#[derive(Deserialize)]
pub struct InviteForm {
    email: String,
}

/// `POST /admin/people`: a new advertiser and their set-password link.
pub async fn invite(
    AdminUser(me): AdminUser,
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<InviteForm>,
) -> Response {
    match people::invite_advertiser(&state.services, &form.email, &origin(&state, &headers), &actor(&me)).await {
        Ok(link) => {
            show_once(&state, &session, &link).await;
            Redirect::to(&person_page(link.user.id)).into_response()
        }
        Err(e) => refused(&session, "/admin/people", e).await,
    }
}

/// `POST /admin/people/{id}/password-link`: a reset.
pub async fn reset_password(
    AdminUser(me): AdminUser,
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(user_id): Path<i64>,
) -> Response {
    let page = person_page(user_id);
    // Resetting one's own password here would sign the admin out mid-action; they sign out and
    // use another admin, like deactivation.
    if me.id == user_id {
        return refused(&session, &page, PeopleError::Refused("Another admin resets your password.".into())).await;
    }
    match people::reset_password(&state.services, user_id, &origin(&state, &headers), &actor(&me)).await {
        Ok(link) => {
            show_once(&state, &session, &link).await;
            Redirect::to(&page).into_response()
        }
        Err(e) => refused(&session, &page, e).await,
    }
}

/// `POST /admin/people/{id}/deactivate`.
pub async fn deactivate(
    AdminUser(me): AdminUser,
    State(state): State<AppState>,
    session: Session,
    Path(user_id): Path<i64>,
) -> Response {
    let page = person_page(user_id);
    match people::deactivate(&state.services, user_id, &actor(&me)).await {
        Ok(user) => {
            flash(&session, "notice", format!("{} is deactivated and signed out everywhere.", user.email)).await;
            Redirect::to(&page).into_response()
        }
        Err(e) => refused(&session, &page, e).await,
    }
}

/// `POST /admin/people/{id}/reactivate`.
pub async fn reactivate(
    AdminUser(me): AdminUser,
    State(state): State<AppState>,
    session: Session,
    Path(user_id): Path<i64>,
) -> Response {
    let page = person_page(user_id);
    match people::reactivate(&state.services, user_id, &actor(&me)).await {
        Ok(user) => {
            flash(&session, "notice", format!("{} can sign in again.", user.email)).await;
            Redirect::to(&page).into_response()
        }
        Err(e) => refused(&session, &page, e).await,
    }
}

#[derive(Deserialize)]
pub struct ContractForm {
    publication: String,
    ad_size: String,
}

/// `POST /admin/people/{id}/contracts`: a contract for an advertiser, with the deployment's
/// included revisions.
pub async fn create_contract(
    AdminUser(me): AdminUser,
    State(state): State<AppState>,
    session: Session,
    Path(user_id): Path<i64>,
    Form(form): Form<ContractForm>,
) -> Response {
    let page = person_page(user_id);
    match people::create_contract(&state.services, user_id, &form.publication, &form.ad_size, &actor(&me)).await {
        Ok(c) => {
            let text = format!(
                "Contract #{} created: {} · {}, {} revisions included.",
                c.id, c.publication, c.ad_size, c.base_revisions
            );
            flash(&session, "notice", text).await;
            Redirect::to(&page).into_response()
        }
        Err(e) => refused(&session, &page, e).await,
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: String,
    confirm: String,
}

/// `POST /password/{token}`: sets the password, once. A refused password goes back to the form
/// with a code (the page says the message); a link that cannot be used goes back to the page,
/// which says why; success goes to sign-in.
pub async fn set_password(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Response {
    // The token is only ever hex; anything else cannot be a link of ours, and echoing it back
    // into the address could only carry something else.
    if token.is_empty() || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (StatusCode::NOT_FOUND, "Not found.").into_response();
    }
    let page = format!("{}{token}", people::LINK_PATH);
    match people::set_password(&state.services, &token, &form.password, &form.confirm).await {
        Ok(user) => {
            tracing::info!(user = user.id, "password set through a link");
            Redirect::to("/login?password=set").into_response()
        }
        Err(PeopleError::Password(p)) => Redirect::to(&format!("{page}?error={}", p.code())).into_response(),
        Err(PeopleError::Busy) => {
            let retry = [(header::RETRY_AFTER, "1")];
            (StatusCode::TOO_MANY_REQUESTS, retry, "Too many requests at once: nothing was changed, please try again.")
                .into_response()
        }
        Err(PeopleError::Store(e)) => {
            tracing::error!(error = %e, "setting a password failed");
            (StatusCode::SERVICE_UNAVAILABLE, "Nothing was changed: please try again in a moment.").into_response()
        }
        Err(_) => Redirect::to(&page).into_response(),
    }
}

/// The admin's people actions and the set-password form (pages' routes: sessions and the
/// cross-site check).
pub fn router() -> axum::Router<AppState> {
    use axum::routing::post;
    axum::Router::new()
        .route("/admin/people", post(invite))
        .route("/admin/people/{id}/password-link", post(reset_password))
        .route("/admin/people/{id}/deactivate", post(deactivate))
        .route("/admin/people/{id}/reactivate", post(reactivate))
        .route("/admin/people/{id}/contracts", post(create_contract))
        .route("/password/{token}", post(set_password))
}
