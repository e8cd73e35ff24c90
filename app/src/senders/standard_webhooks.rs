//! The Standard Webhooks specification (standardwebhooks.com), symmetric signatures: the sender
//! signs `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256 under the bytes of its
//! `whsec_<base64>` secret, and sends `v1,<base64>` in `webhook-signature`, space-separated, one
//! per secret it signs with while rolling. We verify senders that follow it, and sign our own
//! forwarded deliveries with it (so a receiver's stock library verifies them).
use super::{check_tolerance, checked_event_id, parse_timestamp, Body, Delivery, Refusal, Secret, Verified};
use crate::signing::{hmac_sha256, hmac_sha256_matches};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

pub const LABEL: &str = "standard_webhooks";

const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";

/// The secret's prefix, by which the specification makes such secrets recognisable.
const PREFIX: &str = "whsec_";

/// A sender signs with at most a few secrets at once; more is not a rotation.
const MAX_SIGNATURES: usize = 16;

/// An ID longer than this is no sender's; it also bounds what we sign over.
const MAX_ID_LEN: usize = 255;

/// A secret that is not `whsec_` followed by base64 (or that is empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Standard Webhooks secret is `whsec_` followed by base64")]
pub struct InvalidSecret;

/// The HMAC key of a secret: the bytes its base64 encodes. The prefix is optional, as the
/// reference libraries allow; a secret that does not decode is not a key.
pub fn key(secret: &Secret) -> Result<Vec<u8>, InvalidSecret> {
    let text = secret.expose().trim();
    let encoded = text.strip_prefix(PREFIX).unwrap_or(text);
    match BASE64.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(InvalidSecret),
    }
}

/// A new secret: `whsec_` and the base64 of 32 random bytes (the specification asks for at
/// least 24), from the operating system's generator.
pub fn generate_secret() -> Secret {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("the system's random generator works");
    Secret::new(format!("{PREFIX}{}", BASE64.encode(bytes)))
}

/// The `webhook-signature` value for one delivery signed with `secret`: `v1,<base64>`.
pub fn sign(id: &str, timestamp: i64, body: &[u8], secret: &Secret) -> Result<String, InvalidSecret> {
    let key = key(secret)?;
    let digest = hmac_sha256(&key, &[id.as_bytes(), b".", timestamp.to_string().as_bytes(), b".", body]);
    Ok(format!("v1,{}", BASE64.encode(digest)))
}

/// The `v1` signatures of a `webhook-signature` header. Other versions (`v1a`, asymmetric) are
/// skipped, as the specification lets a sender add them; a `v1` that is not the base64 of 32
/// bytes cannot match, and is reported as malformed so a broken sender is easy to diagnose.
fn signatures(header: &str) -> Result<Vec<[u8; 32]>, Refusal> {
    let mut v1 = Vec::new();
    for item in header.split(' ').filter(|s| !s.is_empty()) {
        let (version, encoded) =
            item.split_once(',').ok_or(Refusal::malformed(SIGNATURE, "an item is not version,signature"))?;
        if version != "v1" {
            continue;
        }
        let decoded = BASE64.decode(encoded).map_err(|_| Refusal::malformed(SIGNATURE, "a v1 is not base64"))?;
        let sig: [u8; 32] = decoded.try_into().map_err(|_| Refusal::malformed(SIGNATURE, "a v1 is not 32 bytes"))?;
        v1.push(sig);
        if v1.len() > MAX_SIGNATURES {
            return Err(Refusal::malformed(SIGNATURE, "too many signatures"));
        }
    }
    if v1.is_empty() {
        return Err(Refusal::malformed(SIGNATURE, "no v1 signature"));
    }
    Ok(v1)
}

