//! `contract create` and `contract show` (balance, the formula behind it, and its ledger).
use super::Outcome;
use crate::config::Settings;
use crate::open_database;
use app::domain::users::{Email, Role};
use app::domain::Money;
use app::store::{contracts, ledger, purchases, users, Db, StoreError};
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
    let user = users::find_by_email(&db, &email)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user with email {}", email.as_str()))?;
    if user.role() != Role::Advertiser {
        return Err(format!("{} is an {}, not an advertiser", user.email, user.role).into());
    }
    let terms = app::domain::people::ContractTerms::parse(publication, ad_size)?;
    let actor = app::domain::people::Actor::CommandLine;
    let base = settings.terms.base_revisions;
    let c = app::store::people::create_contract(&db, user.id, &terms, base, &actor, chrono::Utc::now())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| format!("{} is deactivated: reactivate them first", user.email))?;
    println!("{}", c.id);
    Ok(())
}

/// The contract report of `contract show`: balance, formula, ledger.
pub async fn show_contract(db: &Db, id: i64) -> Result<String, String> {
    let e = |e: StoreError| e.to_string();
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
    credits(db, id, &mut out).await.map_err(e)?;
    adjustments(db, id, &mut out).await.map_err(e)?;
    requests_and_purchases(db, id, &mut out).await.map_err(e)?;
    Ok(out)
}

/// The report's credited packs.
async fn credits(db: &Db, id: i64, out: &mut String) -> Result<(), StoreError> {
    let _ = writeln!(out, "Credited packs:");
    let credits = ledger::credits(db, id).await?;
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
    Ok(())
}

/// The report's revisions revoked and given back (refunds, disputes), and its disputes.
async fn adjustments(db: &Db, id: i64, out: &mut String) -> Result<(), StoreError> {
    let _ = writeln!(out, "Revoked and given back (refunds, disputes):");
    let adjustments = app::store::adjustments::for_contract(db, id).await?;
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
    for d in app::store::adjustments::disputes_for_contract(db, id).await? {
        let _ = writeln!(
            out,
            "  dispute {} on {}: {}{}",
            d.dispute_id,
            d.payment_id,
            d.status,
            if d.is_open { " (open: unused revisions held)" } else { "" }
        );
    }
    Ok(())
}

/// The report's revision requests and purchases started.
async fn requests_and_purchases(db: &Db, id: i64, out: &mut String) -> Result<(), StoreError> {
    let _ = writeln!(out, "Revision requests:");
    let requests = ledger::requests(db, id).await?;
    if requests.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for q in requests {
        let _ = writeln!(out, "  {}  -1  #{}  {}", q.created_at.format("%Y-%m-%d %H:%M:%S"), q.id, q.notes);
    }
    let _ = writeln!(out, "Purchases started:");
    let ps = purchases::for_contract(db, id).await?;
    if ps.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for p in ps {
        let _ = writeln!(out, "  {}  {}  {}", p.created_at.format("%Y-%m-%d %H:%M:%S"), p.payment_intent_id, p.status);
    }
    Ok(())
}
