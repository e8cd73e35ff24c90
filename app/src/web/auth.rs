//! Who is signed in. Sessions are tower-sessions records in our database; the session holds only
//! the user id, and the user is loaded on every request, so a removed user or a changed role
//! takes effect at once.
use super::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: i64,
    pub email: String,
    pub is_admin: bool,
}

impl CurrentUser {
    /// Where this user lands after signing in.
    pub fn home(&self) -> &'static str {
        if self.is_admin {
            "/admin"
        } else {
            "/contracts"
        }
    }
}

#[cfg(feature = "ssr")]
pub mod server {
    use super::*;
    use crate::services::Services;
    use tower_sessions::Session;

    pub use crate::store::sessions::USER_KEY;
    /// A refused revision request's (contract id, notes), kept for the page it goes back to.
    pub const DRAFT_KEY: &str = "revision_draft";
    /// When the session was last marked as used (unix seconds): written at sign-in and then at
    /// most hourly, which is what extends its expiry (`server::guard::touch`).
    pub const TOUCHED_KEY: &str = "touched_at";

    pub async fn session() -> Result<Session, AppError> {
        leptos_axum::extract::<Session>().await.map_err(|e| AppError::unavailable("The session could not be read", e))
    }

    /// What a page render needs from the session, read once before rendering starts (by the
    /// server's `session_snapshot` middleware, for GET requests). A page runs several resources
    /// at once (the header's user, the admin banner, the one-time message, the page's data);
    /// were each to read the session itself they would queue on the session's lock, which is
    /// held across a database read, and a render that stops polling one of them would leave the
    /// rest (and the session's save after the response) waiting for ever. With the snapshot no
    /// resource touches the session while a page renders.
    #[derive(Debug, Clone, Default)]
    pub struct SessionSnapshot {
        pub user_id: Option<i64>,
        /// The one-time message (class, text) left by the previous request, already taken.
        pub flash: Option<(String, String)>,
        /// A refused revision request's notes (contract id, notes), already taken.
        pub draft: Option<(i64, String)>,
        /// A set-password link an admin's action just made (email, link, valid until), taken.
        pub issued_link: Option<(String, String, String)>,
        /// The account of `user_id`, loaded by the render's first `current_user` and shared by
        /// the rest (the header, the page's data): one read per page, not one per resource.
        /// Still fresh: it lives only as long as this one request.
        pub account: std::sync::Arc<tokio::sync::OnceCell<Option<CurrentUser>>>,
    }

    /// The snapshot of this request, when it has one (page renders; not server-function posts).
    pub async fn snapshot() -> Option<SessionSnapshot> {
        leptos_axum::extract::<axum::Extension<SessionSnapshot>>().await.ok().map(|axum::Extension(s)| s)
    }

    /// The signed-in user, if any.
    pub async fn current_user() -> Result<Option<CurrentUser>, AppError> {
        if let Some(s) = snapshot().await {
            return s.account.get_or_try_init(|| account(s.user_id)).await.cloned();
        }
        let id = session()
            .await?
            .get::<i64>(USER_KEY)
            .await
            .map_err(|e| AppError::unavailable("The session could not be read", e))?;
        account(id).await
    }

    /// The account a session names, if it is still active.
    async fn account(id: Option<i64>) -> Result<Option<CurrentUser>, AppError> {
        let svc = crate::web::services()?;
        let Some(id) = id else {
            return Ok(None);
        };
        let user = crate::store::users::find_active(&svc.db, id)
            .await
            .map_err(|e| AppError::unavailable("Your account could not be loaded", e))?;
        Ok(user.map(|u| CurrentUser {
            id: u.id,
            is_admin: u.role() == crate::domain::users::Role::Admin,
            email: u.email,
        }))
    }

    pub async fn require_user() -> Result<CurrentUser, AppError> {
        current_user().await?.ok_or_else(|| AppError::NotSignedIn.with_status())
    }

    /// Advertiser pages are for advertisers; an admin uses the admin pages.
    pub async fn require_advertiser() -> Result<CurrentUser, AppError> {
        let user = require_user().await?;
        if user.is_admin {
            return Err(AppError::Forbidden.with_status());
        }
        Ok(user)
    }

    pub async fn require_admin() -> Result<CurrentUser, AppError> {
        let user = require_user().await?;
        if !user.is_admin {
            return Err(AppError::Forbidden.with_status());
        }
        Ok(user)
    }

