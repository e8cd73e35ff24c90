//! Cross-site request defence for the browser-facing routes. The session cookie is
//! SameSite=Lax, so other sites cannot make a browser send it with a POST; on top of that, a
//! state-changing request that says where it comes from (browsers send `Origin` on every POST,
//! and `Sec-Fetch-Site`) must come from this site, or it is refused with 403. A request with
//! neither header is not from a browser and carries no victim's cookies.
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn same_origin_writes(request: Request, next: Next) -> Response {
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
        Some(origin) => host.is_some_and(|host| origin_authority(origin) == Some(host)),
        None => fetch_site != Some("cross-site"),
    };
    if allowed {
        next.run(request).await
    } else {
        tracing::warn!(origin, host, fetch_site, path = %request.uri().path(), "refused a cross-site write");
        (StatusCode::FORBIDDEN, "Cross-site requests are not allowed.").into_response()
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
}
