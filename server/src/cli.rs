//! The `revision-store` command line: serve (default), migrate, users, contracts, events.
use crate::config::{redact_url, Config, Settings};
use crate::{open_database, services, Application};
use app::domain::deployment::DeploymentMode;
use app::domain::users::{Email, Role};
use app::domain::Money;
use app::services::accounts::{create_user, generate_password};
use app::services::processing::{process_stored, Processed};
use app::store::contracts::{self, NewContract};
use app::store::{events, ledger, purchases, users};
use clap::{Parser, Subcommand};
use std::io::{BufRead, IsTerminal};

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
    Serve {
        /// Create demo users and contracts if missing, and print their logins (local use only).
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage contracts.
    #[command(subcommand)]
    Contract(ContractCommand),
    /// Inspect and replay stored Stripe events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Compare Stripe with our books over a window and heal what is safe to heal (paid but not
    /// credited, refunds and disputes not booked, undelivered events); alert on the rest.
    Reconcile {
        /// Start of the window: YYYY-MM-DD (UTC midnight) or an RFC 3339 time. Default: the
        /// scheduled window (RECONCILE_WINDOW_DAYS) back from now.
        #[arg(long)]
        since: Option<String>,
        /// End of the window (YYYY-MM-DD: the end of that day, UTC). Default: now.
        #[arg(long)]
        until: Option<String>,
        /// Find and record, heal nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revenue by UTC day, week or month: gross, refunds, disputes lost and net, per currency,
    /// revision packs and Rate Card apart; test-mode and the owner's own payments listed apart.
    Revenue {
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
    },
    /// Evidence for disputes and audits.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Keys for the totals-only API (`GET /api/v1/revenue`).
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// The kept balances the admin balances page sorts by.
    #[command(subcommand)]
    Balances(BalancesCommand),
}

#[derive(Subcommand)]
pub enum BalancesCommand {
    /// Recompute every contract's balance from its ledger rows and compare it with the kept one;
    /// names every contract that differs and exits non-zero.
    Check {
        /// Rewrite the kept balances that differ from their rows (each under its contract's lock).
        #[arg(long)]
        fix: bool,
    },
}

#[derive(Subcommand)]
pub enum EvidenceCommand {
    /// Write one payment's evidence bundle (a tar: every stored event about it byte for byte,
    /// their digests, the purchase, ledger, refunds, disputes and findings).
    Bundle {
        /// The PaymentIntent id (pi_…).
        payment: String,
        /// Where to write it (default: evidence-<payment>.tar here; `-` for stdout).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Seal every closed hour not yet sealed, then recompute every seal (from --since) against
    /// the events as they are now; names the first hour whose events were altered, removed or
    /// added after sealing, and exits non-zero.
    Verify {
        /// YYYY-MM-DD (UTC) or an RFC 3339 time: check seals from there on.
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Make a key; it is printed once and only its hash is kept.
    Create {
        #[arg(long)]
        name: String,
        /// revenue: the totals-only `GET /api/v1/revenue`; events: also `GET /api/v1/events`
        /// and its export, which carry customer data.
        #[arg(long, default_value = "revenue")]
        scope: String,
    },
    /// Every key: id, name, first characters, made, last used, revoked.
    List,
    /// Stop a key working, at once and for good.
    Revoke { id: i64 },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from stdin if piped, otherwise generated and printed once.
    Create {
        #[arg(long)]
        email: String,
        /// advertiser or admin
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand)]
pub enum ContractCommand {
    /// Create a contract for an advertiser; prints the new contract id.
    Create {
        /// The advertiser's email.
        #[arg(long)]
        advertiser: String,
        #[arg(long)]
        publication: String,
        #[arg(long)]
        ad_size: String,
    },
    /// Show a contract's balance, the formula behind it, and its ledger.
    Show { id: i64 },
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
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
            "after" => self.after.as_deref(),
            "limit" => self.limit.as_deref(),
            _ => None,
        }
    }
}

/// `events search`: a page as a table or JSON, or the whole search as CSV or NDJSON.
async fn search_events(settings: &Settings, a: EventSearchArgs) -> Result<(), String> {
    use app::domain::event_search::{parse_page, ExportFormat};
    use std::io::Write;
    let (filter, after, limit) = parse_page(|k| a.get(k))?;
    if !["table", "json", "csv", "ndjson"].contains(&a.format.as_str()) {
        return Err(format!("--format `{}` is not table, json, csv or ndjson", a.format));
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
        let mut export =
            app::services::event_search::Export::start(db, filter, format).await.map_err(|e| e.to_string())?;
        if export.unindexed > 0 {
            eprintln!(
                "warning: {} recently stored events are still being indexed and are not in this export",
                export.unindexed
            );
        }
        while let Some(chunk) = export.next_chunk().await.map_err(|e| e.to_string())? {
            out.write_all(chunk.as_bytes()).map_err(|e| format!("cannot write the export: {e}"))?;
        }
        return out.flush().map_err(|e| format!("cannot write the export: {e}"));
    }
    let page =
        app::services::event_search::page(&db, &filter, after.as_ref(), limit).await.map_err(|e| e.to_string())?;
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
        Err(why) if need_mode => return Err(why),
        Err(_) => DeploymentMode::Test,
    };
    Ok((services(settings, db, mode), mode))
}

