//! The certificates PayPal signs webhooks with: fetched from the URL a delivery names (once the
//! caller has checked it is PayPal's), read for their RSA key and validity, and cached by URL so
//! a burst of deliveries costs one fetch. Reading and checking are pure ([`PublicCert`]); only
//! [`fetch_pem`] does I/O, so tests verify signatures without a server.
use super::Refusal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// A certificate is a few kilobytes (PayPal's, with its chain, about six): more is not one.
const MAX_PEM_BYTES: usize = 64 * 1024;

/// rsaEncryption (RFC 8017): the only key type PayPal's `SHA256withRSA` can be checked with.
const RSA_ENCRYPTION: x509_cert::spki::ObjectIdentifier =
    x509_cert::spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// What we keep of a certificate: its RSA public key and the dates it is valid between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicCert {
    /// The RSAPublicKey (PKCS#1 DER), as ring's RSA verification takes it.
    public_key: Vec<u8>,
    /// Unix seconds, inclusive.
    pub not_before: i64,
    pub not_after: i64,
}

impl PublicCert {
    /// Reads the first certificate of a PEM file (a leaf may be followed by its chain).
    pub fn from_pem(pem: &[u8]) -> Result<Self, Refusal> {
        // x509-cert 0.2.5's `load_pem_chain` underflows on an empty (or all-whitespace) input:
        // a panic in a debug build. An empty answer is no certificate; say so before it looks.
        if pem.iter().all(u8::is_ascii_whitespace) {
            return Err(Refusal::CertInvalid("an empty PEM".into()));
        }
        let chain = x509_cert::Certificate::load_pem_chain(pem)
            .map_err(|e| Refusal::CertInvalid(format!("not a PEM certificate: {e}")))?;
        let cert = chain.into_iter().next().ok_or_else(|| Refusal::CertInvalid("no certificate in the PEM".into()))?;
        let tbs = cert.tbs_certificate;
        let spki = tbs.subject_public_key_info;
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return Err(Refusal::CertInvalid(format!("its key is not RSA but {}", spki.algorithm.oid)));
        }
        let public_key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Refusal::CertInvalid("its key is not whole bytes".into()))?
            .to_vec();
        let seconds = |t: x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
        Ok(Self {
            public_key,
            not_before: seconds(tbs.validity.not_before),
            not_after: seconds(tbs.validity.not_after),
        })
    }

    /// Whether the certificate is valid at `now`: an expired key may have leaked since.
    pub fn check_dates(&self, now: i64) -> Result<(), Refusal> {
        if now < self.not_before {
            return Err(Refusal::CertInvalid("not valid yet".into()));
        }
        if now > self.not_after {
            return Err(Refusal::CertInvalid("expired".into()));
        }
        Ok(())
    }

    /// Whether `signature` is an RSA PKCS#1 v1.5 SHA-256 signature of `message` by this key
    /// (ring refuses keys under 2048 bits).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.public_key).verify(message, signature).is_ok()
    }
}

/// Fetches a PEM certificate with a GET, within `timeout` for the whole exchange. Only a 200
/// with a body under 64 KiB is an answer; redirects are not followed (the URL was the one
/// checked). https is verified against the web's roots; http only reaches a URL that the
/// caller's allow-list names explicitly (tests).
pub async fn fetch_pem(url: &Url, timeout: Duration) -> Result<Vec<u8>, Refusal> {
    use http_body_util::{BodyExt, Empty, Limited};
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
    let client: hyper_util::client::legacy::Client<_, Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    let request = hyper::Request::get(url.as_str())
        .body(Empty::new())
        .map_err(|e| Refusal::CertUnavailable(format!("no request for {url}: {e}")))?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| Refusal::CertUnavailable(format!("{url}: {e}")))?;
        if response.status() != hyper::StatusCode::OK {
            return Err(Refusal::CertUnavailable(format!("{url} answered {}", response.status())));
        }
        let body = Limited::new(response.into_body(), MAX_PEM_BYTES).collect().await;
        let body = body.map_err(|e| Refusal::CertUnavailable(format!("{url}: {e}")))?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| Refusal::CertUnavailable(format!("{url} did not answer within {timeout:?}")))?
}

/// PayPal's certificates by URL, in memory, each kept until its notAfter and no more than
/// `capacity` at once (PayPal uses a handful; the bound stops a flood of distinct URLs on an
/// allowed host from growing it). Two deliveries missing at once both fetch; the second insert
/// wins, harmlessly.
#[derive(Debug)]
pub struct CertCache {
    entries: Mutex<HashMap<String, Arc<PublicCert>>>,
    capacity: usize,
    timeout: Duration,
}

impl Default for CertCache {
    /// 64 certificates, 10 seconds per fetch.
    fn default() -> Self {
        Self::new(64, Duration::from_secs(10))
    }
}

impl CertCache {
    pub fn new(capacity: usize, timeout: Duration) -> Self {
        Self { entries: Mutex::new(HashMap::new()), capacity: capacity.max(1), timeout }
    }

    /// The certificate at `url`, valid at `now`: from the cache while it is in date, else
    /// fetched. One out of date is never cached, so a delivery naming it fetches it again and is
    /// refused again ([`Refusal::CertInvalid`]).
    pub async fn get(&self, url: &Url, now: i64) -> Result<Arc<PublicCert>, Refusal> {
        if let Some(cert) = self.cached(url.as_str(), now) {
            cert.check_dates(now)?;
            return Ok(cert);
        }
        let pem = fetch_pem(url, self.timeout).await?;
        let cert = Arc::new(PublicCert::from_pem(&pem)?);
        cert.check_dates(now)?;
        self.insert(url.as_str(), cert.clone(), now);
        Ok(cert)
    }

