//! `revenue`: revenue by UTC day, week or month, as a table or the API's JSON.
use super::{cli_services, Outcome};
use crate::config::Settings;

#[derive(clap::Args)]
pub struct Args {
    /// First day (YYYY-MM-DD, UTC). Default: 29 days before --to.
    #[arg(long)]
    from: Option<String>,
    /// Last day, included (YYYY-MM-DD, UTC). Default: today.
    #[arg(long)]
    to: Option<String>,
    /// day, week or month.
    #[arg(long, default_value = "day")]
    by: String,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(settings: &Settings, Args { from, to, by, json }: Args) -> Outcome {
    let (from, to, period) =
        app::domain::revenue::page_range(from.as_deref(), to.as_deref(), Some(&by), chrono::Utc::now().date_naive())?;
    let (svc, _) = cli_services(settings, false).await?;
    let e = |e: app::store::StoreError| e.to_string();
    let report = app::services::revenue::report(&svc, from, to, period).await.map_err(e)?;
    if json {
        println!("{}", report.to_json(svc.mode.as_str(), true));
    } else {
        let coverage = app::services::revenue::coverage(&svc, from, to).await.map_err(e)?;
        print!("{}", revenue_table(&report, svc.mode.as_str()));
        println!("{}", coverage.sentence());
    }
    Ok(())
}

/// The revenue report as a table, one block per currency.
pub fn revenue_table(r: &app::domain::revenue::Report, mode: &str) -> String {
    use app::domain::revenue::Source;
    use std::fmt::Write;
    let m = app::domain::money::format_amount;
    let mut out = String::new();
    let _ = writeln!(out, "Revenue {} to {} by {} ({mode} mode, UTC)", r.from, r.to, r.period.as_str());
    if r.currencies().is_empty() {
        let _ = writeln!(out, "  no payments in this range");
    }
    for c in r.currencies() {
        let _ = writeln!(
            out,
            "{:<12} {:>14} {:>14} {:>14} {:>14} {:>8}",
            c.to_uppercase(),
            "gross",
            "refunds",
            "disputes lost",
            "net",
            "payments"
        );
        for l in r.series(&c, None) {
            let f = &l.figures;
            let _ = writeln!(
                out,
                "{:<12} {:>14} {:>14} {:>14} {:>14} {:>8}",
                l.label,
                m(f.gross, &c),
                m(f.refunds, &c),
                m(f.disputes_lost, &c),
                m(f.net(), &c),
                f.payments
            );
        }
        for t in r.totals.iter().filter(|t| t.currency == c) {
            let f = &t.figures;
            let _ = writeln!(
                out,
                "{:<12} {:>14} {:>14} {:>14} {:>14} {:>8}",
                match t.source {
                    Some(Source::Pack) => "  packs",
                    Some(Source::RateCard) => "  rate card",
                    None => "total",
                },
                m(f.gross, &c),
                m(f.refunds, &c),
                m(f.disputes_lost, &c),
                m(f.net(), &c),
                f.payments
            );
        }
    }
    for e in &r.excluded {
        let _ = writeln!(
            out,
            "Not counted: {} {} paid in {} payments, {} refunded, {} lost in disputes ({})",
            e.currency.to_uppercase(),
            m(e.figures.gross, &e.currency),
            e.figures.payments,
            m(e.figures.refunds, &e.currency),
            m(e.figures.disputes_lost, &e.currency),
            e.class.label()
        );
    }
    out
}
