//! Who may do what, as request extractors: a handler or server function names the caller it
//! needs — `SignedIn`, `Advertiser` or `AdminUser` — and cannot run for anyone else, because
//! the extractor's rejection is already the error answer (401 "Please sign in.", 403, or 503
//! when the session or the account cannot be read). There is one check per role, here.
//!
//! - A server function (or a page's resource) asks with [`caller`]:
//!   `let svc = crate::web::services()?; let AdminUser(me) = caller::<AdminUser>(&svc).await?;`
//!   The rejection comes back as the function's typed `AppError` (so a page still redirects to
//!   sign in on `NotSignedIn`), with its status set on the response.
//! - A plain axum handler takes one as an argument, with any state that is `AsRef<Services>`
//!   (`Services` itself, or the server's `AppState` once it says how to reach its services):
//!   `async fn refund(AdminUser(me): AdminUser, ...) -> Response`. The rejection answers the
//!   request by itself (`AppError`'s `IntoResponse`: its status and its words).
//!
//! The user is read once per request: a page render takes the account from the render's
//! `SessionSnapshot` (one read shared by the header, the banner and the page's data); any other
//! request reads the session's user id and loads the account, so a removed user or a changed
//! role takes effect at once.
use super::error::AppError;
use super::session::server::SessionSnapshot;
use super::session::CurrentUser;
use super::session_keys::USER_KEY;
use crate::services::Services;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

/// The services are their own state: what server functions extract with (`caller`).
impl AsRef<Services> for Services {
    fn as_ref(&self) -> &Services {
        self
    }
}

/// Anyone signed in with an active account: an advertiser or an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn(pub CurrentUser);

/// A signed-in advertiser. Advertiser pages are for advertisers; an admin uses the admin pages
/// (403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertiser(pub CurrentUser);

/// A signed-in admin; anyone else is refused (401 when not signed in, 403 when not an admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUser(pub CurrentUser);

impl<S: AsRef<Services> + Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        account(parts, state.as_ref()).await?.map(SignedIn).ok_or(AppError::NotSignedIn)
    }
}

/// `Option<SignedIn>`: whoever is signed in, or None; only an unreadable session is refused.
impl<S: AsRef<Services> + Send + Sync> OptionalFromRequestParts<S> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, AppError> {
        Ok(account(parts, state.as_ref()).await?.map(SignedIn))
    }
}

impl<S: AsRef<Services> + Send + Sync> FromRequestParts<S> for Advertiser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let SignedIn(user) = <SignedIn as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        if user.is_admin {
            return Err(AppError::Forbidden);
        }
        Ok(Advertiser(user))
    }
}

impl<S: AsRef<Services> + Send + Sync> FromRequestParts<S> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let SignedIn(user) = <SignedIn as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        if !user.is_admin {
            return Err(AppError::Forbidden);
        }
        Ok(AdminUser(user))
    }
}

/// The caller of this server function (or page render) as `T` requires: `SignedIn`,
/// `Option<SignedIn>`, `Advertiser` or `AdminUser`. A refusal is the function's error answer,
/// with its status (401, 403) set on the response.
pub async fn caller<T>(svc: &Services) -> Result<T, AppError>
where
    T: FromRequestParts<Services, Rejection = AppError>,
{
    let Some(mut parts) = leptos::prelude::use_context::<Parts>() else {
        return Err(AppError::unavailable("The session could not be read", "no request in context"));
    };
    T::from_request_parts(&mut parts, svc).await.map_err(|e| match e {
        // A failure on our side keeps the status the server function's error gets anyway.
        AppError::Unavailable(_) => e,
        refused => refused.with_status(),
    })
}

/// The account the request's session names, if it is still active. A page render shares one
/// read through its snapshot; other requests read the session.
async fn account(parts: &Parts, svc: &Services) -> Result<Option<CurrentUser>, AppError> {
    if let Some(snapshot) = parts.extensions.get::<SessionSnapshot>() {
        let (id, cell) = (snapshot.user_id, snapshot.account.clone());
        return cell.get_or_try_init(|| load(svc, id)).await.cloned();
    }
    let session = parts
        .extensions
        .get::<tower_sessions::Session>()
        .ok_or_else(|| AppError::unavailable("The session could not be read", "no session layer"))?;
    let id =
        session.get::<i64>(USER_KEY).await.map_err(|e| AppError::unavailable("The session could not be read", e))?;
    load(svc, id).await
}

/// The account `id` names, if it is still active.
async fn load(svc: &Services, id: Option<i64>) -> Result<Option<CurrentUser>, AppError> {
    let Some(id) = id else {
        return Ok(None);
    };
    let user = crate::store::users::find_active(&svc.db, id)
        .await
        .map_err(|e| AppError::unavailable("Your account could not be loaded", e))?;
    Ok(user.map(|u| CurrentUser { id: u.id, is_admin: u.role() == crate::domain::users::Role::Admin, email: u.email }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a server route does: take the caller as a handler argument, with any state that
    /// reaches the services. (Compiles the extractors into an axum router; nothing runs.)
    #[test]
    fn plain_axum_handlers_take_the_callers_as_arguments() {
        #[derive(Clone)]
        struct State(std::sync::Arc<Services>);
        impl AsRef<Services> for State {
            fn as_ref(&self) -> &Services {
                &self.0
            }
        }
        async fn admin(AdminUser(me): AdminUser) -> String {
            me.email
        }
        async fn advertiser(Advertiser(me): Advertiser) -> String {
            me.email
        }
        async fn anyone(me: Option<SignedIn>, _: SignedIn) -> String {
            me.map(|SignedIn(u)| u.email).unwrap_or_default()
        }
        use axum::routing::get;
        let _: axum::Router<State> =
            axum::Router::new().route("/a", get(admin)).route("/b", get(advertiser)).route("/c", get(anyone));
        let _: axum::Router<Services> = axum::Router::new().route("/a", get(admin));
    }

    #[test]
    fn refusals_answer_with_their_status() {
        use axum::http::StatusCode;
        use axum::response::IntoResponse;
        assert_eq!(AppError::NotSignedIn.into_response().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(AppError::Forbidden.into_response().status(), StatusCode::FORBIDDEN);
        assert_eq!(AppError::Unavailable("x".into()).into_response().status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
