//! PayPal's webhook signatures, verified ourselves (PayPal's "self verification method", which
//! it prefers to posting each delivery back to its verify-webhook-signature API). PayPal signs
//! `{PAYPAL-TRANSMISSION-ID}|{PAYPAL-TRANSMISSION-TIME}|{webhook id}|{crc32}` with RSA
//! (PKCS#1 v1.5, SHA-256: `PAYPAL-AUTH-ALGO: SHA256withRSA`), where the webhook id is the id of
//! our subscription at PayPal (so a delivery meant for another subscriber fails) and crc32 is
//! the CRC-32 (IEEE) of the raw body written as an unsigned decimal, as PayPal's SDKs compute it
//! (Java's `CRC32.getValue()`). `PAYPAL-TRANSMISSION-SIG` is the base64 signature, and
//! `PAYPAL-CERT-URL` links to the certificate whose key checks it.
//!
//! The link is part of the request, so anyone can send one: we fetch only from https URLs on
//! PayPal's own API hosts, over TLS checked against the web's roots, and that fetch is what we
//! trust the key for (PayPal's SDKs also check the certificate's chain to DigiCert; we rely on the
//! TLS connection to PayPal's host instead, and check the certificate's dates).
//!
//! PayPal documents no tolerance on PAYPAL-TRANSMISSION-TIME (it retries a delivery for up to
//! three days), so we refuse nothing on time; a replay is stopped by deduplication on the event's
//! `id`, which is why a signed body without one is refused.
use super::{Body, CertCache, Delivery, Refusal, Verified};
use crate::senders::certs::PublicCert;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use url::Url;

pub const LABEL: &str = "paypal";

const TRANSMISSION_ID: &str = "paypal-transmission-id";
const TRANSMISSION_TIME: &str = "paypal-transmission-time";
const TRANSMISSION_SIG: &str = "paypal-transmission-sig";
const CERT_URL: &str = "paypal-cert-url";
const AUTH_ALGO: &str = "paypal-auth-algo";

/// The one algorithm PayPal documents for webhooks.
const SHA256_WITH_RSA: &str = "SHA256withRSA";

/// The hosts PayPal serves webhook certificates from: its live and sandbox REST API hosts, by
/// their older and current (`api-m`) names, as the cert URLs PayPal sends and its SDKs' samples
/// show (`https://api.paypal.com/v1/notifications/certs/CERT-…`).
pub const DEFAULT_CERT_HOSTS: [&str; 4] =
    ["api.paypal.com", "api-m.paypal.com", "api.sandbox.paypal.com", "api-m.sandbox.paypal.com"];

pub fn default_cert_hosts() -> Vec<String> {
    DEFAULT_CERT_HOSTS.iter().map(|h| h.to_string()).collect()
}

/// `url` if it may be fetched for a certificate: https, no user info, default port, on one of
/// `hosts`. An entry of `hosts` that is a whole origin (`http://127.0.0.1:8080`) allows exactly
/// that origin instead, so a test can serve certificates without TLS only when it says so.
pub fn trusted_cert_url(url: &str, hosts: &[String]) -> Result<Url, Refusal> {
    let untrusted = || Refusal::UntrustedCertUrl(url.chars().take(200).collect());
    let parsed = Url::parse(url).map_err(|_| untrusted())?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(untrusted());
    }
    let allowed = hosts.iter().any(|entry| match Url::parse(entry) {
        Ok(origin) if entry.contains("://") => origin.origin() == parsed.origin(),
        _ => {
            parsed.scheme() == "https"
                && parsed.port().is_none()
                && parsed.host_str().is_some_and(|h| h.eq_ignore_ascii_case(entry))
        }
    });
    if allowed {
        Ok(parsed)
    } else {
        Err(untrusted())
    }
}

/// The message PayPal signs for a delivery.
pub fn signed_message(transmission_id: &str, transmission_time: &str, webhook_id: &str, body: &[u8]) -> String {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(body);
    format!("{transmission_id}|{transmission_time}|{webhook_id}|{crc}")
}

/// The signing headers of one delivery.
struct Transmission<'a> {
    id: &'a str,
    time: &'a str,
    signature: Vec<u8>,
    cert_url: &'a str,
}

