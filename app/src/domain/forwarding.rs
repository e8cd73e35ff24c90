//! Forwarding's rules that need no I/O: what a destination may be called and where it may point,
//! which stored events its filter takes, what a receiver's answer means, and when the next try is.
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A destination's name: 1 to 40 lowercase letters, digits and dashes, starting with a letter or
/// digit, so it is safe as it is in a command line, a log line and a metric label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationName(String);

impl DestinationName {
    pub fn parse(name: &str) -> Result<Self, &'static str> {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if name.is_empty() || name.len() > 40 {
            return Err("a destination name has 1 to 40 characters");
        }
        if !name.chars().all(ok_char) || name.starts_with('-') {
            return Err(
                "a destination name has lowercase letters, digits and dashes, and starts with a letter or digit",
            );
        }
        Ok(Self(name.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where deliveries go: `https://…`, or plain `http://` only to this machine (a local receiver,
/// a test). Payloads carry customers' names, emails and payments, so they never cross a network
/// in clear text; the signature proves who sent them, not that nobody read them.
pub fn check_url(url: &str) -> Result<String, &'static str> {
    let url = url.trim();
    if url.len() > 2048 {
        return Err("the URL is longer than 2048 characters");
    }
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let local = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|l| host == *l || host.strip_prefix(l).is_some_and(|port| port.starts_with(':')));
        if !local {
            return Err("the URL must be https:// (plain http:// only to 127.0.0.1, localhost or [::1])");
        }
        rest
    } else {
        return Err("the URL must start with https://");
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL has no host, or holds spaces");
    }
    Ok(url.to_string())
}

/// The source name of Stripe's own events (`stripe_events`); every other source is a gateway
/// source (`gateway_events`).
pub const STRIPE: &str = "stripe";

/// A key that must be in a Stripe event's `data.object.metadata`, and, when `equals` is set,
/// hold exactly that text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataRule {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
}

impl MetadataRule {
    /// `key` (present) or `key=value` (equal).
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let (key, equals) = match s.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.to_string())),
            None => (s.trim(), None),
        };
        if key.is_empty() || key.len() > 40 {
            return Err("a metadata key has 1 to 40 characters (Stripe's own limit)");
        }
        Ok(Self { key: key.to_string(), equals })
    }
}

/// Which stored events a destination takes: from one of `sources`, of a type starting with one
/// of `type_prefixes` (none: every type), and, for Stripe's events only, with every metadata
/// rule met (gateway senders have no common metadata shape, so rules never exclude them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub sources: Vec<String>,
    #[serde(default)]
    pub type_prefixes: Vec<String>,
    #[serde(default)]
    pub metadata: Vec<MetadataRule>,
}

/// A destination's default pace: ten deliveries a second and four at once, enough for a
/// publisher's traffic, gentle on a small receiver (the CLI's and the admin form's defaults).
pub const DEFAULT_RATE_PER_SECOND: u32 = 10;
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 4;

/// The Rate Card's keys: a payment made on the Rate Card carries all three.
pub const RATE_CARD_KEYS: [&str; 3] = ["advertiserId", "sizeId", "publicationId"];

