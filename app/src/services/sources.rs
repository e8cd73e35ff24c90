//! Managing the gateway's sources (from the CLI): adding one with its scheme and first secret,
//! rotating its secret with an overlap, disabling and enabling it, listing them.
use crate::domain::gateway::{SourceName, MAX_OVERLAP_HOURS};
use crate::senders::{standard_webhooks, Scheme};
use crate::store::webhook_sources::{self, SourceRow};
use crate::store::{Db, StoreError};
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    InvalidName(&'static str),
    #[error("a {0} source needs a signing secret (--secret)")]
    SecretRequired(&'static str),
    #[error("a PayPal source signs with PayPal's certificate and takes no secret")]
    NoSecretTaken,
    #[error("the secret is not usable: {0}")]
    InvalidSecret(String),
    #[error("a source named {0} exists already")]
    Exists(String),
    #[error("no source named {0}")]
    Unknown(String),
    #[error("the stored scheme of {0} cannot be read: {1}")]
    Unreadable(String, String),
    #[error("the overlap is 0 to {MAX_OVERLAP_HOURS} hours")]
    Overlap,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adds a source. A Standard Webhooks source given no secret gets a new one; the secret to give
/// the sender is returned when we made it (the caller shows it once), else None.
pub async fn add(
    db: &Db,
    name: &str,
    scheme: &Scheme,
    secret: Option<String>,
    now: DateTime<Utc>,
) -> Result<Option<String>, SourceError> {
    let name = SourceName::parse(name).map_err(SourceError::InvalidName)?;
    let (secret, made) = first_secret(scheme, secret)?;
    let json = serde_json::to_string(scheme).expect("a scheme serialises");
    if !webhook_sources::create(db, name.as_str(), scheme.label(), &json, secret.as_deref(), now).await? {
        return Err(SourceError::Exists(name.as_str().to_string()));
    }
    Ok(made.then_some(secret).flatten())
}

/// The secret a new source starts with, and whether we made it.
fn first_secret(scheme: &Scheme, given: Option<String>) -> Result<(Option<String>, bool), SourceError> {
    match (scheme, given) {
        (Scheme::PayPal { .. }, None) => Ok((None, false)),
        (Scheme::PayPal { .. }, Some(_)) => Err(SourceError::NoSecretTaken),
        (Scheme::StandardWebhooks, None) => Ok((Some(standard_webhooks::generate_secret().expose().to_string()), true)),
        (_, Some(secret)) => Ok((Some(checked_secret(scheme, secret)?), false)),
        (other, None) => Err(SourceError::SecretRequired(other.label())),
    }
}

/// A secret as given, refused if the scheme could never verify with it.
fn checked_secret(scheme: &Scheme, secret: String) -> Result<String, SourceError> {
    let secret = secret.trim().to_string();
    if secret.is_empty() || secret.len() > 512 {
        return Err(SourceError::InvalidSecret("it must have 1 to 512 characters".into()));
    }
    if matches!(scheme, Scheme::StandardWebhooks) {
        standard_webhooks::key(&crate::senders::Secret::new(secret.clone()))
            .map_err(|e| SourceError::InvalidSecret(e.to_string()))?;
    }
    Ok(secret)
}

/// Rotates a source's secret: the new one (made here for Standard Webhooks when none is given)
/// works at once, the old ones for `overlap` more. Returns the new secret when we made it.
pub async fn rotate(
    db: &Db,
    name: &str,
    secret: Option<String>,
    overlap: Duration,
    now: DateTime<Utc>,
) -> Result<Option<String>, SourceError> {
    if overlap < Duration::zero() || overlap > Duration::hours(MAX_OVERLAP_HOURS) {
        return Err(SourceError::Overlap);
    }
    let row = webhook_sources::get(db, name).await?.ok_or_else(|| SourceError::Unknown(name.to_string()))?;
    let scheme = scheme_of(&row)?;
    let (secret, made) = match (&scheme, secret) {
        (Scheme::PayPal { .. }, _) => return Err(SourceError::NoSecretTaken),
        (Scheme::StandardWebhooks, None) => (standard_webhooks::generate_secret().expose().to_string(), true),
        (_, Some(given)) => (checked_secret(&scheme, given)?, false),
        (other, None) => return Err(SourceError::SecretRequired(other.label())),
    };
    if !webhook_sources::rotate(db, name, &secret, now, now + overlap).await? {
        return Err(SourceError::Unknown(name.to_string()));
    }
    Ok(made.then_some(secret))
}

/// Disables a source (its deliveries are answered 404 and stored nowhere) or enables it again.
pub async fn set_enabled(db: &Db, name: &str, enabled: bool, now: DateTime<Utc>) -> Result<(), SourceError> {
    if webhook_sources::set_disabled(db, name, (!enabled).then_some(now)).await? {
        Ok(())
    } else {
        Err(SourceError::Unknown(name.to_string()))
    }
}

/// A stored source's scheme. Written only by `add`, so unreadable means edited by hand.
pub fn scheme_of(row: &SourceRow) -> Result<Scheme, SourceError> {
    serde_json::from_str(&row.scheme).map_err(|e| SourceError::Unreadable(row.name.clone(), e.to_string()))
}
