//! `api-key create|list|revoke`: keys for the API (`/api/v1/...`).
use super::Outcome;
use crate::config::Settings;
use crate::open_database;
use app::store::Db;

#[derive(clap::Subcommand)]
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

pub async fn run(settings: &Settings, cmd: ApiKeyCommand) -> Outcome {
    let db = open_database(settings).await?;
    let now = chrono::Utc::now();
    match cmd {
        ApiKeyCommand::Create { name, scope } => {
            let scope = app::services::api_keys::Scope::parse(&scope)?;
            let (id, key) = app::services::api_keys::create(&db, &name, scope, now).await?;
            println!("Created API key {id} ({}, scope {})", name.trim(), scope.as_str());
            println!("Key (shown once; only its hash is kept): {key}");
        }
        ApiKeyCommand::List => list(&db).await?,
        ApiKeyCommand::Revoke { id } => {
            if !app::store::api_keys::revoke(&db, id, now).await? {
                return Err(format!("no live API key {id} (see `api-key list`)").into());
            }
            println!("Revoked API key {id}: it stops working now.");
        }
    }
    Ok(())
}

async fn list(db: &Db) -> Outcome {
    let keys = app::store::api_keys::list(db).await?;
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
    Ok(())
}
