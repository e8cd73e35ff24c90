//! Configuration: one clap struct, every option also read from the environment (and `.env`).
//! `Config::settings` turns it into checked `Settings`; invalid configuration stops start-up
//! with one line saying what is wrong. Secrets are never printed: clap hides their env values
//! and `Settings`' Debug redacts them.
use app::domain::deployment::DeploymentMode;
use app::domain::events::StripeMode;
use app::domain::{Currency, Money, PackTerms};
use app::stripe::client::key_mode;
use app::stripe::{StripeApi, WebhookSecret};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct Config {
    /// Database URL: sqlite:PATH (the default, created if missing) or postgres://...
    // hide_env_values: `--help` would otherwise print the URL from the environment, password included.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite:data/revision-store.db",
        hide_env_values = true,
        global = true
    )]
    pub database_url: String,
    /// Stripe secret key (sk_test_... or sk_live_...), with the publishable key and webhook
    /// secret below. Serving needs these three or --stripe-simulator.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true, global = true)]
    pub stripe_secret_key: Option<String>,
    /// Stripe publishable key (pk_test_... or pk_live_...), handed to Stripe.js.
    #[arg(long, env = "STRIPE_PUBLISHABLE_KEY", global = true)]
    pub stripe_publishable_key: Option<String>,
    /// Webhook endpoint signing secrets, comma-separated (whsec_...); every one is accepted,
    /// for rotation and for a test plus a live endpoint.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true, global = true)]
    pub stripe_webhook_secret: Option<String>,
    /// Run on the built-in Stripe simulator instead of Stripe: test cards only, no money moves.
    /// An explicit choice, so that a deployment that loses its Stripe settings stops instead.
    #[arg(long, env = "STRIPE_SIMULATOR", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", global = true)]
    pub stripe_simulator: bool,
    /// Simulator mode on an address other than loopback (BIND_ADDR 0.0.0.0:..., a LAN
    /// address). Refused without this: anyone reaching a simulator can mint credits with its
    /// public test key.
    #[arg(long, env = "SIMULATOR_PUBLIC", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", global = true)]
    pub simulator_public: bool,
    /// Serve the database in another mode than it was last served in (say, test to live on a
    /// fresh deployment). Without it such a start is refused. Recorded in the database.
    #[arg(long, env = "SWITCH_MODE", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", global = true)]
    pub switch_mode: bool,
    /// Stripe API base URL.
    #[arg(long, env = "STRIPE_API_BASE", default_value = "https://api.stripe.com/", global = true)]
    pub stripe_api_base: String,
    /// Seconds one Stripe API call may take, connecting and reading its whole answer included;
    /// then it fails (a buyer is told at once, a reconciliation records the error).
    #[arg(long, env = "STRIPE_TIMEOUT_SECS", default_value_t = 10.0, global = true)]
    pub stripe_timeout_secs: f64,
    /// Price of one revision pack, in the currency's minor unit (cents).
    #[arg(long, env = "PACK_PRICE", default_value_t = 15_000, global = true)]
    pub pack_price: i64,
    /// Currency of the pack price (ISO 4217, as Stripe writes it).
    #[arg(long, env = "PACK_CURRENCY", default_value = "usd", global = true)]
    pub pack_currency: String,
    /// Revisions one pack adds.
    #[arg(long, env = "PACK_SIZE", default_value_t = 2, global = true)]
    pub pack_size: i64,
    /// Revisions every new contract includes.
    #[arg(long, env = "BASE_REVISIONS", default_value_t = 3, global = true)]
    pub base_revisions: i64,
    /// Address to listen on.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:3000", global = true)]
    pub bind: String,
    /// Seconds a client has to send a request's head; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, env = "HEADER_TIMEOUT_SECS", default_value_t = 10.0, global = true)]
    pub header_timeout_secs: f64,
    /// Seconds a request body may stall between chunks before the request is dropped.
    #[arg(long, env = "BODY_TIMEOUT_SECS", default_value_t = 30.0, global = true)]
    pub body_timeout_secs: f64,
    /// Connections open at once at most; more wait to be accepted. Keep it under the process's
    /// open-files limit (`ulimit -n`) less the database pool and some room.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 768, global = true)]
    pub max_connections: usize,
    /// Connections one client address may hold open at once (0: no cap); more from it are
    /// closed as soon as they are accepted. Not applied with CLIENT_IP_HEADER (every peer is
    /// then the proxy).
    #[arg(long, env = "MAX_CONNECTIONS_PER_CLIENT", default_value_t = crate::application::serve::MAX_CONNECTIONS_PER_CLIENT, global = true)]
    pub max_connections_per_client: usize,
    /// Seconds a whole request body may take to arrive, however it trickles (then 408); an
    /// artwork upload has UPLOAD_DEADLINE_SECS instead.
    #[arg(long, env = "BODY_DEADLINE_SECS", default_value_t = crate::application::middleware::body_deadline::BODY_DEADLINE_SECS as f64, global = true)]
    pub body_deadline_secs: f64,
    /// Seconds a whole artwork upload may take to arrive (then 408).
    #[arg(long, env = "UPLOAD_DEADLINE_SECS", default_value_t = crate::application::middleware::body_deadline::UPLOAD_DEADLINE_SECS as f64, global = true)]
    pub upload_deadline_secs: f64,
    /// Seconds a stopping server (SIGTERM, Ctrl-C) waits for in-flight requests.
    #[arg(long, env = "DRAIN_TIMEOUT_SECS", default_value_t = 30.0, global = true)]
    pub drain_timeout_secs: f64,
    /// Database pool size.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16, global = true)]
    pub db_max_connections: u32,
    /// Seconds a request waits for the database before answering 503.
    #[arg(long, env = "DB_TIMEOUT_SECS", default_value_t = 5.0, global = true)]
    pub db_timeout_secs: f64,
    /// Folder for files the app keeps (uploaded artwork goes under `artwork/`, unless
    /// ARTWORK_STORE names a bucket).
    #[arg(long, env = "DATA_DIR", default_value = "data", global = true)]
    pub data_dir: std::path::PathBuf,
    /// Where uploaded artwork is kept: unset, under DATA_DIR on this machine; `s3://bucket` or
    /// `s3://bucket/prefix`, an S3-compatible bucket (what several serving processes need), with
    /// the usual AWS variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, and
    /// AWS_ENDPOINT_URL for a service other than AWS.
    #[arg(long, env = "ARTWORK_STORE", global = true)]
    pub artwork_store: Option<String>,
    /// Mark the session cookie Secure (sent over https only). Set it whenever users reach the
    /// app over https, e.g. behind a TLS-terminating proxy.
    #[arg(long, env = "SECURE_COOKIES", default_value_t = false, global = true)]
    pub secure_cookies: bool,
    /// The address users reach the app at (https://revisions.example.com), when it is not the
    /// one the server sees: behind a reverse proxy the Host header may be rewritten, and forms
    /// are checked against this origin instead. An https URL also marks cookies Secure.
    #[arg(long, env = "PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Behind a reverse proxy: the header it puts the client's address in (X-Forwarded-For,
    /// X-Real-IP, ...), so sign-in throttling counts per client, not per proxy. Only set it when
    /// every request comes through that proxy: clients can send the header themselves.
    #[arg(long, env = "CLIENT_IP_HEADER", global = true)]
    pub client_ip_header: Option<String>,
    /// The peers `CLIENT_IP_HEADER` is believed from (comma-separated networks or addresses):
    /// the reverse proxy's. A request from any other peer (a client reaching the app directly)
    /// is counted by its own address whatever the header says.
    #[arg(long, env = "TRUSTED_PROXIES", global = true, default_value = app::services::sign_in_throttle::DEFAULT_TRUSTED_PROXIES)]
    pub trusted_proxies: String,
    /// Seconds between worker sweeps for due retries.
    #[arg(long, env = "WORKER_INTERVAL_SECS", default_value_t = 5.0, global = true)]
    pub worker_interval_secs: f64,
    /// Hours between scheduled reconciliations with Stripe (0 turns the schedule off). One run
    /// at a time across every process sharing the database.
    #[arg(long, env = "RECONCILE_INTERVAL_HOURS", default_value_t = 24.0, global = true)]
    pub reconcile_interval_hours: f64,
    /// Days back a scheduled reconciliation looks (payments created in that window).
    #[arg(long, env = "RECONCILE_WINDOW_DAYS", default_value_t = 3, global = true)]
    pub reconcile_window_days: i64,
    /// Stripe API calls per second reconciliation makes at most (Stripe's own limit is 100 in
    /// live mode, 25 in test mode; the checkout needs its share).
    #[arg(long, env = "RECONCILE_RATE", default_value_t = 20, global = true)]
    pub reconcile_rate: u32,
    /// Advertiser emails whose purchases are the owner's own tests: listed apart, never revenue
    /// (comma-separated).
    #[arg(long, env = "REVENUE_OWNER_EMAILS", value_delimiter = ',', global = true)]
    pub revenue_owner_emails: Vec<String>,
    /// Contract ids whose purchases are the owner's own tests (comma-separated).
    #[arg(long, env = "REVENUE_OWNER_CONTRACTS", value_delimiter = ',', global = true)]
    pub revenue_owner_contracts: Vec<i64>,
    /// Revision requests (with their artwork) one user may have in progress at once; one more
    /// is refused with 429 and Retry-After before its body is read.
    #[arg(long, env = "UPLOADS_PER_USER", default_value_t = crate::routes::revisions::UPLOADS_PER_USER, global = true)]
    pub uploads_per_user: usize,
    /// Requests a minute each API key may make (`/api/v1/...`); beyond it, 429 with Retry-After.
    #[arg(long, env = "API_RATE_PER_MINUTE", default_value_t = 60, global = true)]
    pub api_rate_per_minute: u32,
    /// Bearer token that GET /metrics requires (`Authorization: Bearer ...`). Unset: /metrics is
    /// not served at all, since its figures are not for the public.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true, global = true)]
    pub metrics_token: Option<String>,
    /// Labels every figure at /metrics `instance="<name>"` (unset: no label). For metrics
    /// collected other than by Prometheus scraping each process (which labels each target
    /// itself): through a load balancer, or merged by an agent. One name per process.
    #[arg(long, env = "INSTANCE_NAME", global = true)]
    pub instance_name: Option<String>,
    /// Slack incoming-webhook URL for the daily revenue summary (unset: no summary).
    #[arg(long, env = "SLACK_WEBHOOK_URL", hide_env_values = true, global = true)]
    pub slack_webhook_url: Option<String>,
    /// When (HH:MM, UTC) yesterday's summary is sent.
    #[arg(long, env = "SLACK_SUMMARY_AT", default_value = "08:00", global = true)]
    pub slack_summary_at: String,
    /// Slack app signing secret: verifies `/revenue` slash commands (unset: the command is off).
    #[arg(long, env = "SLACK_SIGNING_SECRET", hide_env_values = true, global = true)]
    pub slack_signing_secret: Option<String>,
    /// The Slack workspace (team id, T...) whose `/revenue` commands are answered; required with
    /// SLACK_SIGNING_SECRET. Commands from any other workspace get a refusal.
    #[arg(long, env = "SLACK_TEAM_ID", global = true)]
    pub slack_team_id: Option<String>,
    /// Slack member ids (U... or W..., comma-separated) who may ask `/revenue`; unset, every
    /// member of SLACK_TEAM_ID may.
    #[arg(long, env = "SLACK_ALLOWED_USERS", value_delimiter = ',', global = true)]
    pub slack_allowed_users: Vec<String>,
}

