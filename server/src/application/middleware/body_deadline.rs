//! A whole request body within a deadline. `tower_http`'s `RequestBodyTimeoutLayer` (the
//! `body_timeout` between chunks) restarts its clock on every chunk, so a client trickling one
//! byte every few seconds into a 1 MiB webhook body held its connection for days, and 800 such
//! clients held every connection slot. Here the clock starts when the request's head has
//! arrived and never restarts: a body not complete by its deadline ends the request with 408
//! (and the connection, which `guard::close_after_refused_body` closes after any refusal).
//!
//! An artwork upload (up to 25 MiB from a person's connection) gets a longer deadline than
//! everything else (a webhook event, a form, a server function's arguments: kilobytes).
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Seconds any request body but an upload has, in all, to arrive (`BODY_DEADLINE_SECS`).
pub const BODY_DEADLINE_SECS: u64 = 60;
/// Seconds an artwork upload's body has, in all (`UPLOAD_DEADLINE_SECS`): 25 MiB at about
/// 350 kbit/s, a poor mobile connection.
pub const UPLOAD_DEADLINE_SECS: u64 = 600;

/// The two deadlines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodyDeadlines {
    pub body: Duration,
    pub upload: Duration,
}

impl Default for BodyDeadlines {
    fn default() -> Self {
        Self { body: Duration::from_secs(BODY_DEADLINE_SECS), upload: Duration::from_secs(UPLOAD_DEADLINE_SECS) }
    }
}

impl BodyDeadlines {
    /// The deadline of a request: the upload's for a revision request with its artwork.
    fn of(&self, request: &Request) -> Duration {
        if request.method() == Method::POST && crate::routes::revisions::is_upload_path(request.uri().path()) {
            self.upload
        } else {
            self.body
        }
    }
}

/// The middleware: wraps each body in its deadline, and answers 408 for a request whose body
/// was cut, whatever its handler made of the error.
pub async fn enforce(State(deadlines): State<BodyDeadlines>, request: Request, next: Next) -> Response {
    // Asked of the body, not the headers: an HTTP/2 request may carry a body with neither
    // Content-Length nor Transfer-Encoding.
    if http_body::Body::is_end_stream(request.body()) {
        return next.run(request).await;
    }
    let limit = deadlines.of(&request);
    let passed = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = DeadlineBody { inner: body, deadline: Box::pin(tokio::time::sleep(limit)), passed: passed.clone() };
    let path = parts.uri.path().to_string();
    let response = next.run(Request::from_parts(parts, axum::body::Body::new(body))).await;
    if passed.load(Ordering::Relaxed) {
        tracing::info!(path, after = ?limit, "request body cut at its deadline");
        let mut refused = (StatusCode::REQUEST_TIMEOUT, "The request body took too long to arrive.").into_response();
        refused.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return refused;
    }
    response
}

/// The body has not all arrived by its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within its deadline")]
pub struct DeadlinePassed;

/// A request body that fails once its deadline passes (and says so in `passed`).
struct DeadlineBody {
    inner: axum::body::Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    passed: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.passed.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(DeadlinePassed))));
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
