//! Revenue for a date range: the store's day totals, classified for this deployment's mode and
//! its owner's test contracts, made into a report by the domain; and whether reconciliation has
//! vouched for the period.
use super::Services;
use crate::domain::events::StripeMode;
use crate::domain::revenue::{self, Period, Report};
use crate::store::{self, StoreError};
use chrono::{DateTime, NaiveDate, Utc};

/// Whose purchases are the owner's own tests, listed apart from revenue (config:
/// `REVENUE_OWNER_EMAILS`, `REVENUE_OWNER_CONTRACTS`).
#[derive(Debug, Clone, Default)]
pub struct Owners {
    pub emails: Vec<String>,
    pub contract_ids: Vec<i64>,
}

pub async fn report(svc: &Services, from: NaiveDate, to: NaiveDate, period: Period) -> Result<Report, StoreError> {
    let owners =
        store::revenue::owner_contracts(&svc.db, &svc.settings.owners.emails, &svc.settings.owners.contract_ids)
            .await?;
    let totals = store::revenue::day_totals(&svc.db, from, to, svc.mode == StripeMode::Live, &owners).await?;
    Ok(revenue::report(&totals, from, to, period))
}

/// What the last full reconciliation says about a period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Coverage {
    pub run_id: Option<i64>,
    /// The run's window covers the whole period.
    pub covers: bool,
    pub window_from: Option<DateTime<Utc>>,
    pub window_to: Option<DateTime<Utc>>,
    pub open_findings: i64,
}

impl Coverage {
    /// One line for the page, the CLI and Slack.
    pub fn sentence(&self) -> String {
        match (self.run_id, self.window_from, self.window_to) {
            (Some(id), Some(f), Some(t)) => format!(
                "The last reconciliation (#{id}, {} to {}) {} this period and left {}.",
                f.format("%Y-%m-%d %H:%M"),
                t.format("%Y-%m-%d %H:%M"),
                if self.covers { "covered" } else { "did not cover all of" },
                match self.open_findings {
                    0 => "no findings open".to_string(),
                    1 => "1 finding open".to_string(),
                    n => format!("{n} findings open"),
                }
            ),
            _ => {
                "No reconciliation has finished yet: these figures are our books alone, not yet checked against Stripe."
                    .to_string()
            }
        }
    }
}

pub async fn coverage(svc: &Services, from: NaiveDate, to: NaiveDate) -> Result<Coverage, StoreError> {
    let Some(run) = store::reconciliation::latest_full_run(&svc.db).await? else {
        return Ok(Coverage { run_id: None, covers: false, window_from: None, window_to: None, open_findings: 0 });
    };
    let start = from.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    let end = (to + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    Ok(Coverage {
        run_id: Some(run.id),
        // A run reads Stripe objects created in its window; the period must lie inside it.
        covers: run.window_from <= start && run.window_to >= end,
        window_from: Some(run.window_from),
        window_to: Some(run.window_to),
        open_findings: store::reconciliation::open_findings(&svc.db).await?,
    })
}
