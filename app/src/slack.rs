//! Slack, the two ways we talk to it: verifying a slash command's request signature (Slack's v0
//! scheme, our own code, as for Stripe's), and posting a message to an incoming-webhook URL.
use std::fmt;

/// Slack refuses, and so do we, a request signed more than five minutes from now either way:
/// a captured request cannot be replayed later.
pub const TOLERANCE_SECS: i64 = 300;

/// `SLACK_SIGNING_SECRET`, never printed.
#[derive(Clone)]
pub struct SigningSecret(String);

impl SigningSecret {
    pub fn new(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.len() < 16 {
            return Err(
                "SLACK_SIGNING_SECRET looks too short: copy it from the Slack app's Basic Information page".into()
            );
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(…)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlackAuthError {
    #[error("no X-Slack-Request-Timestamp or X-Slack-Signature header")]
    Missing,
    #[error("the timestamp is not a number")]
    BadTimestamp,
    #[error("the signature does not match")]
    NoMatch,
    #[error("the request was signed more than five minutes from now")]
    Stale,
}

/// Verifies `v0=hex(HMAC-SHA256(secret, "v0:{timestamp}:{raw body}"))`, compared in constant
/// time, before anything reads the body; then the timestamp within five minutes.
pub fn verify(
    secret: &SigningSecret,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SlackAuthError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else { return Err(SlackAuthError::Missing) };
    let t: i64 = timestamp.trim().parse().map_err(|_| SlackAuthError::BadTimestamp)?;
    let sig = signature.trim().strip_prefix("v0=").and_then(|h| hex::decode(h).ok()).ok_or(SlackAuthError::NoMatch)?;
    if !crate::signing::hmac_sha256_matches(secret.0.as_bytes(), &[format!("v0:{t}:").as_bytes(), body], &sig) {
        return Err(SlackAuthError::NoMatch);
    }
    if (now_unix - t).abs() > TOLERANCE_SECS {
        return Err(SlackAuthError::Stale);
    }
    Ok(())
}

/// Where the daily summary goes: an incoming-webhook URL, https (plain http only to this
/// machine, for a local stand-in), never printed whole (the URL is the credential).
#[derive(Clone)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let local = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"].iter().any(|p| s.starts_with(p));
        if !(s.starts_with("https://") || local) {
            return Err("SLACK_WEBHOOK_URL must be an https:// URL (Slack's incoming webhook)".into());
        }
        s.parse::<hyper::Uri>().map_err(|e| format!("SLACK_WEBHOOK_URL is not a URL: {e}"))?;
        Ok(Self(s.to_string()))
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.0.split('/').nth(2).unwrap_or_default();
        write!(f, "WebhookUrl({host}/…)")
    }
}

/// Posts `{"text": …}` to the webhook; Ok only for a 2xx within ten seconds.
pub async fn post(url: &WebhookUrl, text: &str) -> Result<(), String> {
    use http_body_util::{BodyExt, Full};
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
    let client: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    let body = serde_json::json!({ "text": text }).to_string();
    let request = hyper::Request::post(&url.0)
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let send = async {
        let res = client.request(request).await.map_err(|e| format!("Slack unreachable: {e}"))?;
        let status = res.status();
        let answer = res.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            let answer = String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
            Err(format!("Slack answered {status}: {answer}"))
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), send)
        .await
        .map_err(|_| "Slack did not answer within 10 s".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    fn sign(secret: &str, t: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{t}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn only_a_fresh_request_signed_with_our_secret_passes() {
        let secret = SigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5").unwrap();
        let body = "command=%2Frevenue&text=today";
        let now = 1_700_000_000;
        let ok = sign("8f742231b10e8888abcd99yyyzzz85a5", now, body);
        assert_eq!(verify(&secret, Some(&now.to_string()), Some(&ok), body.as_bytes(), now), Ok(()));
        assert_eq!(
            verify(&secret, Some(&now.to_string()), Some(&ok), b"command=%2Frevenue&text=30d", now),
            Err(SlackAuthError::NoMatch)
        );
        let other = sign("another-secret-of-some-length", now, body);
        assert_eq!(
            verify(&secret, Some(&now.to_string()), Some(&other), body.as_bytes(), now),
            Err(SlackAuthError::NoMatch)
        );
        for skew in [-301, 301] {
            let t = now + skew;
            let s = sign("8f742231b10e8888abcd99yyyzzz85a5", t, body);
            assert_eq!(
                verify(&secret, Some(&t.to_string()), Some(&s), body.as_bytes(), now),
                Err(SlackAuthError::Stale)
            );
        }
        assert_eq!(verify(&secret, None, Some(&ok), body.as_bytes(), now), Err(SlackAuthError::Missing));
        assert_eq!(verify(&secret, Some("soon"), Some(&ok), body.as_bytes(), now), Err(SlackAuthError::BadTimestamp));
        assert_eq!(
            verify(&secret, Some(&now.to_string()), Some("v1=abc"), body.as_bytes(), now),
            Err(SlackAuthError::NoMatch)
        );
        assert!(format!("{secret:?}").contains('…') && !format!("{secret:?}").contains("8f74"));
    }

    #[test]
    fn webhook_urls_are_https_or_this_machine() {
        assert!(WebhookUrl::parse("https://hooks.slack.com/services/T0/B0/x").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9999/hook").is_ok());
        assert!(WebhookUrl::parse("http://hooks.slack.com/services/T0/B0/x").is_err());
        let url = WebhookUrl::parse("https://hooks.slack.com/services/T0/B0/secret").unwrap();
        assert_eq!(format!("{url:?}"), "WebhookUrl(hooks.slack.com/…)");
    }
}
