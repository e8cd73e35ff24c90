//! Event search: the questions an admin, the command line and the events API may ask of the
//! event store, read and checked once here so that all three accept the same words and refuse
//! the same mistakes; the facts the index keeps about each event; and the rows an export writes.
use super::events::{EventObject, PaymentSource, StripeEvent};
use super::money::Currency;
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Rows per page unless asked otherwise, and the most one page may hold.
pub const PAGE_DEFAULT: i64 = 50;
pub const PAGE_MAX: i64 = 500;
/// The longest payload text query: a phrase, not a document.
pub const TEXT_MAX: usize = 200;

pub const STATUSES: [&str; 4] = ["pending", "processed", "ignored", "failed"];

/// What to find. Every field narrows the search; none set finds every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Received at or after.
    pub from: Option<DateTime<Utc>>,
    /// Received before.
    pub to: Option<DateTime<Utc>>,
    /// The type starts with this (`charge.dispute.` finds every dispute event).
    pub type_prefix: Option<String>,
    pub status: Option<String>,
    /// Amount of the object the event carries, minor units, inclusive.
    pub min_amount: Option<i64>,
    pub max_amount: Option<i64>,
    pub currency: Option<String>,
    /// true: live mode only; false: test mode only.
    pub livemode: Option<bool>,
    pub payment_intent: Option<String>,
    pub contract_id: Option<i64>,
    /// The advertiser who holds the event's contract.
    pub email: Option<String>,
    /// Words (a phrase) inside the raw payload.
    pub text: Option<String>,
    /// One of the gateway's other senders (`/webhooks/{source}`); None: Stripe's events.
    pub source: Option<String>,
}

/// The query-string names, the same on the page, in the API and (as `--flags`) on the CLI.
pub const PARAMS: [&str; 13] =
    ["from", "to", "type", "status", "min", "max", "currency", "mode", "payment", "contract", "email", "q", "source"];