/// Runs the CLI; `Err` is the one line to print before exiting non-zero.
pub async fn run(cli: Cli) -> Result<(), String> {
    let settings = cli.config.settings()?;
    match cli.command.unwrap_or(Command::Serve { demo: false }) {
        Command::Serve { demo } => serve(&settings, demo).await,
        Command::Migrate => {
            let db = open_database(&settings).await?;
            println!("Migrations applied to {} ({})", redact_url(&settings.database_url), db.dialect());
            Ok(())
        }
        Command::User(UserCommand::Create { email, role }) => {
            let role = Role::parse(&role)?;
            let db = open_database(&settings).await?;
            let stdin = std::io::stdin();
            let (password, generated) = if stdin.is_terminal() {
                (generate_password(), true)
            } else {
                let mut line = String::new();
                stdin.lock().read_line(&mut line).map_err(|e| format!("cannot read the password from stdin: {e}"))?;
                let line = line.trim_end_matches(['\r', '\n']).to_string();
                if line.is_empty() {
                    (generate_password(), true)
                } else {
                    (line, false)
                }
            };
            let user = create_user(&db, &email, role, &password).await.map_err(|e| e.to_string())?;
            println!("Created {} {} (id {})", user.role, user.email, user.id);
            if generated {
                println!("Password (shown once): {password}");
            }
            Ok(())
        }
        Command::Contract(ContractCommand::Create { advertiser, publication, ad_size }) => {
            let db = open_database(&settings).await?;
            let email = Email::parse(&advertiser)?;
            let user = users::find_by_email(&db, &email)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user with email {}", email.as_str()))?;
            if user.role() != Role::Advertiser {
                return Err(format!("{} is an {}, not an advertiser", user.email, user.role));
            }
            let terms = app::domain::people::ContractTerms::parse(&publication, &ad_size)?;
            let actor = app::domain::people::Actor::CommandLine;
            let base = settings.terms.base_revisions;
            let c = app::store::people::create_contract(&db, user.id, &terms, base, &actor, chrono::Utc::now())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|_| format!("{} is deactivated: reactivate them first", user.email))?;
            println!("{}", c.id);
            Ok(())
        }
        Command::Contract(ContractCommand::Show { id }) => {
            let db = open_database(&settings).await?;
            print!("{}", show_contract(&db, id).await?);
            Ok(())
        }
        Command::Events(EventsCommand::Search(args)) => search_events(&settings, args).await,
        Command::Events(EventsCommand::List { status, limit }) => {
            if let Some(s) = &status {
                if !["pending", "processed", "ignored", "failed"].contains(&s.as_str()) {
                    return Err(format!("`{s}` is not a status: use pending, processed, ignored or failed"));
                }
            }
            if !(1..=10_000).contains(&limit) {
                return Err("--limit must be between 1 and 10000".into());
            }
            let db = open_database(&settings).await?;
            let list = events::list(&db, status.as_deref(), limit).await.map_err(|e| e.to_string())?;
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
        Command::Reconcile { since, until, dry_run } => {
            let now = chrono::Utc::now();
            let to = match until {
                Some(u) => parse_when(&u, true)?,
                None => now,
            };
            let from = match since {
                Some(s) => parse_when(&s, false)?,
                None => to - settings.reconcile_window,
            };
            if to <= from {
                return Err("--until must be after --since".into());
            }
            let (mut svc, mode) = cli_services(&settings, true).await?;
            match (mode, &settings.mode) {
                // The simulator lives in the serving process (BIND_ADDR); ask it there.
                (DeploymentMode::Simulator, _) => {
                    let base = format!("http://{}{}/", settings.bind, app::stripe::simulator::MOUNT);
                    let key = app::stripe::simulator::SECRET_KEY;
                    svc.stripe = Some(app::stripe::StripeApi::with_timeout(key, &base, settings.stripe_timeout)?);
                }
                (db_mode, Some(key_mode)) if svc.stripe.is_some() && *key_mode == db_mode => {}
                (db_mode, _) => {
                    return Err(format!(
                        "this database is served with {}: reconciliation needs that mode's STRIPE_SECRET_KEY \
                         (with its publishable key and webhook secret)",
                        db_mode.describe()
                    ))
                }
            }
            let opts = app::services::reconcile::Options {
                from,
                to,
                dry_run,
                started_by: "cli",
                rate: settings.reconcile_rate,
            };
            eprintln!(
                "Reconciling payments created {} .. {}{} (at most {} Stripe calls/s)",
                from.format("%Y-%m-%d %H:%M:%S"),
                to.format("%Y-%m-%d %H:%M:%S"),
                if dry_run { ", dry run: nothing is healed" } else { "" },
                settings.reconcile_rate
            );
            let progress = |p: app::services::reconcile::Progress| {
                eprintln!(
                    "  {} payments checked, {} API calls, {} findings",
                    p.payments_checked, p.api_calls, p.findings
                )
            };
            let report = app::services::reconcile::run(&svc, &opts, &progress)
                .await
                .map_err(|e| format!("reconciliation: {e}"))?;
            println!(
                "Run {}: {} payments checked, {} Stripe API calls, {} findings",
                report.run_id,
                report.payments_checked,
                report.api_calls,
                report.total()
            );
            for (category, state, n) in &report.findings {
                println!("  {category:<20} {state:<10} {n}");
            }
            Ok(())
        }
        Command::Revenue { from, to, by, json } => {
            let (from, to, period) = app::domain::revenue::page_range(
                from.as_deref(),
                to.as_deref(),
                Some(&by),
                chrono::Utc::now().date_naive(),
            )?;
            let (svc, _) = cli_services(&settings, false).await?;
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
        Command::Evidence(EvidenceCommand::Bundle { payment, out }) => {
            let (svc, _) = cli_services(&settings, false).await?;
            let tar = app::services::evidence::bundle(&svc, &payment).await.map_err(|e| e.to_string())?;
            let out = out.unwrap_or_else(|| format!("evidence-{}.tar", payment.trim()).into());
            if out.as_os_str() == "-" {
                use std::io::Write;
                std::io::stdout().write_all(&tar).map_err(|e| format!("cannot write the bundle: {e}"))?;
            } else {
                std::fs::write(&out, &tar).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
                eprintln!("Wrote {} ({} bytes)", out.display(), tar.len());
            }
            Ok(())
        }
        Command::Evidence(EvidenceCommand::Verify { since }) => {
            use app::services::seals::{seal_closed, verify, Verdict};
            let since = since.map(|s| parse_when(&s, false)).transpose()?;
            let (svc, _) = cli_services(&settings, false).await?;
            let e = |e: app::store::StoreError| e.to_string();
            let sealed = seal_closed(&svc, chrono::Utc::now(), usize::MAX).await.map_err(e)?;
            if sealed > 0 {
                eprintln!("Sealed {sealed} closed hour(s) first.");
            }
            match verify(&svc.db, since).await.map_err(e)? {
                Verdict::Intact { seals: 0, .. } => {
                    println!("No seals to check yet (an hour is sealed 5 minutes after it ends).")
                }
                Verdict::Intact { seals, from, to } => println!(
                    "{seals} seal(s) from {} to {}: every event is as it was when sealed, and the chain is whole.",
                    from.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default(),
                    to.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
                ),
                Verdict::Broken { period_start, problem } => {
                    return Err(format!(
                        "the hour from {} does not match its seal: {problem}",
                        period_start.format("%Y-%m-%d %H:%M UTC")
                    ))
                }
            }
            Ok(())
        }
        Command::Balances(BalancesCommand::Check { fix }) => {
            let db = open_database(&settings).await?;
            check_balances(&db, fix).await
        }
        Command::ApiKey(cmd) => {
            let db = open_database(&settings).await?;
            let now = chrono::Utc::now();
            match cmd {
                ApiKeyCommand::Create { name, scope } => {
                    let scope = app::services::api_keys::Scope::parse(&scope)?;
                    let (id, key) = app::services::api_keys::create(&db, &name, scope, now).await?;
                    println!("Created API key {id} ({}, scope {})", name.trim(), scope.as_str());
                    println!("Key (shown once; only its hash is kept): {key}");
                }
                ApiKeyCommand::List => {
                    let keys = app::store::api_keys::list(&db).await.map_err(|e| e.to_string())?;
                    if keys.is_empty() {
                        println!("No API keys.");
                    }
                    let when = |t: Option<chrono::DateTime<chrono::Utc>>, none: &str| {
                        t.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| none.to_string())
                    };
                    for k in keys {
                        println!(
                            "{:>4}  {:<24}  {:<7}  {}…  made {}  last used {}  {}",
                            k.id,
                            k.name,
                            k.scope,
                            k.prefix,
                            k.created_at.format("%Y-%m-%d %H:%M"),
                            when(k.last_used_at, "never"),
                            k.revoked_at.map(|t| format!("REVOKED {}", t.format("%Y-%m-%d %H:%M"))).unwrap_or_default()
                        );
                    }
                }
                ApiKeyCommand::Revoke { id } => {
                    if !app::store::api_keys::revoke(&db, id, now).await.map_err(|e| e.to_string())? {
                        return Err(format!("no live API key {id} (see `api-key list`)"));
                    }
                    println!("Revoked API key {id}: it stops working now.");
                }
            }
            Ok(())
        }
        Command::Events(EventsCommand::Replay { id }) => {
            // Processed as the server would: in the database's mode, whatever the shell says (a
            // replay run without the live key must not mark a live event `ignored` for ever).
            let (svc, _) = cli_services(&settings, true).await?;
            let now = chrono::Utc::now();
            if !events::reset_for_replay(&svc.db, &id, now).await.map_err(|e| e.to_string())? {
                return Err(format!("no stored event {id}"));
            }
            match process_stored(&svc, &id, now).await.map_err(|e| e.to_string())? {
                Processed::Finished { status, detail } => println!("{id}: {status}: {detail}"),
                Processed::RetryScheduled { reason, next_at } => {
                    println!("{id}: pending: {reason}; next attempt {next_at}")
                }
                Processed::AlreadyFinished => println!("{id}: finished meanwhile by another process"),
                Processed::NotFound => return Err(format!("no stored event {id}")),
            }
            Ok(())
        }
    }
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

/// A demo contract: (publication, ad size).
type DemoContract = (&'static str, &'static str);

/// Demo accounts for a local run: (email, role, password, contracts).
const DEMO_USERS: [(&str, Role, &str, &[DemoContract]); 3] = [
    ("admin@demo.test", Role::Admin, "demo-admin-password", &[]),
    (
        "ann@demo.test",
        Role::Advertiser,
        "demo-ann-password",
        &[("Daily Planet", "Half page"), ("Gotham Gazette", "Full page")],
    ),
    ("bob@demo.test", Role::Advertiser, "demo-bob-password", &[("Metropolis Weekly", "Quarter page")]),
];

/// Creates the demo users and their contracts unless they exist; never touches other data.
async fn seed_demo(db: &app::store::Db, settings: &Settings) -> Result<(), String> {
    for (email, role, password, contract_list) in DEMO_USERS {
        let parsed = Email::parse(email)?;
        if users::find_by_email(db, &parsed).await.map_err(|e| e.to_string())?.is_some() {
            continue;
        }
        let user = create_user(db, email, role, password).await.map_err(|e| e.to_string())?;
        for (publication, ad_size) in contract_list {
            let c = NewContract {
                advertiser_id: user.id,
                publication,
                ad_size,
                base_revisions: settings.terms.base_revisions,
            };
            contracts::create(db, &c, chrono::Utc::now()).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

async fn serve(settings: &Settings, demo: bool) -> Result<(), String> {
    if demo {
        settings.allow_demo()?;
    }
    // Before the first connection is taken: a stop asked for at any time after is graceful.
    let stop = crate::StopSignal::listen();
    let app = Application::start(settings).await?;
    if demo {
        seed_demo(&app.services.db, settings).await?;
    }
    println!("Revision Store is running at {}", app.url());
    tracing::info!(artwork = %settings.artwork.describe(&settings.data_dir), "artwork store");
    if let Some(public) = &settings.public_origin {
        println!("Users reach it at {public} (PUBLIC_URL)");
    }
    if demo {
        println!("Demo logins (local use only):");
        for (email, role, password, _) in DEMO_USERS {
            println!("  {:<10} {email:<16} password: {password}", role.as_str());
        }
    }
    println!("Database: {} ({})", redact_url(&settings.database_url), app.services.db.dialect());
    println!("Stripe: {}", app.mode.describe());
    app.run_until_stopped(stop).await;
    Ok(())
}

/// The contract report of `contract show`: balance, formula, ledger.
pub async fn show_contract(db: &app::store::Db, id: i64) -> Result<String, String> {
    use std::fmt::Write;
    let e = |e: app::store::StoreError| e.to_string();
    let c = contracts::find(db, id).await.map_err(e)?.ok_or_else(|| format!("no contract {id}"))?;
    let owner = users::find(db, c.advertiser_id).await.map_err(e)?.map(|u| u.email).unwrap_or_default();
    let balance = ledger::balance(db, id).await.map_err(e)?.ok_or_else(|| format!("no contract {id}"))?;
    let mut out = String::new();
    let _ = writeln!(out, "Contract {}: {} / {} for {}", c.id, c.publication, c.ad_size, owner);
    let _ = writeln!(out, "Available revisions: {}", balance.available());
    if balance.owed() > 0 {
        let _ = writeln!(
            out,
            "  owes {}: revisions used before their payment was refunded or charged back",
            balance.owed()
        );
    }
    let _ = writeln!(out, "  {}", balance.explain());
    let _ = writeln!(out, "Credited packs:");
    let credits = ledger::credits(db, id).await.map_err(e)?;
    if credits.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for r in credits {
        let amount =
            app::domain::Currency::parse(&r.currency).map(|c| Money::new(r.amount, c).to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}  +{}  {}  payment {}  event {}{}",
            r.created_at.format("%Y-%m-%d %H:%M:%S"),
            r.revisions,
            amount,
            r.payment_id,
            r.stripe_event_id.as_deref().unwrap_or("(confirmed with Stripe)"),
            if r.livemode { "" } else { "  [test mode]" }
        );
    }
    let _ = writeln!(out, "Revoked and given back (refunds, disputes):");
    let adjustments = app::store::adjustments::for_contract(db, id).await.map_err(e)?;
    if adjustments.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for a in adjustments {
        let _ = writeln!(
            out,
            "  {}  {:+}  {}  payment {}  {}  (by {})",
            a.created_at.format("%Y-%m-%d %H:%M:%S"),
            -a.revoked,
            a.kind,
            a.payment_id,
            a.note,
            a.booked_by
        );
    }
    for d in app::store::adjustments::disputes_for_contract(db, id).await.map_err(e)? {
        let _ = writeln!(
            out,
            "  dispute {} on {}: {}{}",
            d.dispute_id,
            d.payment_id,
            d.status,
            if d.is_open { " (open: unused revisions held)" } else { "" }
        );
    }
    let _ = writeln!(out, "Revision requests:");
    let requests = ledger::requests(db, id).await.map_err(e)?;
    if requests.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for q in requests {
        let _ = writeln!(out, "  {}  -1  #{}  {}", q.created_at.format("%Y-%m-%d %H:%M:%S"), q.id, q.notes);
    }
    let _ = writeln!(out, "Purchases started:");
    let ps = purchases::for_contract(db, id).await.map_err(e)?;
    if ps.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for p in ps {
        let _ = writeln!(out, "  {}  {}  {}", p.created_at.format("%Y-%m-%d %H:%M:%S"), p.payment_intent_id, p.status);
    }
    Ok(out)
}

/// `balances check`: the drifted contracts, kept against counted; with `fix`, rewritten and
/// checked again.
async fn check_balances(db: &app::store::Db, fix: bool) -> Result<(), String> {
    use app::store::balances;
    // Enough to act on; a second run shows the rest.
    const SHOWN: i64 = 1_000;
    let drifted = balances::drift(db, SHOWN).await.map_err(|e| e.to_string())?;
    if drifted.is_empty() {
        println!("Every contract's kept balance matches its ledger rows.");
        return Ok(());
    }
    let kept = |v: Option<i64>| v.map_or_else(|| "none".to_string(), |n| n.to_string());
    for d in &drifted {
        println!(
            "contract {}: kept base {} purchased {} revoked {} requested {}; rows say base {} purchased {} revoked {} requested {}",
            d.contract_id,
            kept(d.kept_base),
            kept(d.kept_purchased),
            kept(d.kept_revoked),
            kept(d.kept_requested),
            d.base,
            d.purchased,
            d.revoked,
            d.requested
        );
    }
    if !fix {
        return Err(format!(
            "{} contract(s) whose kept balance differs from the ledger (run again with --fix to rewrite them)",
            drifted.len()
        ));
    }
    for d in &drifted {
        balances::rebuild(db, d.contract_id).await.map_err(|e| e.to_string())?;
    }
    let left = balances::drift(db, SHOWN).await.map_err(|e| e.to_string())?;
    println!("Rewrote {} kept balance(s) from the ledger.", drifted.len());
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("{} contract(s) still differ; run the check again", left.len()))
    }
}
