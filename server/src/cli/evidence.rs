//! `evidence bundle` (one payment's evidence as a tar), `evidence source` (a webhook source's
//! events in a window, as a tar) and `evidence verify` (the hourly seals).
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
    /// Write a webhook source's evidence bundle: every event it sent in a window, byte for byte,
    /// with its headers, signature check, digests and seal.
    Source {
        /// The source's name (`sources list`).
        source: String,
        /// YYYY-MM-DD (UTC) or an RFC 3339 time (default: a day ago).
        #[arg(long)]
        from: Option<String>,
        /// YYYY-MM-DD (that whole day) or an RFC 3339 time (default: now).
        #[arg(long)]
        to: Option<String>,
        /// Where to write it (default: evidence-<source>.tar here; `-` for stdout).
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
        EvidenceCommand::Source { source, from, to, out } => {
            let now = chrono::Utc::now();
            let from = from.map(|s| parse_when(&s, false)).transpose()?.unwrap_or(now - chrono::Duration::days(1));
            let to = to.map(|s| parse_when(&s, true)).transpose()?.unwrap_or(now);
            if to <= from {
                return Err("--to must be after --from".into());
            }
            let (svc, _) = cli_services(settings, false).await?;
            let tar =
                app::services::evidence::source_bundle(&svc, &source, from, to).await.map_err(|e| e.to_string())?;
            write_bundle(&tar, out.unwrap_or_else(|| format!("evidence-{source}.tar").into()))
        }
    }
}

/// Writes a bundle to `out` (`-`: standard output).
fn write_bundle(tar: &[u8], out: std::path::PathBuf) -> Outcome {
    if out.as_os_str() == "-" {
        use std::io::Write;
        std::io::stdout().write_all(tar).map_err(|e| format!("cannot write the bundle: {e}"))?;
    } else {
        std::fs::write(&out, tar).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        eprintln!("Wrote {} ({} bytes)", out.display(), tar.len());
    }
    Ok(())
}

async fn bundle(settings: &Settings, payment: &str, out: Option<std::path::PathBuf>) -> Outcome {
    let (svc, _) = cli_services(settings, false).await?;
    let tar = app::services::evidence::bundle(&svc, payment).await.map_err(|e| e.to_string())?;
    write_bundle(&tar, out.unwrap_or_else(|| format!("evidence-{}.tar", payment.trim()).into()))
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
