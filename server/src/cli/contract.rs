//! `contract create` and `contract show` (balance, the formula behind it, and its ledger).
use super::Outcome;
use crate::config::Settings;
use crate::open_database;
use app::domain::users::{Email, Role};
use app::domain::Money;
use app::services::statement::{contract_statement, ContractStatement, Reader};
use app::store::{users, Db};
use std::fmt::Write;

#[derive(clap::Subcommand)]
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

pub async fn run(settings: &Settings, cmd: ContractCommand) -> Outcome {
    match cmd {
        ContractCommand::Create { advertiser, publication, ad_size } => {
            create(settings, &advertiser, &publication, &ad_size).await
        }
        ContractCommand::Show { id } => {
            let db = open_database(settings).await?;
            print!("{}", show_contract(&db, id).await?);
            Ok(())
        }
    }
}

async fn create(settings: &Settings, advertiser: &str, publication: &str, ad_size: &str) -> Outcome {
    let db = open_database(settings).await?;
    let email = Email::parse(advertiser)?;
    let user =
        users::find_by_email(&db, &email).await?.ok_or_else(|| format!("no user with email {}", email.as_str()))?;
    if user.role() != Role::Advertiser {
        return Err(format!("{} is an {}, not an advertiser", user.email, user.role).into());
    }
    let terms = app::domain::people::ContractTerms::parse(publication, ad_size)?;
    let actor = app::domain::people::Actor::CommandLine;
    let base = settings.terms.base_revisions;
    let c = app::store::people::create_contract(&db, user.id, &terms, base, &actor, chrono::Utc::now())
        .await?
        .map_err(|_| format!("{} is deactivated: reactivate them first", user.email))?;
    println!("{}", c.id);
    Ok(())
}

/// The contract report of `contract show`: balance, formula, ledger.
pub async fn show_contract(db: &Db, id: i64) -> Result<String, String> {
    let statement = contract_statement(db, id, Reader::Admin)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no contract {id}"))?;
    let (c, balance) = (&statement.contract, statement.balance());
    let mut out = String::new();
    let _ = writeln!(out, "Contract {}: {} / {} for {}", c.id, c.publication, c.ad_size, c.advertiser_email);
    let _ = writeln!(out, "Available revisions: {}", balance.available());
    if balance.owed() > 0 {
        let _ = writeln!(
            out,
            "  owes {}: revisions used before their payment was refunded or charged back",
            balance.owed()
        );
    }
    let _ = writeln!(out, "  {}", balance.explain());
    credits(&statement, &mut out);
    adjustments(&statement, &mut out);
    requests_and_purchases(&statement, &mut out);
    Ok(out)
}

/// The report's credited packs.
fn credits(statement: &ContractStatement, out: &mut String) {
    let _ = writeln!(out, "Credited packs:");
    if statement.credits.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for r in &statement.credits {
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
}

/// The report's revisions revoked and given back (refunds, disputes), and its disputes.
fn adjustments(statement: &ContractStatement, out: &mut String) {
    let _ = writeln!(out, "Revoked and given back (refunds, disputes):");
    let Some(admin) = &statement.admin else { return };
    if admin.adjustments.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for a in &admin.adjustments {
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
    for d in &admin.disputes {
        let _ = writeln!(
            out,
            "  dispute {} on {}: {}{}",
            d.dispute_id,
            d.payment_id,
            d.status,
            if d.is_open { " (open: unused revisions held)" } else { "" }
        );
    }
}

/// The report's revision requests and purchases started.
fn requests_and_purchases(statement: &ContractStatement, out: &mut String) {
    let _ = writeln!(out, "Revision requests:");
    if statement.requests.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for q in &statement.requests {
        let _ = writeln!(out, "  {}  -1  #{}  {}", q.created_at.format("%Y-%m-%d %H:%M:%S"), q.id, q.notes);
    }
    let _ = writeln!(out, "Purchases started:");
    if statement.purchases.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for p in &statement.purchases {
        let _ = writeln!(out, "  {}  {}  {}", p.created_at.format("%Y-%m-%d %H:%M:%S"), p.payment_intent_id, p.status);
    }
}
