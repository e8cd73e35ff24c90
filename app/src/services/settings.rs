//! The settings the services read, grouped by concern. The server's `config` checks its flags
//! into these groups once at start-up, and `Services` keeps them behind one `Arc` that every
//! clone shares: a new setting is a field in its group here, a flag in its `config` group, and a
//! test, with nothing copied field by field in between.
use super::revenue::Owners;
use super::slack::SlackConfig;
use std::num::NonZeroU32;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    pub web: WebSettings,
    pub reconcile: ReconcileSettings,
    /// Whose purchases are the owner's own tests, never revenue.
    pub owners: Owners,
    /// The daily summary's webhook and time, and the slash command's signing secret.
    pub slack: SlackConfig,
    /// How long a request waits for the database before answering 503 (`DB_TIMEOUT_SECS`): also
    /// the most a webhook delivery waits for the group-commit writer, however many batches are
    /// queued ahead of it.
    pub db_timeout: Duration,
    /// Outgoing email (`SMTP_URL`, `MAIL_FROM`); None: no email, links are shown to copy.
    pub mail: Option<crate::mail::Mailer>,
    /// The alert rules' thresholds (`ALERT_THRESHOLDS`).
    pub alerts: super::alerts::AlertSettings,
    /// Forwarding stored events to the publisher's destinations.
    pub forwarding: ForwardingSettings,
}

/// Forwarding's clocks. The production values are the defaults; tests shorten them.
#[derive(Debug, Clone)]
pub struct ForwardingSettings {
    /// The delays before each attempt (`domain::forwarding::default_schedule`): the first is
    /// the first attempt's; after the last, a delivery is dead.
    pub schedule: Vec<Duration>,
    /// The most one POST may take, connection included, before it counts as failed: a slow
    /// receiver holds one of its own destination's slots for this long at most.
    pub request_timeout: Duration,
    /// How far behind its cursor the fan-out looks again for events that committed late (see
    /// `services::forwarding::fanout`).
    pub look_back: Duration,
    /// How often the fan-out looks back (each process, per destination; its first sweep always
    /// does).
    pub look_back_every: Duration,
    /// How long a destination's sender sleeps without sending before it ends (the next sweep
    /// starts another while the destination sends).
    pub idle: Duration,
}

impl Default for ForwardingSettings {
    fn default() -> Self {
        Self {
            schedule: crate::domain::forwarding::default_schedule(),
            request_timeout: Duration::from_secs(10),
            look_back: Duration::from_secs(5 * 60),
            look_back_every: Duration::from_secs(30),
            idle: Duration::from_secs(10),
        }
    }
}

/// How the app meets browsers and the proxy in front of it.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Cookies this app sets are Secure, https only (SECURE_COOKIES, or an https PUBLIC_URL).
    pub secure_cookies: bool,
    /// The origin users reach the app at (`PUBLIC_URL`, `https://host[:port]`, lower-case), for
    /// links made to be passed on (a set-password link); None: the address a request came to.
    pub public_origin: Option<String>,
    /// The header a trusted reverse proxy puts the client's address in (e.g. X-Forwarded-For),
    /// for throttling; None: the socket peer is the client.
    pub client_ip_header: Option<String>,
    /// The peers whose `client_ip_header` is believed (`TRUSTED_PROXIES`); from anyone else the
    /// header is ignored and the socket peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Requests a minute each key of the totals API may make.
    pub api_rate_per_minute: NonZeroU32,
}

/// Reconciliation and the worker that schedules it.
#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    /// Between worker sweeps.
    pub worker_interval: Duration,
    /// Between scheduled reconciliations; None: no scheduled reconciliation.
    pub interval: Option<Duration>,
    /// How far back a scheduled (or admin-started) run looks.
    pub window: chrono::Duration,
    /// Stripe API calls a second at most.
    pub rate: u32,
}

/// The flags' defaults, for services made without a command line (the simulator's own tests,
/// the benchmarks' services): the same values as the server's `config` flags.
impl Default for Settings {
    fn default() -> Self {
        Self {
            web: WebSettings {
                secure_cookies: false,
                public_origin: None,
                client_ip_header: None,
                trusted_proxies: super::sign_in_throttle::parse_networks(
                    super::sign_in_throttle::DEFAULT_TRUSTED_PROXIES,
                )
                .expect("the default parses"),
                api_rate_per_minute: NonZeroU32::new(60).expect("not zero"),
            },
            reconcile: ReconcileSettings {
                worker_interval: Duration::from_secs(5),
                interval: Some(Duration::from_secs(24 * 3600)),
                window: chrono::Duration::days(3),
                rate: 20,
            },
            owners: Owners::default(),
            slack: SlackConfig::default(),
            db_timeout: Duration::from_secs(5),
            mail: None,
            alerts: Default::default(),
            forwarding: Default::default(),
        }
    }
}
