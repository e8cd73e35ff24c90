//! The session's view of who is calling: the signed-in account (`CurrentUser`) and, on the
//! server, what a page render takes from the session once before it starts (`SessionSnapshot`).
//! Read by `web::access` (who may call what) and `web::auth` (signing in and out).
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
    use super::CurrentUser;
    use crate::web::error::AppError;
    use tower_sessions::Session;

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
        /// The account of `user_id`, loaded by the render's first caller check (`web::access`)
        /// and shared by the rest (the header, the page's data): one read per page, not one per resource.
        /// Still fresh: it lives only as long as this one request.
        pub account: std::sync::Arc<tokio::sync::OnceCell<Option<CurrentUser>>>,
    }

    /// The snapshot of this request, when it has one (page renders; not server-function posts).
    pub async fn snapshot() -> Option<SessionSnapshot> {
        leptos_axum::extract::<axum::Extension<SessionSnapshot>>().await.ok().map(|axum::Extension(s)| s)
    }
}
