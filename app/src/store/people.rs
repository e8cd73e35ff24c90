//! The admin's people actions, each one transaction with its `audit_log` row, so the log can
//! never say something happened that did not, nor miss something that did: creating a user,
//! deactivating and reactivating one, issuing and redeeming one-time set-password links
//! (`password_links`), and creating a contract. Ending someone's sessions is part of the same
//! transaction as the change that ends them.
use super::contracts::Contract;
use super::users::{User, COLUMNS};
use super::{read_pool, write_tx, Db, StoreResult};
use crate::domain::people::{Actor, AuditAction, ContractTerms, LinkPurpose, LinkState};
use crate::domain::users::{Email, Role};
use chrono::{DateTime, Utc};

/// A set-password link to store: only the token's SHA-256 is kept.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub token_hash: String,
    pub purpose: LinkPurpose,
    pub expires_at: DateTime<Utc>,
}

/// One line of the audit log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub user_id: Option<i64>,
    pub user_email: Option<String>,
    pub contract_id: Option<i64>,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

const AUDIT: &str = "INSERT INTO audit_log (actor_id, actor, action, user_id, contract_id, detail, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Writes the audit row of an action inside its transaction (a macro because the transaction's
/// type differs per dialect; the statement is the one above).
macro_rules! audit {
    ($tx:ident, $actor:expr, $action:expr, $user:expr, $contract:expr, $detail:expr, $now:expr) => {
        sqlx::query(AUDIT)
            .bind($actor.id())
            .bind($actor.name())
            .bind($action.as_str())
            .bind($user)
            .bind($contract)
            .bind($detail)
            .bind($now)
            .execute(&mut *$tx)
            .await?
    };
}

const END_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1";
/// A person has at most one live link: a new one (or deactivation) voids the unused rest, so a
/// link passed on earlier stops working the moment another is issued.
const VOID_LINKS: &str = "DELETE FROM password_links WHERE user_id = $1 AND used_at IS NULL";
const INSERT_LINK: &str = "INSERT INTO password_links \
    (token_hash, user_id, purpose, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";

/// Stores a set-password link for a user inside the action's transaction (a macro for the
/// same reason as `audit!`).
macro_rules! insert_link {
    ($tx:ident, $link:expr, $user:expr, $actor:expr, $now:expr) => {
        sqlx::query(INSERT_LINK)
            .bind(&$link.token_hash)
            .bind($user)
            .bind($link.purpose.as_str())
            .bind($actor.id())
            .bind($now)
            .bind($link.expires_at)
            .execute(&mut *$tx)
            .await?
    };
}

fn link_detail(link: &NewLink) -> String {
    format!("{} link valid until {}", link.purpose.as_str(), link.expires_at.format("%Y-%m-%d %H:%M UTC"))
}

