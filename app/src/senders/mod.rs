//! Verifying webhooks from the senders the gateway accepts at `/webhooks/{source}`, besides
//! Stripe (which keeps its own module): any Standard Webhooks sender, Square, PayPal and generic
//! HMAC senders. Pure checks (PayPal's certificate fetch aside), so the route, the sources table
//! and storage are built on top without knowing any scheme.
//!
//! Why each rule:
//! - A delivery is judged on its raw body, byte for byte: a body parsed and re-serialised no
//!   longer matches its signature.
//! - Every signature is tried against every active secret ([`Secret`], several per source), so a
//!   secret can be rolled with an overlap and no delivery is refused meanwhile; every comparison
//!   is constant-time (`signing`), so a forger learns nothing from how long a refusal took.
//! - The signature is checked before the clock: an unsigned request learns nothing of our timing
//!   rules, and a genuine but late delivery is reported as late ([`Refusal::OutsideTolerance`]).
//! - Where a scheme signs a timestamp we refuse one more than five minutes away from ours, both
//!   ways (a replay and a clock attack are alike suspect). Where it signs none (Square, PayPal) a
//!   replay is stopped downstream by deduplication on [`Verified::event_id`], which every scheme
//!   must therefore yield: a signed body without an event id is refused ([`Refusal::NotAnEvent`]).
//! - PayPal signs with a certificate it links to: the link must be https on one of PayPal's hosts
//!   (or it could point at a key of the forger's own), and the certificate must be in date.
//! - Each refusal has a short stable [`Refusal::label`] for metrics; its message is for logs.
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::fmt;

pub mod certs;
pub mod generic;
pub mod paypal;
pub mod square;
pub mod standard_webhooks;

pub use certs::CertCache;
pub use generic::{Algorithm, Encoding, HmacConfig};

/// Five minutes, as the Standard Webhooks reference libraries and Stripe's use.
pub const TOLERANCE_SECS: i64 = 300;

/// How a source's deliveries are verified; stored as JSON in the sources table, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scheme {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`, keyed with `whsec_` secrets.
    StandardWebhooks,
    /// Square signs the notification URL it posts to, exactly as configured there, plus the body.
    Square { notification_url: String },
    /// PayPal signs with an RSA key; `webhook_id` is the id of our subscription at PayPal (part
    /// of the signed message), `cert_hosts` where its certificate may be fetched from.
    #[serde(rename = "paypal")]
    PayPal {
        webhook_id: String,
        #[serde(default = "paypal::default_cert_hosts")]
        cert_hosts: Vec<String>,
    },
    /// One HMAC header, as GitHub and many others send.
    GenericHmac(HmacConfig),
}

impl Scheme {
    /// The scheme's short name, as [`Verified::scheme_label`] gives it.
    pub fn label(&self) -> &'static str {
        match self {
            Self::StandardWebhooks => standard_webhooks::LABEL,
            Self::Square { .. } => square::LABEL,
            Self::PayPal { .. } => paypal::LABEL,
            Self::GenericHmac(_) => generic::LABEL,
        }
    }
}

/// A shared signing secret of a source, as the sender shows it (a `whsec_…` string for Standard
/// Webhooks, Square's signature key, a generic sender's secret). Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// One request as received: its headers, its raw body and the time it arrived (unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub now: i64,
}

impl<'a> Delivery<'a> {
    /// A header's value. Absent: [`Refusal::MissingHeader`]; sent twice, or not visible ASCII:
    /// [`Refusal::MalformedHeader`] (which of two copies was signed is not for us to guess).
    pub fn header(&self, name: &str) -> Result<&'a str, Refusal> {
        let mut values = self.headers.get_all(name).iter();
        let value = values.next().ok_or_else(|| Refusal::MissingHeader(name.to_string()))?;
        if values.next().is_some() {
            return Err(Refusal::malformed(name, "sent more than once"));
        }
        value.to_str().map(str::trim).map_err(|_| Refusal::malformed(name, "not visible ASCII"))
    }
}

