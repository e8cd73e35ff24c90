//! Generic HMAC senders (GitHub and the many that sign alike): one header holding an HMAC of
//! the raw body, SHA-256 or SHA-1, hex or base64, maybe behind a prefix such as GitHub's
//! `sha256=`. The event's id and type are read from the JSON body at configured pointers.
//!
//! A timestamp, where the sender signs one, is in its own header; the convention we then expect
//! (Stripe's and Slack's, and the most common) is that the signed message is `{timestamp}.{body}`,
//! and the five-minute tolerance applies. Without a timestamp there is no tolerance, and a
//! replay is stopped by deduplication on the event id.
use super::{check_tolerance, parse_timestamp, Body, Delivery, Refusal, Secret, Verified};
use crate::signing::{hmac_sha1_matches, hmac_sha256_matches};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};

pub const LABEL: &str = "generic_hmac";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha256,
    Sha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Hex,
    Base64,
}

/// How one generic sender signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HmacConfig {
    /// The signature's header, e.g. `x-hub-signature-256`.
    pub header: String,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    /// Text before the encoded signature, e.g. `sha256=`; required when set.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The header of a signed unix timestamp, when the sender signs one.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// JSON pointer to the event's id in the body.
    #[serde(default = "default_id_pointer")]
    pub id_pointer: String,
    /// JSON pointer to the event's type in the body.
    #[serde(default = "default_type_pointer")]
    pub type_pointer: String,
}

fn default_id_pointer() -> String {
    "/id".into()
}

fn default_type_pointer() -> String {
    "/type".into()
}

impl Algorithm {
    fn len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha1 => 20,
        }
    }

    fn matches(self, key: &[u8], parts: &[&[u8]], sig: &[u8]) -> bool {
        match self {
            Self::Sha256 => hmac_sha256_matches(key, parts, sig),
            Self::Sha1 => hmac_sha1_matches(key, parts, sig),
        }
    }
}

/// The raw signature bytes of the header's value.
fn signature(config: &HmacConfig, value: &str) -> Result<Vec<u8>, Refusal> {
    let header = config.header.as_str();
    let encoded = match &config.prefix {
        Some(prefix) => value.strip_prefix(prefix.as_str()).ok_or(Refusal::malformed(header, "missing its prefix"))?,
        None => value,
    };
    let sig = match config.encoding {
        Encoding::Hex => hex::decode(encoded).map_err(|_| Refusal::malformed(header, "not hex"))?,
        Encoding::Base64 => BASE64.decode(encoded).map_err(|_| Refusal::malformed(header, "not base64"))?,
    };
    if sig.len() != config.algorithm.len() {
        return Err(Refusal::malformed(header, "not the digest's length"));
    }
    Ok(sig)
}

