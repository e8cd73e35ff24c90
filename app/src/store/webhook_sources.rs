//! `webhook_sources` and `webhook_source_secrets`: the gateway's senders other than Stripe, how
//! each is verified, and their signing secrets (several active while one is rotated).
use super::{on, Db, StoreResult};
use chrono::{DateTime, Utc};

/// A source as stored; `scheme` is `senders::Scheme` as JSON (read by `services::gateway`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct SourceRow {
    pub name: String,
    pub kind: String,
    pub scheme: String,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A secret as stored. `expires_at` is set when a newer one replaced it: it keeps working until then.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SecretRow {
    pub id: i64,
    pub secret: String,
    pub added_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SecretRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRow")
            .field("id", &self.id)
            .field("secret", &"redacted")
            .field("added_at", &self.added_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Adds a source with its first secret (none for PayPal, which signs with a certificate), in
/// one transaction. False when a source of that name exists already: nothing is changed.
pub async fn create(
    db: &Db,
    name: &str,
    kind: &str,
    scheme: &str,
    secret: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    const SOURCE: &str = "INSERT INTO webhook_sources (name, kind, scheme, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO NOTHING";
    const SECRET: &str = "INSERT INTO webhook_source_secrets (source, secret, added_at) VALUES ($1, $2, $3)";
    let mut tx = db.begin().await?;
    let created = on!(tx.conn(), |c| sqlx::query(SOURCE)
        .bind(name)
        .bind(kind)
        .bind(scheme)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    if created == 0 {
        return Ok(false);
    }
    if let Some(secret) = secret {
        on!(tx.conn(), |c| {
            sqlx::query(SECRET).bind(name).bind(secret).bind(now).execute(c).await?;
        });
    }
    tx.commit().await?;
    Ok(true)
}

/// One source, enabled or not.
pub async fn get(db: &Db, name: &str) -> StoreResult<Option<SourceRow>> {
    const SQL: &str = "SELECT name, kind, scheme, created_at, disabled_at FROM webhook_sources WHERE name = $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, SourceRow>(SQL).bind(name).fetch_optional(c).await?))
}

/// Every source, by name.
pub async fn list(db: &Db) -> StoreResult<Vec<SourceRow>> {
    const SQL: &str = "SELECT name, kind, scheme, created_at, disabled_at FROM webhook_sources ORDER BY name";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, SourceRow>(SQL).fetch_all(c).await?))
}

/// The secrets of `source` still working at `now`, newest first.
pub async fn active_secrets(db: &Db, source: &str, now: DateTime<Utc>) -> StoreResult<Vec<SecretRow>> {
    const SQL: &str = "SELECT id, secret, added_at, expires_at FROM webhook_source_secrets \
         WHERE source = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY added_at DESC, id DESC";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, SecretRow>(SQL).bind(source).bind(now).fetch_all(c).await?))
}

/// Rotates: every secret still working without an end gets `old_until` as its end, and `secret`
/// is added, in one transaction, so for the overlap both are accepted. False for an unknown source.
pub async fn rotate(
    db: &Db,
    source: &str,
    secret: &str,
    now: DateTime<Utc>,
    old_until: DateTime<Utc>,
) -> StoreResult<bool> {
    const EXPIRE: &str = "UPDATE webhook_source_secrets SET expires_at = $2 \
         WHERE source = $1 AND (expires_at IS NULL OR expires_at > $2)";
    const ADD: &str = "INSERT INTO webhook_source_secrets (source, secret, added_at) \
         SELECT name, $2, $3 FROM webhook_sources WHERE name = $1";
    let mut tx = db.begin().await?;
    on!(tx.conn(), |c| {
        sqlx::query(EXPIRE).bind(source).bind(old_until).execute(c).await?;
    });
    let added =
        on!(tx.conn(), |c| sqlx::query(ADD).bind(source).bind(secret).bind(now).execute(c).await?.rows_affected());
    if added == 0 {
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Disables (`Some(now)`) or enables (`None`) a source; false when there is none of that name.
/// A disabled source's deliveries are refused (404) and stored nowhere.
pub async fn set_disabled(db: &Db, name: &str, disabled_at: Option<DateTime<Utc>>) -> StoreResult<bool> {
    const SQL: &str = "UPDATE webhook_sources SET disabled_at = $2 WHERE name = $1";
    on!(db.writer(), |c| Ok(sqlx::query(SQL).bind(name).bind(disabled_at).execute(c).await?.rows_affected() == 1))
}
