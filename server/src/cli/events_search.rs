//! `events search`: the filters of the Events page and `GET /api/v1/events` as flags; a page as
//! a table or JSON, or the whole search as CSV or NDJSON.
use super::Outcome;
use crate::config::Settings;
use crate::open_database;

/// The filters of the Events page and `GET /api/v1/events`, as flags (same names, same rules).
#[derive(clap::Args)]
pub struct EventSearchArgs {
    /// Received from: YYYY-MM-DD (UTC) or an RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Received to: YYYY-MM-DD (the whole day included) or an RFC 3339 time (excluded).
    #[arg(long)]
    to: Option<String>,
    /// The event type or its start, e.g. charge.dispute.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// pending, processed, ignored or failed.
    #[arg(long)]
    status: Option<String>,
    /// Smallest amount, in major units (150.00).
    #[arg(long)]
    min: Option<String>,
    /// Largest amount, in major units.
    #[arg(long)]
    max: Option<String>,
    #[arg(long)]
    currency: Option<String>,
    /// live or test.
    #[arg(long)]
    mode: Option<String>,
    /// A PaymentIntent id (pi_…).
    #[arg(long)]
    payment: Option<String>,
    /// A contract number.
    #[arg(long)]
    contract: Option<String>,
    /// The advertiser's email.
    #[arg(long)]
    email: Option<String>,
    /// Words inside the raw payload (found as a phrase).
    #[arg(long)]
    text: Option<String>,
    /// stripe (the default) or a gateway source's name (`sources list`).
    #[arg(long)]
    source: Option<String>,
    /// Start after this position (the `next` a previous page printed).
    #[arg(long)]
    after: Option<String>,
    /// Rows per page (table, json), 1 to 500.
    #[arg(long)]
    limit: Option<String>,
    /// table, json, csv or ndjson.
    #[arg(long, default_value = "table")]
    format: String,
    /// Write the export here instead of standard output.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

impl EventSearchArgs {
    fn get(&self, name: &str) -> Option<&str> {
        match name {
            "from" => self.from.as_deref(),
            "to" => self.to.as_deref(),
            "type" => self.event_type.as_deref(),
            "status" => self.status.as_deref(),
            "min" => self.min.as_deref(),
            "max" => self.max.as_deref(),
            "currency" => self.currency.as_deref(),
            "mode" => self.mode.as_deref(),
            "payment" => self.payment.as_deref(),
            "contract" => self.contract.as_deref(),
            "email" => self.email.as_deref(),
            "q" => self.text.as_deref(),
            "source" => self.source.as_deref(),
            "after" => self.after.as_deref(),
            "limit" => self.limit.as_deref(),
            _ => None,
        }
    }
}

/// `events search`: a page as a table or JSON, or the whole search as CSV or NDJSON.
pub async fn run(settings: &Settings, a: EventSearchArgs) -> Outcome {
    use app::domain::event_search::{parse_page, ExportFormat};
    use std::io::Write;
    let (filter, after, limit) = parse_page(|k| a.get(k))?;
    if !["table", "json", "csv", "ndjson"].contains(&a.format.as_str()) {
        return Err(format!("--format `{}` is not table, json, csv or ndjson", a.format).into());
    }
    let db = open_database(settings).await?;
    if let Ok(format) = ExportFormat::parse(&a.format) {
        if after.is_some() {
            return Err("--after pages a table or JSON; an export always holds the whole search".into());
        }
        let mut out: Box<dyn Write> = match &a.out {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        };
        let mut export = app::services::event_search::Export::start(db, filter, format).await?;
        if export.unindexed > 0 {
            eprintln!(
                "warning: {} recently stored events are still being indexed and are not in this export",
                export.unindexed
            );
        }
        while let Some(chunk) = export.next_chunk().await? {
            out.write_all(chunk.as_bytes()).map_err(|e| format!("cannot write the export: {e}"))?;
        }
        return Ok(out.flush().map_err(|e| format!("cannot write the export: {e}"))?);
    }
    let page = app::services::event_search::page(&db, &filter, after.as_ref(), limit).await?;
    if a.format == "json" {
        println!("{}", page.to_json());
        return Ok(());
    }
    if page.hits.is_empty() {
        println!("No events match.");
    }
    for h in &page.hits {
        println!(
            "{}  {:<9}  {:<32}  {}  {:<28}  {:>12}  {}",
            h.received_at.format("%Y-%m-%d %H:%M:%S"),
            h.status,
            h.event_type,
            h.event_id,
            h.payment_intent.as_deref().unwrap_or("-"),
            h.amount_text().unwrap_or_default(),
            h.contract_id.map(|c| format!("#{c}")).unwrap_or_default()
        );
    }
    if page.unindexed > 0 {
        println!("({} recently stored events are still being indexed and are not shown.)", page.unindexed);
    }
    if let Some(next) = page.next {
        println!("More: add --after {}", next.encode());
    }
    Ok(())
}
