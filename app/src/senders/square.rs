//! Square's webhook signatures: `x-square-hmacsha256-signature` is the base64 of HMAC-SHA256,
//! keyed with the subscription's signature key (its text, as Square shows it), over the
//! notification URL exactly as configured at Square followed by the raw body. Signing the URL
//! binds a delivery to one subscription: one sent to another of the publisher's URLs fails.
//!
//! Square signs no timestamp, so there is no tolerance to apply: a replayed delivery is stopped
//! by deduplication on its `event_id`, which is why a signed body without one is refused.
use super::{Body, Delivery, Refusal, Secret, Verified};
use crate::signing::hmac_sha256_matches;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

pub const LABEL: &str = "square";

const SIGNATURE: &str = "x-square-hmacsha256-signature";

/// Verifies a delivery under any of `secrets` (signature keys, several while one is replaced).
pub fn verify(notification_url: &str, secrets: &[Secret], delivery: &Delivery<'_>) -> Result<Verified, Refusal> {
    let header = delivery.header(SIGNATURE)?;
    let decoded = BASE64.decode(header).map_err(|_| Refusal::malformed(SIGNATURE, "not base64"))?;
    let sig: [u8; 32] = decoded.try_into().map_err(|_| Refusal::malformed(SIGNATURE, "not 32 bytes"))?;
    let keys: Vec<&[u8]> = secrets.iter().map(|s| s.expose().as_bytes()).filter(|k| !k.is_empty()).collect();
    if keys.is_empty() {
        return Err(Refusal::NoSecret);
    }
    let mut matched = false;
    for key in keys {
        matched |= hmac_sha256_matches(key, &[notification_url.as_bytes(), delivery.body], &sig);
    }
    if !matched {
        return Err(Refusal::NoMatch);
    }
    let body = Body::parse(delivery.body)?;
    Ok(Verified {
        event_id: body.event_id("/event_id")?,
        event_type: body.text("/type"),
        occurred_at: body.time("/created_at"),
        scheme_label: LABEL,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    // Square's own example, from the test of its Python SDK's webhooks helper
    // (square/square-python-sdk, tests/integration/test_webhooks_helper.py), recomputed
    // independently with `openssl dgst -sha256 -hmac KEY -binary | base64` over URL + body.
    const URL: &str = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9";
    const KEY: &str = "Ibxx_5AKakO-3qeNVR61Dw";
    const SIG: &str = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=";
    const BODY: &[u8] = br#"{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}"#;

    fn check(url: &str, sig: Option<&str>, body: &[u8], keys: &[&str]) -> Result<Verified, Refusal> {
        let mut headers = HeaderMap::new();
        if let Some(sig) = sig {
            headers.insert(SIGNATURE, HeaderValue::from_str(sig).unwrap());
        }
        let secrets: Vec<Secret> = keys.iter().map(|k| Secret::new(*k)).collect();
        verify(url, &secrets, &Delivery { headers: &headers, body, now: 0 })
    }

    #[test]
    fn squares_example_verifies_and_names_its_event() {
        let verified = check(URL, Some(SIG), BODY, &["an-old-key", KEY]).unwrap();
        assert_eq!(
            verified,
            Verified {
                event_id: "ac3ac95b-f97d-458c-a6e6-18981597e05f".into(),
                event_type: Some("webhooks.test_notification".into()),
                occurred_at: Some(1_657_744_259),
                scheme_label: LABEL,
            }
        );
    }

    #[test]
    fn another_url_key_or_body_does_not_match() {
        let url = "https://webhook.site/79a4f3a-dcfa-49ee-bac5-9d0edad886b9";
        assert_eq!(check(url, Some(SIG), BODY, &[KEY]), Err(Refusal::NoMatch));
        assert_eq!(check(URL, Some(SIG), BODY, &["MCmhFRxGX82xMwg5FsaoQA"]), Err(Refusal::NoMatch));
        let reformatted = String::from_utf8(BODY.to_vec()).unwrap().replace(",", ", ");
        assert_eq!(check(URL, Some(SIG), reformatted.as_bytes(), &[KEY]), Err(Refusal::NoMatch));
        assert_eq!(check(URL, Some(SIG), BODY, &[""]), Err(Refusal::NoSecret));
    }

    #[test]
    fn square_s_escaped_example_verifies_but_without_an_event_id_is_refused() {
        // The same test file's second example: a valid signature over a body with no event_id.
        let body = br#"{"data":{"type":"webhooks","id":">id<"}}"#;
        let sig = "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U=";
        let url = "https://webhook.site/webhooks";
        assert_eq!(check(url, Some(sig), body, &["signature-key"]), Err(Refusal::NotAnEvent("no event id")));
        assert_eq!(check(url, Some(sig), body, &["other-key"]), Err(Refusal::NoMatch));
    }

    #[test]
    fn a_missing_or_malformed_signature_is_refused() {
        assert_eq!(check(URL, None, BODY, &[KEY]), Err(Refusal::MissingHeader(SIGNATURE.into())));
        for sig in ["not base64!", "1z2n3DEJJiUPKcPzQo1ftvbxGdw=", ""] {
            assert_eq!(check(URL, Some(sig), BODY, &[KEY]).unwrap_err().label(), "malformed_header", "{sig}");
        }
    }
}
