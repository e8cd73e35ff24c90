//! Stripe: real Stripe (its three keys) or the built-in simulator, the API's base and deadline,
//! and the pack's price and size (`PackArgs`).
use super::positive_secs;
use app::domain::deployment::DeploymentMode;
use app::domain::events::StripeMode;
use app::domain::{Currency, Money, PackTerms};
use app::stripe::client::key_mode;
use app::stripe::{StripeApi, WebhookSecret};
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct StripeArgs {
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
}

/// Stripe, checked.
#[derive(Clone)]
pub struct StripeSettings {
    /// The mode chosen by the configuration; None when neither Stripe keys nor
    /// `--stripe-simulator` were given (fine for most CLI commands; serving refuses).
    pub mode: Option<DeploymentMode>,
    /// `--switch-mode`: serving in another mode than the database's is deliberate.
    pub switch_mode: bool,
    /// `SIMULATOR_PUBLIC`: simulator mode may listen beyond loopback.
    pub simulator_public: bool,
    /// The Stripe API client (real Stripe only).
    pub api: Option<StripeApi>,
    /// `STRIPE_TIMEOUT_SECS`: the deadline of every Stripe API call (the simulator's too).
    pub timeout: Duration,
    pub publishable_key: Option<String>,
    pub webhook_secrets: Vec<WebhookSecret>,
}

impl StripeArgs {
    pub fn check(&self) -> Result<StripeSettings, String> {
        let timeout = positive_secs("STRIPE_TIMEOUT_SECS", self.stripe_timeout_secs)?;
        let webhook_secrets = match &self.stripe_webhook_secret {
            Some(s) => WebhookSecret::parse_list(s).map_err(|e| format!("STRIPE_WEBHOOK_SECRET: {e}"))?,
            None => Vec::new(),
        };
        let (mode, api, publishable_key) = match self.stripe_secret_key.as_deref().filter(|k| !k.trim().is_empty()) {
            Some(_) if self.stripe_simulator => {
                return Err("STRIPE_SIMULATOR and STRIPE_SECRET_KEY are both set: choose real Stripe or the \
                            built-in simulator"
                    .into())
            }
            Some(sk) => {
                let (mode, api, pk) = self.real_stripe(sk.trim(), &webhook_secrets, timeout)?;
                (Some(mode), Some(api), Some(pk))
            }
            None => (self.keyless(&webhook_secrets)?, None, None),
        };
        Ok(StripeSettings {
            mode,
            switch_mode: self.switch_mode,
            simulator_public: self.simulator_public,
            api,
            timeout,
            publishable_key,
            webhook_secrets,
        })
    }

    /// Real Stripe: the secret key's mode, with a publishable key of that mode and a webhook
    /// secret.
    fn real_stripe(
        &self,
        sk: &str,
        webhook_secrets: &[WebhookSecret],
        timeout: Duration,
    ) -> Result<(DeploymentMode, StripeApi, String), String> {
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
            return Err(
                "STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY: without it no webhook can be verified"
                    .into(),
            );
        }
        if !(self.stripe_api_base.starts_with("https://") || self.stripe_api_base.starts_with("http://")) {
            return Err(format!("STRIPE_API_BASE `{}` is not an http(s) URL", self.stripe_api_base));
        }
        let api = StripeApi::with_timeout(sk, &self.stripe_api_base, timeout)?;
        let mode = match mode {
            StripeMode::Test => DeploymentMode::Test,
            StripeMode::Live => DeploymentMode::Live,
        };
        Ok((mode, api, pk.to_string()))
    }

    /// No key: the simulator when chosen, else no mode (serving stops with NO_MODE_CHOSEN).
    /// A publishable key or webhook secret without the secret key is a deployment that lost
    /// its key (a typo, a missing secret): say so, whatever else was chosen.
    fn keyless(&self, webhook_secrets: &[WebhookSecret]) -> Result<Option<DeploymentMode>, String> {
        let stray = [
            ("STRIPE_PUBLISHABLE_KEY", self.stripe_publishable_key.as_deref().is_some_and(|k| !k.trim().is_empty())),
            ("STRIPE_WEBHOOK_SECRET", !webhook_secrets.is_empty()),
        ];
        if let Some((name, _)) = stray.iter().find(|(_, set)| *set) {
            return Err(format!(
                "{name} is set but STRIPE_SECRET_KEY is not: set all three Stripe settings for real \
                 Stripe, or none of them and STRIPE_SIMULATOR=true for the built-in simulator"
            ));
        }
        Ok(self.stripe_simulator.then_some(DeploymentMode::Simulator))
    }
}

#[derive(clap::Args, Clone)]
pub struct PackArgs {
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
}

impl PackArgs {
    pub fn check(&self) -> Result<PackTerms, String> {
        let currency = Currency::parse(&self.pack_currency).map_err(|e| format!("PACK_CURRENCY: {e}"))?;
        PackTerms::new(Money::new(self.pack_price, currency), self.pack_size, self.base_revisions)
    }
}
