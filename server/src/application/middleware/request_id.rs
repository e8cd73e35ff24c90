//! A request id on every log line: each request runs in a `request` span carrying its id, its
//! method and its path, so every line logged while serving it (and the answer's
//! `X-Request-Id`) ties back to it. A set-password link's token is left out of the path. A well-formed id from the proxy in front is kept, so its
//! logs and ours share one id; otherwise one is made here. The request's own headers are left
//! as they came: the webhook stores them as evidence.
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use tracing::Instrument;

const HEADER: &str = "x-request-id";

/// Unique across processes (a random prefix per process) and cheap (a counter).
fn next_id() -> String {
    static PREFIX: LazyLock<String> = LazyLock::new(|| {
        use rand::Rng;
        format!("{:08x}", rand::thread_rng().gen::<u32>())
    });
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    format!("{}-{}", *PREFIX, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Ids we repeat into our logs and headers: short, and nothing a log reader could mistake.
fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

pub async fn tag(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable(id))
        .map_or_else(next_id, str::to_owned);
    // The path with a set-password link's token taken out: a log must not hold a key to an account.
    let path = app::domain::people::loggable_path(request.uri().path());
    let span = tracing::info_span!("request", id = %id, method = %request.method(), path = %path);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_outside_ones_must_be_plain() {
        assert_ne!(super::next_id(), super::next_id());
        assert!(super::acceptable("lb-7f3a.12:9"));
        for bad in ["", "a b", "x\u{1b}[31m", &"y".repeat(65)] {
            assert!(!super::acceptable(bad), "{bad:?}");
        }
    }

    /// Every line logged while serving a set-password link (the request span's path included)
    /// is free of its token.
    #[tokio::test]
    async fn a_link_token_never_reaches_the_log() {
        use tower::ServiceExt;
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let app = axum::Router::new()
            .route(
                "/password/{token}",
                axum::routing::post(|| async {
                    tracing::info!("serving the form");
                    "ok"
                }),
            )
            .layer(axum::middleware::from_fn(super::tag));
        let token = "c0ffee".repeat(10) + "abcd";
        let request = axum::http::Request::post(format!("/password/{token}")).body(axum::body::Body::empty()).unwrap();
        assert_eq!(app.oneshot(request).await.unwrap().status(), 200);
        let written = logs.text();
        assert!(written.contains("serving the form") && written.contains("/password/…"), "{written}");
        assert!(!written.contains(&token), "{written}");
    }

    /// A log writer the test reads back.
    #[derive(Clone, Default)]
    struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Logs {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
        type Writer = Logs;
        fn make_writer(&'a self) -> Logs {
            self.clone()
        }
    }
}
