//! Stripe webhook signatures, checked in our own code. async-stripe's helper reads only the last
//! `v1` and one secret; Stripe sends one `v1` per active secret while a secret is being rolled,
//! and a deployment may accept a test and a live endpoint secret. So: every `v1` against every
//! secret, compared in constant time (`signing::hmac_sha256_matches`), with a tolerance on the timestamp.
use crate::signing::{hmac_sha256, hmac_sha256_matches};
use std::fmt;

/// Stripe's libraries reject a timestamp more than five minutes from now; so do we, both ways:
/// a replayed old delivery and a far-future one (a clock attack) are equally suspect.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// An endpoint signing secret (`whsec_...`). Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("a webhook signing secret is empty".into());
        }
        if !s.starts_with("whsec_") {
            return Err("a webhook signing secret must start with `whsec_`".into());
        }
        Ok(Self(s.to_string()))
    }
    /// Parses a comma-separated list, as `STRIPE_WEBHOOK_SECRET` allows for rotation.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, String> {
        s.split(',').filter(|p| !p.trim().is_empty()).map(Self::parse).collect()
    }
    /// The key bytes: Stripe keys the HMAC with the whole secret string, prefix included.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    #[error("malformed Stripe-Signature header: {0}")]
    MalformedHeader(&'static str),
    #[error("no signature matched")]
    NoMatch,
    #[error("timestamp outside tolerance")]
    OutsideTolerance,
}

impl SignatureError {
    /// A short stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::MalformedHeader(_) => "malformed_header",
            Self::NoMatch => "no_match",
            Self::OutsideTolerance => "outside_tolerance",
        }
    }
}

struct ParsedHeader {
    timestamp: i64,
    v1: Vec<[u8; 32]>,
}

fn parse_header(header: &str) -> Result<ParsedHeader, SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let (key, value) =
            item.trim().split_once('=').ok_or(SignatureError::MalformedHeader("an item is not key=value"))?;
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::MalformedHeader("more than one timestamp"));
                }
                let t =
                    value.parse::<i64>().map_err(|_| SignatureError::MalformedHeader("timestamp is not an integer"))?;
                timestamp = Some(t);
            }
            "v1" => {
                let mut sig = [0u8; 32];
                // A v1 that is not 64 hex digits cannot match; reject the header as malformed
                // rather than silently skipping it, so a broken sender is easy to diagnose.
                hex::decode_to_slice(value, &mut sig)
                    .map_err(|_| SignatureError::MalformedHeader("a v1 signature is not 64 hex digits"))?;
                v1.push(sig);
            }
            // v0 is a test-mode scheme and other schemes may appear later: ignore them.
            _ => {}
        }
        if v1.len() > 16 {
            return Err(SignatureError::MalformedHeader("too many signatures"));
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader("no timestamp"))?;
    if v1.is_empty() {
        return Err(SignatureError::MalformedHeader("no v1 signature"));
    }
    Ok(ParsedHeader { timestamp, v1 })
}

/// Verifies `header` for the raw `payload` (byte for byte, never re-serialised).
/// Returns the signed timestamp on success.
pub fn verify(
    payload: &[u8],
    header: Option<&str>,
    secrets: &[WebhookSecret],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let parsed = parse_header(header)?;
    // Check the signature before the clock: an attacker should learn nothing about timing rules
    // from an unsigned request, and a genuine but late delivery is reported as such.
    let mut matched = false;
    let timestamp = parsed.timestamp.to_string();
    for secret in secrets {
        let key = secret.expose().as_bytes();
        for sig in &parsed.v1 {
            // Every pair is checked, whichever matches: the time taken says nothing of which.
            if hmac_sha256_matches(key, &[timestamp.as_bytes(), b".", payload], sig) {
                matched = true;
            }
        }
    }
    if !matched {
        return Err(SignatureError::NoMatch);
    }
    if (now_unix - parsed.timestamp).abs() > tolerance_secs {
        return Err(SignatureError::OutsideTolerance);
    }
    Ok(parsed.timestamp)
}

/// Signs a payload as Stripe does. Used by the simulator and the benchmark; tests use their
/// own independent HMAC instead of this.
pub fn sign(payload: &[u8], secret: &WebhookSecret, timestamp: i64) -> String {
    let digest = hmac_sha256(secret.expose().as_bytes(), &[timestamp.to_string().as_bytes(), b".", payload]);
    format!("t={timestamp},v1={}", hex::encode(digest))
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    type HmacSha256 = Hmac<Sha256>;
    use super::*;

    fn secret(s: &str) -> WebhookSecret {
        WebhookSecret::parse(s).unwrap()
    }

    // Stripe's documented scheme, computed independently of `sign`.
    fn reference_sig(payload: &str, secret: &str, t: i64) -> String {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{payload}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn accepts_any_v1_under_any_secret() {
        let secrets = [secret("whsec_old"), secret("whsec_new")];
        let good = reference_sig("{}", "whsec_new", NOW);
        let bad = "00".repeat(32);
        let header = format!("t={NOW},v1={bad},v1={good},v0={bad}");
        assert_eq!(verify(b"{}", Some(&header), &secrets, NOW, 300), Ok(NOW));
    }

    #[test]
    fn rejects_tampering_wrong_secret_and_clock_skew() {
        let secrets = [secret("whsec_a")];
        let header = format!("t={NOW},v1={}", reference_sig("{}", "whsec_a", NOW));
        assert_eq!(verify(b"{ }", Some(&header), &secrets, NOW, 300), Err(SignatureError::NoMatch));
        assert_eq!(verify(b"{}", Some(&header), &[secret("whsec_b")], NOW, 300), Err(SignatureError::NoMatch));
        assert_eq!(verify(b"{}", Some(&header), &secrets, NOW + 301, 300), Err(SignatureError::OutsideTolerance));
        assert_eq!(verify(b"{}", Some(&header), &secrets, NOW - 301, 300), Err(SignatureError::OutsideTolerance));
        assert_eq!(verify(b"{}", Some(&header), &secrets, NOW + 300, 300), Ok(NOW));
    }

    #[test]
    fn rejects_missing_and_malformed_headers() {
        let s = [secret("whsec_a")];
        assert_eq!(verify(b"{}", None, &s, NOW, 300), Err(SignatureError::MissingHeader));
        for h in [
            "",
            "garbage",
            "t=abc,v1=00",
            &format!("t={NOW}"),
            &format!("v1={}", "00".repeat(32)),
            &format!("t={NOW},v1=xyz"),
        ] {
            assert!(matches!(verify(b"{}", Some(h), &s, NOW, 300), Err(SignatureError::MalformedHeader(_))), "{h}");
        }
    }

    #[test]
    fn sign_matches_the_reference_scheme() {
        let s = secret("whsec_x");
        assert_eq!(sign(b"body", &s, NOW), format!("t={NOW},v1={}", reference_sig("body", "whsec_x", NOW)));
        assert_eq!(verify(b"body", Some(&sign(b"body", &s, NOW)), &[s], NOW, 300), Ok(NOW));
    }

    #[test]
    fn secrets_parse_as_a_list_and_never_print() {
        let list = WebhookSecret::parse_list("whsec_a, whsec_b,").unwrap();
        assert_eq!(list.len(), 2);
        assert!(WebhookSecret::parse_list("whsec_a,sk_test_x").is_err());
        assert_eq!(format!("{:?}", list[0]), "WebhookSecret(redacted)");
    }
}