/// Creates a user; with `link`, also the one-time link that sets their first password (the
/// password hash given is then one nobody knows).
pub async fn create_user(
    db: &Db,
    email: &Email,
    role: Role,
    password_hash: &str,
    link: Option<&NewLink>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> StoreResult<User> {
    let sql = super::users::insert_sql();
    write_tx!(db, |tx| {
        let user = sqlx::query_as::<_, User>(&sql)
            .bind(email.as_str())
            .bind(role.as_str())
            .bind(password_hash)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let mut detail = role.as_str().to_string();
        if let Some(link) = link {
            insert_link!(tx, link, user.id, actor, now);
            detail = format!("{detail}; {}", link_detail(link));
        }
        audit!(tx, actor, AuditAction::UserCreate, Some(user.id), None::<i64>, &detail, now);
        StoreResult::Ok(user)
    })
}

/// A new set-password link for an active user: their current password stops working and every
/// session of theirs ends (a reset is what an admin does when an account may be in the wrong
/// hands). None when there is no such active user.
pub async fn reset_password(
    db: &Db,
    user_id: i64,
    unusable_hash: &str,
    link: &NewLink,
    actor: &Actor,
    now: DateTime<Utc>,
) -> StoreResult<Option<User>> {
    let sql = format!(
        "UPDATE users SET password_hash = $2, credential_version = credential_version + 1 \
                 WHERE id = $1 AND deactivated_at IS NULL RETURNING {COLUMNS}"
    );
    write_tx!(db, |tx| {
        let Some(user) =
            sqlx::query_as::<_, User>(&sql).bind(user_id).bind(unusable_hash).fetch_optional(&mut *tx).await?
        else {
            return Ok(None);
        };
        sqlx::query(VOID_LINKS).bind(user_id).execute(&mut *tx).await?;
        insert_link!(tx, link, user_id, actor, now);
        sqlx::query(END_SESSIONS).bind(user_id).execute(&mut *tx).await?;
        audit!(tx, actor, AuditAction::PasswordLink, Some(user_id), None::<i64>, &link_detail(link), now);
        StoreResult::Ok(Some(user))
    })
}

/// Deactivates an active user: no sign-in, every session ends, unused links are void. None when
/// there is no such user or they are deactivated already.
pub async fn deactivate(db: &Db, user_id: i64, actor: &Actor, now: DateTime<Utc>) -> StoreResult<Option<User>> {
    let sql = format!(
        "UPDATE users SET deactivated_at = $2, credential_version = credential_version + 1 \
                 WHERE id = $1 AND deactivated_at IS NULL RETURNING {COLUMNS}"
    );
    write_tx!(db, |tx| {
        let Some(user) = sqlx::query_as::<_, User>(&sql).bind(user_id).bind(now).fetch_optional(&mut *tx).await? else {
            return Ok(None);
        };
        sqlx::query(END_SESSIONS).bind(user_id).execute(&mut *tx).await?;
        sqlx::query(VOID_LINKS).bind(user_id).execute(&mut *tx).await?;
        audit!(tx, actor, AuditAction::UserDeactivate, Some(user_id), None::<i64>, "", now);
        StoreResult::Ok(Some(user))
    })
}

/// Lets a deactivated user sign in again with the password they had. None when there is no such
/// user or they are active.
pub async fn reactivate(db: &Db, user_id: i64, actor: &Actor, now: DateTime<Utc>) -> StoreResult<Option<User>> {
    let sql = format!(
        "UPDATE users SET deactivated_at = NULL WHERE id = $1 AND deactivated_at IS NOT NULL RETURNING {COLUMNS}"
    );
    write_tx!(db, |tx| {
        let Some(user) = sqlx::query_as::<_, User>(&sql).bind(user_id).fetch_optional(&mut *tx).await? else {
            return Ok(None);
        };
        audit!(tx, actor, AuditAction::UserReactivate, Some(user_id), None::<i64>, "", now);
        StoreResult::Ok(Some(user))
    })
}

/// Why a link could not set a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefused {
    /// No link with that token: never issued, voided by a newer one, or mistyped.
    Unknown,
    /// Used or expired.
    State(LinkState),
    Deactivated,
}

