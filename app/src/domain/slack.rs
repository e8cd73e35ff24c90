//! What Revision Store says in the team's Slack: the daily summary and the answers to
//! `/revenue`, as plain text built from revenue figures. Pure: the words are decided here and
//! tested here; sending and verifying live in `crate::slack` and `services::slack`.
//!
//! No customer data, by construction: these functions are only handed totals and counts.
use super::revenue::{Figures, Report};
use chrono::{Datelike, Duration, NaiveDate, NaiveTime};

/// What `/revenue` was asked for: an inclusive UTC date range and how to name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub label: String,
}

pub const USAGE: &str = "Usage: /revenue [today|yesterday|7d|30d|mtd|YYYY-MM-DD] (UTC days; default: today)";

/// Reads the slash command's argument; None for anything else (the caller answers `USAGE`).
pub fn parse_ask(text: &str, today: NaiveDate) -> Option<Ask> {
    let arg = text.trim().to_ascii_lowercase();
    let ask = |from: NaiveDate, to: NaiveDate, label: String| Some(Ask { from, to, label });
    match arg.as_str() {
        "" | "today" => ask(today, today, format!("today ({today})")),
        "yesterday" => {
            let d = today - Duration::days(1);
            ask(d, d, format!("yesterday ({d})"))
        }
        "7d" => {
            ask(today - Duration::days(6), today, format!("the last 7 days ({} to {today})", today - Duration::days(6)))
        }
        "30d" => ask(
            today - Duration::days(29),
            today,
            format!("the last 30 days ({} to {today})", today - Duration::days(29)),
        ),
        "mtd" => {
            let first = today.with_day(1).expect("every month has a first day");
            ask(first, today, format!("month to date ({first} to {today})"))
        }
        other => {
            let d = NaiveDate::parse_from_str(other, "%Y-%m-%d").ok()?;
            // A day in the future has no revenue yet; saying $0 would read as a fact.
            if d > today {
                return None;
            }
            ask(d, d, d.to_string())
        }
    }
}

use super::money::format_amount as money;

/// One line of figures per currency: gross, refunds, disputes lost (when any), net, packs.
fn figure_lines(report: &Report) -> Vec<String> {
    let currencies = report.currencies();
    if currencies.is_empty() {
        return vec!["no payments".to_string()];
    }
    currencies
        .iter()
        .map(|c| {
            let all = total(report, c, None);
            let packs = total(report, c, Some(super::revenue::Source::Pack));
            let mut line = format!("gross {} · refunds {}", money(all.gross, c), money(all.refunds, c));
            if all.disputes_lost != 0 {
                line.push_str(&format!(" · disputes lost {}", money(all.disputes_lost, c)));
            }
            line.push_str(&format!(
                " · *net {}* · {} pack{}",
                money(all.net(), c),
                packs.payments,
                if packs.payments == 1 { "" } else { "s" }
            ));
            line
        })
        .collect()
}

fn total(report: &Report, currency: &str, source: Option<super::revenue::Source>) -> Figures {
    report
        .totals
        .iter()
        .find(|l| l.currency == currency && l.source == source)
        .map(|l| l.figures.clone())
        .unwrap_or_default()
}

/// The daily summary: yesterday, month to date, open reconciliation findings, failed events,
/// and the alerts that fired that day (names and times only: no customer data either).
pub fn summary_text(
    day: NaiveDate,
    yesterday: &Report,
    month_to_date: &Report,
    open_findings: i64,
    failed_events: i64,
    alerts: &[super::alerts::OfTheDay],
    mode: &str,
) -> String {
    let mut out = format!("*Revision Store, {day} (UTC{})*\n", if mode == "live" { "" } else { ", test mode" });
    for l in figure_lines(yesterday) {
        out.push_str(&format!("Yesterday: {l}\n"));
    }
    for l in figure_lines(month_to_date) {
        out.push_str(&format!("Month to date ({} to {}): {l}\n", month_to_date.from, month_to_date.to));
    }
    out.push_str(&match open_findings {
        0 => "Reconciliation: no findings open\n".to_string(),
        n => format!("Reconciliation: {n} finding{} open, see the admin pages\n", if n == 1 { "" } else { "s" }),
    });
    out.push_str(&match failed_events {
        0 => "Failed Stripe events: none".to_string(),
        n => format!("Failed Stripe events: {n}, see the admin pages"),
    });
    out.push_str(&alerts_line(day, alerts));
    out
}

/// The day's alerts: each rule's title, when it started and when it resolved (times of other
/// days with their date).
fn alerts_line(day: NaiveDate, alerts: &[super::alerts::OfTheDay]) -> String {
    if alerts.is_empty() {
        return "\nAlerts: none".to_string();
    }
    let when = |t: chrono::DateTime<chrono::Utc>| {
        if t.date_naive() == day {
            t.format("%H:%M").to_string()
        } else {
            t.format("%Y-%m-%d %H:%M").to_string()
        }
    };
    let items: Vec<String> = alerts
        .iter()
        .map(|a| {
            let end = a.resolved_at.map_or("still firing".to_string(), |r| format!("resolved {}", when(r)));
            format!("{} (started {}, {end})", a.rule.title(), when(a.started_at))
        })
        .collect();
    format!("\nAlerts: {}, see the admin pages: {}", items.len(), items.join("; "))
}

