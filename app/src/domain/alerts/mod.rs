//! Alerts: the rules the worker evaluates, each with a name, a threshold with a default, a
//! one-line runbook and the admin page that explains it; `evaluate` reads what one rule sees in
//! the facts, and `state::next` turns observations into episodes and the notices they owe (one
//! when an alert starts, one when it resolves, never one per event). Pure: the facts are read by
//! `services::alerts`, which also sends the notices.
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub mod state;

pub use state::{next, notified, Notice, NoticeKind, State};

/// How far back the per-request faults (503 answers, refused signatures) are summed.
pub const FAULT_WINDOW_MINUTES: i64 = 5;
/// How far back new dead letters count.
pub const DEAD_LETTER_WINDOW_HOURS: i64 = 24;
/// How far back a return-page credit is checked for its webhook (older ones are the
/// reconciliation's: it fetches what Stripe did not deliver).
pub const RETURN_PAGE_LOOK_BACK_HOURS: i64 = 24;

/// Every alert rule. Its name (`name`) is what the database, the CLI, the settings, the metrics'
/// `rule` label and the Prometheus rules file call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Rule {
    StoreUnavailable,
    SignatureFailures,
    WebhookSilence,
    UndeliveredEvents,
    DeadLetters,
    OverdueEvents,
    FindingsOpen,
    SelfCredited,
    ReturnWithoutWebhook,
    ReconciliationOverdue,
}

