//! Configuration: one clap group per concern (each in its file, flattened into one set of
//! flags, every one also read from the environment and `.env`), each checked into its part of
//! `Settings`; invalid configuration stops start-up with one line saying what is wrong. Secrets
//! are never printed: clap hides their env values and `Settings`' Debug redacts them.
//!
//! A new setting is one field in its group's args (flag, env var, default), its checked form in
//! the group's settings, and a test; tests and benchmarks start from `Config::defaults()`.
pub mod alerts;
pub mod artwork;
pub mod database;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod reconcile;
pub mod revenue;
pub mod slack;
pub mod stripe;

pub use artwork::ArtworkSettings;
pub use database::{redact_url, DatabaseSettings};
pub use http::WebSettings;
pub use metrics::MetricsSettings;
pub use reconcile::ReconcileSettings;
pub use stripe::StripeSettings;

use app::domain::deployment::DeploymentMode;
use app::domain::PackTerms;
use std::net::SocketAddr;
use std::time::Duration;

/// Every flag. `next_display_order` keeps `--help` in the order it has always had.
#[derive(clap::Args, Clone)]
pub struct Config {
    #[command(flatten, next_display_order = 0)]
    pub database: database::DatabaseArgs,
    #[command(flatten, next_display_order = 1)]
    pub stripe: stripe::StripeArgs,
    #[command(flatten, next_display_order = 9)]
    pub pack: stripe::PackArgs,
    #[command(flatten, next_display_order = 13)]
    pub connections: http::ConnectionArgs,
    #[command(flatten, next_display_order = 23)]
    pub artwork: artwork::ArtworkArgs,
    #[command(flatten, next_display_order = 25)]
    pub web: http::WebArgs,
    #[command(flatten, next_display_order = 29)]
    pub reconcile: reconcile::ReconcileArgs,
    #[command(flatten, next_display_order = 33)]
    pub owners: revenue::OwnerArgs,
    #[command(flatten, next_display_order = 37)]
    pub metrics: metrics::MetricsArgs,
    #[command(flatten, next_display_order = 39)]
    pub slack: slack::SlackArgs,
    #[command(flatten, next_display_order = 44)]
    pub alerts: alerts::AlertArgs,
    #[command(flatten, next_display_order = 45)]
    pub mail: mail::MailArgs,
}

/// Checked configuration, by concern.
#[derive(Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub stripe: StripeSettings,
    pub terms: PackTerms,
    pub bind: SocketAddr,
    pub connections: crate::application::serve::ConnectionLimits,
    pub web: WebSettings,
    pub artwork: ArtworkSettings,
    pub reconcile: ReconcileSettings,
    pub owners: app::services::revenue::Owners,
    pub metrics: MetricsSettings,
    pub slack: app::services::slack::SlackConfig,
    pub alerts: app::services::alerts::AlertSettings,
    pub mail: Option<app::mail::Mailer>,
    /// Forwarding's schedule and timeouts: no flags (the production values are Standard
    /// Webhooks' schedule and a 10 s request), here so tests can shorten them.
    pub forwarding: app::services::settings::ForwardingSettings,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database", &redact_url(&self.database.url))
            .field("terms", &self.terms)
            .field("mode", &self.stripe.mode)
            .field("stripe", &self.stripe.api.is_some())
            .field("webhook_secrets", &self.stripe.webhook_secrets.len())
            .field("bind", &self.bind)
            .finish()
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
        match self.stripe.mode {
            Some(DeploymentMode::Live) => {
                Err("--demo creates users whose passwords are public; it is refused with a live Stripe key".into())
            }
            _ => Ok(()),
        }
    }

    /// The chosen mode, for serving: a start without one stops with the line naming both choices.
    /// It is also where the simulator's loopback rule is kept, so every way of serving meets it.
    pub fn serving_mode(&self) -> Result<DeploymentMode, String> {
        let mode = self.stripe.mode.ok_or_else(|| app::domain::deployment::NO_MODE_CHOSEN.to_string())?;
        app::domain::deployment::check_listen_address(mode, self.bind.ip(), self.stripe.simulator_public)?;
        Ok(mode)
    }
}

