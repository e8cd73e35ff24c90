//! `evidence bundle` (one payment's evidence as a tar) and `evidence verify` (the hourly seals).
use super::{cli_services, parse_when, Outcome};
use crate::config::Settings;

#[derive(clap::Subcommand)]
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

pub async fn run(settings: &Settings, cmd: EvidenceCommand) -> Outcome {
    match cmd {
        EvidenceCommand::Bundle { payment, out } => bundle(settings, &payment, out).await,
        EvidenceCommand::Verify { since } => verify(settings, since).await,
    }
}

async fn bundle(settings: &Settings, payment: &str, out: Option<std::path::PathBuf>) -> Outcome {
    let (svc, _) = cli_services(settings, false).await?;
    let tar = app::services::evidence::bundle(&svc, payment).await.map_err(|e| e.to_string())?;
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

async fn verify(settings: &Settings, since: Option<String>) -> Outcome {
    use app::services::seals::{seal_closed, verify, Verdict};
    let since = since.map(|s| parse_when(&s, false)).transpose()?;
    let (svc, _) = cli_services(settings, false).await?;
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
            )
            .into())
        }
    }
    Ok(())
}
