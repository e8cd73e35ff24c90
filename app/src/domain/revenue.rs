//! Revenue: what came in, what went back, and what is left, by UTC day, week or month and by
//! currency, with in-app revision packs and Rate Card payments apart. Pure: the store hands in
//! one total per (day, currency, source, movement, class) and everything else is decided here,
//! so the admin page, its CSV, the CLI and the API can never disagree.
//!
//! A movement is dated when our books recorded it (a pack when it was credited, a Rate Card
//! payment when its event was stored, a refund when we first heard of it, a lost dispute when
//! it was lost), in UTC. Refunds and lost disputes count on their own day, as on a Stripe
//! balance, so a day's net can be negative.
use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

/// Where a payment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Source {
    /// A revision pack bought in this app.
    Pack,
    /// A payment from the external Rate Card Landing Page.
    RateCard,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pack => "pack",
            Self::RateCard => "rate_card",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::Pack => "Revision packs",
            Self::RateCard => "Rate Card",
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "pack" => Ok(Self::Pack),
            "rate_card" => Ok(Self::RateCard),
            _ => Err(format!("`{s}` is not a revenue source")),
        }
    }
}

/// Which way money moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Movement {
    Payment,
    Refund,
    DisputeLost,
}

impl Movement {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "payment" => Ok(Self::Payment),
            "refund" => Ok(Self::Refund),
            "dispute_lost" => Ok(Self::DisputeLost),
            _ => Err(format!("`{s}` is not a money movement")),
        }
    }
}

/// Whether a movement counts, and if not, why it is listed apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Class {
    Counted,
    /// Test-mode money in a live deployment (or live money in a test one): never revenue here.
    OtherMode,
    /// The owner's own test purchases (configured advertiser emails or contracts).
    Owner,
    /// A refund or dispute of a payment that is in neither our ledger nor the Rate Card's
    /// records (reconciliation lists such payments).
    Unmatched,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counted => "counted",
            Self::OtherMode => "other_mode",
            Self::Owner => "owner",
            Self::Unmatched => "unmatched",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::Counted => "counted",
            Self::OtherMode => "other Stripe mode (test payments in a live deployment, or the reverse)",
            Self::Owner => "the owner's own test payments",
            Self::Unmatched => "refunds and disputes of payments not in our books",
        }
    }
    /// Which class a stored movement is in. The mode is checked first: a test payment is never
    /// revenue in a live deployment, whoever made it.
    pub fn of(livemode: bool, deployment_live: bool, owner: bool, matched: bool) -> Self {
        if livemode != deployment_live {
            Self::OtherMode
        } else if !matched {
            Self::Unmatched
        } else if owner {
            Self::Owner
        } else {
            Self::Counted
        }
    }
}

/// One total from the store: Σ amount and count of one kind of movement on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTotal {
    pub day: NaiveDate,
    pub currency: String,
    pub source: Source,
    pub movement: Movement,
    pub class: Class,
    pub amount: i64,
    pub count: i64,
}

/// How the report groups days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Period {
    Day,
    /// ISO weeks, Monday to Sunday.
    Week,
    Month,
}

impl Period {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "" | "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            other => Err(format!("`{other}` is not a period: use day, week or month")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
    /// The first day of the period holding `day`.
    pub fn start_of(self, day: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => day,
            Self::Week => day - Duration::days(day.weekday().num_days_from_monday() as i64),
            Self::Month => day.with_day(1).expect("every month has a first day"),
        }
    }
    fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => start + Duration::days(1),
            Self::Week => start + Duration::days(7),
            Self::Month => start.checked_add_months(chrono::Months::new(1)).expect("a date within chrono's range"),
        }
    }
    /// How a period is named in tables, CSV and the chart: `2026-11-27`, `2026-W48`, `2026-11`.
    pub fn label(self, start: NaiveDate) -> String {
        match self {
            Self::Day => start.format("%Y-%m-%d").to_string(),
            Self::Week => {
                let w = start.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            Self::Month => start.format("%Y-%m").to_string(),
        }
    }
}

/// The money of one period, currency and source (or all sources).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    pub gross: i64,
    pub refunds: i64,
    pub disputes_lost: i64,
    /// Payments received (not refunds or disputes).
    pub payments: i64,
}

impl Figures {
    /// What is left: gross − refunds − disputes lost.
    pub fn net(&self) -> i64 {
        self.gross - self.refunds - self.disputes_lost
    }
    fn add(&mut self, movement: Movement, amount: i64, count: i64) {
        match movement {
            Movement::Payment => {
                self.gross += amount;
                self.payments += count;
            }
            Movement::Refund => self.refunds += amount,
            Movement::DisputeLost => self.disputes_lost += amount,
        }
    }
    fn merge(&mut self, other: &Figures) {
        self.gross += other.gross;
        self.refunds += other.refunds;
        self.disputes_lost += other.disputes_lost;
        self.payments += other.payments;
    }
}

