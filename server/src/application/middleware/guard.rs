//! Cross-site request defence for the browser-facing routes. The session cookie is
//! SameSite=Lax, so other sites cannot make a browser send it with a POST; on top of that, a
//! state-changing request that says where it comes from (browsers send `Origin` on every POST,
//! and `Sec-Fetch-Site`) must come from this site, or it is refused with 403. A request with
//! neither header is not from a browser and carries no victim's cookies.
//!
//! "This site" is `PUBLIC_URL` when it is set, else the request's Host: a reverse proxy may
//! rewrite Host to the app's internal address, and every form would then be refused.
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Where forms may come from.
#[derive(Debug, Clone)]
pub struct Origins {
    public: Option<std::sync::Arc<str>>,
}

impl Origins {
    /// `public`: the configured public origin (`https://host[:port]`, lower-case), if any.
    pub fn new(public: Option<String>) -> Self {
        Self { public: public.map(Into::into) }
    }

    fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        match &self.public {
            Some(public) => origin.eq_ignore_ascii_case(public),
            None => host.is_some_and(|host| origin_authority(origin).is_some_and(|a| a.eq_ignore_ascii_case(host))),
        }
    }
}

pub async fn same_origin_writes(State(origins): State<Origins>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let headers = request.headers();
    // HTTP/1.1 sends Host; HTTP/2 carries the authority in the URI instead.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
    let fetch_site = headers.get("sec-fetch-site").and_then(|h| h.to_str().ok());
    let allowed = match origin {
        // "null" is what sandboxed frames and some redirects send: not this site.
        Some(origin) => origins.allows(origin, host),
        None => fetch_site != Some("cross-site"),
    };
    if allowed {
        next.run(request).await
    } else {
        let path = app::domain::people::loggable_path(request.uri().path());
        tracing::warn!(origin, host, fetch_site, %path, "refused a cross-site write");
        (StatusCode::FORBIDDEN, "Cross-site requests are not allowed.").into_response()
    }
}

/// Reads what a page render needs from the session (the user, and the one-time message, which
/// is taken here so it shows once) before the page renders, so no resource of the page touches
/// the session while it renders (see `app::web::auth::server::SessionSnapshot`). GET and HEAD
/// only: other requests are server functions and forms, which read the session once themselves.
pub async fn session_snapshot(session: tower_sessions::Session, mut request: Request, next: Next) -> Response {
    use app::web::auth::server::SessionSnapshot;
    use app::web::session_keys::{DRAFT_KEY, FLASH_KEY, ISSUED_LINK_KEY, USER_KEY};
    if matches!(*request.method(), Method::GET | Method::HEAD) && !request.uri().path().starts_with("/pkg/") {
        let user_id = match session.get::<i64>(USER_KEY).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "session unreadable");
                return (StatusCode::SERVICE_UNAVAILABLE, "Please try again in a moment.").into_response();
            }
        };
        // One-time values, taken only when there is one: removing marks the session changed
        // (and so written) even when the key is absent.
        let (flash, draft, issued_link) = match user_id {
            Some(_) => (
                take::<(String, String)>(&session, FLASH_KEY).await,
                take::<(i64, String)>(&session, DRAFT_KEY).await,
                take::<(String, String, String)>(&session, ISSUED_LINK_KEY).await,
            ),
            None => (None, None, None),
        };
        if user_id.is_some() {
            touch(&session).await;
        }
        request.extensions_mut().insert(SessionSnapshot {
            user_id,
            flash,
            draft,
            issued_link,
            account: Default::default(),
        });
    }
    next.run(request).await
}

/// Takes a one-time value out of the session, if it is there.
async fn take<T: serde::de::DeserializeOwned>(session: &tower_sessions::Session, key: &str) -> Option<T> {
    let value = session.get::<T>(key).await.ok().flatten()?;
    let _ = session.remove_value(key).await;
    Some(value)
}

/// How often an active session is written to extend its expiry.
const TOUCH_EVERY_SECS: i64 = 3600;

/// Marks a signed-in session as used when its last mark is an hour old or more: the change is
/// what makes tower-sessions save it, with a fresh expiry. A failure only means the session ends
/// sooner; the page still renders.
async fn touch(session: &tower_sessions::Session) {
    use app::web::session_keys::TOUCHED_KEY;
    let now = chrono::Utc::now().timestamp();
    let last = session.get::<i64>(TOUCHED_KEY).await.unwrap_or(None);
    if last.is_none_or(|t| now - t >= TOUCH_EVERY_SECS) {
        if let Err(e) = session.insert(TOUCHED_KEY, now).await {
            tracing::warn!(error = %e, "could not mark the session as used");
        }
    }
}