impl EventFilter {
    /// Reads a filter from named text values (a query string, CLI flags). Empty values count as
    /// absent, so a form submitted with blank fields means "no filter". Errors name the field.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, String> {
        let get = |name: &str| get(name).map(str::trim).filter(|v| !v.is_empty());
        let mut f = Self {
            from: get("from").map(|v| parse_time("from", v, false)).transpose()?,
            to: get("to").map(|v| parse_time("to", v, true)).transpose()?,
            ..Self::default()
        };
        if let (Some(from), Some(to)) = (f.from, f.to) {
            if to <= from {
                return Err("`to` must be after `from`".into());
            }
        }
        if let Some(t) = get("type") {
            if t.len() > 100
                || !t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
            {
                return Err(format!("type: `{}` is not an event type or its start (like charge.dispute.)", cut(t)));
            }
            f.type_prefix = Some(t.to_string());
        }
        if let Some(s) = get("status") {
            if !STATUSES.contains(&s) {
                return Err(format!("status: `{}` is not one of {}", cut(s), STATUSES.join(", ")));
            }
            f.status = Some(s.to_string());
        }
        let currency = get("currency").map(|c| Currency::parse(c).map_err(|e| format!("currency: {e}"))).transpose()?;
        // An amount means something only in a currency: 150 is $150.00 but ¥150, and a range
        // compared across currencies would mix them. So an amount needs one, and is read in its
        // minor units (JPY has none).
        if currency.is_none() && (get("min").is_some() || get("max").is_some()) {
            return Err("min, max: an amount needs a currency (like usd), as amounts are compared in its units".into());
        }
        let reader = currency.clone().unwrap_or_else(|| Currency::parse("usd").expect("a currency"));
        let amount = |name: &str| {
            get(name).map(|v| {
                reader.parse_amount(v).map_err(|e| format!("{}: {e}", if name == "min" { "min" } else { "max" }))
            })
        };
        f.min_amount = amount("min").transpose()?;
        f.max_amount = amount("max").transpose()?;
        if let (Some(min), Some(max)) = (f.min_amount, f.max_amount) {
            if max < min {
                return Err("max is below min".into());
            }
        }
        f.currency = currency.map(|c| c.as_str().to_string());
        f.livemode = match get("mode") {
            None => None,
            Some("live") => Some(true),
            Some("test") => Some(false),
            Some(m) => return Err(format!("mode: `{}` is not live or test", cut(m))),
        };
        f.parse_parties(get)?;
        f.parse_source(get)?;
        Ok(f)
    }

    /// The source: `stripe` (or none) for Stripe's events, else a gateway source's name. Its
    /// events carry only what every sender has (an id, a type, a time, a payload): the filters
    /// made of Stripe's facts are refused for them rather than quietly matching nothing.
    fn parse_source<'a>(&mut self, get: impl Fn(&str) -> Option<&'a str>) -> Result<(), String> {
        let Some(s) = get("source").filter(|s| *s != "stripe") else { return Ok(()) };
        let name = super::gateway::SourceName::parse(s).map_err(|e| format!("source: {e}"))?;
        let stripe_only = [
            ("status", self.status.is_some()),
            ("min, max", self.min_amount.is_some() || self.max_amount.is_some()),
            ("currency", self.currency.is_some()),
            ("mode", self.livemode.is_some()),
            ("payment", self.payment_intent.is_some()),
            ("contract", self.contract_id.is_some()),
            ("email", self.email.is_some()),
        ];
        if let Some((field, _)) = stripe_only.iter().find(|(_, set)| *set) {
            return Err(format!("{field}: only Stripe's events have it; {} sends an id, a type and a payload", cut(s)));
        }
        self.source = Some(name.as_str().to_string());
        Ok(())
    }

    /// The filters that name a party to the payment: its PaymentIntent, the contract, the
    /// buyer's email, or words of the event.
    fn parse_parties<'a>(&mut self, get: impl Fn(&str) -> Option<&'a str>) -> Result<(), String> {
        if let Some(p) = get("payment") {
            if !super::events::valid_stripe_id(p, "pi_") {
                return Err(format!("payment: `{}` is not a PaymentIntent id (pi_…)", cut(p)));
            }
            self.payment_intent = Some(p.to_string());
        }
        if let Some(c) = get("contract") {
            match c.trim_start_matches('#').parse::<i64>() {
                Ok(n) if n > 0 => self.contract_id = Some(n),
                _ => return Err(format!("contract: `{}` is not a contract number", cut(c))),
            }
        }
        if let Some(e) = get("email") {
            if e.len() > 254 || !e.contains('@') {
                return Err(format!("email: `{}` is not an email address", cut(e)));
            }
            self.email = Some(e.to_lowercase());
        }
        if let Some(q) = get("q") {
            if q.chars().count() > TEXT_MAX {
                return Err(format!("q: the text is longer than {TEXT_MAX} characters"));
            }
            if !q.chars().any(char::is_alphanumeric) {
                return Err("q: the text has no letters or digits to look for".into());
            }
            self.text = Some(q.to_string());
        }
        Ok(())
    }

    /// The filter as `(name, value)` pairs, the inverse of `parse`: for links to the next page
    /// and to the export of the same search.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let amount = |minor: i64| match self.currency.as_deref().map(Currency::parse) {
            Some(Ok(c)) => super::money::Money::new(minor, c).decimal(),
            _ => super::money::Money::new(minor, Currency::parse("usd").expect("a currency")).decimal(),
        };
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let mut put = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        put("from", self.from.map(time));
        put("to", self.to.map(time));
        put("type", self.type_prefix.clone());
        put("status", self.status.clone());
        put("min", self.min_amount.map(amount));
        put("max", self.max_amount.map(amount));
        put("currency", self.currency.clone());
        put("mode", self.livemode.map(|l| if l { "live" } else { "test" }.to_string()));
        put("payment", self.payment_intent.clone());
        put("contract", self.contract_id.map(|c| c.to_string()));
        put("email", self.email.clone());
        put("q", self.text.clone());
        put("source", self.source.clone());
        out
    }

    /// The filter as a query string (`a=1&b=2`), with `extra` pairs after it.
    pub fn query_string(&self, extra: &[(&str, String)]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.to_pairs() {
            q.append_pair(k, &v);
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        q.finish()
    }

    /// The LIKE pattern of the type prefix (`_` and `%` taken literally, `\` escapes).
    pub fn type_pattern(&self) -> Option<String> {
        self.type_prefix
            .as_ref()
            .map(|t| format!("{}%", t.replace('\\', "\\\\").replace('_', "\\_").replace('%', "\\%")))
    }

    /// The text as one FTS5 phrase: quoted, so no word of it is read as an operator.
    pub fn fts5_phrase(&self) -> Option<String> {
        self.text.as_ref().map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
    }
}