/// One row of the report's table: a period, a currency, a source (None: both together).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub start: NaiveDate,
    pub label: String,
    pub currency: String,
    pub source: Option<Source>,
    pub figures: Figures,
}

/// What was left out of the figures, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub class: Class,
    pub currency: String,
    pub figures: Figures,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub period: Period,
    /// Every period of the range for every currency seen (empty periods included, so a chart
    /// has a bar, or a gap, for each), sources apart: Pack, then RateCard, then the two
    /// together; ordered by currency, then period.
    pub lines: Vec<Line>,
    /// The whole range, per currency and source (None: both).
    pub totals: Vec<Line>,
    pub excluded: Vec<Excluded>,
}

impl Report {
    pub fn currencies(&self) -> Vec<String> {
        let mut c: Vec<String> = self.totals.iter().map(|l| l.currency.clone()).collect();
        c.dedup();
        c
    }
    /// Lines of one currency and source, in period order.
    pub fn series<'a>(&'a self, currency: &'a str, source: Option<Source>) -> impl Iterator<Item = &'a Line> + 'a {
        self.lines.iter().filter(move |l| l.currency == currency && l.source == source)
    }
}

impl Figures {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "gross": self.gross,
            "refunds": self.refunds,
            "disputes_lost": self.disputes_lost,
            "net": self.net(),
            "payments": self.payments,
        })
    }
}

impl Report {
    /// The report as the API and `revenue --json` give it: sums and counts in minor units, per
    /// currency (never added across currencies), sources apart, periods when asked for. Totals
    /// only, by construction: nothing in a `Report` names a customer, contract or payment.
    pub fn to_json(&self, mode: &str, with_periods: bool) -> serde_json::Value {
        let total = |currency: &str, source: Option<Source>| {
            self.totals
                .iter()
                .find(|l| l.currency == currency && l.source == source)
                .map(|l| l.figures.json())
                .unwrap_or_else(|| Figures::default().json())
        };
        let currencies: Vec<serde_json::Value> = self
            .currencies()
            .iter()
            .map(|c| {
                let mut v = serde_json::json!({
                    "currency": c,
                    "total": total(c, None),
                    "packs": total(c, Some(Source::Pack)),
                    "rate_card": total(c, Some(Source::RateCard)),
                });
                if with_periods {
                    v["periods"] = self
                        .series(c, None)
                        .map(|l| {
                            let mut f = l.figures.json();
                            f["period"] = serde_json::Value::from(l.label.clone());
                            f
                        })
                        .collect();
                }
                v
            })
            .collect();
        serde_json::json!({
            "from": self.from.to_string(),
            "to": self.to.to_string(),
            "mode": mode,
            "period": if with_periods { Some(self.period.as_str()) } else { None },
            "currencies": currencies,
            "excluded": self.excluded.iter().map(|e| {
                let mut f = e.figures.json();
                f["reason"] = serde_json::Value::from(e.class.as_str());
                f["currency"] = serde_json::Value::from(e.currency.clone());
                f
            }).collect::<Vec<_>>(),
        })
    }
}

/// The longest range one report covers: a year (a leap year's 366 days), so one request cannot
/// ask the database for a decade.
pub const MAX_DAYS: i64 = 366;

/// The inclusive UTC date range of a report, checked.
pub fn check_range(from: NaiveDate, to: NaiveDate, max_days: i64) -> Result<(), String> {
    if to < from {
        return Err(format!("`to` ({to}) is before `from` ({from})"));
    }
    let days = (to - from).num_days() + 1;
    if days > max_days {
        return Err(format!("the range covers {days} days; at most {max_days} are allowed"));
    }
    Ok(())
}

/// The range a page or CSV asks for: `from`/`to` as YYYY-MM-DD (default: the 30 days to today,
/// UTC) and `by` (day, week, month), checked the same way the API checks them.
pub fn page_range(
    from: Option<&str>,
    to: Option<&str>,
    by: Option<&str>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate, Period), String> {
    fn blank(s: Option<&str>) -> Option<&str> {
        s.map(str::trim).filter(|s| !s.is_empty())
    }
    let to = blank(to).map(|t| parse_date("to", t)).transpose()?.unwrap_or(today);
    let from = blank(from).map(|f| parse_date("from", f)).transpose()?.unwrap_or(to - Duration::days(29));
    check_range(from, to, MAX_DAYS)?;
    Ok((from, to, Period::parse(by.unwrap_or("day"))?))
}