/// A request refused with a body may leave part of that body unread (a size limit stops
/// reading it, the Origin check above never starts). Were the connection kept alive, the
/// server would drain the rest while the client, done with this exchange, sends its next
/// request on it: the two then wait on each other for ever, or the next request's bytes are
/// read as the old body. So a request that carried a body and is answered with anything but
/// success closes its connection; the client opens a fresh one.
///
/// Before it closes, the rest of the body is read and dropped (a "lingering close", as nginx
/// does it), for at most `LINGER` and `LINGER_BYTES`. Closing a socket with unread bytes makes
/// the kernel send a reset, and a reset that reaches a client still sending its upload kills
/// the exchange before the client reads our answer: the person would see "connection reset"
/// instead of "The artwork file is too large." Past either bound the connection is closed
/// anyway, so a client cannot hold it open by sending for ever.
pub async fn close_after_refused_body(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let has_body = headers.get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0")
        || headers.contains_key(header::TRANSFER_ENCODING);
    if !has_body {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let body = SharedBody(std::sync::Arc::new(std::sync::Mutex::new(body)));
    let mut response = next.run(Request::from_parts(parts, axum::body::Body::new(body.clone()))).await;
    if !response.status().is_success() {
        response.headers_mut().insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        linger(body).await;
    }
    response
}

/// How long, and how much, a refused request's unread body is read before its connection
/// closes; and how long the client may fall silent meanwhile (one that stalled, which is maybe
/// why it was refused, is not waited for).
const LINGER: std::time::Duration = std::time::Duration::from_secs(5);
const LINGER_QUIET: std::time::Duration = std::time::Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// Reads and drops what is left of a refused request's body, within the bounds above.
async fn linger(mut body: SharedBody) {
    use http_body_util::BodyExt;
    let drain = async {
        let mut read = 0;
        while read <= LINGER_BYTES {
            match tokio::time::timeout(LINGER_QUIET, body.frame()).await {
                Ok(Some(Ok(frame))) => read += frame.data_ref().map_or(0, |d| d.len()),
                // Ended, failed, or went quiet: nothing more worth waiting for.
                Ok(Some(Err(_)) | None) | Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// The request's body, readable by the handler and, once the handler has answered, by
/// `linger`. Never read by both at once: the handler has finished (and dropped its copy)
/// before `linger` starts, so the lock is never contended.
#[derive(Clone)]
struct SharedBody(std::sync::Arc<std::sync::Mutex<axum::body::Body>>);

impl SharedBody {
    fn lock(&self) -> std::sync::MutexGuard<'_, axum::body::Body> {
        // A panic while reading leaves nothing half-done in the body itself.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl http_body::Body for SharedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut *self.lock()).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.lock().is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.lock().size_hint()
    }
}

/// `https://example.com:8443` → `example.com:8443`.
fn origin_authority(origin: &str) -> Option<&str> {
    let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"))?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    #[test]
    fn origin_authority_is_host_and_port() {
        assert_eq!(super::origin_authority("http://127.0.0.1:3000"), Some("127.0.0.1:3000"));
        assert_eq!(super::origin_authority("https://shop.example"), Some("shop.example"));
        assert_eq!(super::origin_authority("null"), None);
        assert_eq!(super::origin_authority("http://a.example/path"), None);
    }

    #[test]
    fn a_public_url_is_the_only_origin_once_set() {
        let behind_proxy = super::Origins::new(Some("https://shop.example".into()));
        assert!(behind_proxy.allows("https://shop.example", Some("10.0.0.5:3000")), "Host rewritten by the proxy");
        assert!(!behind_proxy.allows("http://10.0.0.5:3000", Some("10.0.0.5:3000")));
        assert!(!behind_proxy.allows("https://evil.example", Some("evil.example")));
        let direct = super::Origins::new(None);
        assert!(direct.allows("http://127.0.0.1:3000", Some("127.0.0.1:3000")));
        assert!(!direct.allows("http://evil.example", Some("127.0.0.1:3000")));
    }
}
