//! Forwarding: the stored events (Stripe's and the gateway's other sources') passed on to the
//! publisher's own receivers, each signed by us with the Standard Webhooks scheme.
//!
//! An event travels after its commit, never on the webhook's path: the worker's sweep calls
//! [`work`], which fans new events out into `deliveries` (`fanout`) and makes sure each sending
//! destination has its sender running in this process (`senders`), which claims due deliveries
//! with a lease and POSTs them (`send`). This module is what operators call: destinations added,
//! listed, paused, resumed, enabled, their secrets rotated, deliveries listed and replayed.
use crate::domain::forwarding::{check_url, DestinationName, Filter, MetadataRule, RATE_CARD_KEYS, STRIPE};
use crate::domain::gateway::{DEFAULT_OVERLAP_HOURS, MAX_OVERLAP_HOURS};
use crate::senders::standard_webhooks;
use crate::store::deliveries::{self, DeliveryRow};
use crate::store::forward_destinations::{self, DestinationRow, NewDestination};
use crate::store::{webhook_sources, Db, StoreError};
use chrono::{DateTime, Duration, Utc};

pub mod fanout;
pub mod send;
pub mod senders;

pub use senders::Senders;

pub use crate::domain::forwarding::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_RATE_PER_SECOND};
/// The limits the table's CHECKs hold.
pub const MAX_RATE_PER_SECOND: u32 = 1000;
pub const MAX_IN_FLIGHT: u32 = 64;
/// The overlap of a rotated secret, by default and at most: the gateway's own.
pub const DEFAULT_OVERLAP: i64 = DEFAULT_OVERLAP_HOURS;

/// The statuses deliveries are listed by (`failing`: pending after a failed attempt).
pub const STATUSES: [&str; 4] = ["pending", "failing", "delivered", "dead"];