impl Rule {
    pub const ALL: [Rule; 10] = [
        Rule::StoreUnavailable,
        Rule::SignatureFailures,
        Rule::WebhookSilence,
        Rule::UndeliveredEvents,
        Rule::DeadLetters,
        Rule::OverdueEvents,
        Rule::FindingsOpen,
        Rule::SelfCredited,
        Rule::ReturnWithoutWebhook,
        Rule::ReconciliationOverdue,
    ];

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).expect("every rule is listed")
    }

    pub fn name(self) -> &'static str {
        match self {
            Rule::StoreUnavailable => "store_unavailable",
            Rule::SignatureFailures => "signature_failures",
            Rule::WebhookSilence => "webhook_silence",
            Rule::UndeliveredEvents => "undelivered_events",
            Rule::DeadLetters => "dead_letters",
            Rule::OverdueEvents => "overdue_events",
            Rule::FindingsOpen => "findings_open",
            Rule::SelfCredited => "self_credited",
            Rule::ReturnWithoutWebhook => "return_without_webhook",
            Rule::ReconciliationOverdue => "reconciliation_overdue",
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Self::ALL.into_iter().find(|r| r.name() == name.trim())
    }

    /// What people read in messages and on the page.
    pub fn title(self) -> &'static str {
        match self {
            Rule::StoreUnavailable => "Webhook deliveries answered 503",
            Rule::SignatureFailures => "Webhook signatures refused",
            Rule::WebhookSilence => "No verified webhook while purchases are made",
            Rule::UndeliveredEvents => "Stripe reports undelivered events",
            Rule::DeadLetters => "New dead letters",
            Rule::OverdueEvents => "Events pending past their retry budget",
            Rule::FindingsOpen => "Reconciliation left findings open",
            Rule::SelfCredited => "Reconciliation credited payments itself",
            Rule::ReturnWithoutWebhook => "Return page credited, webhook never came",
            Rule::ReconciliationOverdue => "Daily reconciliation overdue",
        }
    }

    pub fn default_threshold(self) -> i64 {
        match self {
            Rule::SignatureFailures => 10,
            Rule::WebhookSilence => 6,
            Rule::ReturnWithoutWebhook => 10,
            _ => 1,
        }
    }

    /// What the threshold counts, after the number ("10 refused in 5 minutes").
    pub fn threshold_unit(self) -> &'static str {
        match self {
            Rule::StoreUnavailable => "503 answers in 5 minutes",
            Rule::SignatureFailures => "refused signatures in 5 minutes",
            Rule::WebhookSilence => "hours without a verified webhook, with purchases started",
            Rule::UndeliveredEvents => "undelivered events in the last reconciliation",
            Rule::DeadLetters => "events dead-lettered in 24 hours",
            Rule::OverdueEvents => "events pending past their retry budget",
            Rule::FindingsOpen => "open findings in the last reconciliation",
            Rule::SelfCredited => "payments the last reconciliation credited",
            Rule::ReturnWithoutWebhook => "minutes after a return-page credit without its webhook",
            Rule::ReconciliationOverdue => "hours past the reconciliation interval",
        }
    }

    /// What to check first.
    pub fn runbook(self) -> &'static str {
        match self {
            Rule::StoreUnavailable => "The database: /readyz, disk space and connections; Stripe retries a 503, so nothing is lost while it comes back within days.",
            Rule::SignatureFailures => "STRIPE_WEBHOOK_SECRETS against the endpoint's signing secret in Stripe's dashboard (rotated?), and the server clock; a burst of missing headers is someone else's traffic.",
            Rule::WebhookSilence => "The webhook endpoint in Stripe's dashboard (disabled? failing?), then DNS, TLS and the proxy in front of the app.",
            Rule::UndeliveredEvents => "Stripe's dashboard, Developers → Webhooks → the endpoint's failed deliveries: why did Stripe not reach us?",
            Rule::DeadLetters => "The failed events' reasons on the Stripe events page; fix the cause, then replay them.",
            Rule::OverdueEvents => "The worker's log (is it running? failing each retry?) and the events' last errors on the Stripe events page.",
            Rule::FindingsOpen => "The last reconciliation's open findings: each says what Stripe and our books disagree on.",
            Rule::SelfCredited => "Each credited payment is a webhook we missed: check the endpoint's deliveries in Stripe for those payments.",
            Rule::ReturnWithoutWebhook => "The payment's events in Stripe's dashboard: was payment_intent.succeeded sent to our endpoint, and what did we answer?",
            Rule::ReconciliationOverdue => "The reconciliation page: did the last runs fail (Stripe key, rate limits) or never start (worker down)?",
        }
    }

    /// The admin page where what the alert is about can be seen.
    pub fn page(self) -> &'static str {
        match self {
            Rule::StoreUnavailable | Rule::SignatureFailures | Rule::WebhookSilence => "/admin/events",
            Rule::DeadLetters => "/admin/events?status=failed",
            Rule::OverdueEvents => "/admin/events?status=pending",
            Rule::ReturnWithoutWebhook => "/admin/events?type=payment_intent",
            Rule::UndeliveredEvents | Rule::FindingsOpen | Rule::SelfCredited | Rule::ReconciliationOverdue => {
                "/admin/reconciliation"
            }
        }
    }

    /// The Alerts page's own explanation of this rule (its runbook, settings and history).
    pub fn alert_page(self) -> String {
        format!("/admin/alerts#{}", self.name())
    }
}

/// A per-request fault counted in memory by the process that answered and gathered into the
/// database by its worker (`webhook_faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fault {
    StoreUnavailable,
    MissingHeader,
    MalformedHeader,
    NoMatch,
    OutsideTolerance,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::StoreUnavailable,
        Fault::MissingHeader,
        Fault::MalformedHeader,
        Fault::NoMatch,
        Fault::OutsideTolerance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Fault::StoreUnavailable => "store_unavailable",
            Fault::MissingHeader => "missing_header",
            Fault::MalformedHeader => "malformed_header",
            Fault::NoMatch => "no_match",
            Fault::OutsideTolerance => "outside_tolerance",
        }
    }

    pub fn parse(s: &str) -> Option<Fault> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|f| *f == self).expect("every fault is listed")
    }
}

/// Each rule's threshold: its default unless a setting (`ALERT_THRESHOLDS`) says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds([i64; 10]);

impl Default for Thresholds {
    fn default() -> Self {
        Self(Rule::ALL.map(Rule::default_threshold))
    }
}

impl Thresholds {
    pub fn get(&self, rule: Rule) -> i64 {
        self.0[rule.index()]
    }