/// A delivery that passed: who sent which event. `event_id` is the sender's own id of the event,
/// the key the gateway deduplicates on (retries of one event carry the same id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub event_id: String,
    pub event_type: Option<String>,
    /// When the event happened, as the sender says (unix seconds), where it says.
    pub occurred_at: Option<i64>,
    pub scheme_label: &'static str,
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("missing header {0}")]
    MissingHeader(String),
    #[error("malformed header {header}: {reason}")]
    MalformedHeader { header: String, reason: &'static str },
    #[error("the source has no usable secret")]
    NoSecret,
    #[error("no signature matched")]
    NoMatch,
    #[error("timestamp outside tolerance")]
    OutsideTolerance,
    #[error("unsupported signature algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("certificate URL not trusted: {0}")]
    UntrustedCertUrl(String),
    #[error("certificate unavailable: {0}")]
    CertUnavailable(String),
    #[error("certificate invalid: {0}")]
    CertInvalid(String),
    #[error("signed, but not an event: {0}")]
    NotAnEvent(&'static str),
}

impl Refusal {
    /// A short stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedHeader { .. } => "malformed_header",
            Self::NoSecret => "no_secret",
            Self::NoMatch => "no_match",
            Self::OutsideTolerance => "outside_tolerance",
            Self::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            Self::UntrustedCertUrl(_) => "untrusted_cert_url",
            Self::CertUnavailable(_) => "cert_unavailable",
            Self::CertInvalid(_) => "cert_invalid",
            Self::NotAnEvent(_) => "not_an_event",
        }
    }

    pub(crate) fn malformed(header: &str, reason: &'static str) -> Self {
        Self::MalformedHeader { header: header.to_string(), reason }
    }
}

/// Verifies `delivery` under `scheme`: Ok names the event, Err says why not. `secrets` are the
/// source's active secrets (PayPal, signing with a public key, needs none); `certs` caches
/// PayPal's certificates between deliveries.
pub async fn verify(
    scheme: &Scheme,
    secrets: &[Secret],
    delivery: &Delivery<'_>,
    certs: &CertCache,
) -> Result<Verified, Refusal> {
    match scheme {
        Scheme::StandardWebhooks => standard_webhooks::verify(secrets, delivery),
        Scheme::Square { notification_url } => square::verify(notification_url, secrets, delivery),
        Scheme::PayPal { webhook_id, cert_hosts } => paypal::verify(webhook_id, cert_hosts, delivery, certs).await,
        Scheme::GenericHmac(config) => generic::verify(config, secrets, delivery),
    }
}

/// Whether `now` is within [`TOLERANCE_SECS`] of a signed `timestamp`, either way.
pub(crate) fn check_tolerance(timestamp: i64, now: i64) -> Result<(), Refusal> {
    if now.abs_diff(timestamp) > TOLERANCE_SECS as u64 {
        return Err(Refusal::OutsideTolerance);
    }
    Ok(())
}

/// A signed unix timestamp header: digits only (no sign, no spaces), as every sender writes it.
pub(crate) fn parse_timestamp(header: &str, value: &str) -> Result<i64, Refusal> {
    if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::malformed(header, "timestamp is not unix seconds"));
    }
    value.parse().map_err(|_| Refusal::malformed(header, "timestamp is not unix seconds"))
}

/// The longest event id kept as a deduplication key; anything longer is not a sender's id.
const MAX_EVENT_ID_LEN: usize = 255;

/// The JSON body of a signed delivery, read for its event's id, type and time.
pub(crate) struct Body(serde_json::Value);

impl Body {
    /// The body as JSON; a signed body that is not JSON carries no event we can name.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, Refusal> {
        serde_json::from_slice(body).map(Self).map_err(|_| Refusal::NotAnEvent("the body is not JSON"))
    }

    /// The body as JSON if it is (Standard Webhooks allows other content types).
    pub(crate) fn parse_lenient(body: &[u8]) -> Self {
        Self(serde_json::from_slice(body).unwrap_or(serde_json::Value::Null))
    }

    /// The text (or number, written as text) at a JSON pointer such as `/id`.
    pub(crate) fn text(&self, pointer: &str) -> Option<String> {
        match self.0.pointer(pointer)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The event id at `pointer`, required: without it the gateway could not deduplicate.
    pub(crate) fn event_id(&self, pointer: &str) -> Result<String, Refusal> {
        let id = self.text(pointer).ok_or(Refusal::NotAnEvent("no event id"))?;
        checked_event_id(id)
    }

    /// An RFC 3339 time at `pointer`, as unix seconds.
    pub(crate) fn time(&self, pointer: &str) -> Option<i64> {
        let text = self.text(pointer)?;
        chrono::DateTime::parse_from_rfc3339(&text).ok().map(|t| t.timestamp())
    }
}

