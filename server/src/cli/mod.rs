//! The `revision-store` command line: serve (default), migrate, users, contracts, events, …
//! One file per command, each with its clap arguments and a `run`; this module only parses and
//! dispatches.
use crate::config::{Config, Settings};
use crate::open_database;
use app::domain::deployment::DeploymentMode;
use clap::{Parser, Subcommand};

mod alerts;
mod api_key;
mod balances;
mod contract;
mod destinations;
mod events;
mod events_search;
mod evidence;
mod migrate;
mod reconcile;
mod revenue;
mod serve;
mod sources;
mod user;

pub use contract::show_contract;
pub use revenue::revenue_table;

#[derive(Parser)]
#[command(
    name = "revision-store",
    version,
    about = "Sell ad-artwork revision packs through Stripe, and never lose or double a paid credit."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

// Parsed once per run: the size of the largest variant (the search filters) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Run the web server (the default).
    Serve(serve::Args),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage contracts.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    /// Inspect and replay stored Stripe events.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Compare Stripe with our books over a window and heal what is safe to heal (paid but not
    /// credited, refunds and disputes not booked, undelivered events); alert on the rest.
    Reconcile(reconcile::Args),
    /// Revenue by UTC day, week or month: gross, refunds, disputes lost and net, per currency,
    /// revision packs and Rate Card apart; test-mode and the owner's own payments listed apart.
    Revenue(revenue::Args),
    /// Evidence for disputes and audits.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Keys for the totals-only API (`GET /api/v1/revenue`).
    #[command(subcommand, name = "api-key")]
    ApiKey(api_key::ApiKeyCommand),
    /// The kept balances the admin balances page sorts by.
    #[command(subcommand)]
    Balances(balances::BalancesCommand),
    /// The alert rules: what fires, since when, and what to check first.
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// The webhook gateway's senders other than Stripe (PayPal, Square, Standard Webhooks,
    /// generic HMAC), each posting to /webhooks/{name}.
    #[command(subcommand)]
    Sources(sources::SourcesCommand),
    /// Where the gateway forwards stored events, signed by us (Standard Webhooks): destinations,
    /// their deliveries, replays.
    #[command(subcommand)]
    Destinations(destinations::DestinationsCommand),
}

/// Why a command failed: the one line `main` prints after `error: ` before exiting 1. The
/// services' own errors arrive typed (`?` converts them here, at the edge); a configuration or
/// usage problem is its message.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Store(#[from] app::store::StoreError),
    #[error(transparent)]
    Deployment(#[from] app::services::deployment::DeploymentError),
    #[error(transparent)]
    ApiKey(#[from] app::services::api_keys::ApiKeyError),
    #[error(transparent)]
    Source(#[from] app::services::sources::SourceError),
    #[error(transparent)]
    Forwarding(#[from] app::services::forwarding::ForwardingError),
}

impl From<String> for Failure {
    fn from(why: String) -> Self {
        Self::Message(why)
    }
}

impl From<&str> for Failure {
    fn from(why: &str) -> Self {
        Self::Message(why.to_string())
    }
}

/// What every command returns.
pub type Outcome = Result<(), Failure>;

/// Runs the CLI: checks the configuration, then hands it to the command (serving by default).
pub async fn run(cli: Cli) -> Outcome {
    let settings = cli.config.settings()?;
    match cli.command.unwrap_or(Command::Serve(serve::Args::default())) {
        Command::Serve(args) => serve::run(&settings, args).await,
        Command::Migrate => migrate::run(&settings).await,
        Command::User(cmd) => user::run(&settings, cmd).await,
        Command::Contract(cmd) => contract::run(&settings, cmd).await,
        Command::Events(cmd) => events::run(&settings, cmd).await,
        Command::Reconcile(args) => reconcile::run(&settings, args).await,
        Command::Revenue(args) => revenue::run(&settings, args).await,
        Command::Evidence(cmd) => evidence::run(&settings, cmd).await,
        Command::ApiKey(cmd) => api_key::run(&settings, cmd).await,
        Command::Balances(cmd) => balances::run(&settings, cmd).await,
        Command::Alerts(cmd) => alerts::run(&settings, cmd).await,
        Command::Sources(cmd) => sources::run(&settings, cmd).await,
        Command::Destinations(cmd) => destinations::run(&settings, cmd).await,
    }
}

/// The services a command works with, in the database's recorded mode, never the shell's:
/// the CLI acts on what the server serves. `need_mode`: the command acts on Stripe's mode
/// (replaying, reconciling), so a database never served is refused; other commands (creating
/// the first admin before the first start, say) do not care and get test mode.
async fn cli_services(
    settings: &Settings,
    need_mode: bool,
) -> Result<(app::services::Services, DeploymentMode), String> {
    let db = open_database(settings).await?;
    let mode = match app::services::deployment::recorded(&db).await {
        Ok(mode) => mode,
        Err(why) if need_mode => return Err(why.to_string()),
        Err(_) => DeploymentMode::Test,
    };
    Ok((crate::services(settings, db, mode), mode))
}

/// A command-line date: `YYYY-MM-DD` (UTC; the start of the day, or its end for `end_of_day`)
/// or an RFC 3339 time.
fn parse_when(s: &str, end_of_day: bool) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        let t = if end_of_day { d.and_hms_opt(23, 59, 59) } else { d.and_hms_opt(0, 0, 0) };
        return Ok(t.expect("a valid time of day").and_utc());
    }
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_parser_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
