//! `users`: advertisers and admins.
use super::{read_pool, write_pool, Db, StoreResult};
use crate::domain::users::{Email, Role};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).expect("the role column is constrained")
    }
}

const COLUMNS: &str = "id, email, role, password_hash, created_at";

pub async fn create(db: &Db, email: &Email, role: Role, password_hash: &str, now: DateTime<Utc>) -> StoreResult<User> {
    let sql = format!(
        "INSERT INTO users (email, role, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
    );
    write_pool!(db, |pool| Ok(sqlx::query_as::<_, User>(&sql)
        .bind(email.as_str())
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now)
        .fetch_one(pool)
        .await?))
}

pub async fn find_by_email(db: &Db, email: &Email) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, User>(&sql).bind(email.as_str()).fetch_optional(pool).await?))
}

pub async fn find(db: &Db, id: i64) -> StoreResult<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, User>(&sql).bind(id).fetch_optional(pool).await?))
}