#[derive(Debug, thiserror::Error)]
pub enum ForwardingError {
    #[error("{0}")]
    InvalidName(&'static str),
    #[error("{0}")]
    InvalidUrl(&'static str),
    #[error("{0}")]
    InvalidFilter(String),
    #[error("no source named {0}: name `stripe` or a gateway source (`revision-store sources list`)")]
    UnknownSource(String),
    #[error("the rate is 1 to {MAX_RATE_PER_SECOND} a second and 1 to {MAX_IN_FLIGHT} at once")]
    Limits,
    #[error("a destination named {0} exists already")]
    Exists(String),
    #[error("no destination named {0}")]
    Unknown(String),
    #[error("{0} has no delivery {1}")]
    UnknownDelivery(String, i64),
    #[error("the status is one of pending, failing, delivered or dead, not {0}")]
    UnknownStatus(String),
    #[error("the overlap is 0 to {MAX_OVERLAP_HOURS} hours")]
    Overlap,
    #[error("the window's start is after its end")]
    Window,
    #[error("the stored filter of {0} cannot be read: {1}")]
    Unreadable(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A destination to add, as an operator gives it.
#[derive(Debug, Clone)]
pub struct NewDestinationSpec {
    pub name: String,
    pub url: String,
    pub filter: Filter,
    pub rate_per_second: u32,
    pub max_in_flight: u32,
}

/// A filter from an operator's words, the CLI's flags or the admin form's fields: sources,
/// event type prefixes, metadata rules (`key`: present, `key=value`: equal), and `rate_card`
/// for Stripe's Rate Card payments (`payment_intent.succeeded` carrying every Rate Card key).
pub fn filter_from(
    sources: Vec<String>,
    mut type_prefixes: Vec<String>,
    metadata: &[String],
    rate_card: bool,
) -> Result<Filter, ForwardingError> {
    let mut rules = metadata
        .iter()
        .map(|m| MetadataRule::parse(m).map_err(|e| ForwardingError::InvalidFilter(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    if rate_card {
        rules.extend(RATE_CARD_KEYS.iter().map(|k| MetadataRule { key: k.to_string(), equals: None }));
        type_prefixes.push("payment_intent.succeeded".into());
    }
    Filter::new(sources, type_prefixes, rules).map_err(ForwardingError::InvalidFilter)
}

/// Adds a destination with a new signing secret: the row and the secret (shown once; the
/// receiver verifies with it).
pub async fn add(
    db: &Db,
    spec: &NewDestinationSpec,
    now: DateTime<Utc>,
) -> Result<(DestinationRow, String), ForwardingError> {
    let name = DestinationName::parse(&spec.name).map_err(ForwardingError::InvalidName)?;
    let url = check_url(&spec.url).map_err(ForwardingError::InvalidUrl)?;
    let filter =
        Filter::new(spec.filter.sources.clone(), spec.filter.type_prefixes.clone(), spec.filter.metadata.clone())
            .map_err(ForwardingError::InvalidFilter)?;
    for source in filter.sources.iter().filter(|s| *s != STRIPE) {
        if webhook_sources::get(db, source).await?.is_none() {
            return Err(ForwardingError::UnknownSource(source.clone()));
        }
    }
    if !(1..=MAX_RATE_PER_SECOND).contains(&spec.rate_per_second) || !(1..=MAX_IN_FLIGHT).contains(&spec.max_in_flight)
    {
        return Err(ForwardingError::Limits);
    }
    let secret = standard_webhooks::generate_secret().expose().to_string();
    let json = serde_json::to_string(&filter).expect("a filter serialises");
    let new = NewDestination {
        name: name.as_str(),
        url: &url,
        filter: &json,
        rate_per_second: i64::from(spec.rate_per_second),
        max_in_flight: i64::from(spec.max_in_flight),
    };
    let id = forward_destinations::create(db, &new, &secret, now)
        .await?
        .ok_or_else(|| ForwardingError::Exists(name.as_str().to_string()))?;
    let row = forward_destinations::get(db, id).await?.ok_or_else(|| ForwardingError::Unknown(spec.name.clone()))?;
    Ok((row, secret))
}

/// A destination with what its deliveries look like, for the admin page and the CLI.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DestinationSummary {
    pub destination: DestinationRow,
    pub active_secrets: usize,
    pub pending: i64,
    pub delivered: i64,
    pub dead: i64,
}

/// Every destination with its deliveries counted by status.
pub async fn list(db: &Db, now: DateTime<Utc>) -> Result<Vec<DestinationSummary>, ForwardingError> {
    let counts = deliveries::counts(db).await?;
    let mut out = Vec::new();
    for destination in forward_destinations::list(db).await? {
        let count = |status: &str| {
            counts.iter().find(|(d, s, _)| *d == destination.id && s == status).map_or(0, |(_, _, n)| *n)
        };
        let active_secrets = forward_destinations::active_secrets(db, destination.id, now).await?.len();
        let (pending, delivered, dead) = (count("pending"), count("delivered"), count("dead"));
        out.push(DestinationSummary { destination, active_secrets, pending, delivered, dead });
    }
    Ok(out)
}

/// The destination of that name, or an error naming it.
pub async fn destination(db: &Db, name: &str) -> Result<DestinationRow, ForwardingError> {
    forward_destinations::by_name(db, name).await?.ok_or_else(|| ForwardingError::Unknown(name.to_string()))
}

/// A stored destination's filter. Written only by `add`, so unreadable means edited by hand.
pub fn filter_of(row: &DestinationRow) -> Result<Filter, ForwardingError> {
    serde_json::from_str(&row.filter).map_err(|e| ForwardingError::Unreadable(row.name.clone(), e.to_string()))
}

/// A destination's deliveries, newest first: of one status (see [`STATUSES`]) when given, for
/// events received in [`from`, `to`).
pub async fn deliveries(
    db: &Db,
    name: &str,
    status: Option<&str>,
    window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    limit: i64,
) -> Result<Vec<DeliveryRow>, ForwardingError> {
    if let Some(s) = status.filter(|s| !STATUSES.contains(s)) {
        return Err(ForwardingError::UnknownStatus(s.to_string()));
    }
    if let (Some(from), Some(to)) = window {
        if from > to {
            return Err(ForwardingError::Window);
        }
    }
    let row = destination(db, name).await?;
    Ok(deliveries::list(db, row.id, status, window, limit.clamp(1, 10_000)).await?)
}

/// Sends one delivery again from the start of the schedule (its attempts stay in the log).
pub async fn replay(db: &Db, name: &str, delivery_id: i64, now: DateTime<Utc>) -> Result<(), ForwardingError> {
    let row = destination(db, name).await?;
    match deliveries::get(db, delivery_id).await? {
        Some(d) if d.destination_id == row.id => {
            deliveries::replay(db, delivery_id, now).await?;
            Ok(())
        }
        _ => Err(ForwardingError::UnknownDelivery(name.to_string(), delivery_id)),
    }
}

/// Sends again every dead or failing delivery of a destination whose event was received in
/// [`from`, `to`): how many.
pub async fn replay_failed(
    db: &Db,
    name: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, ForwardingError> {
    if from > to {
        return Err(ForwardingError::Window);
    }
    let row = destination(db, name).await?;
    Ok(deliveries::replay_failed(db, row.id, from, to, now).await?)
}

/// Pauses a destination (nothing is sent; its deliveries wait, and new events still queue) or
/// resumes it.
pub async fn set_paused(db: &Db, name: &str, paused: bool, now: DateTime<Utc>) -> Result<(), ForwardingError> {
    if forward_destinations::set_paused(db, name, paused.then_some(now)).await? {
        Ok(())
    } else {
        Err(ForwardingError::Unknown(name.to_string()))
    }
}

/// Enables a destination its receiver disabled with a 410; its waiting deliveries go out.
pub async fn enable(db: &Db, name: &str) -> Result<(), ForwardingError> {
    if forward_destinations::enable(db, name).await? {
        Ok(())
    } else {
        Err(ForwardingError::Unknown(name.to_string()))
    }
}

/// Gives a destination a new secret: deliveries are signed with it at once, and with the old
/// ones too for `overlap`, so the receiver can switch when it likes. Returns the new secret.
pub async fn rotate(db: &Db, name: &str, overlap: Duration, now: DateTime<Utc>) -> Result<String, ForwardingError> {
    if overlap < Duration::zero() || overlap > Duration::hours(MAX_OVERLAP_HOURS) {
        return Err(ForwardingError::Overlap);
    }
    let row = destination(db, name).await?;
    let secret = standard_webhooks::generate_secret().expose().to_string();
    forward_destinations::rotate(db, row.id, &secret, now, now + overlap).await?;
    Ok(secret)
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// Deliveries made by the fan-out.
    pub fanned: u64,
    /// Senders started in this process.
    pub started: usize,
}

/// The worker's step: fans new events out to every destination (paused and disabled ones
/// too, so nothing is missed while they rest; held back a little while intake is busy), then
/// starts a sender for each sending destination that has none in this process, or wakes the
/// one it has. Returns at once: sending happens in the senders' own tasks, so a slow receiver
/// never holds the sweep (or another destination).
pub async fn work(svc: &crate::services::Services, now: DateTime<Utc>) -> Result<Look, StoreError> {
    let mut look = Look::default();
    for row in forward_destinations::list(&svc.db).await? {
        let filter = match filter_of(&row) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(destination = %row.name, error = %e, "cannot forward to this destination");
                continue;
            }
        };
        let settings = &svc.settings.forwarding;
        let mut made = 0;
        if let Some(look_back) = svc.forwarding.fan_out_due(row.id, settings.look_back_every) {
            let look_back = look_back.then_some(settings.look_back);
            made = fanout::fan_out(&svc.db, &row, &filter, look_back, now).await?;
            look.fanned += made;
        }
        if row.sending() && senders::ensure(svc, row.id, made > 0) {
            look.started += 1;
        }
    }
    Ok(look)
}