impl Filter {
    /// A filter as given, refused when it could never take an event (no source) or names a
    /// source twice. Whether each gateway source exists is checked by the caller, who can look.
    pub fn new(sources: Vec<String>, type_prefixes: Vec<String>, metadata: Vec<MetadataRule>) -> Result<Self, String> {
        if sources.is_empty() {
            return Err("name at least one source (`stripe` or a gateway source)".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &sources {
            if !seen.insert(s.as_str()) {
                return Err(format!("source {s} is named twice"));
            }
        }
        if type_prefixes.iter().any(|p| p.trim().is_empty() || p.len() > 255) {
            return Err("an event type prefix has 1 to 255 characters".into());
        }
        Ok(Self { sources, type_prefixes, metadata })
    }

    /// Whether an event of `source`, with `event_type`, and these raw bytes, is one to deliver.
    pub fn matches(&self, source: &str, event_type: Option<&str>, payload: &[u8]) -> bool {
        if !self.sources.iter().any(|s| s == source) {
            return false;
        }
        if !self.type_prefixes.is_empty()
            && !event_type.is_some_and(|t| self.type_prefixes.iter().any(|p| t.starts_with(p.as_str())))
        {
            return false;
        }
        if source != STRIPE || self.metadata.is_empty() {
            return true;
        }
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(payload) else {
            return false;
        };
        let metadata = body.pointer("/data/object/metadata");
        self.metadata.iter().all(|rule| {
            let value = metadata.and_then(|m| m.get(&rule.key)).and_then(|v| v.as_str());
            match (&rule.equals, value) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(want), Some(v)) => v == want,
            }
        })
    }

    /// The filter in words, for the admin page: "stripe, billing · types payment_intent. ·
    /// metadata advertiserId, sizeId=2".
    pub fn describe(&self) -> String {
        let mut parts = vec![self.sources.join(", ")];
        if !self.type_prefixes.is_empty() {
            parts.push(format!("types {}", self.type_prefixes.join(", ")));
        }
        if !self.metadata.is_empty() {
            let rules: Vec<String> = self
                .metadata
                .iter()
                .map(|r| r.equals.as_ref().map_or_else(|| r.key.clone(), |v| format!("{}={v}", r.key)))
                .collect();
            parts.push(format!("metadata {}", rules.join(", ")));
        }
        parts.join(" · ")
    }

    /// Whether Stripe's events are subscribed to (so the fan-out reads them at all).
    pub fn takes_stripe(&self) -> bool {
        self.sources.iter().any(|s| s == STRIPE)
    }
}

/// When the attempts are made: the first at once, then after each delay (Standard Webhooks'
/// suggested schedule, as Svix runs it): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, about 28 hours in
/// all, long enough for a receiver down over a night to get everything once it is back.
pub fn default_schedule() -> Vec<Duration> {
    [0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600].map(Duration::from_secs).to_vec()
}

/// What a receiver's answer means for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: delivered, never sent again unless replayed.
    Delivered,
    /// 410 Gone: the receiver says the endpoint is gone for good: the destination is disabled
    /// (sending the rest would only be refused too), and this delivery stays pending for when
    /// it is enabled again.
    Gone,
    /// Anything else, a timeout or a connection error: tried again on the schedule.
    Failed,
}

/// An HTTP status's meaning; None (no answer: a timeout, a refused connection) is a failure.
pub fn outcome(status: Option<u16>) -> Outcome {
    match status {
        Some(200..=299) => Outcome::Delivered,
        Some(410) => Outcome::Gone,
        _ => Outcome::Failed,
    }
}

/// How long a `Retry-After` asks us to wait: whole seconds, or an HTTP date (RFC 9110), read
/// against `now`. None when it is neither (then the schedule alone decides).
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((when.with_timezone(&chrono::Utc) - now).to_std().unwrap_or(Duration::ZERO))
}

/// When to try again after a failed attempt, the `attempts`th (counting this one): the
/// schedule's next delay, or later when the receiver asked (`Retry-After` on 429 or 503, never
/// sooner than it says, but never past the schedule's longest delay, so a receiver cannot park
/// a delivery for ever). None: that was the last attempt, the delivery is dead.
pub fn next_delay(schedule: &[Duration], attempts: u32, asked: Option<Duration>) -> Option<Duration> {
    let scheduled = *schedule.get(attempts as usize)?;
    let longest = schedule.iter().max().copied().unwrap_or_default();
    Some(match asked {
        Some(asked) => scheduled.max(asked.min(longest)),
        None => scheduled,
    })
}