/// Checked configuration.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub db_max_connections: u32,
    pub db_timeout: Duration,
    pub terms: PackTerms,
    /// The mode chosen by the configuration; None when neither Stripe keys nor
    /// `--stripe-simulator` were given (fine for most CLI commands; serving refuses).
    pub mode: Option<DeploymentMode>,
    /// `--switch-mode`: serving in another mode than the database's is deliberate.
    pub switch_mode: bool,
    /// `SIMULATOR_PUBLIC`: simulator mode may listen beyond loopback.
    pub simulator_public: bool,
    pub stripe: Option<StripeApi>,
    /// `STRIPE_TIMEOUT_SECS`: the deadline of every Stripe API call (the simulator's too).
    pub stripe_timeout: Duration,
    pub publishable_key: Option<String>,
    pub webhook_secrets: Vec<WebhookSecret>,
    pub bind: SocketAddr,
    pub connections: crate::application::serve::ConnectionLimits,
    pub worker_interval: Duration,
    pub data_dir: std::path::PathBuf,
    pub artwork: crate::artwork::store::ArtworkStorage,
    pub secure_cookies: bool,
    /// `PUBLIC_URL`'s origin (`https://host[:port]`, lower-case), when set.
    pub public_origin: Option<String>,
    pub client_ip_header: Option<String>,
    /// Whose `client_ip_header` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// None: no scheduled reconciliation.
    pub reconcile_interval: Option<Duration>,
    pub reconcile_window: chrono::Duration,
    pub reconcile_rate: u32,
    pub owners: app::services::revenue::Owners,
    pub api_rate_per_minute: std::num::NonZeroU32,
    /// UPLOADS_PER_USER: revision requests one user may have in progress at once.
    pub uploads_per_user: usize,
    /// SHA-256 (hex) of METRICS_TOKEN; None: /metrics answers 404.
    pub metrics_token_hash: Option<String>,
    /// INSTANCE_NAME: the `instance` label on every figure.
    pub instance: Option<String>,
    pub slack: app::services::slack::SlackConfig,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database", &redact_url(&self.database_url))
            .field("terms", &self.terms)
            .field("mode", &self.mode)
            .field("stripe", &self.stripe.is_some())
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("bind", &self.bind)
            .finish()
    }
}

