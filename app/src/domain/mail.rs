//! What the store's emails say, and when a failed send is tried again: plain functions from
//! facts to a `Letter` (subject, plain text, HTML). Every value a person or Stripe supplied is
//! HTML-escaped in the HTML part; the plain part is what the HTML says, without markup.
use super::money::format_amount;
use chrono::{DateTime, Duration, Utc};

/// One email's words, both parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The kinds of message the outbox holds (its `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invitation,
    /// An admin reset the password: the old one no longer works.
    Reset,
    /// The person asked for a link ("Forgot your password?"): the old one still works until the
    /// new one is set.
    Forgot,
    Receipt,
    Revoked,
    AlertStarted,
    AlertResolved,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Invitation => "invitation",
            Kind::Reset => "reset",
            Kind::Forgot => "forgot",
            Kind::Receipt => "receipt",
            Kind::Revoked => "revoked",
            Kind::AlertStarted => "alert_started",
            Kind::AlertResolved => "alert_resolved",
        }
    }
}

/// Sends tried at most, about two days of backoff: long enough to ride out a mail server's
/// outage over a weekend night, short enough that a receipt does not arrive a week late.
pub const MAX_ATTEMPTS: i64 = 12;

/// How long after failed attempt `attempt` (1-based) the next one is made: a minute, doubling,
/// at most six hours (1, 2, 4, 8, 16, 32 min, 1 h 4 min, 2 h 8 min, 4 h 16 min, 6 h, 6 h: about 20
/// hours in all before the twelfth and last).
pub fn retry_after(attempt: i64) -> Duration {
    let minutes = 1i64 << attempt.clamp(1, 20).saturating_sub(1).min(16);
    Duration::minutes(minutes.min(360))
}

/// `&`, `<`, `>`, `"` and `'` as entities: enough for text and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A paragraph of plain text and its HTML, or a link.
enum Part<'a> {
    Text(String),
    Link { label: &'a str, url: &'a str },
}

/// The letter from its parts: paragraphs in the plain text, `<p>`s (escaped) in the HTML.
fn compose(subject: String, parts: &[Part<'_>]) -> Letter {
    let mut text = String::new();
    let mut html = String::from("<!doctype html><html><body style=\"font-family: sans-serif; line-height: 1.4\">");
    for part in parts {
        match part {
            Part::Text(t) => {
                text.push_str(t);
                html.push_str(&format!("<p>{}</p>", escape_html(t)));
            }
            Part::Link { label, url } => {
                text.push_str(&format!("{label}: {url}"));
                html.push_str(&format!("<p><a href=\"{}\">{}</a></p>", escape_html(url), escape_html(label)));
            }
        }
        text.push_str("\n\n");
    }
    html.push_str("</body></html>");
    Letter { subject, text: text.trim_end().to_string() + "\n", html }
}

/// Which contract a message is about, as its owner knows it.
#[derive(Debug, Clone)]
pub struct ContractName {
    pub id: i64,
    pub publication: String,
    pub ad_size: String,
}

impl ContractName {
    fn describe(&self) -> String {
        format!("contract #{} ({}, {})", self.id, self.publication, self.ad_size)
    }
}

/// A pack credited to a contract.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub contract: ContractName,
    pub amount: i64,
    pub currency: String,
    pub revisions: i64,
    /// Revisions available right after this credit.
    pub available_after: i64,
    pub payment_id: String,
    pub credited_at: DateTime<Utc>,
    /// Stripe's own receipt for the charge, when Stripe gives one.
    pub stripe_receipt_url: Option<String>,
    /// The contract's page in the store.
    pub contract_url: String,
}