/// Whether `status` is one whose `Retry-After` is honoured: too many requests, or unavailable.
pub fn honours_retry_after(status: u16) -> bool {
    status == 429 || status == 503
}

/// How many bytes of a receiver's answer are kept in the attempt log: enough to read an error
/// message, not enough to store someone's HTML page for every retry.
pub const ANSWER_KEPT: usize = 256;

/// The first `ANSWER_KEPT` bytes of an answer, as text (invalid UTF-8 replaced, a character cut
/// in the middle dropped).
pub fn answer_head(body: &[u8]) -> String {
    let head = &body[..body.len().min(ANSWER_KEPT)];
    match std::str::from_utf8(head) {
        Ok(s) => s.to_string(),
        Err(e) if e.error_len().is_none() => String::from_utf8_lossy(&head[..e.valid_up_to()]).into_owned(),
        Err(_) => String::from_utf8_lossy(head).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stripe(metadata: serde_json::Value) -> Vec<u8> {
        json!({"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"metadata": metadata}}})
            .to_string()
            .into_bytes()
    }

    fn rate_card() -> Filter {
        let rules = RATE_CARD_KEYS.iter().map(|k| MetadataRule::parse(k).unwrap()).collect();
        Filter::new(vec!["stripe".into()], vec!["payment_intent.succeeded".into()], rules).unwrap()
    }

    #[test]
    fn a_rate_card_filter_takes_payments_with_all_three_keys_only() {
        let f = rate_card();
        let full = stripe(json!({"advertiserId": "7", "sizeId": "2", "publicationId": "3"}));
        assert!(f.matches("stripe", Some("payment_intent.succeeded"), &full));
        let pack = stripe(json!({"contractId": "12"}));
        assert!(!f.matches("stripe", Some("payment_intent.succeeded"), &pack));
        let partial = stripe(json!({"advertiserId": "7", "sizeId": "2"}));
        assert!(!f.matches("stripe", Some("payment_intent.succeeded"), &partial));
        assert!(!f.matches("stripe", Some("payment_intent.canceled"), &full), "type prefix");
        assert!(!f.matches("billing", Some("payment_intent.succeeded"), &full), "source");
        assert!(!f.matches("stripe", Some("payment_intent.succeeded"), b"not json"));
        let non_text = stripe(json!({"advertiserId": 7, "sizeId": "2", "publicationId": "3"}));
        assert!(!f.matches("stripe", Some("payment_intent.succeeded"), &non_text), "metadata is text");
    }

    #[test]
    fn equal_rules_prefixes_and_gateway_sources() {
        let f = Filter::new(
            vec!["stripe".into(), "billing".into()],
            vec!["invoice.".into(), "payment_intent.".into()],
            vec![MetadataRule::parse("publicationId=3").unwrap()],
        )
        .unwrap();
        assert!(f.matches("stripe", Some("payment_intent.succeeded"), &stripe(json!({"publicationId": "3"}))));
        assert!(!f.matches("stripe", Some("payment_intent.succeeded"), &stripe(json!({"publicationId": "4"}))));
        // Metadata rules are Stripe's; a gateway event is taken on its source and type.
        assert!(f.matches("billing", Some("invoice.paid"), b"{}"));
        assert!(!f.matches("billing", Some("customer.created"), b"{}"));
        assert!(!f.matches("billing", None, b"{}"), "no type matches no prefix");
        let every = Filter::new(vec!["billing".into()], vec![], vec![]).unwrap();
        assert!(every.matches("billing", None, b"anything"));
        assert!(!every.takes_stripe() && f.takes_stripe());
    }

    #[test]
    fn filters_and_rules_refuse_what_could_never_work() {
        assert!(Filter::new(vec![], vec![], vec![]).is_err());
        assert!(Filter::new(vec!["stripe".into(), "stripe".into()], vec![], vec![]).is_err());
        assert!(Filter::new(vec!["stripe".into()], vec![" ".into()], vec![]).is_err());
        assert!(MetadataRule::parse("").is_err());
        assert_eq!(MetadataRule::parse("a=b=c").unwrap(), MetadataRule { key: "a".into(), equals: Some("b=c".into()) });
        let f = rate_card();
        let back: Filter = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn names_and_urls() {
        assert!(DestinationName::parse("rate-card").is_ok());
        assert!(DestinationName::parse("Rate Card").is_err());
        assert!(DestinationName::parse("-x").is_err());
        assert!(check_url("https://hooks.example.com/in?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(check_url("http://example.com/hook").is_err(), "clear text over a network");
        assert!(check_url("http://localhost.example.com/hook").is_err());
        assert!(check_url("http://127.0.0.1@evil.example/hook").is_err());
        assert!(check_url("ftp://example.com").is_err());
        assert!(check_url("https://").is_err());
        assert!(check_url("https://exa mple.com").is_err());
    }

    #[test]
    fn the_schedule_runs_its_course_then_the_delivery_is_dead() {
        let s = default_schedule();
        assert_eq!(s.len(), 8);
        assert_eq!(next_delay(&s, 1, None), Some(Duration::from_secs(5)));
        assert_eq!(next_delay(&s, 2, None), Some(Duration::from_secs(300)));
        assert_eq!(next_delay(&s, 7, None), Some(Duration::from_secs(36_000)));
        assert_eq!(next_delay(&s, 8, None), None, "eight attempts, then dead");
    }

    #[test]
    fn retry_after_is_honoured_never_sooner_and_capped_at_the_longest_delay() {
        let s = default_schedule();
        assert_eq!(next_delay(&s, 1, Some(Duration::from_secs(60))), Some(Duration::from_secs(60)));
        assert_eq!(next_delay(&s, 3, Some(Duration::from_secs(60))), Some(Duration::from_secs(1800)), "schedule later");
        assert_eq!(next_delay(&s, 1, Some(Duration::from_secs(86_400 * 9))), Some(Duration::from_secs(36_000)));
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z").unwrap().to_utc();
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO), "past: now");
        assert_eq!(retry_after("soon", now), None);
        assert!(honours_retry_after(429) && honours_retry_after(503) && !honours_retry_after(500));
    }

    #[test]
    fn answers_mean_delivered_gone_or_failed() {
        assert_eq!(outcome(Some(200)), Outcome::Delivered);
        assert_eq!(outcome(Some(204)), Outcome::Delivered);
        assert_eq!(outcome(Some(410)), Outcome::Gone);
        assert_eq!(outcome(Some(301)), Outcome::Failed, "a redirect is not followed");
        assert_eq!(outcome(Some(500)), Outcome::Failed);
        assert_eq!(outcome(None), Outcome::Failed);
    }

    #[test]
    fn the_answer_kept_is_its_head_as_text() {
        assert_eq!(answer_head(b"ok"), "ok");
        assert_eq!(answer_head(&[b'a'; 300]).len(), ANSWER_KEPT);
        let mut cut = vec![b'a'; ANSWER_KEPT - 1];
        cut.extend("é".as_bytes());
        assert_eq!(answer_head(&cut), "a".repeat(ANSWER_KEPT - 1), "half a character dropped");
        assert_eq!(answer_head(&[0xff, b'x']), "\u{fffd}x");
    }

    #[test]
    fn a_filter_reads_as_words() {
        let every = Filter::new(vec!["stripe".into(), "billing".into()], vec![], vec![]).unwrap();
        assert_eq!(every.describe(), "stripe, billing");
        let rules = vec![MetadataRule::parse("advertiserId").unwrap(), MetadataRule::parse("sizeId=2").unwrap()];
        let card = Filter::new(vec!["stripe".into()], vec!["payment_intent.".into()], rules).unwrap();
        assert_eq!(card.describe(), "stripe · types payment_intent. · metadata advertiserId, sizeId=2");
    }
}
