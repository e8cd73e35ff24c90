//! `events list`, `events replay` and `events search` (in `events_search`).
use super::events_search::{self, EventSearchArgs};
use super::{cli_services, Outcome};
use crate::config::Settings;
use crate::open_database;
use app::services::processing::{process_stored, Processed};
use app::store::events;

#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand)]
pub enum EventsCommand {
    /// Recent events with their processing status and reason.
    List {
        /// Only this status: pending, processed, ignored or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Process a stored event again now (safe: crediting is insert-or-nothing).
    Replay { id: String },
    /// Search the event store, newest first. `--format table|json` prints one page (and how to
    /// ask for the next); `--format csv|ndjson` writes every match, streamed, a page at a time.
    Search(EventSearchArgs),
}

pub async fn run(settings: &Settings, cmd: EventsCommand) -> Outcome {
    match cmd {
        EventsCommand::List { status, limit } => list(settings, status, limit).await,
        EventsCommand::Replay { id } => replay(settings, &id).await,
        EventsCommand::Search(args) => events_search::run(settings, args).await,
    }
}

async fn list(settings: &Settings, status: Option<String>, limit: i64) -> Outcome {
    if let Some(s) = &status {
        if !["pending", "processed", "ignored", "failed"].contains(&s.as_str()) {
            return Err(format!("`{s}` is not a status: use pending, processed, ignored or failed").into());
        }
    }
    if !(1..=10_000).contains(&limit) {
        return Err("--limit must be between 1 and 10000".into());
    }
    let db = open_database(settings).await?;
    let list = events::list(&db, status.as_deref(), limit).await?;
    if list.is_empty() {
        println!("No events.");
    }
    for e in list {
        let why = e.last_error.as_deref().or(e.outcome.as_deref()).unwrap_or("");
        println!(
            "{}  {:<9}  {:<32}  {}  attempts={}  {}",
            e.received_at.format("%Y-%m-%d %H:%M:%S"),
            e.status,
            e.event_type,
            e.event_id,
            e.attempts,
            why
        );
    }
    Ok(())
}

async fn replay(settings: &Settings, id: &str) -> Outcome {
    // Processed as the server would: in the database's mode, whatever the shell says (a
    // replay run without the live key must not mark a live event `ignored` for ever).
    let (svc, _) = cli_services(settings, true).await?;
    let now = chrono::Utc::now();
    if !events::reset_for_replay(&svc.db, id, now).await? {
        return Err(format!("no stored event {id}").into());
    }
    match process_stored(&svc, id, now).await? {
        Processed::Finished { status, detail } => println!("{id}: {status}: {detail}"),
        Processed::RetryScheduled { reason, next_at } => {
            println!("{id}: pending: {reason}; next attempt {next_at}")
        }
        Processed::AlreadyFinished => println!("{id}: finished meanwhile by another process"),
        Processed::NotFound => return Err(format!("no stored event {id}").into()),
    }
    Ok(())
}
