//! Keys for the API: made here, shown once, kept only as a SHA-256, each with one scope.
use crate::store::{self, StoreError};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Every key starts with this, so a leaked one is recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "rsk_";

/// The stored form of a key. A key is 256 random bits, so a fast hash is enough: there is
/// nothing to guess that a slow hash would protect.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new key: `rsk_` and 64 hex digits (32 bytes from the OS's generator).
pub fn generate() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// What a key may read. Kept apart because they differ in what they give away: revenue is
/// sums and counts, safe on a wall screen; events carry customers' emails and payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `GET /api/v1/revenue` only.
    Revenue,
    /// `GET /api/v1/events` and its export, and revenue.
    Events,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "revenue" => Ok(Self::Revenue),
            "events" => Ok(Self::Events),
            other => Err(format!("`{other}` is not a scope: use revenue (totals only) or events (event search)")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revenue => "revenue",
            Self::Events => "events",
        }
    }
    /// Whether a key of scope `held` may read what needs `self`.
    pub fn allowed_by(self, held: &str) -> bool {
        held == self.as_str() || (self == Self::Revenue && held == Self::Events.as_str())
    }
}

/// Why a key was not made.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("a key's name must have 1 to 100 characters")]
    BadName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes a key called `name`; returns its id and the key, which is never shown again.
pub async fn create(
    db: &store::Db,
    name: &str,
    scope: Scope,
    now: DateTime<Utc>,
) -> Result<(i64, String), ApiKeyError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiKeyError::BadName);
    }
    let key = generate();
    let prefix: String = key.chars().take(KEY_PREFIX.len() + 8).collect();
    let id = store::api_keys::create(db, name, &hash(&key), &prefix, scope.as_str(), now).await?;
    Ok((id, key))
}

/// The key named by an `Authorization` header's value, if it is a live key. Anything else
/// (missing scheme, wrong shape, unknown, revoked) is None: callers give one answer for all.
pub async fn authenticate(
    db: &store::Db,
    authorization: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<store::api_keys::ApiKeyRow>, StoreError> {
    let Some(key) = authorization.and_then(bearer) else { return Ok(None) };
    store::api_keys::authenticate(db, &hash(key), now).await
}

/// The token of `Bearer <token>` (the scheme is case-insensitive, RFC 7235), if it looks like one of ours.
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && token.starts_with(KEY_PREFIX) && token.len() == KEY_PREFIX.len() + 64)
        .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_well_formed_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert_eq!(bearer(&format!("Bearer {a}")), Some(a.as_str()));
        assert_eq!(bearer(&format!("bearer  {a} ")), Some(a.as_str()));
        assert_eq!(bearer(&format!("Basic {a}")), None);
        assert_eq!(bearer("Bearer rsk_short"), None);
        assert_eq!(bearer(&a), None);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
    }

    #[test]
    fn an_events_key_reads_revenue_but_a_revenue_key_never_reads_events() {
        assert!(Scope::Revenue.allowed_by("revenue") && Scope::Revenue.allowed_by("events"));
        assert!(Scope::Events.allowed_by("events") && !Scope::Events.allowed_by("revenue"));
        assert_eq!(Scope::parse(" events "), Ok(Scope::Events));
        assert!(Scope::parse("admin").is_err());
    }
}