pub fn receipt(r: &Receipt) -> Letter {
    let amount = format_amount(r.amount, &r.currency);
    let mut parts = vec![
        Part::Text(format!(
            "Thank you: your payment of {amount} was received and {} revision{} added to {}.",
            r.revisions,
            plural(r.revisions),
            r.contract.describe()
        )),
        Part::Text(format!(
            "Revisions available now: {}. Paid {} UTC, payment reference {}.",
            r.available_after,
            r.credited_at.format("%Y-%m-%d %H:%M"),
            r.payment_id
        )),
        Part::Link { label: "Your contract", url: &r.contract_url },
    ];
    if let Some(url) = &r.stripe_receipt_url {
        parts.push(Part::Link { label: "Your card receipt from Stripe", url });
    }
    compose(format!("Receipt: {} revision{} for {amount}", r.revisions, plural(r.revisions)), &parts)
}

/// Why revisions were taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokedBy {
    Refund,
    DisputeLost,
}

/// Revisions taken back from a contract by a refund or a lost dispute.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub contract: ContractName,
    pub by: RevokedBy,
    pub revisions: i64,
    pub amount: i64,
    pub currency: String,
    pub available_after: i64,
    pub payment_id: String,
    pub contract_url: String,
}

pub fn revocation(r: &Revocation) -> Letter {
    let amount = format_amount(r.amount, &r.currency);
    let why = match r.by {
        RevokedBy::Refund => format!("A refund of {amount} was made on payment {}", r.payment_id),
        RevokedBy::DisputeLost => {
            format!("The dispute over payment {} ({amount}) was decided for the card holder", r.payment_id)
        }
    };
    let parts = [
        Part::Text(format!(
            "{why}, so {} revision{} {} taken back from {}.",
            r.revisions,
            plural(r.revisions),
            if r.revisions == 1 { "was" } else { "were" },
            r.contract.describe()
        )),
        Part::Text(format!("Revisions available now: {}.", r.available_after)),
        Part::Link { label: "Your contract", url: &r.contract_url },
    ];
    let subject = match r.by {
        RevokedBy::Refund => format!("Refund: {} revision{} taken back", r.revisions, plural(r.revisions)),
        RevokedBy::DisputeLost => format!("Dispute lost: {} revision{} taken back", r.revisions, plural(r.revisions)),
    };
    compose(subject, &parts)
}

/// A set-password link: an invitation, an admin's reset, or one the person asked for.
pub fn link(kind: Kind, url: &str, expires_at: DateTime<Utc>) -> Letter {
    let until = format!("It works once, until {} UTC.", expires_at.format("%Y-%m-%d %H:%M"));
    let (subject, opening, label) = match kind {
        Kind::Invitation => (
            "Your Revision Store account",
            "You have been invited to Revision Store, where you follow your ad contracts and buy artwork revisions. \
             Choose your password with the link below.",
            "Choose your password",
        ),
        Kind::Reset => (
            "Your Revision Store password was reset",
            "An administrator reset your Revision Store password; the old one no longer works. Choose a new one \
             with the link below.",
            "Choose a new password",
        ),
        _ => (
            "Reset your Revision Store password",
            "Someone (we hope you) asked to reset your Revision Store password. If it was not you, ignore this \
             email: your password stays as it is.",
            "Choose a new password",
        ),
    };
    compose(subject.into(), &[Part::Text(opening.into()), Part::Link { label, url }, Part::Text(until)])
}

/// A message written as plain lines (an alert's notice, the same words Slack gets): each line a
/// paragraph, and a line ending in an address (`Where to look: https://…`) a link in the HTML.
pub fn from_lines(subject: &str, text: &str) -> Letter {
    let parts: Vec<Part<'_>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| match line.rsplit_once(": ") {
            Some((label, url)) if url.starts_with("https://") || url.starts_with("http://") => {
                Part::Link { label, url }
            }
            _ => Part::Text(line.to_string()),
        })
        .collect();
    compose(subject.to_string(), &parts)
}

