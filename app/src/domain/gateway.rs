//! The webhook gateway's rules that need no I/O: what a source may be called, what an event
//! must carry to be stored, and how long a rotated secret keeps working.

/// A source's name: the last segment of its URL (`/webhooks/{name}`), 1 to 40 lowercase
/// letters, digits and dashes, starting with a letter or digit. `stripe` is taken by Stripe's
/// own route. Plain words, so a name is safe in a URL, a log line and a metric label as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceName(String);

impl SourceName {
    pub fn parse(name: &str) -> Result<Self, &'static str> {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if name.is_empty() || name.len() > 40 {
            return Err("a source name has 1 to 40 characters");
        }
        if !name.chars().all(ok_char) || name.starts_with('-') {
            return Err("a source name has lowercase letters, digits and dashes, and starts with a letter or digit");
        }
        if name == "stripe" {
            return Err("`stripe` is Stripe's own route: name the source something else");
        }
        Ok(Self(name.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest event id and type stored (the columns' CHECKs say the same): a sender's ids are
/// tens of characters; anything longer is not an id but an attempt to fill our disk.
pub const MAX_ID_LEN: usize = 255;

/// Whether a verified event's id and type can be stored as they are. A signed delivery failing
/// this is refused (400): truncating an id would merge two events under one key.
pub fn check_event_fields(event_id: &str, event_type: Option<&str>) -> Result<(), &'static str> {
    if event_id.trim().is_empty() {
        return Err("the event id is empty");
    }
    if event_id.len() > MAX_ID_LEN {
        return Err("the event id is longer than 255 bytes");
    }
    if event_type.is_some_and(|t| t.len() > MAX_ID_LEN) {
        return Err("the event type is longer than 255 bytes");
    }
    Ok(())
}

/// How long a replaced secret keeps working by default: Stripe's own overlap when a webhook
/// secret is rolled, long enough for every sender's queued retries signed with the old one.
pub const DEFAULT_OVERLAP_HOURS: i64 = 24;

/// The longest overlap allowed: a week. An old secret kept working for longer is no longer
/// being rotated out, it is a second secret.
pub const MAX_OVERLAP_HOURS: i64 = 24 * 7;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_are_url_safe_words_and_never_stripe() {
        assert!(SourceName::parse("square").is_ok());
        assert!(SourceName::parse("rate-card-2").is_ok());
        assert!(SourceName::parse(&"a".repeat(40)).is_ok());
        for bad in ["", "Square", "pay pal", "-lead", "a/b", "stripe", "ünïcode", &"a".repeat(41)] {
            assert!(SourceName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn event_fields_must_fit_whole() {
        assert!(check_event_fields("evt_1", Some("payment.created")).is_ok());
        assert!(check_event_fields("evt_1", None).is_ok());
        assert!(check_event_fields(" ", None).is_err());
        assert!(check_event_fields(&"x".repeat(256), None).is_err());
        assert!(check_event_fields("evt_1", Some(&"t".repeat(256))).is_err());
    }
}