fn transmission<'a>(delivery: &Delivery<'a>) -> Result<Transmission<'a>, Refusal> {
    let algo = delivery.header(AUTH_ALGO)?;
    if algo != SHA256_WITH_RSA {
        return Err(Refusal::UnsupportedAlgorithm(algo.chars().take(50).collect()));
    }
    let id = delivery.header(TRANSMISSION_ID)?;
    let time = delivery.header(TRANSMISSION_TIME)?;
    // Neither may carry the separator: a `|` would let one field's text pass for another's.
    for (name, value) in [(TRANSMISSION_ID, id), (TRANSMISSION_TIME, time)] {
        if value.is_empty() || value.contains('|') {
            return Err(Refusal::malformed(name, "empty or containing |"));
        }
    }
    let signature = BASE64
        .decode(delivery.header(TRANSMISSION_SIG)?)
        .map_err(|_| Refusal::malformed(TRANSMISSION_SIG, "not base64"))?;
    Ok(Transmission { id, time, signature, cert_url: delivery.header(CERT_URL)? })
}

/// The pure check, given the certificate: its dates, the signature, then the event.
fn check(
    webhook_id: &str,
    t: &Transmission<'_>,
    cert: &PublicCert,
    delivery: &Delivery<'_>,
) -> Result<Verified, Refusal> {
    cert.check_dates(delivery.now)?;
    let message = signed_message(t.id, t.time, webhook_id, delivery.body);
    if !cert.verifies(message.as_bytes(), &t.signature) {
        return Err(Refusal::NoMatch);
    }
    let body = Body::parse(delivery.body)?;
    Ok(Verified {
        event_id: body.event_id("/id")?,
        event_type: body.text("/event_type"),
        occurred_at: body.time("/create_time"),
        scheme_label: LABEL,
    })
}

/// Verifies a delivery with the certificate given as PEM (no fetch, and no check of
/// `PAYPAL-CERT-URL`: the caller vouches for the certificate).
pub fn verify_with_pem(webhook_id: &str, delivery: &Delivery<'_>, pem: &[u8]) -> Result<Verified, Refusal> {
    let t = transmission(delivery)?;
    check(webhook_id, &t, &PublicCert::from_pem(pem)?, delivery)
}