/// An event id fit to be a deduplication key: not empty, not huge.
pub(crate) fn checked_event_id(id: String) -> Result<String, Refusal> {
    if id.trim().is_empty() {
        return Err(Refusal::NotAnEvent("an empty event id"));
    }
    if id.len() > MAX_EVENT_ID_LEN {
        return Err(Refusal::NotAnEvent("an event id over 255 bytes"));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn schemes_are_stored_as_json_tagged_by_kind() {
        let cases = [
            (Scheme::StandardWebhooks, r#"{"kind":"standard_webhooks"}"#),
            (
                Scheme::Square { notification_url: "https://x.test/webhooks/sq".into() },
                r#"{"kind":"square","notification_url":"https://x.test/webhooks/sq"}"#,
            ),
            (
                Scheme::PayPal { webhook_id: "WH1".into(), cert_hosts: vec!["api.paypal.com".into()] },
                r#"{"kind":"paypal","webhook_id":"WH1","cert_hosts":["api.paypal.com"]}"#,
            ),
        ];
        for (scheme, json) in cases {
            assert_eq!(serde_json::to_string(&scheme).unwrap(), json);
            assert_eq!(serde_json::from_str::<Scheme>(json).unwrap(), scheme);
        }
        // PayPal's hosts default to PayPal's own; a generic sender's pointers to /id and /type.
        let paypal: Scheme = serde_json::from_str(r#"{"kind":"paypal","webhook_id":"WH1"}"#).unwrap();
        assert_eq!(paypal, Scheme::PayPal { webhook_id: "WH1".into(), cert_hosts: paypal::default_cert_hosts() });
        let generic: Scheme = serde_json::from_str(
            r#"{"kind":"generic_hmac","header":"x-hub-signature-256","algorithm":"sha256","encoding":"hex","prefix":"sha256="}"#,
        )
        .unwrap();
        let Scheme::GenericHmac(config) = &generic else { panic!("{generic:?}") };
        assert_eq!((config.id_pointer.as_str(), config.type_pointer.as_str()), ("/id", "/type"));
        assert_eq!((config.algorithm, config.encoding), (Algorithm::Sha256, Encoding::Hex));
        assert_eq!(serde_json::from_str::<Scheme>(&serde_json::to_string(&generic).unwrap()).unwrap(), generic);
        assert!(serde_json::from_str::<Scheme>(r#"{"kind":"carrier_pigeon"}"#).is_err());
    }

    #[test]
    fn secrets_never_print_and_labels_are_stable() {
        assert_eq!(format!("{:?}", [Secret::new("whsec_abc")]), "[Secret(redacted)]");
        assert_eq!(Refusal::NotAnEvent("no event id").label(), "not_an_event");
        assert_eq!(Refusal::malformed("x", "y").label(), "malformed_header");
    }

    #[test]
    fn a_header_sent_twice_or_not_ascii_is_malformed() {
        let mut headers = HeaderMap::new();
        headers.append("x-sig", HeaderValue::from_static("a"));
        headers.append("x-sig", HeaderValue::from_static("b"));
        headers.insert("x-bin", HeaderValue::from_bytes(b"\xff").unwrap());
        let d = Delivery { headers: &headers, body: b"", now: 0 };
        assert_eq!(d.header("x-sig").unwrap_err().label(), "malformed_header");
        assert_eq!(d.header("x-bin").unwrap_err().label(), "malformed_header");
        assert_eq!(d.header("x-none"), Err(Refusal::MissingHeader("x-none".into())));
    }

    #[test]
    fn timestamps_are_digits_and_tolerance_is_five_minutes_both_ways() {
        assert_eq!(parse_timestamp("t", "1614265330"), Ok(1_614_265_330));
        for bad in ["", "-1", "+1", "1.5", "abc", "1 2", "9999999999999"] {
            assert!(parse_timestamp("t", bad).is_err(), "{bad}");
        }
        assert_eq!(check_tolerance(1000, 1300), Ok(()));
        assert_eq!(check_tolerance(1000, 700), Ok(()));
        assert_eq!(check_tolerance(1000, 1301), Err(Refusal::OutsideTolerance));
        assert_eq!(check_tolerance(1000, 699), Err(Refusal::OutsideTolerance));
    }

    #[test]
    fn event_ids_are_required_and_bounded() {
        let body = Body::parse(br#"{"id":"evt_1","n":42,"e":"","t":"2022-07-13T20:30:59.037339943Z"}"#).unwrap();
        assert_eq!(body.event_id("/id"), Ok("evt_1".into()));
        assert_eq!(body.event_id("/n"), Ok("42".into()));
        assert_eq!(body.event_id("/e"), Err(Refusal::NotAnEvent("no event id")));
        assert_eq!(body.event_id("/missing"), Err(Refusal::NotAnEvent("no event id")));
        assert_eq!(body.time("/t"), Some(1_657_744_259));
        assert_eq!(checked_event_id("x".repeat(256)).unwrap_err().label(), "not_an_event");
        assert!(Body::parse(b"not json").is_err());
    }
}