/// A link's holder and where it stands, for the page that opens it.
pub async fn link(db: &Db, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Result<String, LinkRefused>> {
    type Row = (String, DateTime<Utc>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let row: Option<Row> = read_pool!(db, |pool| sqlx::query_as(
        "SELECT u.email, l.expires_at, l.used_at, u.deactivated_at FROM password_links l \
         JOIN users u ON u.id = l.user_id WHERE l.token_hash = $1"
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?);
    Ok(match row {
        None => Err(LinkRefused::Unknown),
        Some((_, _, _, Some(_))) => Err(LinkRefused::Deactivated),
        Some((email, expires_at, used_at, None)) => match LinkState::of(expires_at, used_at, now) {
            LinkState::Open { .. } => Ok(email),
            other => Err(LinkRefused::State(other)),
        },
    })
}

/// Sets a password through a link, once: the link is marked used by a conditional UPDATE, so of
/// two submissions racing with one link exactly one sets the password, at any isolation level.
/// Every session of the person ends (whoever held one must sign in with the new password).
pub async fn redeem_link(
    db: &Db,
    token_hash: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<Result<User, LinkRefused>> {
    let set_password = format!(
        "UPDATE users SET password_hash = $2, credential_version = credential_version + 1 \
                 WHERE id = $1 AND deactivated_at IS NULL RETURNING {COLUMNS}"
    );
    write_tx!(db, |tx| {
        let user_id: Option<i64> = sqlx::query_scalar(
            "UPDATE password_links SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user_id) = user_id else {
            let row: Option<(DateTime<Utc>, Option<DateTime<Utc>>)> =
                sqlx::query_as("SELECT expires_at, used_at FROM password_links WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Ok(Err(match row {
                None => LinkRefused::Unknown,
                Some((expires_at, used_at)) => LinkRefused::State(LinkState::of(expires_at, used_at, now)),
            }));
        };
        let user =
            sqlx::query_as::<_, User>(&set_password).bind(user_id).bind(password_hash).fetch_optional(&mut *tx).await?;
        // Deactivation voids links, so this is a link racing a deactivation: the link stays
        // unused (returning rolls the transaction back) and the account stays shut.
        let Some(user) = user else { return Ok(Err(LinkRefused::Deactivated)) };
        sqlx::query(END_SESSIONS).bind(user_id).execute(&mut *tx).await?;
        let actor = Actor::User { id: user.id, email: user.email.clone() };
        audit!(tx, actor, AuditAction::PasswordSet, Some(user_id), None::<i64>, "", now);
        StoreResult::Ok(Ok(user))
    })
}

/// Why a contract was not created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractRefused {
    /// No such user, or not an advertiser.
    NotAnAdvertiser,
    Deactivated,
}

/// Creates a contract for an active advertiser.
pub async fn create_contract(
    db: &Db,
    advertiser_id: i64,
    terms: &ContractTerms,
    base_revisions: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> StoreResult<Result<Contract, ContractRefused>> {
    let insert = super::contracts::insert_sql();
    write_tx!(db, |tx| {
        let owner: Option<(String, Option<DateTime<Utc>>)> =
            sqlx::query_as("SELECT role, deactivated_at FROM users WHERE id = $1")
                .bind(advertiser_id)
                .fetch_optional(&mut *tx)
                .await?;
        match owner {
            Some((role, None)) if role == Role::Advertiser.as_str() => {}
            Some((role, Some(_))) if role == Role::Advertiser.as_str() => return Ok(Err(ContractRefused::Deactivated)),
            _ => return Ok(Err(ContractRefused::NotAnAdvertiser)),
        }
        let contract = sqlx::query_as::<_, Contract>(&insert)
            .bind(advertiser_id)
            .bind(&terms.publication)
            .bind(&terms.ad_size)
            .bind(base_revisions)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let detail = format!("#{}: {} · {}", contract.id, contract.publication, contract.ad_size);
        audit!(tx, actor, AuditAction::ContractCreate, Some(advertiser_id), Some(contract.id), &detail, now);
        StoreResult::Ok(Ok(contract))
    })
}

/// The newest audit entries, all or about one person; at most `limit`.
pub async fn audit_log(db: &Db, user_id: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>> {
    read_pool!(db, |pool| Ok(sqlx::query_as::<_, AuditEntry>(
        "SELECT a.id, a.actor, a.action, a.user_id, u.email AS user_email, a.contract_id, a.detail, a.created_at \
         FROM audit_log a LEFT JOIN users u ON u.id = a.user_id \
         WHERE (CAST($1 AS BIGINT) IS NULL OR a.user_id = $1) ORDER BY a.id DESC LIMIT $2"
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(pool)
    .await?))
}