fn plural(n: i64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// An address as a log line may show it: the domain only (`…@example.com`), since logs are
/// kept and shipped more widely than the outbox that holds the address itself.
pub fn loggable_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((_, domain)) => format!("…@{domain}"),
        None => "…".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> ContractName {
        ContractName { id: 7, publication: "Daily <Bugle>".into(), ad_size: "Full & page".into() }
    }

    #[test]
    fn a_receipt_names_amount_contract_revisions_balance_and_stripes_link() {
        let r = Receipt {
            contract: contract(),
            amount: 15_000,
            currency: "usd".into(),
            revisions: 2,
            available_after: 5,
            payment_id: "pi_123".into(),
            credited_at: "2026-12-05T10:00:00Z".parse().unwrap(),
            stripe_receipt_url: Some("https://pay.stripe.com/receipts/x?a=1&b=2".into()),
            contract_url: "https://shop.example/contracts/7".into(),
        };
        let l = receipt(&r);
        assert_eq!(l.subject, "Receipt: 2 revisions for $150.00");
        for needle in
            ["$150.00", "2 revisions", "contract #7 (Daily <Bugle>, Full & page)", "available now: 5", "pi_123"]
        {
            assert!(l.text.contains(needle), "{needle} in {}", l.text);
        }
        assert!(l.text.contains("https://pay.stripe.com/receipts/x?a=1&b=2"));
        // The HTML escapes what people and Stripe typed, and never carries it raw.
        assert!(l.html.contains("Daily &lt;Bugle&gt;, Full &amp; page"), "{}", l.html);
        assert!(!l.html.contains("<Bugle>"));
        assert!(l.html.contains("href=\"https://pay.stripe.com/receipts/x?a=1&amp;b=2\""));
        let without = receipt(&Receipt { stripe_receipt_url: None, ..r });
        assert!(!without.text.contains("Stripe"));
    }

    #[test]
    fn a_revocation_says_why_and_what_is_left() {
        let r = Revocation {
            contract: contract(),
            by: RevokedBy::DisputeLost,
            revisions: 1,
            amount: 15_000,
            currency: "usd".into(),
            available_after: 3,
            payment_id: "pi_9".into(),
            contract_url: "https://shop.example/contracts/7".into(),
        };
        let l = revocation(&r);
        assert_eq!(l.subject, "Dispute lost: 1 revision taken back");
        assert!(l.text.contains("1 revision was taken back"));
        assert!(l.text.contains("available now: 3"));
        let l = revocation(&Revocation { by: RevokedBy::Refund, revisions: 2, ..r });
        assert!(l.text.starts_with("A refund of $150.00 was made on payment pi_9, so 2 revisions were taken back"));
    }

    #[test]
    fn links_say_what_they_are_and_until_when() {
        let at: DateTime<Utc> = "2026-12-05T11:00:00Z".parse().unwrap();
        let forgot = link(Kind::Forgot, "https://shop.example/password/abc", at);
        assert!(forgot.text.contains("ignore this email"));
        assert!(forgot.text.contains("https://shop.example/password/abc"));
        assert!(forgot.text.contains("until 2026-12-05 11:00 UTC"));
        assert!(link(Kind::Invitation, "u", at).subject.contains("account"));
        assert!(link(Kind::Reset, "u", at).text.contains("no longer works"));
    }

    #[test]
    fn retries_back_off_to_six_hours_and_stop() {
        let waits: Vec<i64> = (1..=MAX_ATTEMPTS).map(|a| retry_after(a).num_minutes()).collect();
        assert_eq!(waits[..4], [1, 2, 4, 8]);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*waits.last().unwrap(), 360);
        assert_eq!(retry_after(0).num_minutes(), 1);
        assert_eq!(retry_after(i64::MAX).num_minutes(), 360);
    }

    #[test]
    fn alerts_and_logs() {
        let text = "[alert] FIRING: x\n12 in 5 minutes\nWhere to look: https://shop.example/admin/alerts#a";
        let l = from_lines("[alert] FIRING: Bad <signatures>", text);
        assert_eq!(l.subject, "[alert] FIRING: Bad <signatures>");
        assert!(l.text.contains("12 in 5 minutes\n\nWhere to look: https://shop.example/admin/alerts#a"), "{}", l.text);
        assert!(l.html.contains("<a href=\"https://shop.example/admin/alerts#a\">Where to look</a>"), "{}", l.html);
        assert_eq!(loggable_address("ann@example.com"), "…@example.com");
        assert_eq!(escape_html("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }
}
