//! Services: the use cases, each a plain async function over `Services` (database, terms, Stripe).
//! The web layer and the CLI call these; they call the domain and the store.
pub mod accounts;
pub mod adjustments;
pub mod alerts;
pub mod api_keys;
pub mod background;
pub mod confirm;
pub mod deployment;
pub mod event_search;
pub mod event_writer;
pub mod evidence;
pub mod forgot;
pub mod forwarding;
pub mod fulfil;
pub mod gateway;
pub mod intake;
pub mod keys;
pub mod mail;
pub mod people;
pub mod processing;
pub mod purchase;
pub mod reconcile;
pub mod refunds;
pub mod revenue;
pub mod seals;
pub mod settings;
pub mod sign_in_throttle;
pub mod slack;
pub mod sources;
pub mod statement;
pub mod stats;

use crate::domain::events::{RetryPolicy, StripeMode};
use crate::domain::PackTerms;
use crate::store::Db;
use crate::stripe::{StripeApi, WebhookSecret};
use std::sync::{Arc, OnceLock};

/// The log target of the line written per webhook delivery (credited, duplicate, already
/// credited), so an operator can turn those down (`RUST_LOG=info,revision_store::delivery=warn`)
/// and keep everything else.
pub const DELIVERY_LOG: &str = "revision_store::delivery";

/// Stripe.js, always loaded from Stripe (PCI rules: never self-hosted) outside simulator mode.
pub const STRIPE_JS_URL: &str = "https://js.stripe.com/v3/";

#[derive(Clone, Debug)]
pub struct Services {
    pub db: Db,
    pub terms: PackTerms,
    /// Test or live: from the secret key (keyless simulator mode is test).
    pub mode: StripeMode,
    pub webhook_secrets: Arc<Vec<WebhookSecret>>,
    pub stripe: Option<StripeApi>,
    /// Payments go to the built-in simulator: pages say so, and no money moves.
    pub simulated: bool,
    pub retry: RetryPolicy,
    /// How long a processor owns a claimed event before another may take it over.
    pub lease_secs: i64,
    pub stats: Arc<stats::Stats>,
    /// Sign-in throttling: the rules (`domain::throttle`) and their counters.
    pub sign_in: Arc<sign_in_throttle::SignInThrottle>,
    /// Password hashes computed at once, at most.
    pub password_hashing: Arc<sign_in_throttle::HashingPermits>,
    /// The settings services read, by concern, shared by every clone (`settings`).
    pub settings: Arc<settings::Settings>,
    /// Handed to Stripe.js in the browser.
    pub publishable_key: Option<String>,
    /// Where the browser loads Stripe.js from: Stripe's, or the simulator's stand-in.
    pub stripe_js_url: String,
    /// Group-commit writer for webhook intake, started on first use.
    event_writer: Arc<OnceLock<event_writer::EventWriter>>,
    /// Calls to Stripe made for one user (starting and checking payments), per user; spent
    /// only by calls that reach Stripe.
    stripe_calls: Arc<governor::DefaultKeyedRateLimiter<i64>>,
    /// Work started by requests and not awaited by them (reconciliations), stopped on purpose
    /// at shutdown.
    pub background: Arc<background::Background>,
    /// The server's signing and sealing keys: the deployment's (`keys::ServerKeys::load`) in a
    /// serving process, else ephemeral.
    pub keys: Arc<keys::ServerKeys>,
    /// PayPal's signing certificates, fetched once each and kept while in date (`senders::certs`).
    pub certs: Arc<crate::senders::CertCache>,
    /// The destinations' senders running in this process (at most one each) and their client.
    pub forwarding: Arc<forwarding::Senders>,
}

/// The whole seconds (at least 1) a rate-limited caller waits, as Retry-After and our 429
/// messages say it: shared by the API's per-key limit and the per-user Stripe-call limit.
pub fn wait_secs(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> u64 {
    use governor::clock::{Clock, DefaultClock};
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// What one user may make us ask Stripe: a steady one a second, twenty at once. Spent only for a
/// call to Stripe (starting a purchase, whose PaymentIntent Stripe creates; `confirm_purchase`
/// when the ledger cannot answer): the payment modal's polls answered from our own ledger cost nothing,
/// so a run of purchases is never refused for polls. A client looping on the server functions
/// is slowed to a pace Stripe's own limits (25 a second in test mode, 100 live, for the whole
/// account) never notice.
fn stripe_call_quota() -> governor::Quota {
    governor::Quota::per_second(std::num::NonZeroU32::MIN).allow_burst(std::num::NonZeroU32::new(20).expect("20 > 0"))
}

impl Services {
    pub fn new(
        db: Db,
        terms: PackTerms,
        mode: StripeMode,
        webhook_secrets: Vec<WebhookSecret>,
        stripe: Option<StripeApi>,
    ) -> Self {
        let sign_in = Arc::new(sign_in_throttle::SignInThrottle::new(&db, Default::default()));
        Self {
            db,
            terms,
            mode,
            webhook_secrets: Arc::new(webhook_secrets),
            stripe,
            simulated: false,
            retry: RetryPolicy::default(),
            lease_secs: 30,
            stats: Arc::default(),
            sign_in,
            password_hashing: Arc::default(),
            settings: Arc::default(),
            publishable_key: None,
            stripe_js_url: STRIPE_JS_URL.to_string(),
            event_writer: Arc::default(),
            stripe_calls: Arc::new(governor::RateLimiter::keyed(stripe_call_quota())),
            background: Arc::default(),
            keys: Arc::new(keys::ServerKeys::ephemeral()),
            certs: Arc::default(),
            forwarding: Arc::default(),
        }
    }

    /// Ok when `user` may make us call Stripe now; else the whole seconds to wait.
    pub fn stripe_call_allowed(&self, user: i64) -> Result<(), u64> {
        self.stripe_calls.check_key(&user).map_err(|not_until| wait_secs(&not_until))
    }

    pub fn event_writer(&self) -> &event_writer::EventWriter {
        self.event_writer.get_or_init(|| event_writer::EventWriter::spawn(&self.db))
    }

    pub fn lease_until(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        now + chrono::Duration::seconds(self.lease_secs)
    }
}