    /// The client's address, for throttling (the socket peer: behind a proxy, the proxy).
    /// The client's address, for throttling: the socket peer, or, behind a proxy that the
    /// operator names (`CLIENT_IP_HEADER`), the last address that proxy appended. (Earlier
    /// entries of X-Forwarded-For are whatever the client sent, so they prove nothing.)
    pub async fn client_address(svc: &Services) -> String {
        use axum::extract::ConnectInfo;
        if let Some(name) = &svc.client_ip_header {
            if let Ok(headers) = leptos_axum::extract::<axum::http::HeaderMap>().await {
                let last = headers
                    .get_all(name.as_str())
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .map(str::trim)
                    .rfind(|s| !s.is_empty());
                if let Some(ip) = last {
                    return ip.to_string();
                }
            }
        }
        leptos_axum::extract::<ConnectInfo<std::net::SocketAddr>>()
            .await
            .map(|ConnectInfo(addr)| addr.ip().to_string())
            .unwrap_or_else(|_| "unknown".into())
    }

    /// A path inside this site, or None: `next` must never send a user to another site.
    /// Browsers drop tabs and newlines from URLs (`/\t/evil.example` becomes
    /// `//evil.example`) and read `\` as `/`, so only visible ASCII is accepted.
    pub fn local_path(next: &str) -> Option<&str> {
        let visible = next.bytes().all(|b| b.is_ascii_graphic());
        (visible && next.starts_with('/') && !next.starts_with("//") && !next.contains('\\')).then_some(next)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn next_stays_on_this_site() {
            use super::local_path;
            assert_eq!(local_path("/contracts/1?x=1"), Some("/contracts/1?x=1"));
            for bad in
                ["//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/x", "https://evil.example", "", "/ /x"]
            {
                assert_eq!(local_path(bad), None, "{bad:?}");
            }
        }
    }
}

#[server]
pub async fn get_me() -> Result<Option<CurrentUser>, AppError> {
    server::current_user().await
}

#[server]
pub async fn sign_in(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use crate::services::accounts::verify_password;
    use crate::store::sign_in_throttle as throttle;
    let svc = crate::web::services()?;
    let keys = throttle::Keys::new(&email, &server::client_address(&svc).await);
    // Check and count in one step, before the slow password check: every attempt counts as a
    // failure until it succeeds, so parallel guesses cannot all slip past the check. Counted
    // per (email, address) and per address, never per email alone (`domain::throttle`).
    match throttle::attempt(&svc.db, &keys, &svc.sign_in_throttle, chrono::Utc::now()).await {
        Ok(Ok(())) => {}
        Ok(Err(wait)) => {
            return Err(AppError::TooManyAttempts(crate::domain::throttle::minutes(wait) as u64).with_status())
        }
        Err(e) => return Err(AppError::unavailable("Sign-in is not available right now", e)),
    }
    let user = match crate::domain::users::Email::parse(&email) {
        Ok(e) => crate::store::users::find_by_email(&svc.db, &e)
            .await
            .map_err(|e| AppError::unavailable("Sign-in is not available right now", e))?,
        Err(_) => None,
    };
    // Verify against a real hash even for an unknown email, so timing does not tell which
    // emails have accounts. argon2 is deliberately slow: off the async threads.
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        return Err(AppError::Invalid("That email and password do not match an account.".into()).with_status());
    };
    // Said only after the right password, so it tells a guesser nothing.
    if !user.is_active() {
        return Err(AppError::Invalid("This account is deactivated. Ask the publisher.".into()).with_status());
    }
    if let Err(e) = throttle::succeeded(&svc.db, &keys, &svc.sign_in_throttle).await {
        // The sign-in stands; the address keeps one failure too many until its window ends.
        tracing::warn!(error = %e, "could not take back a successful sign-in's count");
    }
    let session = server::session().await?;
    // A new session id at sign-in: an id planted before sign-in (session fixation) is worthless.
    session.cycle_id().await.map_err(|e| AppError::unavailable("Sign-in is not available right now", e))?;
    session
        .insert(server::USER_KEY, user.id)
        .await
        .map_err(|e| AppError::unavailable("Sign-in is not available right now", e))?;
    session
        .insert(server::TOUCHED_KEY, chrono::Utc::now().timestamp())
        .await
        .map_err(|e| AppError::unavailable("Sign-in is not available right now", e))?;
    let home = if user.role() == crate::domain::users::Role::Admin { "/admin" } else { "/contracts" };
    leptos_axum::redirect(next.as_deref().and_then(server::local_path).unwrap_or(home));
    Ok(())
}

#[cfg(feature = "ssr")]
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| crate::services::accounts::hash_password("not anyone's password"));

#[server]
pub async fn sign_out() -> Result<(), AppError> {
    let session = server::session().await?;
    session.flush().await.map_err(|e| AppError::unavailable("Signing out failed", e))?;
    leptos_axum::redirect("/login");
    Ok(())
}