    /// `rule=N` pairs (comma-separated), each a whole number from 1; rules not named keep their
    /// defaults.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        let mut t = Self::default();
        for item in list.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item.split_once('=').ok_or_else(|| format!("`{item}` is not rule=number"))?;
            let rule = Rule::parse(name).ok_or_else(|| {
                let names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
                format!("`{}` is not an alert rule (one of {})", name.trim(), names.join(", "))
            })?;
            let n: i64 = value.trim().parse().map_err(|_| format!("`{item}`: the threshold is a whole number"))?;
            if !(1..=1_000_000).contains(&n) {
                return Err(format!("`{item}`: the threshold is between 1 and 1000000"));
            }
            t.0[rule.index()] = n;
        }
        Ok(t)
    }
}

/// What the rules are evaluated against besides the facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    pub thresholds: Thresholds,
    /// Between scheduled reconciliations; None: none is scheduled, and none can be overdue.
    pub reconcile_interval: Option<Duration>,
}

/// The last finished (not dry-run) reconciliation, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunFacts {
    pub id: i64,
    pub finished_at: DateTime<Utc>,
    pub undelivered: i64,
    pub open: i64,
    pub self_credited: i64,
}

/// What the database says now, read once per evaluation by `services::alerts`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// Faults of the last `FAULT_WINDOW_MINUTES`, by kind, across every process.
    pub faults: [i64; 5],
    /// When the newest event delivered with a valid signature arrived.
    pub last_webhook: Option<DateTime<Utc>>,
    /// Purchases started within the silence window (`WebhookSilence`'s hours).
    pub purchases_in_silence: i64,
    pub last_run: Option<RunFacts>,
    /// Events dead-lettered within `DEAD_LETTER_WINDOW_HOURS`.
    pub dead_letters: i64,
    /// Events still pending past their retry budget.
    pub overdue_events: i64,
    /// Payments the return page credited (within `RETURN_PAGE_LOOK_BACK_HOURS`, longer ago than
    /// the rule's minutes) of which no event has been stored: a few of their ids, and how many.
    pub returns_without_webhook: (Vec<String>, i64),
    /// When a reconciliation last completed, and when the first one ever started.
    pub last_reconciled: Option<DateTime<Utc>>,
    pub first_reconcile_start: Option<DateTime<Utc>>,
}

impl Facts {
    pub fn fault(&self, f: Fault) -> i64 {
        self.faults[f.index()]
    }
}

/// What one evaluation of one rule saw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observation {
    pub firing: bool,
    pub count: i64,
    pub detail: String,
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Whether `rule` fires on `facts` at `now`, with its count and a line saying what it saw.
pub fn evaluate(rule: Rule, facts: &Facts, settings: &Settings, now: DateTime<Utc>) -> Observation {
    let threshold = settings.thresholds.get(rule);
    let counted = |count: i64, detail: String| Observation { firing: count >= threshold, count, detail };
    let run = facts.last_run.as_ref();
    let of_run = |n: i64, what: &str| match run {
        Some(r) => format!("{what} in reconciliation #{} (finished {})", r.id, at(r.finished_at)),
        None if n == 0 => "no reconciliation has finished yet".to_string(),
        None => what.to_string(),
    };
    match rule {
        Rule::StoreUnavailable => {
            let n = facts.fault(Fault::StoreUnavailable);
            counted(
                n,
                format!(
                    "{} in the last {FAULT_WINDOW_MINUTES} minutes",
                    plural(n, "delivery answered 503", "deliveries answered 503")
                ),
            )
        }
        Rule::SignatureFailures => signature_failures(facts, threshold),
        Rule::WebhookSilence => silence(facts, threshold, now),
        Rule::UndeliveredEvents => {
            let n = run.map_or(0, |r| r.undelivered);
            counted(n, of_run(n, &plural(n, "event Stripe had not delivered", "events Stripe had not delivered")))
        }
        Rule::DeadLetters => {
            let n = facts.dead_letters;
            counted(
                n,
                format!(
                    "{} in the last {DEAD_LETTER_WINDOW_HOURS} hours",
                    plural(n, "event dead-lettered", "events dead-lettered")
                ),
            )
        }
        Rule::OverdueEvents => {
            let n = facts.overdue_events;
            counted(n, format!("{} pending past the retry budget", plural(n, "event", "events")))
        }
        Rule::FindingsOpen => {
            let n = run.map_or(0, |r| r.open);
            counted(n, of_run(n, &plural(n, "finding open", "findings open")))
        }
        Rule::SelfCredited => {
            let n = run.map_or(0, |r| r.self_credited);
            counted(
                n,
                of_run(n, &plural(n, "payment credited by reconciliation", "payments credited by reconciliation")),
            )
        }
        Rule::ReturnWithoutWebhook => {
            let (ids, n) = &facts.returns_without_webhook;
            let mut detail = format!(
                "{} credited by the return page more than {threshold} minutes ago with no event from Stripe",
                plural(*n, "payment", "payments")
            );
            if !ids.is_empty() {
                detail.push_str(&format!(": {}", ids.join(", ")));
            }
            Observation { firing: *n > 0, count: *n, detail }
        }
        Rule::ReconciliationOverdue => overdue_reconciliation(facts, settings, threshold, now),
    }
}

