//! `balances check`: the kept balances the admin balances page sorts by, against their rows.
use super::Outcome;
use crate::config::Settings;
use crate::open_database;

#[derive(clap::Subcommand)]
pub enum BalancesCommand {
    /// Recompute every contract's balance from its ledger rows and compare it with the kept one;
    /// names every contract that differs and exits non-zero.
    Check {
        /// Rewrite the kept balances that differ from their rows (each under its contract's lock).
        #[arg(long)]
        fix: bool,
    },
}

pub async fn run(settings: &Settings, cmd: BalancesCommand) -> Outcome {
    let BalancesCommand::Check { fix } = cmd;
    let db = open_database(settings).await?;
    check(&db, fix).await
}

/// `balances check`: the drifted contracts, kept against counted; with `fix`, rewritten and
/// checked again.
async fn check(db: &app::store::Db, fix: bool) -> Outcome {
    use app::store::balances;
    // Enough to act on; a second run shows the rest.
    const SHOWN: i64 = 1_000;
    let drifted = balances::drift(db, SHOWN).await?;
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
        )
        .into());
    }
    for d in &drifted {
        balances::rebuild(db, d.contract_id).await?;
    }
    let left = balances::drift(db, SHOWN).await?;
    println!("Rewrote {} kept balance(s) from the ledger.", drifted.len());
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("{} contract(s) still differ; run the check again", left.len()).into())
    }
}