/// `YYYY-MM-DD` (a UTC day: `from` its start, `to` the end of it, so `to` is inclusive) or an
/// RFC 3339 time (taken as given).
fn parse_time(name: &str, v: &str, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(day) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let day = if end_of_day { day + Duration::days(1) } else { day };
        return Ok(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{name}: `{}` is not a date (YYYY-MM-DD) or time (RFC 3339)", cut(v)))
}

fn cut(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Where the next page starts: the last row's (received_at, event_id). Rows are ordered newest
/// first by exactly that pair, so "after" it is a range seek in the index (keyset paging): page
/// 1,000 costs what page 1 does, and rows inserted meanwhile neither repeat nor shift the pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub received_at: DateTime<Utc>,
    pub event_id: String,
}

impl Cursor {
    /// `2026-11-27T10:00:00.123456Z~evt_…`: URL-safe as it stands.
    pub fn encode(&self) -> String {
        format!("{}~{}", self.received_at.to_rfc3339_opts(SecondsFormat::Nanos, true), self.event_id)
    }

    pub fn decode(s: &str) -> Result<Self, String> {
        let bad = || "after: not a page position from this search (use the next link as given)".to_string();
        let (t, id) = s.trim().split_once('~').ok_or_else(bad)?;
        let received_at = DateTime::parse_from_rfc3339(t).map_err(|_| bad())?.with_timezone(&Utc);
        // Any sender's id (a gateway source's are its own), bound as a value, never spliced.
        if id.is_empty() || id.len() > super::gateway::MAX_ID_LEN || id.chars().any(char::is_control) {
            return Err(bad());
        }
        Ok(Self { received_at, event_id: id.to_string() })
    }
}

/// A page size as asked (`limit`), checked.
pub fn page_size(v: Option<&str>) -> Result<i64, String> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(PAGE_DEFAULT),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=PAGE_MAX).contains(&n) => Ok(n),
            _ => Err(format!("limit: `{}` is not a number from 1 to {PAGE_MAX}", cut(v))),
        },
    }
}

/// One page's request as the Events page, the API and the CLI read it: the filter, where the
/// page starts (`after`, the previous page's `next`) and its size (`limit`).
pub fn parse_page<'a>(
    get: impl Fn(&str) -> Option<&'a str> + Copy,
) -> Result<(EventFilter, Option<Cursor>, i64), String> {
    let filter = EventFilter::parse(get)?;
    let after = get("after").filter(|a| !a.trim().is_empty()).map(Cursor::decode).transpose()?;
    Ok((filter, after, page_size(get("limit"))?))
}

/// What the index keeps about one event, read from its payload: the PaymentIntent it concerns,
/// the amount and currency of the object it carries, and the contract its metadata names.
/// A payload we cannot read still gets a row (found by time, type, mode, status and text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub payment_intent: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub contract_id: Option<i64>,
}

impl Facts {
    pub fn of(payload: &[u8]) -> Self {
        let Ok(event) = StripeEvent::parse(payload) else { return Self::default() };
        match event.object {
            EventObject::PaymentIntent(pi) => Self {
                contract_id: match PaymentSource::from_metadata(&pi.metadata) {
                    Ok(PaymentSource::Contract(id)) => Some(id),
                    _ => None,
                },
                payment_intent: Some(pi.id),
                amount: Some(pi.amount),
                currency: Some(pi.currency),
            },
            EventObject::Charge(c) => Self {
                payment_intent: c.payment_intent,
                amount: Some(c.amount),
                currency: Some(c.currency),
                contract_id: None,
            },
            EventObject::Refund(r) => Self {
                payment_intent: r.payment_intent,
                amount: Some(r.amount),
                currency: Some(r.currency),
                contract_id: None,
            },
            EventObject::Dispute(d) => Self {
                payment_intent: d.payment_intent,
                amount: Some(d.amount),
                currency: Some(d.currency),
                contract_id: None,
            },
            EventObject::EarlyFraudWarning(w) => Self { payment_intent: w.payment_intent, ..Self::default() },
            EventObject::Unreadable { .. } | EventObject::Other(_) => Self::default(),
        }
    }
}

