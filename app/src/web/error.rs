//! The one error type of every server function: what went wrong in words a user can act on,
//! typed so pages can react (sign in, not found) and the server can pick the HTTP status.
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in.")]
    NotSignedIn,
    #[error("You do not have access to this page.")]
    Forbidden,
    /// No such thing, or not yours: the same answer, so ids leak nothing.
    #[error("Not found.")]
    NotFound,
    /// The request cannot be done as asked; the message says why.
    #[error("{0}")]
    Invalid(String),
    #[error("Too many failed sign-ins. Try again in {0} minutes.")]
    TooManyAttempts(u64),
    /// One client started (or checked with Stripe) too many purchases in a short time, spending
    /// its budget of calls to Stripe; the seconds to wait.
    #[error("Too many purchases were tried in a short time. Please try again in {0} seconds.")]
    SlowDown(u64),
    /// A payment Stripe took that we will not credit automatically; a person must look.
    /// Asking again cannot change it.
    #[error("{0}")]
    NeedsReview(String),
    /// Something on our side (database, Stripe) failed; nothing was lost, try again.
    #[error("{0}")]
    Unavailable(String),
    /// The request itself failed (network, encoding).
    #[error("The request failed: {0}")]
    Request(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Request(value.to_string())
    }
}

#[cfg(feature = "ssr")]
impl AppError {
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            AppError::NotSignedIn => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyAttempts(_) | AppError::SlowDown(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::NeedsReview(_) => StatusCode::CONFLICT,
            AppError::Request(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// Sets this error's status on the response being built (a server function's, or a
    /// server-rendered page's) and returns the error.
    pub fn with_status(self) -> Self {
        if let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            res.set_status(self.status());
            if let Some(secs) = self.retry_after() {
                res.insert_header(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
            }
        }
        self
    }

    /// When a 429 says to come back (seconds), for clients and proxies that read it.
    fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::SlowDown(secs) => Some(*secs),
            AppError::TooManyAttempts(minutes) => Some(minutes * 60),
            _ => None,
        }
    }

    /// A store or Stripe failure: logged with its detail, shown as a retryable message.
    pub fn unavailable(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{context}");
        AppError::Unavailable(format!("{context}. Nothing was lost; please try again in a moment."))
    }
}

/// The answer of a plain axum handler (an extractor's refusal, `web::access`): the status and
/// the words, as text.
#[cfg(feature = "ssr")]
impl axum::response::IntoResponse for AppError {
    fn into_response(self) -> axum::response::Response {
        let mut response = (self.status(), self.to_string()).into_response();
        if let Some(secs) = self.retry_after() {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}

/// A store failure reaching a page or a server function with no more particular words: logged
/// with its detail, shown as retryable. (Where the page can say what failed, it uses
/// `AppError::unavailable` with its own context instead.)
#[cfg(feature = "ssr")]
impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::unavailable("The data could not be read or written", e)
    }
}