/// A database URL without its password, for logs.
/// INSTANCE_NAME, checked: a label value a person reads in dashboards, so a short printable
/// name (a pod or host name), not free text that could carry a newline into the metrics text.
fn instance_name(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else { return Ok(None) };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    if name.len() > 64 || !name.chars().all(allowed) {
        return Err(format!(
            "INSTANCE_NAME must be 1 to 64 letters, digits, '-', '_', '.' or ':' (a host or pod name), got {name:?}"
        ));
    }
    Ok(Some(name.to_string()))
}

pub fn redact_url(url: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &base[..scheme_end], &base[at + 1..])
        }
        _ => base.to_string(),
    };
    // libpq also takes the password as a parameter (`?password=…`).
    match query {
        None => base,
        Some(q) => {
            let params: Vec<String> = q
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
    }
}

fn positive_secs(name: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v < 86_400.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("{name} must be a number of seconds between 0 and 86400, got {v}"))
    }
}

impl Settings {
    /// The demo logins' passwords are published in the README: never on a server that takes
    /// real money.
    pub fn allow_demo(&self) -> Result<(), String> {
        match self.mode {
            Some(DeploymentMode::Live) => {
                Err("--demo creates users whose passwords are public; it is refused with a live Stripe key".into())
            }
            _ => Ok(()),
        }
    }