    /// How many certificates are cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<PublicCert>>> {
        // A panic while holding the lock leaves a map that is still consistent: carry on.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cached(&self, url: &str, now: i64) -> Option<Arc<PublicCert>> {
        let mut entries = self.lock();
        match entries.get(url) {
            Some(cert) if now <= cert.not_after => Some(cert.clone()),
            Some(_) => {
                entries.remove(url);
                None
            }
            None => None,
        }
    }

    fn insert(&self, url: &str, cert: Arc<PublicCert>, now: i64) {
        let mut entries = self.lock();
        entries.retain(|_, c| now <= c.not_after);
        while entries.len() >= self.capacity {
            // Full of certificates in date: drop the one that expires first.
            let Some(first) = entries.iter().min_by_key(|(_, c)| c.not_after).map(|(k, _)| k.clone()) else { break };
            entries.remove(&first);
        }
        entries.insert(url.to_string(), cert);
    }
}

/// A test RSA key and certificates made from it, for the PayPal tests.
#[cfg(test)]
pub(crate) mod test_pki {
    use std::sync::OnceLock;

    /// A 2048-bit RSA key as PKCS#8 DER, generated once per test binary by the `openssl`
    /// command (ring cannot generate RSA keys; .ci/install-tools installs openssl).
    pub(crate) fn key(which: usize) -> &'static [u8] {
        static KEYS: [OnceLock<Vec<u8>>; 2] = [OnceLock::new(), OnceLock::new()];
        KEYS[which].get_or_init(|| {
            use base64::Engine;
            // PEM, which is PKCS#8 ("PRIVATE KEY"); OpenSSL 3.0 writes DER as PKCS#1 instead.
            let out = std::process::Command::new("openssl")
                .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
                .output()
                .expect("the openssl command (apt-get install openssl)");
            assert!(out.status.success(), "openssl genpkey: {}", String::from_utf8_lossy(&out.stderr));
            let pem = String::from_utf8(out.stdout).expect("PEM is text");
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "not PKCS#8: {pem:.40}");
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD.decode(body).expect("PEM's base64")
        })
    }

    /// A self-signed certificate of key `which`, valid from `not_before` to `not_after`.
    pub(crate) fn cert_pem(which: usize, not_before: i64, not_after: i64) -> String {
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key(which).into(), &rcgen::PKCS_RSA_SHA256)
            .expect("a key pair");
        let mut params = rcgen::CertificateParams::new(vec!["paypal.test".to_string()]).expect("params");
        params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).expect("a date");
        params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).expect("a date");
        params.self_signed(&pair).expect("a certificate").pem()
    }

    /// An RSA PKCS#1 v1.5 SHA-256 signature of `message` by key `which`.
    pub(crate) fn sign(which: usize, message: &[u8]) -> Vec<u8> {
        let pair = ring::signature::RsaKeyPair::from_pkcs8(key(which)).expect("ring reads the key");
        let mut sig = vec![0u8; pair.public().modulus_len()];
        let rng = ring::rand::SystemRandom::new();
        pair.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, message, &mut sig).expect("a signature");
        sig
    }
}

#[cfg(test)]
mod tests {
    use super::test_pki::{cert_pem, sign};
    use super::*;

    const NOW: i64 = 1_760_000_000;
    const DAY: i64 = 86_400;

    #[test]
    fn a_certificate_yields_its_dates_and_a_key_that_checks_signatures() {
        let pem = cert_pem(0, NOW - DAY, NOW + DAY);
        let cert = PublicCert::from_pem(pem.as_bytes()).unwrap();
        assert_eq!((cert.not_before, cert.not_after), (NOW - DAY, NOW + DAY));
        let sig = sign(0, b"message");
        assert!(cert.verifies(b"message", &sig));
        assert!(!cert.verifies(b"massage", &sig));
        assert!(!cert.verifies(b"message", &sig[1..]));
        assert_eq!(cert.check_dates(NOW), Ok(()));
        assert_eq!(cert.check_dates(NOW + DAY + 1).unwrap_err().label(), "cert_invalid");
        assert_eq!(cert.check_dates(NOW - DAY - 1).unwrap_err().label(), "cert_invalid");
        // A leaf followed by its chain: the leaf is the one read.
        let chain = format!("{pem}\n{}", cert_pem(0, NOW - 2 * DAY, NOW + 2 * DAY));
        assert_eq!(PublicCert::from_pem(chain.as_bytes()).unwrap(), cert);
        for junk in
            [&b""[..], b" \n", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
        {
            assert_eq!(PublicCert::from_pem(junk).unwrap_err().label(), "cert_invalid");
        }
    }

    #[test]
    fn the_cache_is_bounded_and_drops_what_expires_first() {
        let cache = CertCache::new(2, Duration::from_secs(1));
        let cert = |not_after| Arc::new(PublicCert { public_key: vec![], not_before: 0, not_after });
        cache.insert("a", cert(NOW + 10), NOW);
        cache.insert("b", cert(NOW + 30), NOW);
        cache.insert("c", cert(NOW + 20), NOW);
        assert!(cache.cached("a", NOW).is_none());
        assert!(cache.cached("b", NOW).is_some() && cache.cached("c", NOW).is_some());
        // Past its notAfter an entry is gone, and makes room.
        assert!(cache.cached("c", NOW + 21).is_none());
        assert_eq!(cache.len(), 1);
    }
}