/// Verifies a delivery against every `v1` and every secret; the event id is `webhook-id`.
pub fn verify(secrets: &[Secret], delivery: &Delivery<'_>) -> Result<Verified, Refusal> {
    let id = delivery.header(ID)?;
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(Refusal::malformed(ID, "empty or over 255 bytes"));
    }
    // The specification warns that an id holding `.` lets one signed message be split into
    // another id and timestamp (a new dedup key for a replayed delivery): refuse it.
    if id.contains('.') {
        return Err(Refusal::malformed(ID, "contains ."));
    }
    let timestamp = parse_timestamp(TIMESTAMP, delivery.header(TIMESTAMP)?)?;
    let sigs = signatures(delivery.header(SIGNATURE)?)?;
    let keys: Vec<Vec<u8>> = secrets.iter().filter_map(|s| key(s).ok()).collect();
    if keys.is_empty() {
        return Err(Refusal::NoSecret);
    }
    let stamp = timestamp.to_string();
    let message: [&[u8]; 5] = [id.as_bytes(), b".", stamp.as_bytes(), b".", delivery.body];
    let mut matched = false;
    for key in &keys {
        for sig in &sigs {
            // Every pair is checked, whichever matches: the time taken says nothing of which.
            matched |= hmac_sha256_matches(key, &message, sig);
        }
    }
    if !matched {
        return Err(Refusal::NoMatch);
    }
    check_tolerance(timestamp, delivery.now)?;
    // The specification suggests `type` and `timestamp` in a JSON payload, without requiring
    // either (or JSON): read them where they are.
    let body = Body::parse_lenient(delivery.body);
    Ok(Verified {
        event_id: checked_event_id(id.to_string())?,
        event_type: body.text("/type"),
        occurred_at: body.time("/timestamp"),
        scheme_label: LABEL,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    // The specification's published test vector (the reference libraries' tests), recomputed
    // independently with `openssl dgst -sha256 -mac HMAC` over the same message.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(id: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in [(ID, id), (TIMESTAMP, ts), (SIGNATURE, sig)] {
            h.insert(name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn check(h: &HeaderMap, body: &[u8], secrets: &[&str], now: i64) -> Result<Verified, Refusal> {
        let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        verify(&secrets, &Delivery { headers: h, body, now })
    }

    #[test]
    fn the_specification_test_vector_signs_and_verifies() {
        assert_eq!(sign(MSG_ID, TS, BODY, &Secret::new(SECRET)).unwrap(), EXPECTED);
        let verified = check(&headers(MSG_ID, "1614265330", EXPECTED), BODY, &[SECRET], TS).unwrap();
        assert_eq!(
            verified,
            Verified { event_id: MSG_ID.into(), event_type: None, occurred_at: None, scheme_label: LABEL }
        );
    }

    #[test]
    fn a_wrong_signature_body_id_or_secret_does_not_match() {
        let other = "v1,".to_string() + &BASE64.encode([7u8; 32]);
        assert_eq!(check(&headers(MSG_ID, "1614265330", &other), BODY, &[SECRET], TS), Err(Refusal::NoMatch));
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(check(&headers(MSG_ID, "1614265330", EXPECTED), tampered, &[SECRET], TS), Err(Refusal::NoMatch));
        assert_eq!(check(&headers("msg_other", "1614265330", EXPECTED), BODY, &[SECRET], TS), Err(Refusal::NoMatch));
        let wrong = generate_secret();
        assert_eq!(check(&headers(MSG_ID, "1614265330", EXPECTED), BODY, &[wrong.expose()], TS), Err(Refusal::NoMatch));
    }

    #[test]
    fn a_stale_or_future_timestamp_is_refused_after_the_signature_matched() {
        let h = headers(MSG_ID, "1614265330", EXPECTED);
        assert!(check(&h, BODY, &[SECRET], TS + 300).is_ok());
        assert!(check(&h, BODY, &[SECRET], TS - 300).is_ok());
        assert_eq!(check(&h, BODY, &[SECRET], TS + 301), Err(Refusal::OutsideTolerance));
        assert_eq!(check(&h, BODY, &[SECRET], TS - 301), Err(Refusal::OutsideTolerance));
        // A forged, stale delivery is told only that it does not match.
        let forged = headers(MSG_ID, "1614265330", &("v1,".to_string() + &BASE64.encode([1u8; 32])));
        assert_eq!(check(&forged, BODY, &[SECRET], TS + 3600), Err(Refusal::NoMatch));
    }

    #[test]
    fn any_v1_in_the_header_under_any_secret_passes_and_other_versions_are_skipped() {
        let old = generate_secret();
        let new = generate_secret();
        let by_new = sign(MSG_ID, TS, BODY, &new).unwrap();
        let v1a = "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==";
        let other = "v1,".to_string() + &BASE64.encode([9u8; 32]);
        let header = format!("{v1a} {other}  {by_new}");
        let h = headers(MSG_ID, "1614265330", &header);
        assert!(check(&h, BODY, &[old.expose(), new.expose()], TS).is_ok());
        assert!(check(&h, BODY, &[new.expose()], TS).is_ok());
        assert_eq!(check(&h, BODY, &[old.expose()], TS), Err(Refusal::NoMatch));
        // The prefix is optional on a secret; a secret that is not base64 is no key at all.
        assert!(
            check(&headers(MSG_ID, "1614265330", EXPECTED), BODY, &["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], TS).is_ok()
        );
        assert_eq!(check(&h, BODY, &["whsec_!!!", ""], TS), Err(Refusal::NoSecret));
        assert_eq!(check(&h, BODY, &[], TS), Err(Refusal::NoSecret));
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        let mut h = headers(MSG_ID, "1614265330", EXPECTED);
        h.remove(SIGNATURE);
        assert_eq!(check(&h, BODY, &[SECRET], TS), Err(Refusal::MissingHeader(SIGNATURE.into())));
        let long_id = "m".repeat(256);
        for (id, ts, sig) in [
            (MSG_ID, "16142653.30", EXPECTED),
            (MSG_ID, "-1614265330", EXPECTED),
            (MSG_ID, "1614265330", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
            (MSG_ID, "1614265330", "v1,not base64!"),
            (MSG_ID, "1614265330", "v1,AAAA"),
            (MSG_ID, "1614265330", "v1a,AAAA"),
            (MSG_ID, "1614265330", " "),
            (long_id.as_str(), "1614265330", EXPECTED),
            ("msg.1", "1614265330", EXPECTED),
        ] {
            let refusal = check(&headers(id, ts, sig), BODY, &[SECRET], TS).unwrap_err();
            assert_eq!(refusal.label(), "malformed_header", "{id:.10} {ts} {sig}: {refusal}");
        }
        let many = vec![EXPECTED; 17].join(" ");
        assert_eq!(
            check(&headers(MSG_ID, "1614265330", &many), BODY, &[SECRET], TS).unwrap_err().label(),
            "malformed_header"
        );
    }

    #[test]
    fn type_and_time_are_read_from_a_json_payload() {
        let secret = generate_secret();
        assert!(secret.expose().starts_with("whsec_") && key(&secret).unwrap().len() == 32);
        let body = br#"{"type":"invoice.paid","timestamp":"2022-11-03T20:26:10.344522Z","data":{}}"#;
        let h = headers("msg_1", &TS.to_string(), &sign("msg_1", TS, body, &secret).unwrap());
        let verified = check(&h, body, &[secret.expose()], TS).unwrap();
        assert_eq!(verified.event_type.as_deref(), Some("invoice.paid"));
        assert_eq!(verified.occurred_at, Some(1_667_507_170));
        assert_eq!(sign("msg_1", TS, body, &Secret::new("whsec_")), Err(InvalidSecret));
    }
}
