//! `users`: advertisers and admins.
use super::{on, Db, StoreResult, Tx};
use crate::domain::users::{Email, Role};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// Set while the account is deactivated: no sign-in, no session.
    pub deactivated_at: Option<DateTime<Utc>>,
    /// Moves on with every password set or reset and every deactivation; a session is stamped
    /// with the version its sign-in verified and is good only while it is still the current one.
    pub credential_version: i64,
}

impl User {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).expect("the role column is constrained")
    }
    pub fn is_active(&self) -> bool {
        self.deactivated_at.is_none()
    }
}

/// Stores a user in the caller's transaction (the audited actions in `store::people`).
pub(crate) async fn insert(
    tx: &mut Tx,
    email: &Email,
    role: Role,
    password_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<User> {
    const SQL: &str = "INSERT INTO users (email, role, password_hash, created_at) VALUES ($1, $2, $3, $4) \
        RETURNING id, email, role, password_hash, created_at, deactivated_at, credential_version";
    on!(tx.conn(), |c| Ok(sqlx::query_as::<_, User>(SQL)
        .bind(email.as_str())
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now)
        .fetch_one(c)
        .await?))
}

pub async fn find_by_email(db: &Db, email: &Email) -> StoreResult<Option<User>> {
    const SQL: &str = "SELECT id, email, role, password_hash, created_at, deactivated_at, credential_version \
        FROM users WHERE email = $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, User>(SQL).bind(email.as_str()).fetch_optional(c).await?))
}

pub async fn find(db: &Db, id: i64) -> StoreResult<Option<User>> {
    const SQL: &str = "SELECT id, email, role, password_hash, created_at, deactivated_at, credential_version \
        FROM users WHERE id = $1";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, User>(SQL).bind(id).fetch_optional(c).await?))
}

/// The user behind a session: only while the account is active. Every check of who is signed in
/// goes through this, so a deactivated account is signed out on its next request whatever
/// session it still holds.
pub async fn find_active(db: &Db, id: i64) -> StoreResult<Option<User>> {
    const SQL: &str = "SELECT id, email, role, password_hash, created_at, deactivated_at, credential_version \
        FROM users WHERE id = $1 AND deactivated_at IS NULL";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, User>(SQL).bind(id).fetch_optional(c).await?))
}

/// A person as the admin's people page lists them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Person {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub contracts: i64,
    /// Until when their newest unused set-password link works (it may have passed).
    pub link_expires_at: Option<DateTime<Utc>>,
}

/// People whose email contains `search` (all when empty), admins first, then by email; at most
/// `limit`. A publisher has hundreds of advertisers, not millions: one page with a search.
pub async fn people(db: &Db, search: &str, limit: i64) -> StoreResult<Vec<Person>> {
    const SQL: &str = "SELECT u.id, u.email, u.role, u.created_at, u.deactivated_at, \
                (SELECT COUNT(*) FROM contracts c WHERE c.advertiser_id = u.id) AS contracts, \
                (SELECT MAX(l.expires_at) FROM password_links l WHERE l.user_id = u.id AND l.used_at IS NULL \
                   AND l.purpose <> 'forgot') \
                  AS link_expires_at \
               FROM users u WHERE ($1 = '' OR u.email LIKE $1 ESCAPE '\\') \
               ORDER BY CASE u.role WHEN 'admin' THEN 0 ELSE 1 END, u.email LIMIT $2";
    let pattern = super::like_pattern(search);
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, Person>(SQL).bind(&pattern).bind(limit).fetch_all(c).await?))
}

/// Whether `user_id` wants alerts by email (the Alerts page's opt-in).
pub async fn wants_alert_emails(db: &Db, user_id: i64) -> StoreResult<bool> {
    const SQL: &str = "SELECT alert_emails FROM users WHERE id = $1";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, bool>(SQL).bind(user_id).fetch_optional(c).await?.unwrap_or(false)))
}

/// Opts an admin in to (or out of) alerts by email; false when no such admin exists.
pub async fn set_alert_emails(db: &Db, user_id: i64, wanted: bool) -> StoreResult<bool> {
    const SQL: &str = "UPDATE users SET alert_emails = $2 WHERE id = $1 AND role = 'admin'";
    on!(db.writer(), |c| Ok(sqlx::query(SQL).bind(user_id).bind(wanted).execute(c).await?.rows_affected() == 1))
}

/// Where alert emails go: every active admin who opted in, by email.
pub async fn alert_email_recipients(db: &Db) -> StoreResult<Vec<String>> {
    const SQL: &str = "SELECT email FROM users WHERE alert_emails AND role = 'admin' AND deactivated_at IS NULL \
         ORDER BY email";
    on!(db.reader(), |c| Ok(sqlx::query_scalar::<_, String>(SQL).fetch_all(c).await?))
}