/// Verifies a delivery: the cert URL must be on `cert_hosts` (else nothing is fetched), the
/// certificate comes from `certs` (fetched on a miss).
pub async fn verify(
    webhook_id: &str,
    cert_hosts: &[String],
    delivery: &Delivery<'_>,
    certs: &CertCache,
) -> Result<Verified, Refusal> {
    let t = transmission(delivery)?;
    let url = trusted_cert_url(t.cert_url, cert_hosts)?;
    let cert = certs.get(&url, delivery.now).await?;
    check(webhook_id, &t, &cert, delivery)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::senders::certs::test_pki::{cert_pem, sign};
    use axum::http::{HeaderMap, HeaderValue};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    const NOW: i64 = 1_760_000_000;
    const DAY: i64 = 86_400;
    const WEBHOOK_ID: &str = "8PT597110X687430LKGECATA";
    const BODY: &[u8] = br#"{"id":"WH-2WR32451HC0233532-67976317FL4543714","create_time":"2014-10-23T17:23:52Z","resource_type":"sale","event_type":"PAYMENT.SALE.COMPLETED","resource":{"id":"42"}}"#;

    fn headers(cert_url: &str, sig: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in [
            (TRANSMISSION_ID, "69cd13f0-d67a-11e5-baa3-778b53f4ae55"),
            (TRANSMISSION_TIME, "2016-02-18T20:01:35Z"),
            (CERT_URL, cert_url),
            (AUTH_ALGO, "SHA256withRSA"),
            (TRANSMISSION_SIG, &BASE64.encode(sig)),
        ] {
            h.insert(name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    /// What PayPal would sign for BODY, the CRC written out independently
    /// (`python3 -c 'import zlib; print(zlib.crc32(BODY))'`).
    fn paypal_signature(key: usize, webhook_id: &str) -> Vec<u8> {
        let message = format!("69cd13f0-d67a-11e5-baa3-778b53f4ae55|2016-02-18T20:01:35Z|{webhook_id}|{BODY_CRC}");
        sign(key, message.as_bytes())
    }
    const BODY_CRC: u32 = 2_058_187_952;

    #[test]
    fn the_crc_is_ieee_crc32_in_unsigned_decimal() {
        // The check value of CRC-32 (IEEE 802.3) is 0xCBF43926 = 3421780262, above i32::MAX.
        assert_eq!(signed_message("a", "b", "c", b"123456789"), "a|b|c|3421780262");
        assert!(signed_message("t", "x", "w", BODY).ends_with(&format!("|{BODY_CRC}")));
    }

    #[test]
    fn a_signature_by_the_certificates_key_verifies_without_a_server() {
        let pem = cert_pem(0, NOW - DAY, NOW + DAY);
        let h = headers("https://api.paypal.com/v1/notifications/certs/CERT-1", &paypal_signature(0, WEBHOOK_ID));
        let delivery = Delivery { headers: &h, body: BODY, now: NOW };
        assert_eq!(
            verify_with_pem(WEBHOOK_ID, &delivery, pem.as_bytes()),
            Ok(Verified {
                event_id: "WH-2WR32451HC0233532-67976317FL4543714".into(),
                event_type: Some("PAYMENT.SALE.COMPLETED".into()),
                occurred_at: Some(1_414_085_032),
                scheme_label: LABEL,
            })
        );
        // Another subscription's id, a changed body, another key, an expired certificate.
        assert_eq!(verify_with_pem("OTHER", &delivery, pem.as_bytes()), Err(Refusal::NoMatch));
        let changed = Delivery { body: br#"{"id":"WH-2"}"#, ..delivery };
        assert_eq!(verify_with_pem(WEBHOOK_ID, &changed, pem.as_bytes()), Err(Refusal::NoMatch));
        let other_key = cert_pem(1, NOW - DAY, NOW + DAY);
        assert_eq!(verify_with_pem(WEBHOOK_ID, &delivery, other_key.as_bytes()), Err(Refusal::NoMatch));
        let late = Delivery { now: NOW + DAY + 1, ..delivery };
        assert_eq!(verify_with_pem(WEBHOOK_ID, &late, pem.as_bytes()).unwrap_err().label(), "cert_invalid");
    }

    #[test]
    fn headers_are_required_and_the_algorithm_must_be_sha256_with_rsa() {
        let pem = cert_pem(0, NOW - DAY, NOW + DAY);
        let check =
            |h: &HeaderMap| verify_with_pem(WEBHOOK_ID, &Delivery { headers: h, body: BODY, now: NOW }, pem.as_bytes());
        let good = headers("https://api.paypal.com/c", &paypal_signature(0, WEBHOOK_ID));
        for name in [TRANSMISSION_ID, TRANSMISSION_TIME, TRANSMISSION_SIG, CERT_URL, AUTH_ALGO] {
            let mut h = good.clone();
            h.remove(name);
            assert_eq!(check(&h), Err(Refusal::MissingHeader(name.into())));
        }
        let mut h = good.clone();
        h.insert(AUTH_ALGO, HeaderValue::from_static("SHA1withRSA"));
        assert_eq!(check(&h), Err(Refusal::UnsupportedAlgorithm("SHA1withRSA".into())));
        let mut h = good.clone();
        h.insert(TRANSMISSION_SIG, HeaderValue::from_static("not base64!"));
        assert_eq!(check(&h).unwrap_err().label(), "malformed_header");
        let mut h = good.clone();
        h.insert(TRANSMISSION_ID, HeaderValue::from_static("a|b"));
        assert_eq!(check(&h).unwrap_err().label(), "malformed_header");
        // Signed, but the body names no event.
        let bare = b"{}";
        let sig = sign(
            0,
            signed_message("69cd13f0-d67a-11e5-baa3-778b53f4ae55", "2016-02-18T20:01:35Z", WEBHOOK_ID, bare).as_bytes(),
        );
        let h = headers("https://api.paypal.com/c", &sig);
        let refusal = verify_with_pem(WEBHOOK_ID, &Delivery { headers: &h, body: bare, now: NOW }, pem.as_bytes());
        assert_eq!(refusal, Err(Refusal::NotAnEvent("no event id")));
    }

    #[test]
    fn only_https_urls_on_paypals_hosts_are_trusted() {
        let hosts = default_cert_hosts();
        for ok in [
            "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-5edc0ebc",
            "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
            "https://API-M.PAYPAL.COM/v1/notifications/certs/CERT-1",
        ] {
            assert!(trusted_cert_url(ok, &hosts).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:8443/c",
            "https://api.paypal.com.evil.test/c",
            "https://evil.test/api.paypal.com",
            "https://user@api.paypal.com/c",
            "https://paypal.com/c",
            "not a url",
            "http://127.0.0.1:9/c",
        ] {
            assert_eq!(trusted_cert_url(bad, &hosts).unwrap_err().label(), "untrusted_cert_url", "{bad}");
        }
        let local = vec!["http://127.0.0.1:9".to_string()];
        assert!(trusted_cert_url("http://127.0.0.1:9/c", &local).is_ok());
        assert!(trusted_cert_url("http://127.0.0.1:10/c", &local).is_err());
        assert!(trusted_cert_url("https://127.0.0.1:9/c", &local).is_err());
    }

    /// A certificate server on 127.0.0.1 that counts the requests it answers.
    async fn serve(certs: Vec<(&'static str, String)>) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let mut router = axum::Router::new();
        for (path, pem) in certs {
            let hits = hits.clone();
            router = router.route(
                path,
                axum::routing::get(move || async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    pem
                }),
            );
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (origin, hits)
    }

    #[tokio::test]
    async fn certificates_are_fetched_once_only_from_allowed_hosts_and_only_in_date() {
        let (origin, hits) = serve(vec![
            ("/certs/good", cert_pem(0, NOW - DAY, NOW + DAY)),
            ("/certs/expired", cert_pem(0, NOW - 2 * DAY, NOW - DAY)),
        ])
        .await;
        let hosts = vec![origin.clone()];
        let cache = CertCache::new(8, Duration::from_secs(5));
        let sig = paypal_signature(0, WEBHOOK_ID);
        let h = headers(&format!("{origin}/certs/good"), &sig);
        let delivery = Delivery { headers: &h, body: BODY, now: NOW };
        for _ in 0..3 {
            let verified = verify(WEBHOOK_ID, &hosts, &delivery, &cache).await.unwrap();
            assert_eq!(verified.event_id, "WH-2WR32451HC0233532-67976317FL4543714");
        }
        assert_eq!((hits.load(Ordering::SeqCst), cache.len()), (1, 1), "fetched once, then cached");

        // A host not on the list: refused before any request is made.
        let elsewhere = verify(WEBHOOK_ID, &default_cert_hosts(), &delivery, &cache).await;
        assert_eq!(elsewhere.unwrap_err().label(), "untrusted_cert_url");
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        // An expired certificate is refused, and not cached.
        let h = headers(&format!("{origin}/certs/expired"), &sig);
        let expired = Delivery { headers: &h, body: BODY, now: NOW };
        assert_eq!(verify(WEBHOOK_ID, &hosts, &expired, &cache).await, Err(Refusal::CertInvalid("expired".into())));
        assert_eq!((hits.load(Ordering::SeqCst), cache.len()), (2, 1));

        // Past the cached certificate's notAfter it is fetched again, and refused as expired.
        let later = Delivery { now: NOW + DAY + 1, ..delivery };
        assert_eq!(verify(WEBHOOK_ID, &hosts, &later, &cache).await, Err(Refusal::CertInvalid("expired".into())));
        assert_eq!((hits.load(Ordering::SeqCst), cache.len()), (3, 0));

        // A path the server does not have: unavailable (404), as is a closed port.
        let h = headers(&format!("{origin}/certs/none"), &sig);
        let missing = Delivery { headers: &h, body: BODY, now: NOW };
        assert_eq!(verify(WEBHOOK_ID, &hosts, &missing, &cache).await.unwrap_err().label(), "cert_unavailable");
        let closed = vec!["http://127.0.0.1:9".to_string()];
        let h = headers("http://127.0.0.1:9/certs/good", &sig);
        let nowhere = Delivery { headers: &h, body: BODY, now: NOW };
        assert_eq!(verify(WEBHOOK_ID, &closed, &nowhere, &cache).await.unwrap_err().label(), "cert_unavailable");
    }
}
