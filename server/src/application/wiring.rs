//! From checked settings to what serves: the database (migrated), the services, leptos'
//! options, and in simulator mode the simulator wired to this server.
use crate::config::Settings;
use app::services::Services;
use app::store::{Db, DbOptions};
use leptos::prelude::LeptosOptions;
use std::net::SocketAddr;

/// Opens the database and migrates it. A failed migration stops the program.
pub async fn open_database(settings: &Settings) -> Result<Db, String> {
    let db = Db::connect(
        &settings.database.url,
        &DbOptions {
            max_connections: settings.database.max_connections,
            acquire_timeout: settings.database.timeout,
            ..DbOptions::default()
        },
    )
    .await?;
    db.migrate().await.map_err(|e| format!("database migration failed: {e}"))?;
    Ok(db)
}

/// The services for `mode`: the serving process's chosen mode, or for the CLI the database's.
pub fn services(settings: &Settings, db: Db, mode: app::domain::deployment::DeploymentMode) -> Services {
    let mut svc = Services::new(
        db,
        settings.terms.clone(),
        mode.stripe_mode(),
        settings.stripe.webhook_secrets.clone(),
        settings.stripe.api.clone(),
    );
    svc.publishable_key = settings.stripe.publishable_key.clone();
    // The groups the services read, whole: a setting added to one needs no line here.
    svc.settings = std::sync::Arc::new(app::services::settings::Settings {
        web: settings.web.clone(),
        reconcile: settings.reconcile.clone(),
        owners: settings.owners.clone(),
        slack: settings.slack.clone(),
        db_timeout: settings.database.timeout,
        mail: settings.mail.clone(),
        alerts: settings.alerts.clone(),
        forwarding: settings.forwarding.clone(),
    });
    if let Some(name) = &settings.metrics.instance {
        svc.stats = std::sync::Arc::new(app::services::stats::Stats::labelled(Some(name)));
    }
    svc
}

pub(crate) fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    // cargo-leptos sets these when it runs the server; a plain `cargo run` gets the defaults.
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    LeptosOptions::builder()
        .output_name(env("LEPTOS_OUTPUT_NAME", "revision-store"))
        .site_root(env("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(env("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(addr)
        .build()
}

/// Simulator mode: the app's Stripe is the simulator mounted on its own origin, which signs its
/// webhooks with a fresh secret and delivers them to this app's webhook route.
pub(crate) fn with_simulator(
    mut services: Services,
    addr: SocketAddr,
    stripe_timeout: std::time::Duration,
) -> Result<(Services, Option<app::stripe::simulator::Simulator>), String> {
    use app::stripe::simulator::{random_webhook_secret, Simulator, WebhookConfig, MOUNT, SECRET_KEY};
    let secret = random_webhook_secret();
    let mut secrets = (*services.webhook_secrets).clone();
    secrets.push(secret.clone());
    services.webhook_secrets = std::sync::Arc::new(secrets);
    services.stripe =
        Some(app::stripe::StripeApi::with_timeout(SECRET_KEY, &format!("http://{addr}{MOUNT}/"), stripe_timeout)?);
    services.simulated = true;
    services.publishable_key = Some(app::stripe::simulator::PUBLISHABLE_KEY.to_string());
    services.stripe_js_url = format!("{MOUNT}/v3/");
    let sim = Simulator::with_webhooks(WebhookConfig {
        url: format!("http://{addr}/webhooks/stripe"),
        secret,
        retry_base: std::time::Duration::from_secs(2),
        max_attempts: 10,
    });
    Ok((services, Some(sim)))
}