fn signature_failures(facts: &Facts, threshold: i64) -> Observation {
    let kinds = [Fault::NoMatch, Fault::OutsideTolerance, Fault::MalformedHeader, Fault::MissingHeader];
    let n: i64 = kinds.iter().map(|k| facts.fault(*k)).sum();
    let parts: Vec<String> =
        kinds.iter().filter(|k| facts.fault(**k) > 0).map(|k| format!("{} {}", facts.fault(*k), k.as_str())).collect();
    let mut detail =
        format!("{} in the last {FAULT_WINDOW_MINUTES} minutes", plural(n, "signature refused", "signatures refused"));
    if !parts.is_empty() {
        detail.push_str(&format!(" ({})", parts.join(", ")));
    }
    Observation { firing: n >= threshold, count: n, detail }
}

fn silence(facts: &Facts, hours: i64, now: DateTime<Utc>) -> Observation {
    let quiet = facts.last_webhook.is_none_or(|t| now - t >= Duration::hours(hours));
    let n = facts.purchases_in_silence;
    let last = facts.last_webhook.map_or("none ever".to_string(), |t| format!("the last at {}", at(t)));
    Observation {
        firing: quiet && n > 0,
        count: n,
        detail: format!(
            "no verified webhook for {hours} hours ({last}) while {} started",
            plural(n, "purchase was", "purchases were")
        ),
    }
}

fn overdue_reconciliation(facts: &Facts, settings: &Settings, grace_hours: i64, now: DateTime<Utc>) -> Observation {
    let Some(interval) = settings.reconcile_interval else {
        return Observation { detail: "no reconciliation is scheduled".into(), ..Default::default() };
    };
    // Since the last completed run; a schedule that never completed one counts from its first try.
    let Some(since) = facts.last_reconciled.or(facts.first_reconcile_start) else {
        return Observation { detail: "no reconciliation has started yet".into(), ..Default::default() };
    };
    let late = now - since - interval;
    let hours = late.num_hours();
    let last =
        facts.last_reconciled.map_or("none has completed".to_string(), |t| format!("the last completed {}", at(t)));
    Observation {
        firing: late >= Duration::hours(grace_hours),
        count: hours.max(0),
        detail: format!("{last}; the schedule is every {} hours", interval.num_hours()),
    }
}

/// How long the worker keeps retrying an event before it dead-letters it (the sum of the
/// policy's delays), so "pending past its budget" is an event the retries should have finished.
pub fn retry_budget(policy: &super::events::RetryPolicy) -> Duration {
    Duration::seconds((1..policy.max_attempts).filter_map(|n| policy.delay_after(n)).sum())
}

/// An alert of a day, for the daily Slack summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfTheDay {
    pub rule: Rule,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests;