/// The answer to `/revenue`.
pub fn answer_text(ask: &Ask, report: &Report) -> String {
    let lines = figure_lines(report);
    if lines.len() == 1 {
        format!("Revenue {}: {}", ask.label, lines[0])
    } else {
        format!("Revenue {}:\n{}", ask.label, lines.join("\n"))
    }
}

/// When the summary of `day` (the day before) is due: at `at` UTC on the day after it.
pub fn due_at(day: NaiveDate, at: NaiveTime) -> chrono::DateTime<chrono::Utc> {
    (day + Duration::days(1)).and_time(at).and_utc()
}

/// The day a summary sent at `now` covers, once `at` has passed today: yesterday.
pub fn day_due(now: chrono::DateTime<chrono::Utc>, at: NaiveTime) -> Option<NaiveDate> {
    let yesterday = now.date_naive() - Duration::days(1);
    (now >= due_at(yesterday, at)).then_some(yesterday)
}

/// How long to wait after the `attempts`-th failed send: 1, 2, 4 … minutes, at most an hour.
pub fn retry_after(attempts: i64) -> Duration {
    Duration::minutes(1i64 << attempts.clamp(1, 7).saturating_sub(1)).min(Duration::hours(1))
}

/// After this many failed sends a day's summary is given up (and stays visible as failed).
pub const MAX_ATTEMPTS: i64 = 12;

/// `HH:MM` (UTC) for the summary's time of day.
pub fn parse_time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| format!("`{s}` is not a time of day (HH:MM, UTC)"))
}

/// Who may ask `/revenue`: one workspace (`SLACK_TEAM_ID`) and, when listed, only these
/// members (`SLACK_ALLOWED_USERS`). A valid signature proves the request came through our Slack
/// app, not from whom: an app installed in a second workspace (or distributed) signs that
/// workspace's commands with the same secret, and every member of ours may type the command.
/// Revenue is for the publisher's own people.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Askers {
    /// The workspace whose commands are answered; None answers none.
    pub team_id: Option<String>,
    /// Member ids (`U…`) allowed to ask; empty: every member of the workspace.
    pub users: Vec<String>,
}

/// Why a signed command is not answered, in words the asker may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    #[error("Revenue figures are not answered in this Slack workspace.")]
    Workspace,
    #[error("You are not on the list of people who may ask for revenue figures.")]
    User,
}

/// Whether the command's `team_id` and `user_id` (from its verified form) may be answered.
pub fn may_ask(askers: &Askers, team_id: Option<&str>, user_id: Option<&str>) -> Result<(), NotAllowed> {
    match (&askers.team_id, team_id) {
        (Some(ours), Some(theirs)) if ours == theirs.trim() => {}
        _ => return Err(NotAllowed::Workspace),
    }
    if askers.users.is_empty() || user_id.is_some_and(|u| askers.users.iter().any(|a| a == u.trim())) {
        Ok(())
    } else {
        Err(NotAllowed::User)
    }
}

