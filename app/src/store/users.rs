//! `users`: advertisers and admins.
use super::{read_pool, Db, StoreResult};
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

pub(crate) const COLUMNS: &str = "id, email, role, password_hash, created_at, deactivated_at, credential_version";
/// The one INSERT of a user, for `create` and for the audited actions in `store::people`.
pub(crate) fn insert_sql() -> String {
    format!("INSERT INTO users (email, role, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}")
}

pub async fn find_by_email(db: &Db, email: &Email) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, User>(&sql).bind(email.as_str()).fetch_optional(pool).await?))
}

pub async fn find(db: &Db, id: i64) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, User>(&sql).bind(id).fetch_optional(pool).await?))
}

/// The user behind a session: only while the account is active. Every check of who is signed in
/// goes through this, so a deactivated account is signed out on its next request whatever
/// session it still holds.
pub async fn find_active(db: &Db, id: i64) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1 AND deactivated_at IS NULL");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, User>(&sql).bind(id).fetch_optional(pool).await?))
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
    let sql = "SELECT u.id, u.email, u.role, u.created_at, u.deactivated_at, \
                (SELECT COUNT(*) FROM contracts c WHERE c.advertiser_id = u.id) AS contracts, \
                (SELECT MAX(l.expires_at) FROM password_links l WHERE l.user_id = u.id AND l.used_at IS NULL) \
                  AS link_expires_at \
               FROM users u WHERE ($1 = '' OR u.email LIKE $1 ESCAPE '\\') \
               ORDER BY CASE u.role WHEN 'admin' THEN 0 ELSE 1 END, u.email LIMIT $2";
    let pattern = super::like_pattern(search);
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, Person>(sql).bind(&pattern).bind(limit).fetch_all(pool).await?))
}
