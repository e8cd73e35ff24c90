//! `serve` (the default): run the web server until SIGTERM or Ctrl-C.
use super::Outcome;
use crate::config::{redact_url, Settings};
use crate::Application;
use app::domain::users::{Email, Role};
use app::services::accounts::create_user;
use app::store::contracts::{self, NewContract};
use app::store::users;

#[derive(clap::Args, Default)]
pub struct Args {
    /// Create demo users and contracts if missing, and print their logins (local use only).
    #[arg(long)]
    demo: bool,
}

pub async fn run(settings: &Settings, Args { demo }: Args) -> Outcome {
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
    tracing::info!(artwork = %settings.artwork.storage.describe(&settings.artwork.data_dir), "artwork store");
    if let Some(public) = &settings.web.public_origin {
        println!("Users reach it at {public} (PUBLIC_URL)");
    }
    if demo {
        println!("Demo logins (local use only):");
        for (email, role, password, _) in DEMO_USERS {
            println!("  {:<10} {email:<16} password: {password}", role.as_str());
        }
    }
    println!("Database: {} ({})", redact_url(&settings.database.url), app.services.db.dialect());
    println!("Stripe: {}", app.mode.describe());
    app.run_until_stopped(stop).await;
    Ok(())
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
async fn seed_demo(db: &app::store::Db, settings: &Settings) -> Outcome {
    for (email, role, password, contract_list) in DEMO_USERS {
        let parsed = Email::parse(email)?;
        if users::find_by_email(db, &parsed).await?.is_some() {
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
            contracts::create(db, &c, chrono::Utc::now()).await?;
        }
    }
    Ok(())
}
