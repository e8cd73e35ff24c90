//! `sources`: the webhook gateway's senders other than Stripe, each posting to
//! `/webhooks/{name}`: add one, list them, rotate a secret with an overlap, disable or enable one,
//! and see what one sent.
use super::{cli_services, Failure, Outcome};
use crate::config::Settings;
use app::domain::gateway::DEFAULT_OVERLAP_HOURS;
use app::senders::{paypal, Algorithm, Encoding, HmacConfig, Scheme};
use app::services::sources;

// Parsed once per run: the size of the largest variant (a source's options) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand)]
pub enum SourcesCommand {
    /// Add a source. Its deliveries are verified by its kind's scheme and stored before any 2xx.
    Add(AddArgs),
    /// Every source: kind, state, active secrets and events stored.
    List,
    /// Give a source a new secret; the old ones keep working for the overlap, so no delivery
    /// signed just before the switch is refused.
    Rotate {
        name: String,
        /// The new secret (Standard Webhooks: made for you when not given, and printed once).
        #[arg(long)]
        secret: Option<String>,
        /// How long the old secrets keep working, in hours (at most a week).
        #[arg(long, default_value_t = DEFAULT_OVERLAP_HOURS)]
        overlap_hours: i64,
    },
    /// Stop accepting a source's deliveries (answered 404, stored nowhere).
    Disable { name: String },
    /// Accept a disabled source's deliveries again.
    Enable { name: String },
    /// The newest events a source sent (every source's when no name is given).
    Events {
        name: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(clap::Args)]
pub struct AddArgs {
    /// The URL's last segment: lowercase letters, digits and dashes.
    name: String,
    /// standard-webhooks, square, paypal or generic-hmac.
    #[arg(long)]
    kind: String,
    /// The signing secret (Standard Webhooks: made for you when not given, and printed once).
    #[arg(long)]
    secret: Option<String>,
    /// Square: the notification URL exactly as configured in Square's dashboard.
    #[arg(long)]
    notification_url: Option<String>,
    /// PayPal: the webhook's id at PayPal (part of what PayPal signs).
    #[arg(long)]
    webhook_id: Option<String>,
    /// PayPal: a host its certificates may come from (repeat; PayPal's own by default).
    #[arg(long = "cert-host")]
    cert_hosts: Vec<String>,
    /// Generic HMAC: the signature's header.
    #[arg(long)]
    header: Option<String>,
    /// Generic HMAC: sha256 or sha1.
    #[arg(long, default_value = "sha256")]
    algorithm: String,
    /// Generic HMAC: hex or base64.
    #[arg(long, default_value = "hex")]
    encoding: String,
    /// Generic HMAC: text before the signature, e.g. `sha256=`.
    #[arg(long)]
    prefix: Option<String>,
    /// Generic HMAC: the header of a signed unix timestamp (then `{timestamp}.{body}` is signed).
    #[arg(long)]
    timestamp_header: Option<String>,
    /// Generic HMAC: JSON pointer to the event id in the body.
    #[arg(long, default_value = "/id")]
    id_pointer: String,
    /// Generic HMAC: JSON pointer to the event type in the body.
    #[arg(long, default_value = "/type")]
    type_pointer: String,
}

pub async fn run(settings: &Settings, cmd: SourcesCommand) -> Outcome {
    let (svc, _) = cli_services(settings, false).await?;
    let now = chrono::Utc::now();
    match cmd {
        SourcesCommand::Add(args) => {
            let name = args.name.clone();
            let scheme = scheme_of(args.kind.as_str(), &args)?;
            let made = sources::add(&svc.db, &name, &scheme, args.secret, now).await?;
            println!("added {name} ({}): deliveries go to /webhooks/{name}", scheme.label());
            if let Some(secret) = made {
                println!("its signing secret (shown once; give it to the sender): {secret}");
            }
        }
        SourcesCommand::List => list(&svc).await?,
        SourcesCommand::Rotate { name, secret, overlap_hours } => {
            let overlap = chrono::Duration::hours(overlap_hours);
            let made = sources::rotate(&svc.db, &name, secret, overlap, now).await?;
            println!(
                "{name}: new secret active; the old ones work until {}",
                (now + overlap).format("%Y-%m-%d %H:%M UTC")
            );
            if let Some(secret) = made {
                println!("the new signing secret (shown once): {secret}");
            }
        }
        SourcesCommand::Disable { name } => {
            sources::set_enabled(&svc.db, &name, false, now).await?;
            println!("{name}: disabled");
        }
        SourcesCommand::Enable { name } => {
            sources::set_enabled(&svc.db, &name, true, now).await?;
            println!("{name}: enabled");
        }
        SourcesCommand::Events { name, limit } => {
            for e in app::store::gateway_events::recent(&svc.db, name.as_deref(), limit.clamp(1, 1000)).await? {
                let time = e.received_at.format("%Y-%m-%d %H:%M:%S UTC");
                let kind = e.event_type.as_deref().unwrap_or("-");
                println!("{time}  {:<16} {:<40} {kind}  {} bytes", e.source, e.event_id, e.payload.len());
            }
        }
    }
    Ok(())
}

async fn list(svc: &app::services::Services) -> Outcome {
    let now = chrono::Utc::now();
    for row in app::store::webhook_sources::list(&svc.db).await? {
        let secrets = app::store::webhook_sources::active_secrets(&svc.db, &row.name, now).await?;
        let events = app::store::gateway_events::count(&svc.db, &row.name).await?;
        let state = if row.disabled_at.is_some() { "disabled" } else { "enabled" };
        println!("{:<20} {:<18} {state:<9} {} active secret(s), {events} event(s)", row.name, row.kind, secrets.len());
    }
    Ok(())
}

/// The scheme the arguments describe, refusing options of another kind's.
fn scheme_of(kind: &str, a: &AddArgs) -> Result<Scheme, Failure> {
    let need =
        |v: &Option<String>, flag: &str| v.clone().ok_or_else(|| Failure::from(format!("{kind} needs --{flag}")));
    Ok(match kind {
        "standard-webhooks" => Scheme::StandardWebhooks,
        "square" => Scheme::Square { notification_url: need(&a.notification_url, "notification-url")? },
        "paypal" => Scheme::PayPal {
            webhook_id: need(&a.webhook_id, "webhook-id")?,
            cert_hosts: if a.cert_hosts.is_empty() { paypal::default_cert_hosts() } else { a.cert_hosts.clone() },
        },
        "generic-hmac" => Scheme::GenericHmac(HmacConfig {
            header: need(&a.header, "header")?.to_ascii_lowercase(),
            algorithm: match a.algorithm.as_str() {
                "sha256" => Algorithm::Sha256,
                "sha1" => Algorithm::Sha1,
                other => return Err(format!("--algorithm is sha256 or sha1, not {other}").into()),
            },
            encoding: match a.encoding.as_str() {
                "hex" => Encoding::Hex,
                "base64" => Encoding::Base64,
                other => return Err(format!("--encoding is hex or base64, not {other}").into()),
            },
            prefix: a.prefix.clone(),
            timestamp_header: a.timestamp_header.clone(),
            id_pointer: a.id_pointer.clone(),
            type_pointer: a.type_pointer.clone(),
        }),
        other => return Err(format!("--kind is standard-webhooks, square, paypal or generic-hmac, not {other}").into()),
    })
}