    /// The chosen mode, for serving: a start without one stops with the line naming both choices.
    /// It is also where the simulator's loopback rule is kept, so every way of serving meets it.
    pub fn serving_mode(&self) -> Result<DeploymentMode, String> {
        let mode = self.mode.ok_or_else(|| app::domain::deployment::NO_MODE_CHOSEN.to_string())?;
        app::domain::deployment::check_listen_address(mode, self.bind.ip(), self.simulator_public)?;
        Ok(mode)
    }
}

impl Config {
    pub fn settings(&self) -> Result<Settings, String> {
        let stripe_timeout = positive_secs("STRIPE_TIMEOUT_SECS", self.stripe_timeout_secs)?;
        let currency = Currency::parse(&self.pack_currency).map_err(|e| format!("PACK_CURRENCY: {e}"))?;
        let terms = PackTerms::new(Money::new(self.pack_price, currency), self.pack_size, self.base_revisions)?;
        let bind: SocketAddr = self
            .bind
            .parse()
            .map_err(|_| format!("BIND_ADDR `{}` is not an address like 127.0.0.1:3000", self.bind))?;
        let webhook_secrets = match &self.stripe_webhook_secret {
            Some(s) => WebhookSecret::parse_list(s).map_err(|e| format!("STRIPE_WEBHOOK_SECRET: {e}"))?,
            None => Vec::new(),
        };
        let (mode, stripe, publishable_key) = match self.stripe_secret_key.as_deref().filter(|k| !k.trim().is_empty()) {
            Some(_) if self.stripe_simulator => {
                return Err("STRIPE_SIMULATOR and STRIPE_SECRET_KEY are both set: choose real Stripe or the \
                            built-in simulator"
                    .into())
            }
            Some(sk) => {
                let sk = sk.trim();
                let mode = key_mode(sk)?;
                let pk = self
                    .stripe_publishable_key
                    .as_deref()
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .ok_or("STRIPE_PUBLISHABLE_KEY is required with STRIPE_SECRET_KEY")?;
                let expected = match mode {
                    StripeMode::Test => "pk_test_",
                    StripeMode::Live => "pk_live_",
                };
                if !pk.starts_with(expected) {
                    return Err(format!(
                        "STRIPE_PUBLISHABLE_KEY must start with {expected} to match the {}-mode secret key",
                        mode.as_str()
                    ));
                }
                if webhook_secrets.is_empty() {
                    return Err("STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY: without it no webhook can be verified".into());
                }
                if !(self.stripe_api_base.starts_with("https://") || self.stripe_api_base.starts_with("http://")) {
                    return Err(format!("STRIPE_API_BASE `{}` is not an http(s) URL", self.stripe_api_base));
                }
                let api = StripeApi::with_timeout(sk, &self.stripe_api_base, stripe_timeout)?;
                let mode = match mode {
                    StripeMode::Test => DeploymentMode::Test,
                    StripeMode::Live => DeploymentMode::Live,
                };
                (Some(mode), Some(api), Some(pk.to_string()))
            }
            // No key: the simulator when chosen, else no mode (serving stops with NO_MODE_CHOSEN).
            // A publishable key or webhook secret without the secret key is a deployment that lost
            // its key (a typo, a missing secret): say so, whatever else was chosen.
            None => {
                let stray = [
                    (
                        "STRIPE_PUBLISHABLE_KEY",
                        self.stripe_publishable_key.as_deref().is_some_and(|k| !k.trim().is_empty()),
                    ),
                    ("STRIPE_WEBHOOK_SECRET", !webhook_secrets.is_empty()),
                ];
                if let Some((name, _)) = stray.iter().find(|(_, set)| *set) {
                    return Err(format!(
                        "{name} is set but STRIPE_SECRET_KEY is not: set all three Stripe settings for real \
                         Stripe, or none of them and STRIPE_SIMULATOR=true for the built-in simulator"
                    ));
                }
                (self.stripe_simulator.then_some(DeploymentMode::Simulator), None, None)
            }
        };
        let public_origin = self
            .public_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(public_origin)
            .transpose()
            .map_err(|e| format!("PUBLIC_URL: {e}"))?;
        if self.db_max_connections == 0 {
            return Err("DB_MAX_CONNECTIONS must be at least 1".into());
        }
        Ok(Settings {
            switch_mode: self.switch_mode,
            simulator_public: self.simulator_public,
            database_url: self.database_url.clone(),
            db_max_connections: self.db_max_connections,
            db_timeout: positive_secs("DB_TIMEOUT_SECS", self.db_timeout_secs)?,
            terms,
            mode,
            stripe,
            stripe_timeout,
            publishable_key,
            webhook_secrets,
            bind,
            connections: crate::application::serve::ConnectionLimits {
                header_timeout: positive_secs("HEADER_TIMEOUT_SECS", self.header_timeout_secs)?,
                body_timeout: positive_secs("BODY_TIMEOUT_SECS", self.body_timeout_secs)?,
                max_connections: match self.max_connections {
                    n @ 1..=1_000_000 => n,
                    n => return Err(format!("MAX_CONNECTIONS must be between 1 and 1000000, got {n}")),
                },
                // Behind a proxy every connection comes from the proxy: a cap per peer would
                // be a cap on everyone.
                max_connections_per_client: match self.max_connections_per_client {
                    _ if self.client_ip_header.as_deref().is_some_and(|h| !h.trim().is_empty()) => None,
                    0 => None,
                    n => Some(n),
                },
                body_deadlines: crate::application::middleware::body_deadline::BodyDeadlines {
                    body: positive_secs("BODY_DEADLINE_SECS", self.body_deadline_secs)?,
                    upload: positive_secs("UPLOAD_DEADLINE_SECS", self.upload_deadline_secs)?,
                },
                drain_timeout: positive_secs("DRAIN_TIMEOUT_SECS", self.drain_timeout_secs)?,
            },
            worker_interval: positive_secs("WORKER_INTERVAL_SECS", self.worker_interval_secs)?,
            data_dir: self.data_dir.clone(),
            artwork: crate::artwork::store::ArtworkStorage::parse(self.artwork_store.as_deref(), std::env::vars())?,
            secure_cookies: self.secure_cookies || public_origin.as_deref().is_some_and(|o| o.starts_with("https://")),
            public_origin,
            client_ip_header: self.client_ip_header.clone().filter(|h| !h.trim().is_empty()),
            trusted_proxies: app::services::sign_in_throttle::parse_networks(&self.trusted_proxies)
                .map_err(|e| format!("TRUSTED_PROXIES: {e}"))?,
            reconcile_interval: {
                let h = self.reconcile_interval_hours;
                if h == 0.0 {
                    None
                } else if h.is_finite() && h > 0.0 && h <= 24.0 * 31.0 {
                    Some(Duration::from_secs_f64(h * 3600.0))
                } else {
                    return Err(format!("RECONCILE_INTERVAL_HOURS must be 0 (off) or up to 744 hours, got {h}"));
                }
            },
            reconcile_window: match self.reconcile_window_days {
                d @ 1..=365 => chrono::Duration::days(d),
                d => return Err(format!("RECONCILE_WINDOW_DAYS must be between 1 and 365, got {d}")),
            },
            reconcile_rate: match self.reconcile_rate {
                r @ 1..=100 => r,
                r => return Err(format!("RECONCILE_RATE must be between 1 and 100 calls a second, got {r}")),
            },
            owners: owners(&self.revenue_owner_emails, &self.revenue_owner_contracts)?,
            api_rate_per_minute: std::num::NonZeroU32::new(self.api_rate_per_minute)
                .filter(|r| r.get() <= 100_000)
                .ok_or_else(|| {
                    format!("API_RATE_PER_MINUTE must be between 1 and 100000, got {}", self.api_rate_per_minute)
                })?,
            uploads_per_user: match self.uploads_per_user {
                n @ 1..=1_000 => n,
                n => return Err(format!("UPLOADS_PER_USER must be between 1 and 1000, got {n}")),
            },
            metrics_token_hash: match self.metrics_token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                Some(t) if t.len() < 16 => {
                    return Err("METRICS_TOKEN must be at least 16 characters (it guards the metrics)".into())
                }
                Some(t) => Some(app::services::api_keys::hash(t)),
                None => None,
            },
            instance: instance_name(self.instance_name.as_deref())?,
            slack: app::services::slack::SlackConfig {
                webhook: self
                    .slack_webhook_url
                    .as_deref()
                    .filter(|u| !u.trim().is_empty())
                    .map(app::slack::WebhookUrl::parse)
                    .transpose()?,
                summary_at: app::domain::slack::parse_time(&self.slack_summary_at)
                    .map_err(|e| format!("SLACK_SUMMARY_AT: {e}"))?,
                signing_secret: self
                    .slack_signing_secret
                    .as_deref()
                    .filter(|s| !s.trim().is_empty())
                    .map(app::slack::SigningSecret::new)
                    .transpose()?,
                askers: slack_askers(self)?,
            },
        })
    }
}