impl Config {
    pub fn settings(&self) -> Result<Settings, String> {
        let stripe = self.stripe.check()?;
        let terms = self.pack.check()?;
        let bind = self.connections.bind()?;
        let public_origin = self.web.public_origin()?;
        let database = self.database.check()?;
        let mail = self.mail.check(public_origin.as_deref())?;
        Ok(Settings {
            database,
            stripe,
            terms,
            bind,
            connections: self.connections.check(self.web.proxied())?,
            reconcile: self.reconcile.check()?,
            artwork: self.artwork.check()?,
            web: self.web.check(public_origin)?,
            owners: self.owners.check()?,
            metrics: self.metrics.check()?,
            slack: self.slack.check()?,
            alerts: self.alerts.check()?,
            mail,
            forwarding: Default::default(),
        })
    }

    /// The flags' defaults, whatever the environment says: what tests and benchmarks start from
    /// (then change what they need), so a new setting's default is written once, on its flag.
    pub fn defaults() -> Self {
        use clap::{Args, FromArgMatches};
        let command = Self::augment_args(clap::Command::new("defaults")).mut_args(|a| a.env(None::<&str>));
        Self::from_arg_matches(&command.get_matches_from(["defaults"])).expect("the defaults parse")
    }
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
        assert_eq!(
            parse(&["--instance-name", "web-2.eu:3000"]).unwrap().metrics.instance.as_deref(),
            Some("web-2.eu:3000")
        );
        assert_eq!(parse(&["--instance-name", " "]).unwrap().metrics.instance, None);
        assert_eq!(parse(&[]).unwrap().metrics.instance, None);
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
    fn the_defaults_are_the_flags_without_the_environment() {
        let s = Config::defaults().settings().unwrap();
        assert_eq!(s.database.url, "sqlite:data/revision-store.db");
        assert_eq!(s.terms, PackTerms::standard());
        assert_eq!(s.connections, crate::application::serve::ConnectionLimits::default());
        assert_eq!(s.stripe.timeout, app::stripe::client::DEFAULT_TIMEOUT);
        assert_eq!(s.reconcile.window, chrono::Duration::days(3));
        assert_eq!(s.web.api_rate_per_minute.get(), 60);
    }

    #[test]
    fn alert_thresholds_override_the_defaults_by_rule() {
        use app::domain::alerts::Rule;
        let s = parse(&["--alert-thresholds", "signature_failures=25,webhook_silence=3"]).unwrap().alerts;
        assert_eq!(s.thresholds.get(Rule::SignatureFailures), 25);
        assert_eq!(s.thresholds.get(Rule::WebhookSilence), 3);
        assert_eq!(s.thresholds.get(Rule::DeadLetters), 1);
        assert_eq!(parse(&[]).unwrap().alerts, Default::default());
        let e = parse(&["--alert-thresholds", "signature_failure=3"]).map(drop).expect_err("refused");
        assert!(e.contains("ALERT_THRESHOLDS") && e.contains("signature_failures"), "{e}");
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
        assert!(s.database.url.starts_with("sqlite:"));
        assert!(s.stripe.api.is_none());
        assert_eq!(s.stripe.mode, None, "no key and no choice: no mode");
        assert_eq!(s.serving_mode().unwrap_err(), app::domain::deployment::NO_MODE_CHOSEN);
    }

    #[test]
    fn the_simulator_is_chosen_never_fallen_into() {
        for args in [&["--stripe-simulator"][..], &["--stripe-simulator", "true"]] {
            assert_eq!(parse(args).unwrap().serving_mode(), Ok(DeploymentMode::Simulator));
        }
        assert_eq!(parse(&["--stripe-simulator", "false"]).unwrap().stripe.mode, None);
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
            parse(&["--stripe-publishable-key", " ", "--stripe-simulator"]).unwrap().stripe.mode,
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
        assert_eq!(s.web.public_origin.as_deref(), Some("https://revisions.example.com"));
        assert!(s.web.secure_cookies, "reached over https: cookies are Secure");
        let s = parse(&["--public-url", "http://localhost:8080"]).unwrap();
        assert_eq!((s.web.public_origin.as_deref(), s.web.secure_cookies), (Some("http://localhost:8080"), false));
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
        assert_eq!(s.stripe.mode, Some(DeploymentMode::Test));
    }
}
