//! `destinations`: where the gateway forwards stored events (signed by us, Standard Webhooks):
//! add one (its secret printed once), list them with their deliveries by status, list a
//! destination's deliveries, replay one or every failed one in a window, pause and resume, enable
//! one its receiver disabled with a 410, and rotate its secret with an overlap.
use super::{cli_services, parse_when, Outcome};
use crate::config::Settings;
use app::services::forwarding::{self, NewDestinationSpec};

#[derive(clap::Subcommand)]
pub enum DestinationsCommand {
    /// Add a destination; its signing secret is printed once, for the receiver.
    Add(AddArgs),
    /// Every destination: URL, state, and its deliveries by status.
    List,
    /// A destination's deliveries, newest first.
    Deliveries {
        name: String,
        /// pending, failing (pending after a failed attempt), delivered or dead.
        #[arg(long)]
        status: Option<String>,
        /// Events received from (YYYY-MM-DD, UTC, or an RFC 3339 time).
        #[arg(long)]
        since: Option<String>,
        /// Events received until (inclusive day, or an RFC 3339 time).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Also print each delivery's attempts.
        #[arg(long)]
        attempts: bool,
    },
    /// Send one delivery again, from the start of the schedule (its attempts stay in the log).
    Replay { name: String, delivery: i64 },
    /// Send again every dead or failing delivery of events received in a window.
    ReplayFailed {
        name: String,
        #[arg(long)]
        since: String,
        #[arg(long)]
        until: Option<String>,
    },
    /// Stop sending to a destination; new events still queue for it.
    Pause { name: String },
    /// Send to a paused destination again.
    Resume { name: String },
    /// Send again to a destination its receiver disabled (410 Gone).
    Enable { name: String },
    /// A new signing secret, printed once; deliveries carry the old one's signature too for the
    /// overlap.
    Rotate {
        name: String,
        /// Hours the old secret keeps signing (at most a week).
        #[arg(long, default_value_t = forwarding::DEFAULT_OVERLAP)]
        overlap_hours: i64,
    },
}

#[derive(clap::Args)]
pub struct AddArgs {
    /// Lowercase letters, digits and dashes.
    name: String,
    /// Where deliveries are POSTed: https:// (http:// only to this machine).
    #[arg(long)]
    url: String,
    /// A source whose events it takes: `stripe` or a gateway source (repeat).
    #[arg(long = "source", required = true)]
    sources: Vec<String>,
    /// Only event types starting with this (repeat; every type when none).
    #[arg(long = "type-prefix")]
    type_prefixes: Vec<String>,
    /// Stripe events only: a metadata key that must be present (`key`) or equal (`key=value`) (repeat).
    #[arg(long = "metadata")]
    metadata: Vec<String>,
    /// Stripe's Rate Card payments: `payment_intent.succeeded` with advertiserId, sizeId and
    /// publicationId in their metadata.
    #[arg(long)]
    rate_card: bool,
    /// Deliveries a second at most.
    #[arg(long, default_value_t = forwarding::DEFAULT_RATE_PER_SECOND)]
    rate: u32,
    /// Deliveries in flight at once at most.
    #[arg(long, default_value_t = forwarding::DEFAULT_MAX_IN_FLIGHT)]
    in_flight: u32,
}

pub async fn run(settings: &Settings, cmd: DestinationsCommand) -> Outcome {
    let (svc, _) = cli_services(settings, false).await?;
    let (db, now) = (&svc.db, chrono::Utc::now());
    match cmd {
        DestinationsCommand::Add(args) => add(db, args).await?,
        DestinationsCommand::List => {
            for s in forwarding::list(db, now).await? {
                let d = &s.destination;
                let state = match (&d.paused_at, &d.disabled_reason) {
                    (_, Some(reason)) => format!("disabled ({reason})"),
                    (Some(_), None) => "paused".to_string(),
                    (None, None) => "sending".to_string(),
                };
                println!(
                    "{:<20} {state:<10} {} pending, {} delivered, {} dead, {} active secret(s)  {}",
                    d.name, s.pending, s.delivered, s.dead, s.active_secrets, d.url
                );
            }
        }
        DestinationsCommand::Deliveries { name, status, since, until, limit, attempts } => {
            let from = since.map(|s| parse_when(&s, false)).transpose()?;
            let to = until.map(|s| parse_when(&s, true)).transpose()?;
            let rows = forwarding::deliveries(db, &name, status.as_deref(), (from, to), limit).await?;
            for d in rows {
                let time = d.received_at.format("%Y-%m-%d %H:%M:%S UTC");
                let error = d.last_error.as_deref().unwrap_or("");
                println!(
                    "{:>8}  {time}  {:<9} {:>2} attempt(s)  {}/{}  {error}",
                    d.id, d.status, d.attempts, d.source, d.event_id
                );
                if attempts {
                    for a in app::store::delivery_attempts::for_delivery(db, d.id).await? {
                        let what = a.http_status.map_or_else(|| a.error.clone().unwrap_or_default(), |s| s.to_string());
                        println!(
                            "          {}  {what}  {} ms  {}",
                            a.attempted_at.format("%H:%M:%S%.3f"),
                            a.latency_ms,
                            a.answer
                        );
                    }
                }
            }
        }
        DestinationsCommand::Replay { name, delivery } => {
            forwarding::replay(db, &name, delivery, now).await?;
            println!("{name}: delivery {delivery} is due again");
        }
        DestinationsCommand::ReplayFailed { name, since, until } => {
            let from = parse_when(&since, false)?;
            let to = until.map(|s| parse_when(&s, true)).transpose()?.unwrap_or(now);
            let n = forwarding::replay_failed(db, &name, from, to, now).await?;
            println!("{name}: {n} failed or dead deliveries are due again");
        }
        DestinationsCommand::Pause { name } => {
            forwarding::set_paused(db, &name, true, now).await?;
            println!("{name}: paused; new events queue until it is resumed");
        }
        DestinationsCommand::Resume { name } => {
            forwarding::set_paused(db, &name, false, now).await?;
            println!("{name}: resumed");
        }
        DestinationsCommand::Enable { name } => {
            forwarding::enable(db, &name).await?;
            println!("{name}: enabled");
        }
        DestinationsCommand::Rotate { name, overlap_hours } => {
            let overlap = chrono::Duration::hours(overlap_hours);
            let secret = forwarding::rotate(db, &name, overlap, now).await?;
            let until = (now + overlap).format("%Y-%m-%d %H:%M UTC");
            println!("{name}: new secret active; deliveries carry the old one's signature too until {until}");
            println!("the new signing secret (shown once): {secret}");
        }
    }
    Ok(())
}

async fn add(db: &app::store::Db, a: AddArgs) -> Outcome {
    let filter = forwarding::filter_from(a.sources, a.type_prefixes, &a.metadata, a.rate_card)?;
    let spec =
        NewDestinationSpec { name: a.name, url: a.url, filter, rate_per_second: a.rate, max_in_flight: a.in_flight };
    let (row, secret) = forwarding::add(db, &spec, chrono::Utc::now()).await?;
    println!("added {}: deliveries of new events go to {}", row.name, row.url);
    println!("its signing secret (shown once; give it to the receiver): {secret}");
    Ok(())
}
