//! Claiming the database for the mode this process serves in (`domain::deployment::start_in`),
//! and reading the mode back for the CLI, which takes it from the database, never from the
//! shell's environment.
use crate::domain::deployment::{start_in, DeploymentMode, ModeStart};
use crate::store::{deployment, Db, StoreError};
use chrono::Utc;

/// Why this process may not serve the database, or the CLI cannot tell its mode.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The rule refused the start (`domain::deployment::start_in`), in its words.
    #[error("{0}")]
    Refused(String),
    #[error("reading the deployment mode: {0}")]
    Read(#[source] StoreError),
    #[error("recording the deployment mode: {0}")]
    Record(#[source] StoreError),
    #[error("the deployment mode kept changing while starting: another process is switching it")]
    KeptChanging,
    #[error(
        "this database has never been served, so its Stripe mode is unknown: start the server on it \
         once (it records the mode it serves in)"
    )]
    NeverServed,
}

/// Records `starting` as the database's mode, or refuses with the reason. Safe to race: the
/// entry's number is unique, so a process that loses re-reads and judges again.
pub async fn claim(db: &Db, starting: DeploymentMode, switch: bool) -> Result<ModeStart, DeploymentError> {
    for _ in 0..3 {
        let current = deployment::current(db).await.map_err(DeploymentError::Read)?;
        let decision = start_in(current.map(|(_, m)| m), starting, switch).map_err(DeploymentError::Refused)?;
        let (seq, from) = match (decision, current) {
            (ModeStart::Same, _) => return Ok(decision),
            (ModeStart::First, _) => (1, None),
            (ModeStart::Switch { from }, Some((seq, _))) => (seq + 1, Some(from)),
            (ModeStart::Switch { .. }, None) => unreachable!("start_in switches only from a recorded mode"),
        };
        if deployment::record(db, seq, starting, from, Utc::now()).await.map_err(DeploymentError::Record)? {
            if let Some(from) = from {
                tracing::warn!(
                    from = from.as_str(),
                    to = starting.as_str(),
                    "deployment mode switched (--switch-mode)"
                );
            }
            return Ok(decision);
        }
    }
    Err(DeploymentError::KeptChanging)
}

/// The mode the database is served in, for commands that act as the server would (replay,
/// reconcile); an error for a database never served.
pub async fn recorded(db: &Db) -> Result<DeploymentMode, DeploymentError> {
    match deployment::current(db).await.map_err(DeploymentError::Read)? {
        Some((_, mode)) => Ok(mode),
        None => Err(DeploymentError::NeverServed),
    }
}