/// One search result: the event, what we did with it, and its indexed facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    pub event_id: String,
    pub event_type: String,
    pub livemode: bool,
    pub received_at: DateTime<Utc>,
    pub status: String,
    pub payment_intent: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub contract_id: Option<i64>,
    /// Why it failed or was ignored, else what processing did.
    pub note: Option<String>,
    /// Who sent it: `stripe`, or a gateway source's name.
    #[serde(default = "stripe")]
    pub source: String,
}

fn stripe() -> String {
    "stripe".into()
}

impl Hit {
    pub fn cursor(&self) -> Cursor {
        Cursor { received_at: self.received_at, event_id: self.event_id.clone() }
    }

    /// The amount as a plain decimal in major units (`150.00`), for exports.
    pub fn amount_decimal(&self) -> Option<String> {
        let (minor, currency) = (self.amount?, Currency::parse(self.currency.as_deref()?).ok()?);
        Some(super::money::Money::new(minor, currency).decimal())
    }

    /// The amount as people read it (`$150.00`).
    pub fn amount_text(&self) -> Option<String> {
        Some(super::money::format_amount(self.amount?, self.currency.as_deref()?))
    }
}

pub const CSV_HEADER: [&str; 11] = [
    "received_at",
    "event_id",
    "type",
    "mode",
    "status",
    "payment_intent",
    "amount",
    "currency",
    "contract_id",
    "note",
    "source",
];

/// The hit as one CSV record (`csv_row`), in `CSV_HEADER`'s order.
pub fn csv_record(h: &Hit) -> String {
    csv_row(&[
        &h.received_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        &h.event_id,
        &h.event_type,
        if h.livemode { "live" } else { "test" },
        &h.status,
        h.payment_intent.as_deref().unwrap_or_default(),
        &h.amount_decimal().unwrap_or_default(),
        h.currency.as_deref().unwrap_or_default(),
        &h.contract_id.map(|c| c.to_string()).unwrap_or_default(),
        h.note.as_deref().unwrap_or_default(),
        &h.source,
    ])
}

/// The hit as one NDJSON line: the JSON object and a newline.
pub fn ndjson_record(h: &Hit) -> String {
    let mut line = serde_json::to_string(h).expect("a hit serialises");
    line.push('\n');
    line
}

/// One CSV record (RFC 4180: quoted when needed, quotes doubled, CRLF). A cell a spreadsheet
/// would run as a formula (=, +, -, @, tab, CR) is prefixed with a quote so it stays text. A
/// plain number (`-75.00`) is left alone: it cannot run as anything, and a refund-heavy day's
/// negative net must stay a number a spreadsheet can add up.
pub fn csv_row(cells: &[&str]) -> String {
    let mut out = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let safe = if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && !plain_number(cell) {
            format!("'{cell}")
        } else {
            cell.to_string()
        };
        if safe.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&safe.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&safe);
        }
    }
    out.push_str("\r\n");
    out
}

