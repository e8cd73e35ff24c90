//! `migrate`: apply the database migrations and exit.
use super::Outcome;
use crate::config::{redact_url, Settings};
use crate::open_database;

pub async fn run(settings: &Settings) -> Outcome {
    let db = open_database(settings).await?;
    println!("Migrations applied to {} ({})", redact_url(&settings.database.url), db.dialect());
    Ok(())
}