/// Whose `/revenue` commands are answered. A signing secret without a workspace is refused at
/// start-up: the signature alone admits every workspace the Slack app is installed in.
fn slack_askers(c: &Config) -> Result<app::domain::slack::Askers, String> {
    use app::domain::slack::parse_slack_id;
    let team_id = c
        .slack_team_id
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(|t| parse_slack_id(t, "workspace", &['T']).map_err(|e| format!("SLACK_TEAM_ID: {e}")))
        .transpose()?;
    let signing = c.slack_signing_secret.as_deref().is_some_and(|s| !s.trim().is_empty());
    if signing && team_id.is_none() {
        return Err("SLACK_TEAM_ID is required with SLACK_SIGNING_SECRET: the workspace whose /revenue commands \
                    are answered (Slack app → Basic Information, or the T... in the workspace's URL)"
            .into());
    }
    let users = c
        .slack_allowed_users
        .iter()
        .filter(|u| !u.trim().is_empty())
        .map(|u| parse_slack_id(u, "member", &['U', 'W']).map_err(|e| format!("SLACK_ALLOWED_USERS: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(app::domain::slack::Askers { team_id, users })
}

/// `https://Shop.Example/` → `https://shop.example`: the origin browsers send in `Origin`.
/// A path, query, user or other scheme is refused: the setting is where the app is reached, and
/// anything more would never match a browser's `Origin`.
fn public_origin(url: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(s, _)| matches!(s.to_ascii_lowercase().as_str(), "http" | "https"))
        .ok_or_else(|| format!("`{url}` must start with https:// (or http://)"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!("`{url}` must be only scheme, host and port, like https://revisions.example.com"));
    }
    Ok(format!("{}://{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
}

/// The owner's test accounts, checked: a typo in an email would silently count the owner's tests
/// as revenue, so every entry must be an email.
fn owners(emails: &[String], contracts: &[i64]) -> Result<app::services::revenue::Owners, String> {
    let mut out = app::services::revenue::Owners::default();
    for e in emails.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let email = app::domain::users::Email::parse(e).map_err(|why| format!("REVENUE_OWNER_EMAILS: {why}"))?;
        out.emails.push(email.as_str().to_string());
    }
    if let Some(bad) = contracts.iter().find(|id| **id <= 0) {
        return Err(format!("REVENUE_OWNER_CONTRACTS: {bad} is not a contract id"));
    }
    out.contract_ids = contracts.to_vec();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        c: Config,
    }

    fn parse(args: &[&str]) -> Result<Settings, String> {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).unwrap().c.settings()
    }

    #[test]
    fn an_instance_name_is_a_short_printable_label() {
        assert_eq!(parse(&["--instance-name", "web-2.eu:3000"]).unwrap().instance.as_deref(), Some("web-2.eu:3000"));
        assert_eq!(parse(&["--instance-name", " "]).unwrap().instance, None);
        assert_eq!(parse(&[]).unwrap().instance, None);
        for bad in ["web 2", "a\"}\nfake_total 1", &"x".repeat(65)] {
            let e = parse(&["--instance-name", bad]).map(drop).expect_err("refused");
            assert!(e.contains("INSTANCE_NAME must be"), "{e}");
        }
    }

    #[test]
    fn the_cap_per_client_is_off_behind_a_proxy() {
        let direct = parse(&[]).unwrap().connections;
        assert_eq!(direct.max_connections_per_client, Some(crate::application::serve::MAX_CONNECTIONS_PER_CLIENT));
        assert_eq!(direct.body_deadlines, crate::application::middleware::body_deadline::BodyDeadlines::default());
        assert_eq!(parse(&["--max-connections-per-client", "0"]).unwrap().connections.max_connections_per_client, None);
        let proxied = parse(&["--client-ip-header", "X-Forwarded-For"]).unwrap().connections;
        assert_eq!(proxied.max_connections_per_client, None, "every peer is the proxy");
        let e = parse(&["--body-deadline-secs", "0"]).map(drop).expect_err("refused");
        assert!(e.contains("BODY_DEADLINE_SECS"), "{e}");
    }

    #[test]
    fn database_passwords_never_print() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/rs"), "postgres://app:***@db:5432/rs");
        assert_eq!(
            redact_url("postgres://app@db/rs?sslmode=require&password=s3cret"),
            "postgres://app:***@db/rs?sslmode=require&password=***"
        );
        assert_eq!(redact_url("sqlite:data/revision-store.db"), "sqlite:data/revision-store.db");
    }

    #[test]
    fn defaults_are_the_standard_terms_on_sqlite() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.terms, PackTerms::standard());
        assert!(s.database_url.starts_with("sqlite:"));
        assert!(s.stripe.is_none());
        assert_eq!(s.mode, None, "no key and no choice: no mode");
        assert_eq!(s.serving_mode().unwrap_err(), app::domain::deployment::NO_MODE_CHOSEN);
    }

    #[test]
    fn the_simulator_is_chosen_never_fallen_into() {
        for args in [&["--stripe-simulator"][..], &["--stripe-simulator", "true"]] {
            assert_eq!(parse(args).unwrap().serving_mode(), Ok(DeploymentMode::Simulator));
        }
        assert_eq!(parse(&["--stripe-simulator", "false"]).unwrap().mode, None);
        let e = parse(&[
            "--stripe-simulator",
            "--stripe-secret-key",
            "sk_live_x",
            "--stripe-publishable-key",
            "pk_live_x",
            "--stripe-webhook-secret",
            "whsec_x",
        ])
        .unwrap_err();
        assert!(e.contains("choose real Stripe or the built-in simulator"), "{e}");
    }

    #[test]
    fn the_simulator_serves_on_loopback_unless_told_otherwise() {
        let wide = parse(&["--stripe-simulator", "--bind", "0.0.0.0:3000"]).unwrap();
        let e = wide.serving_mode().unwrap_err();
        assert!(e.contains("loopback") && e.contains("SIMULATOR_PUBLIC"), "{e}");
        let meant = parse(&["--stripe-simulator", "--bind", "0.0.0.0:3000", "--simulator-public"]).unwrap();
        assert_eq!(meant.serving_mode(), Ok(DeploymentMode::Simulator));
        assert_eq!(parse(&["--stripe-simulator"]).unwrap().bind.ip().to_string(), "127.0.0.1");
    }

    #[test]
    fn revenue_commands_need_the_workspace_they_answer() {
        let secret = ["--slack-signing-secret", "slack-signing-secret-0123456789"];
        let e = parse(&secret).map(drop).unwrap_err();
        assert!(e.contains("SLACK_TEAM_ID is required"), "{e}");
        let s =
            parse(&[&secret[..], &["--slack-team-id", "T0AB12", "--slack-allowed-users", "U01,W02"]].concat()).unwrap();
        assert_eq!(s.slack.askers.team_id.as_deref(), Some("T0AB12"));
        assert_eq!(s.slack.askers.users, ["U01", "W02"]);
        let e = parse(&[&secret[..], &["--slack-team-id", "acme"]].concat()).map(drop).unwrap_err();
        assert!(e.contains("SLACK_TEAM_ID: `acme` is not a Slack workspace id"), "{e}");
        let e = parse(&[&secret[..], &["--slack-team-id", "T0AB12", "--slack-allowed-users", "bob"]].concat())
            .map(drop)
            .unwrap_err();
        assert!(e.contains("SLACK_ALLOWED_USERS"), "{e}");
    }

    #[test]
    fn invalid_configuration_says_what_is_wrong() {
        assert!(parse(&["--pack-price", "0"]).unwrap_err().contains("price"));
        assert!(parse(&["--pack-currency", "dollars"]).unwrap_err().contains("PACK_CURRENCY"));
        assert!(parse(&["--bind", "nowhere"]).unwrap_err().contains("BIND_ADDR"));
        assert!(parse(&["--stripe-secret-key", "sk_test_x"]).unwrap_err().contains("STRIPE_PUBLISHABLE_KEY"));
        assert!(parse(&["--stripe-secret-key", "sk_live_x", "--stripe-publishable-key", "pk_test_x"])
            .unwrap_err()
            .contains("pk_live_"));
        assert!(parse(&["--stripe-secret-key", "sk_test_x", "--stripe-publishable-key", "pk_test_x"])
            .unwrap_err()
            .contains("STRIPE_WEBHOOK_SECRET"));
        assert!(parse(&["--stripe-webhook-secret", "nope"]).unwrap_err().contains("whsec_"));
    }

    #[test]
    fn a_lost_secret_key_does_not_fall_back_to_the_simulator() {
        let e = parse(&["--stripe-publishable-key", "pk_live_x"]).unwrap_err();
        assert!(e.contains("STRIPE_PUBLISHABLE_KEY is set but STRIPE_SECRET_KEY is not"), "{e}");
        let e = parse(&["--stripe-webhook-secret", "whsec_abc"]).unwrap_err();
        assert!(e.contains("STRIPE_WEBHOOK_SECRET is set but STRIPE_SECRET_KEY is not"), "{e}");
        // Blank values count as unset (an empty line in an env file).
        assert_eq!(
            parse(&["--stripe-publishable-key", " ", "--stripe-simulator"]).unwrap().mode,
            Some(DeploymentMode::Simulator)
        );
    }

    #[test]
    fn demo_users_are_refused_with_a_live_key() {
        let keys = |sk: &str, pk: &str| {
            parse(&["--stripe-secret-key", sk, "--stripe-publishable-key", pk, "--stripe-webhook-secret", "whsec_x"])
                .unwrap()
        };
        assert!(keys("sk_live_x", "pk_live_x").allow_demo().unwrap_err().contains("live Stripe key"));
        assert!(keys("sk_test_x", "pk_test_x").allow_demo().is_ok());
        assert!(parse(&["--stripe-simulator"]).unwrap().allow_demo().is_ok(), "the simulator is what --demo is for");
    }

    #[test]
    fn the_public_url_is_an_origin() {
        let s = parse(&["--public-url", "https://Revisions.Example.com/"]).unwrap();
        assert_eq!(s.public_origin.as_deref(), Some("https://revisions.example.com"));
        assert!(s.secure_cookies, "reached over https: cookies are Secure");
        let s = parse(&["--public-url", "http://localhost:8080"]).unwrap();
        assert_eq!((s.public_origin.as_deref(), s.secure_cookies), (Some("http://localhost:8080"), false));
        for bad in ["revisions.example.com", "https://x.example/app", "ftp://x.example", "https://u@x.example"] {
            assert!(parse(&["--public-url", bad]).unwrap_err().starts_with("PUBLIC_URL: "), "{bad}");
        }
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let s = parse(&[
            "--stripe-secret-key",
            "sk_test_SECRETKEY",
            "--stripe-publishable-key",
            "pk_test_x",
            "--stripe-webhook-secret",
            "whsec_SECRETHOOK",
            "--database-url",
            "postgres://u:PGPASS@localhost/db",
        ])
        .unwrap();
        let shown = format!("{s:?}");
        for secret in ["SECRETKEY", "SECRETHOOK", "PGPASS"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(s.mode, Some(DeploymentMode::Test));
    }
}