/// A date as the API, the CLI and the page take it: `YYYY-MM-DD`.
pub fn parse_date(name: &str, s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| format!("{name}: `{s}` is not a date (YYYY-MM-DD)"))
}

/// Builds the report for the inclusive range `from..=to` from the store's day totals. Totals
/// outside the range are ignored (the store is asked for exactly the range; this keeps the
/// function honest on its own).
pub fn report(totals: &[DayTotal], from: NaiveDate, to: NaiveDate, period: Period) -> Report {
    use std::collections::BTreeMap;
    let mut counted: BTreeMap<(String, NaiveDate, Source), Figures> = BTreeMap::new();
    let mut excluded: BTreeMap<(Class, String), Figures> = BTreeMap::new();
    for t in totals.iter().filter(|t| t.day >= from && t.day <= to) {
        if t.class == Class::Counted {
            counted
                .entry((t.currency.clone(), period.start_of(t.day), t.source))
                .or_default()
                .add(t.movement, t.amount, t.count);
        } else {
            excluded.entry((t.class, t.currency.clone())).or_default().add(t.movement, t.amount, t.count);
        }
    }
    let mut currencies: Vec<String> = counted.keys().map(|(c, _, _)| c.clone()).collect();
    currencies.dedup();
    let mut starts = Vec::new();
    let mut start = period.start_of(from);
    while start <= to {
        starts.push(start);
        start = period.next(start);
    }
    let mut lines = Vec::new();
    let mut range_totals = Vec::new();
    for currency in &currencies {
        let mut whole: BTreeMap<Option<Source>, Figures> = BTreeMap::new();
        for source in [Some(Source::Pack), Some(Source::RateCard), None] {
            for &start in &starts {
                let figures = match source {
                    Some(s) => counted.get(&(currency.clone(), start, s)).cloned().unwrap_or_default(),
                    None => {
                        let mut f = Figures::default();
                        for s in [Source::Pack, Source::RateCard] {
                            if let Some(x) = counted.get(&(currency.clone(), start, s)) {
                                f.merge(x);
                            }
                        }
                        f
                    }
                };
                whole.entry(source).or_default().merge(&figures);
                lines.push(Line { start, label: period.label(start), currency: currency.clone(), source, figures });
            }
        }
        for source in [Some(Source::Pack), Some(Source::RateCard), None] {
            range_totals.push(Line {
                start: from,
                label: format!("{from} to {to}"),
                currency: currency.clone(),
                source,
                figures: whole.remove(&source).unwrap_or_default(),
            });
        }
    }
    Report {
        from,
        to,
        period,
        lines,
        totals: range_totals,
        excluded: excluded
            .into_iter()
            .map(|((class, currency), figures)| Excluded { class, currency, figures })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn t(day: &str, source: Source, movement: Movement, class: Class, amount: i64, count: i64) -> DayTotal {
        DayTotal { day: d(day), currency: "usd".into(), source, movement, class, amount, count }
    }

    #[test]
    fn net_is_gross_less_refunds_and_lost_disputes_on_their_own_day() {
        let rows = [
            t("2026-11-26", Source::Pack, Movement::Payment, Class::Counted, 30000, 2),
            t("2026-11-27", Source::Pack, Movement::Refund, Class::Counted, 7500, 1),
            t("2026-11-27", Source::RateCard, Movement::Payment, Class::Counted, 9900, 1),
            t("2026-11-27", Source::RateCard, Movement::DisputeLost, Class::Counted, 9900, 1),
        ];
        let r = report(&rows, d("2026-11-26"), d("2026-11-27"), Period::Day);
        let all: Vec<_> = r.series("usd", None).map(|l| (l.label.clone(), l.figures.net())).collect();
        assert_eq!(all, vec![("2026-11-26".to_string(), 30000), ("2026-11-27".to_string(), -7500)]);
        let packs: Vec<_> = r.series("usd", Some(Source::Pack)).map(|l| l.figures.clone()).collect();
        assert_eq!(packs[1], Figures { gross: 0, refunds: 7500, disputes_lost: 0, payments: 0 });
        let total = r.totals.iter().find(|l| l.source.is_none()).unwrap();
        assert_eq!(total.figures, Figures { gross: 39900, refunds: 7500, disputes_lost: 9900, payments: 3 });
        assert_eq!(total.figures.net(), 22500);
    }

    #[test]
    fn test_mode_owner_and_unmatched_money_is_listed_apart_never_counted() {
        let rows = [
            t("2026-11-27", Source::Pack, Movement::Payment, Class::Counted, 15000, 1),
            t("2026-11-27", Source::Pack, Movement::Payment, Class::OtherMode, 15000, 1),
            t("2026-11-27", Source::Pack, Movement::Payment, Class::Owner, 15000, 1),
            t("2026-11-27", Source::Pack, Movement::Refund, Class::Unmatched, 500, 1),
        ];
        let r = report(&rows, d("2026-11-27"), d("2026-11-27"), Period::Day);
        assert_eq!(r.totals.iter().find(|l| l.source.is_none()).unwrap().figures.gross, 15000);
        let classes: Vec<_> = r.excluded.iter().map(|e| (e.class, e.figures.gross, e.figures.refunds)).collect();
        assert_eq!(classes, vec![(Class::OtherMode, 15000, 0), (Class::Owner, 15000, 0), (Class::Unmatched, 0, 500)]);
    }

    #[test]
    fn class_checks_the_mode_before_anything_else() {
        assert_eq!(Class::of(false, true, false, true), Class::OtherMode);
        assert_eq!(Class::of(false, true, true, false), Class::OtherMode);
        assert_eq!(Class::of(true, true, true, false), Class::Unmatched);
        assert_eq!(Class::of(true, true, true, true), Class::Owner);
        assert_eq!(Class::of(false, false, false, true), Class::Counted);
    }

    #[test]
    fn weeks_are_iso_weeks_and_months_calendar_months_with_every_period_present() {
        // 2026-11-29 is a Sunday, 2026-11-30 a Monday.
        let rows = [
            t("2026-11-29", Source::Pack, Movement::Payment, Class::Counted, 100, 1),
            t("2026-11-30", Source::Pack, Movement::Payment, Class::Counted, 200, 1),
            t("2026-12-01", Source::Pack, Movement::Payment, Class::Counted, 400, 1),
        ];
        let weeks = report(&rows, d("2026-11-29"), d("2026-12-14"), Period::Week);
        let w: Vec<_> = weeks.series("usd", None).map(|l| (l.label.clone(), l.figures.gross)).collect();
        assert_eq!(
            w,
            vec![("2026-W48".into(), 100), ("2026-W49".into(), 600), ("2026-W50".into(), 0), ("2026-W51".into(), 0)]
        );
        let months = report(&rows, d("2026-11-29"), d("2026-12-01"), Period::Month);
        let m: Vec<_> = months.series("usd", None).map(|l| (l.label.clone(), l.figures.gross)).collect();
        assert_eq!(m, vec![("2026-11".into(), 300), ("2026-12".into(), 400)]);
        let days = report(&rows, d("2026-11-28"), d("2026-12-01"), Period::Day);
        assert_eq!(days.series("usd", Some(Source::RateCard)).count(), 4);
    }

    #[test]
    fn currencies_are_never_added_together() {
        let mut eur = t("2026-11-27", Source::Pack, Movement::Payment, Class::Counted, 100, 1);
        eur.currency = "eur".into();
        let rows = [eur, t("2026-11-27", Source::Pack, Movement::Payment, Class::Counted, 200, 1)];
        let r = report(&rows, d("2026-11-27"), d("2026-11-27"), Period::Day);
        assert_eq!(r.currencies(), vec!["eur".to_string(), "usd".to_string()]);
        assert_eq!(r.series("eur", None).next().unwrap().figures.gross, 100);
        assert_eq!(r.series("usd", None).next().unwrap().figures.gross, 200);
    }

    #[test]
    fn ranges_and_dates_are_checked_with_clear_messages() {
        assert!(check_range(d("2026-01-01"), d("2026-12-31"), 366).is_ok());
        assert!(check_range(d("2026-01-01"), d("2027-01-02"), 366).unwrap_err().contains("367 days"));
        assert!(check_range(d("2026-02-01"), d("2026-01-01"), 366).unwrap_err().contains("before"));
        assert_eq!(parse_date("from", "2026-02-30").unwrap_err(), "from: `2026-02-30` is not a date (YYYY-MM-DD)");
        assert_eq!(Period::parse("fortnight").unwrap_err(), "`fortnight` is not a period: use day, week or month");
    }

    #[test]
    fn the_page_range_defaults_to_thirty_days_and_refuses_bad_input() {
        let today = d("2026-11-27");
        let (f, t, p) = page_range(None, Some(""), None, today).unwrap();
        assert_eq!((f, t, p), (d("2026-10-29"), today, Period::Day));
        assert!(page_range(Some("2026-11-31"), None, None, today).unwrap_err().contains("not a date"));
        assert!(page_range(Some("2024-01-01"), None, None, today).unwrap_err().contains("at most 366"));
        assert!(page_range(None, None, Some("year"), today).unwrap_err().contains("not a period"));
    }
}