/// `SLACK_TEAM_ID` (`T…`) or a member id of `SLACK_ALLOWED_USERS` (`U…`/`W…`), checked: a typo
/// would refuse every command, or worse be read as "no list".
pub fn parse_slack_id(raw: &str, what: &str, prefixes: &[char]) -> Result<String, String> {
    let id = raw.trim();
    let well_formed = id.len() >= 3
        && id.len() <= 32
        && id.starts_with(prefixes)
        && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if well_formed {
        Ok(id.to_string())
    } else {
        Err(format!("`{id}` is not a Slack {what} id (like {}0123ABCD)", prefixes[0]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::revenue::{report, Class, DayTotal, Movement, Period, Source};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn asks_are_utc_day_ranges_and_anything_else_is_refused() {
        let today = d("2026-11-27");
        assert_eq!(parse_ask("", today).unwrap().from, today);
        assert_eq!(
            parse_ask(" Yesterday ", today).unwrap(),
            Ask { from: d("2026-11-26"), to: d("2026-11-26"), label: "yesterday (2026-11-26)".into() }
        );
        assert_eq!(parse_ask("7d", today).map(|a| (a.from, a.to)), Some((d("2026-11-21"), today)));
        assert_eq!(parse_ask("30d", today).map(|a| a.from), Some(d("2026-10-29")));
        assert_eq!(parse_ask("mtd", today).map(|a| a.from), Some(d("2026-11-01")));
        assert_eq!(parse_ask("2026-03-11", today).map(|a| (a.from, a.to)), Some((d("2026-03-11"), d("2026-03-11"))));
        for bad in ["week", "2026-02-30", "2026-11-28", "7", "today please", "-1d"] {
            assert_eq!(parse_ask(bad, today), None, "{bad}");
        }
    }

    #[test]
    fn the_summary_says_yesterday_month_to_date_findings_and_failures() {
        let rows = [
            DayTotal {
                day: d("2026-11-26"),
                currency: "usd".into(),
                source: Source::Pack,
                movement: Movement::Payment,
                class: Class::Counted,
                amount: 30_000,
                count: 2,
            },
            DayTotal {
                day: d("2026-11-26"),
                currency: "usd".into(),
                source: Source::Pack,
                movement: Movement::Refund,
                class: Class::Counted,
                amount: 7_500,
                count: 1,
            },
            DayTotal {
                day: d("2026-11-02"),
                currency: "usd".into(),
                source: Source::Pack,
                movement: Movement::Payment,
                class: Class::Counted,
                amount: 15_000,
                count: 1,
            },
        ];
        let y = report(&rows, d("2026-11-26"), d("2026-11-26"), Period::Day);
        let m = report(&rows, d("2026-11-01"), d("2026-11-26"), Period::Day);
        let text = summary_text(d("2026-11-26"), &y, &m, 2, 0, &[], "live");
        assert_eq!(
            text,
            "*Revision Store, 2026-11-26 (UTC)*\n\
             Yesterday: gross $300.00 · refunds $75.00 · *net $225.00* · 2 packs\n\
             Month to date (2026-11-01 to 2026-11-26): gross $450.00 · refunds $75.00 · *net $375.00* · 3 packs\n\
             Reconciliation: 2 findings open, see the admin pages\n\
             Failed Stripe events: none\n\
             Alerts: none"
        );
        let empty = report(&[], d("2026-11-25"), d("2026-11-25"), Period::Day);
        use crate::domain::alerts::{OfTheDay, Rule};
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
        let alerts = [
            OfTheDay {
                rule: Rule::SignatureFailures,
                started_at: t("2026-11-24T23:00:00Z"),
                resolved_at: Some(t("2026-11-25T03:30:00Z")),
            },
            OfTheDay { rule: Rule::DeadLetters, started_at: t("2026-11-25T12:05:00Z"), resolved_at: None },
        ];
        let quiet = summary_text(d("2026-11-25"), &empty, &empty, 0, 3, &alerts, "test");
        assert!(
            quiet.contains("(UTC, test mode)")
                && quiet.contains("Yesterday: no payments")
                && quiet.contains("Failed Stripe events: 3")
        );
        assert!(
            quiet.ends_with(
                "\nAlerts: 2, see the admin pages: Webhook signatures refused (started 2026-11-24 23:00, resolved 03:30); \
                 New dead letters (started 12:05, still firing)"
            ),
            "{quiet}"
        );
    }

    #[test]
    fn a_day_is_due_after_its_time_and_retries_back_off_to_an_hour() {
        let at = parse_time("08:30").unwrap();
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
        assert_eq!(day_due(t("2026-11-27T08:29:59Z"), at), None);
        assert_eq!(day_due(t("2026-11-27T08:30:00Z"), at), Some(d("2026-11-26")));
        assert_eq!(day_due(t("2026-11-27T23:59:00Z"), at), Some(d("2026-11-26")));
        assert_eq!(retry_after(1), Duration::minutes(1));
        assert_eq!(retry_after(3), Duration::minutes(4));
        assert_eq!(retry_after(40), Duration::hours(1));
        assert!(parse_time("25:00").is_err());
    }

    #[test]
    fn only_the_configured_workspace_and_listed_members_are_answered() {
        let team = Askers { team_id: Some("T0AB".into()), users: vec![] };
        assert_eq!(may_ask(&team, Some("T0AB"), Some("U1")), Ok(()));
        assert_eq!(may_ask(&team, Some("T0ZZ"), Some("U1")), Err(NotAllowed::Workspace));
        assert_eq!(may_ask(&team, None, Some("U1")), Err(NotAllowed::Workspace));
        // No workspace configured answers nobody, rather than everybody.
        assert_eq!(may_ask(&Askers::default(), Some("T0AB"), Some("U1")), Err(NotAllowed::Workspace));
        let listed = Askers { team_id: Some("T0AB".into()), users: vec!["U1".into(), "W2".into()] };
        assert_eq!(may_ask(&listed, Some("T0AB"), Some("W2")), Ok(()));
        assert_eq!(may_ask(&listed, Some("T0AB"), Some("U3")), Err(NotAllowed::User));
        assert_eq!(may_ask(&listed, Some("T0AB"), None), Err(NotAllowed::User));
    }

    #[test]
    fn slack_ids_are_checked_when_configured() {
        assert_eq!(parse_slack_id(" T0AB12 ", "workspace", &['T']), Ok("T0AB12".into()));
        assert!(parse_slack_id("t0ab12", "workspace", &['T']).is_err());
        assert!(parse_slack_id("U0AB12", "workspace", &['T']).is_err());
        assert!(parse_slack_id("W0AB12", "member", &['U', 'W']).is_ok());
        assert!(parse_slack_id("U0 AB", "member", &['U', 'W']).is_err());
    }
}