/// Verifies a delivery under any of `secrets` (each used as its text's bytes).
pub fn verify(config: &HmacConfig, secrets: &[Secret], delivery: &Delivery<'_>) -> Result<Verified, Refusal> {
    let sig = signature(config, delivery.header(&config.header)?)?;
    let timestamp = match &config.timestamp_header {
        Some(name) => {
            let text = delivery.header(name)?;
            Some((parse_timestamp(name, text)?, text))
        }
        None => None,
    };
    let keys: Vec<&[u8]> = secrets.iter().map(|s| s.expose().as_bytes()).filter(|k| !k.is_empty()).collect();
    if keys.is_empty() {
        return Err(Refusal::NoSecret);
    }
    // The timestamp is signed as the sender wrote it (digits only, checked above).
    let message: Vec<&[u8]> = match timestamp {
        Some((_, text)) => vec![text.as_bytes(), b".", delivery.body],
        None => vec![delivery.body],
    };
    let mut matched = false;
    for key in keys {
        matched |= config.algorithm.matches(key, &message, &sig);
    }
    if !matched {
        return Err(Refusal::NoMatch);
    }
    if let Some((at, _)) = timestamp {
        check_tolerance(at, delivery.now)?;
    }
    let body = Body::parse(delivery.body)?;
    Ok(Verified {
        event_id: body.event_id(&config.id_pointer)?,
        event_type: body.text(&config.type_pointer),
        occurred_at: timestamp.map(|(at, _)| at),
        scheme_label: LABEL,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn github() -> HmacConfig {
        HmacConfig {
            header: "x-hub-signature-256".into(),
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            prefix: Some("sha256=".into()),
            timestamp_header: None,
            id_pointer: default_id_pointer(),
            type_pointer: default_type_pointer(),
        }
    }

    fn check(
        config: &HmacConfig,
        headers: &[(&str, &str)],
        body: &[u8],
        secrets: &[&str],
        now: i64,
    ) -> Result<Verified, Refusal> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        verify(config, &secrets, &Delivery { headers: &map, body, now })
    }

    // GitHub's documented example ("Validating webhook deliveries"), recomputed independently
    // with `printf 'Hello, World!' | openssl dgst -sha256 -hmac "It's a Secret to Everybody"`.
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_example_matches_but_is_no_event() {
        let header = [("x-hub-signature-256", GITHUB_SIG)];
        // The example's body is not JSON: signed, yet with no event id to deduplicate on.
        let refusal = check(&github(), &header, b"Hello, World!", &["old secret", GITHUB_SECRET], 0);
        assert_eq!(refusal, Err(Refusal::NotAnEvent("the body is not JSON")));
        assert_eq!(check(&github(), &header, b"Hello, World?", &[GITHUB_SECRET], 0), Err(Refusal::NoMatch));
        assert_eq!(check(&github(), &header, b"Hello, World!", &["another"], 0), Err(Refusal::NoMatch));
        let upper = GITHUB_SIG.to_uppercase().replace("SHA256=", "sha256=");
        let upper = [("x-hub-signature-256", upper.as_str())];
        assert_eq!(
            check(&github(), &upper, b"Hello, World!", &[GITHUB_SECRET], 0).unwrap_err().label(),
            "not_an_event"
        );
    }

    fn hmac_hex(algorithm: Algorithm, key: &str, message: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        match algorithm {
            Algorithm::Sha256 => {
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
                mac.update(message);
                hex::encode(mac.finalize().into_bytes())
            }
            Algorithm::Sha1 => {
                let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
                mac.update(message);
                hex::encode(mac.finalize().into_bytes())
            }
        }
    }

    #[test]
    fn a_json_event_is_named_by_its_pointers() {
        let body = br#"{"delivery":{"uuid":"d-1"},"action":"opened"}"#;
        let config = HmacConfig { id_pointer: "/delivery/uuid".into(), type_pointer: "/action".into(), ..github() };
        let sig = format!("sha256={}", hmac_hex(Algorithm::Sha256, "s3", body));
        let verified = check(&config, &[("x-hub-signature-256", &sig)], body, &["s1", "s3"], 0).unwrap();
        assert_eq!(verified.event_id, "d-1");
        assert_eq!(verified.event_type.as_deref(), Some("opened"));
        assert_eq!((verified.occurred_at, verified.scheme_label), (None, LABEL));
        let unnamed = HmacConfig { id_pointer: "/nope".into(), ..config };
        let refusal = check(&unnamed, &[("x-hub-signature-256", &sig)], body, &["s3"], 0);
        assert_eq!(refusal, Err(Refusal::NotAnEvent("no event id")));
    }

    #[test]
    fn sha1_and_base64_without_prefix() {
        let body = br#"{"id":"e1","type":"t"}"#;
        let config = HmacConfig {
            header: "x-signature".into(),
            algorithm: Algorithm::Sha1,
            encoding: Encoding::Base64,
            prefix: None,
            ..github()
        };
        let sig = BASE64.encode(hex::decode(hmac_hex(Algorithm::Sha1, "k", body)).unwrap());
        assert_eq!(check(&config, &[("x-signature", &sig)], body, &["k"], 0).unwrap().event_id, "e1");
        // A SHA-256 digest where SHA-1 is configured is the wrong length.
        let long = BASE64.encode([0u8; 32]);
        assert_eq!(check(&config, &[("x-signature", &long)], body, &["k"], 0).unwrap_err().label(), "malformed_header");
    }

    #[test]
    fn a_signed_timestamp_is_in_the_message_and_within_five_minutes() {
        let body = br#"{"id":"e2"}"#;
        let config = HmacConfig { timestamp_header: Some("x-timestamp".into()), ..github() };
        let t = 1_700_000_000;
        let sig = format!("sha256={}", hmac_hex(Algorithm::Sha256, "k", format!("{t}.{{\"id\":\"e2\"}}").as_bytes()));
        let headers = [("x-hub-signature-256", sig.as_str()), ("x-timestamp", "1700000000")];
        let verified = check(&config, &headers, body, &["k"], t + 300).unwrap();
        assert_eq!(verified.occurred_at, Some(t));
        assert_eq!(check(&config, &headers, body, &["k"], t + 301), Err(Refusal::OutsideTolerance));
        assert_eq!(check(&config, &headers, body, &["k"], t - 301), Err(Refusal::OutsideTolerance));
        // The body alone signed, or another timestamp, does not match.
        let bare = format!("sha256={}", hmac_hex(Algorithm::Sha256, "k", body));
        let bare = [("x-hub-signature-256", bare.as_str()), ("x-timestamp", "1700000000")];
        assert_eq!(check(&config, &bare, body, &["k"], t), Err(Refusal::NoMatch));
        let moved = [("x-hub-signature-256", sig.as_str()), ("x-timestamp", "1700000001")];
        assert_eq!(check(&config, &moved, body, &["k"], t), Err(Refusal::NoMatch));
        let missing = [("x-hub-signature-256", sig.as_str())];
        assert_eq!(check(&config, &missing, body, &["k"], t), Err(Refusal::MissingHeader("x-timestamp".into())));
    }

    #[test]
    fn missing_malformed_and_secretless_are_refused() {
        let body = br#"{"id":"e3"}"#;
        assert_eq!(check(&github(), &[], body, &["k"], 0), Err(Refusal::MissingHeader("x-hub-signature-256".into())));
        for sig in
            ["757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "sha256=zz", "sha256=7571", "sha1=00"]
        {
            let refusal = check(&github(), &[("x-hub-signature-256", sig)], body, &["k"], 0).unwrap_err();
            assert_eq!(refusal.label(), "malformed_header", "{sig}");
        }
        assert_eq!(check(&github(), &[("x-hub-signature-256", GITHUB_SIG)], body, &[], 0), Err(Refusal::NoSecret));
    }
}