/// `-` then digits with at most one `.` among them: a number, never a formula.
fn plain_number(cell: &str) -> bool {
    let Some(rest) = cell.strip_prefix('-') else { return false };
    let mut parts = rest.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let frac = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// An export's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "csv" => Ok(Self::Csv),
            "ndjson" => Ok(Self::Ndjson),
            other => Err(format!("format: `{}` is not csv or ndjson", cut(other))),
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }
    /// What the file starts with (CSV's header row).
    pub fn header(self) -> String {
        match self {
            Self::Csv => csv_row(&CSV_HEADER),
            Self::Ndjson => String::new(),
        }
    }
    pub fn record(self, h: &Hit) -> String {
        match self {
            Self::Csv => csv_record(h),
            Self::Ndjson => ndjson_record(h),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<EventFilter, String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        EventFilter::parse(|k| map.get(k).map(String::as_str))
    }

    #[test]
    fn every_field_reads_and_writes_back_the_same() {
        let f = parse(&[
            ("from", "2026-03-01"),
            ("to", "2026-03-31"),
            ("type", "charge.dispute."),
            ("status", "failed"),
            ("min", "100"),
            ("max", "150.5"),
            ("currency", "USD"),
            ("mode", "live"),
            ("payment", "pi_3Abc"),
            ("contract", "#12"),
            ("email", "Ann@Example.com"),
            ("q", "card_declined"),
        ])
        .unwrap();
        assert_eq!(f.from.unwrap().to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(f.to.unwrap().to_rfc3339(), "2026-04-01T00:00:00+00:00", "a `to` day is inclusive");
        assert_eq!((f.min_amount, f.max_amount), (Some(10000), Some(15050)));
        assert_eq!(f.currency.as_deref(), Some("usd"));
        assert_eq!(f.livemode, Some(true));
        assert_eq!(f.contract_id, Some(12));
        assert_eq!(f.email.as_deref(), Some("ann@example.com"));
        let pairs = f.to_pairs();
        let again = EventFilter::parse(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str())).unwrap();
        assert_eq!(again, f);
        assert_eq!(parse(&[("from", " "), ("status", "")]).unwrap(), EventFilter::default(), "blank is absent");
    }

    #[test]
    fn mistakes_are_named() {
        for (pairs, says) in [
            (vec![("from", "March")], "from:"),
            (vec![("from", "2026-03-02"), ("to", "2026-03-01")], "`to` must be after"),
            (vec![("type", "charge.dispute.*")], "type:"),
            (vec![("type", "Charge")], "type:"),
            (vec![("status", "lost")], "status:"),
            (vec![("min", "ten"), ("currency", "usd")], "min:"),
            (vec![("min", "5"), ("max", "4"), ("currency", "usd")], "max is below min"),
            (vec![("min", "5")], "needs a currency"),
            (vec![("currency", "dollars")], "currency:"),
            (vec![("mode", "prod")], "mode:"),
            (vec![("payment", "ch_1")], "payment:"),
            (vec![("payment", "pi_1' OR 1=1")], "payment:"),
            (vec![("contract", "0")], "contract:"),
            (vec![("email", "nobody")], "email:"),
            (vec![("q", "***")], "q:"),
        ] {
            let err = parse(&pairs).unwrap_err();
            assert!(err.contains(says), "{pairs:?}: {err}");
        }
        assert!(parse(&[("q", &"x".repeat(TEXT_MAX + 1))]).is_err());
        assert!(parse(&[("min", "1500"), ("currency", "jpy")]).is_ok_and(|f| f.min_amount == Some(1500)));
    }

    #[test]
    fn text_and_type_cannot_smuggle_operators() {
        let f = parse(&[("q", "pi_1 OR \"x\" NEAR"), ("type", "charge.dispute_")]).unwrap();
        assert_eq!(f.fts5_phrase().unwrap(), "\"pi_1 OR \"\"x\"\" NEAR\"");
        assert_eq!(f.type_pattern().unwrap(), "charge.dispute\\_%");
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor {
            received_at: DateTime::parse_from_rfc3339("2026-11-27T10:00:00.123456789Z").unwrap().with_timezone(&Utc),
            event_id: "evt_1".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        // Any sender's id is a position (it is bound as a value, never spliced into SQL), but not
        // an empty one, one with control characters, or one longer than any stored id.
        let long = format!("2026-11-27T10:00:00Z~{}", "x".repeat(256));
        for bad in ["", "evt_1", "yesterday~evt_1", "2026-11-27T10:00:00Z~a\nb", "2026-11-27T10:00:00Z~", &long] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
        assert_eq!(page_size(None), Ok(PAGE_DEFAULT));
        assert!(page_size(Some("0")).is_err() && page_size(Some("501")).is_err() && page_size(Some("x")).is_err());
    }

    #[test]
    fn facts_come_from_the_object_the_event_carries() {
        let pi = br#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded","livemode":false,"created":1,
            "data":{"object":{"id":"pi_1","object":"payment_intent","amount":15000,"amount_received":15000,
            "currency":"usd","status":"succeeded","metadata":{"contractId":"7"}}}}"#;
        assert_eq!(
            Facts::of(pi),
            Facts {
                payment_intent: Some("pi_1".into()),
                amount: Some(15000),
                currency: Some("usd".into()),
                contract_id: Some(7)
            }
        );
        let refund = br#"{"id":"evt_2","object":"event","type":"refund.created","livemode":false,"created":1,
            "data":{"object":{"id":"re_1","object":"refund","payment_intent":"pi_1","charge":"ch_1","amount":7500,
            "currency":"usd","status":"succeeded"}}}"#;
        let f = Facts::of(refund);
        assert_eq!((f.payment_intent.as_deref(), f.amount, f.contract_id), (Some("pi_1"), Some(7500), None));
        assert_eq!(Facts::of(b"not json"), Facts::default());
    }

    #[test]
    fn a_source_names_a_gateway_sender_and_refuses_stripes_own_facts() {
        assert_eq!(parse(&[("source", "stripe")]).unwrap().source, None, "stripe is the default");
        let f = parse(&[("source", "square"), ("type", "payment."), ("q", "p1")]).unwrap();
        assert_eq!(f.source.as_deref(), Some("square"));
        let pairs = f.to_pairs();
        let again = EventFilter::parse(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str())).unwrap();
        assert_eq!(again, f, "the source survives a round trip through a link");
        assert!(parse(&[("source", "Square!")]).unwrap_err().starts_with("source:"));
        let err = parse(&[("source", "square"), ("contract", "3")]).unwrap_err();
        assert!(err.starts_with("contract: only Stripe's events"), "{err}");
        assert!(parse(&[("source", "square"), ("mode", "live")]).is_err());
        assert!(Cursor::decode("2026-11-27T10:00:00Z~sq-evt-1").is_ok(), "any sender's id pages");
        assert!(Cursor::decode("2026-11-27T10:00:00Z~").is_err());
    }

    #[test]
    fn exports_quote_neutralise_and_keep_one_record_per_line() {
        let h = Hit {
            event_id: "evt_1".into(),
            event_type: "payment_intent.payment_failed".into(),
            livemode: false,
            received_at: DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z").unwrap().with_timezone(&Utc),
            status: "failed".into(),
            payment_intent: Some("pi_1".into()),
            amount: Some(-7500),
            currency: Some("usd".into()),
            contract_id: Some(3),
            note: Some("=HYPERLINK(\"x\"), said\nthe card".into()),
            source: "stripe".into(),
        };
        assert_eq!(
            csv_record(&h),
            "2026-11-27T10:00:00.000000Z,evt_1,payment_intent.payment_failed,test,failed,pi_1,-75.00,usd,3,\
             \"'=HYPERLINK(\"\"x\"\"), said\nthe card\",stripe\r\n"
        );
        let line = ndjson_record(&h);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "{line}");
        assert_eq!(serde_json::from_str::<Hit>(&line).unwrap(), h);
    }

    #[test]
    fn csv_quotes_what_needs_it_and_neutralises_formulas() {
        assert_eq!(csv_row(&["a", "b c", ""]), "a,b c,\r\n");
        assert_eq!(csv_row(&["x,y", "say \"hi\"", "two\nlines"]), "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n");
        assert_eq!(csv_row(&["=SUM(A1)", "+1", "-2+3", "@x", "ok"]), "'=SUM(A1),'+1,'-2+3,'@x,ok\r\n");
        assert_eq!(
            csv_row(&["-75.00", "-3", "-1.", "-.5", "-1e3", "-cmd|' /C calc'!A0"]),
            "-75.00,-3,'-1.,'-.5,'-1e3,'-cmd|' /C calc'!A0\r\n"
        );
    }
}
