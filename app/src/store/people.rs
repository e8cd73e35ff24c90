//! The admin's people actions, each one transaction with its `audit_log` row, so the log can
//! never say something happened that did not, nor miss something that did: creating a user,
//! deactivating and reactivating one, issuing and redeeming one-time set-password links
//! (`password_links`), and creating a contract. Ending someone's sessions is part of the same
//! transaction as the change that ends them.
use super::contracts::{self, Contract, NewContract};
use super::users::{self, User};
use super::{on, Db, StoreResult, Tx};
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

/// Writes the audit row of an action inside its transaction.
async fn audit(
    tx: &mut Tx,
    actor: &Actor,
    action: AuditAction,
    user_id: Option<i64>,
    contract_id: Option<i64>,
    detail: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO audit_log (actor_id, actor, action, user_id, contract_id, detail, created_at) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7)";
    on!(tx.conn(), |c| {
        sqlx::query(SQL)
            .bind(actor.id())
            .bind(actor.name())
            .bind(action.as_str())
            .bind(user_id)
            .bind(contract_id)
            .bind(detail)
            .bind(now)
            .execute(c)
            .await?;
    });
    Ok(())
}

/// Ends every session of a person, in the transaction of the change that ends them.
async fn end_sessions(tx: &mut Tx, user_id: i64) -> StoreResult<()> {
    on!(tx.conn(), |c| {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(c).await?;
    });
    Ok(())
}

/// A person has at most one live link: a new one (or deactivation) voids the unused rest, so a
/// link passed on earlier stops working the moment another is issued.
async fn void_links(tx: &mut Tx, user_id: i64) -> StoreResult<()> {
    on!(tx.conn(), |c| {
        sqlx::query("DELETE FROM password_links WHERE user_id = $1 AND used_at IS NULL")
            .bind(user_id)
            .execute(c)
            .await?;
    });
    Ok(())
}

/// Stores a set-password link for a user inside the action's transaction.
async fn insert_link(tx: &mut Tx, link: &NewLink, user_id: i64, actor: &Actor, now: DateTime<Utc>) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO password_links \
        (token_hash, user_id, purpose, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
    on!(tx.conn(), |c| {
        sqlx::query(SQL)
            .bind(&link.token_hash)
            .bind(user_id)
            .bind(link.purpose.as_str())
            .bind(actor.id())
            .bind(now)
            .bind(link.expires_at)
            .execute(c)
            .await?;
    });
    Ok(())
}

/// Gives an active user a new password hash and moves their credentials on (every session
/// stamped with the old version stops being good); None when there is no such active user.
async fn set_password(tx: &mut Tx, user_id: i64, password_hash: &str) -> StoreResult<Option<User>> {
    const SQL: &str = "UPDATE users SET password_hash = $2, credential_version = credential_version + 1 \
        WHERE id = $1 AND deactivated_at IS NULL \
        RETURNING id, email, role, password_hash, created_at, deactivated_at, credential_version";
    on!(tx.conn(), |c| Ok(sqlx::query_as::<_, User>(SQL).bind(user_id).bind(password_hash).fetch_optional(c).await?))
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
    let mut tx = db.begin().await?;
    let user = users::insert(&mut tx, email, role, password_hash, now).await?;
    let mut detail = role.as_str().to_string();
    if let Some(link) = link {
        insert_link(&mut tx, link, user.id, actor, now).await?;
        detail = format!("{detail}; {}", link_detail(link));
    }
    audit(&mut tx, actor, AuditAction::UserCreate, Some(user.id), None, &detail, now).await?;
    tx.commit().await?;
    Ok(user)
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
    let mut tx = db.begin().await?;
    let Some(user) = set_password(&mut tx, user_id, unusable_hash).await? else {
        return Ok(None); // nothing was changed: the transaction rolls back
    };
    void_links(&mut tx, user_id).await?;
    insert_link(&mut tx, link, user_id, actor, now).await?;
    end_sessions(&mut tx, user_id).await?;
    audit(&mut tx, actor, AuditAction::PasswordLink, Some(user_id), None, &link_detail(link), now).await?;
    tx.commit().await?;
    Ok(Some(user))
}

/// A link asked for through "Forgot your password?" for an active user: unlike an admin's reset
/// the password keeps working (anyone may ask for anyone) and no session ends; older unused
/// links are void, so the newest email is the one that works. None when there is no such active
/// user (nothing written).
pub async fn issue_forgot_link(db: &Db, user_id: i64, link: &NewLink, now: DateTime<Utc>) -> StoreResult<Option<User>> {
    const ACTIVE: &str = "SELECT id, email, role, password_hash, created_at, deactivated_at, credential_version \
        FROM users WHERE id = $1 AND deactivated_at IS NULL";
    let mut tx = db.begin().await?;
    let user = on!(tx.conn(), |c| sqlx::query_as::<_, User>(ACTIVE).bind(user_id).fetch_optional(c).await?);
    let Some(user) = user else {
        return Ok(None);
    };
    void_links(&mut tx, user_id).await?;
    insert_link(&mut tx, link, user_id, &Actor::ForgotForm, now).await?;
    audit(&mut tx, &Actor::ForgotForm, AuditAction::PasswordLink, Some(user_id), None, &link_detail(link), now).await?;
    tx.commit().await?;
    Ok(Some(user))
}

/// Deactivates an active user: no sign-in, every session ends, unused links are void. None when
/// there is no such user or they are deactivated already.
pub async fn deactivate(db: &Db, user_id: i64, actor: &Actor, now: DateTime<Utc>) -> StoreResult<Option<User>> {
    const SQL: &str = "UPDATE users SET deactivated_at = $2, credential_version = credential_version + 1 \
        WHERE id = $1 AND deactivated_at IS NULL \
        RETURNING id, email, role, password_hash, created_at, deactivated_at, credential_version";
    let mut tx = db.begin().await?;
    let user = on!(tx.conn(), |c| sqlx::query_as::<_, User>(SQL).bind(user_id).bind(now).fetch_optional(c).await?);
    let Some(user) = user else {
        return Ok(None); // nothing was changed: the transaction rolls back
    };
    end_sessions(&mut tx, user_id).await?;
    void_links(&mut tx, user_id).await?;
    audit(&mut tx, actor, AuditAction::UserDeactivate, Some(user_id), None, "", now).await?;
    tx.commit().await?;
    Ok(Some(user))
}

/// Lets a deactivated user sign in again with the password they had. None when there is no such
/// user or they are active.
pub async fn reactivate(db: &Db, user_id: i64, actor: &Actor, now: DateTime<Utc>) -> StoreResult<Option<User>> {
    const SQL: &str = "UPDATE users SET deactivated_at = NULL WHERE id = $1 AND deactivated_at IS NOT NULL \
        RETURNING id, email, role, password_hash, created_at, deactivated_at, credential_version";
    let mut tx = db.begin().await?;
    let user = on!(tx.conn(), |c| sqlx::query_as::<_, User>(SQL).bind(user_id).fetch_optional(c).await?);
    let Some(user) = user else {
        return Ok(None); // nothing was changed: the transaction rolls back
    };
    audit(&mut tx, actor, AuditAction::UserReactivate, Some(user_id), None, "", now).await?;
    tx.commit().await?;
    Ok(Some(user))
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
    const SQL: &str = "SELECT u.email, l.expires_at, l.used_at, u.deactivated_at FROM password_links l \
         JOIN users u ON u.id = l.user_id WHERE l.token_hash = $1";
    let row: Option<Row> = on!(db.reader(), |c| sqlx::query_as(SQL).bind(token_hash).fetch_optional(c).await?);
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
    const USE_LINK: &str = "UPDATE password_links SET used_at = $2 \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id";
    let mut tx = db.begin().await?;
    let user_id: Option<i64> =
        on!(tx.conn(), |c| sqlx::query_scalar(USE_LINK).bind(token_hash).bind(now).fetch_optional(c).await?);
    let Some(user_id) = user_id else {
        return Ok(Err(why_unusable(&mut tx, token_hash, now).await?)); // nothing written: rolls back
    };
    // Deactivation voids links, so no user here is a link racing a deactivation: the link stays
    // unused (returning without a commit rolls the transaction back) and the account stays shut.
    let Some(user) = set_password(&mut tx, user_id, password_hash).await? else {
        return Ok(Err(LinkRefused::Deactivated));
    };
    end_sessions(&mut tx, user_id).await?;
    let actor = Actor::User { id: user.id, email: user.email.clone() };
    audit(&mut tx, &actor, AuditAction::PasswordSet, Some(user_id), None, "", now).await?;
    tx.commit().await?;
    Ok(Ok(user))
}

/// Why the link with this token could not be used: unknown, or used or expired.
async fn why_unusable(tx: &mut Tx, token_hash: &str, now: DateTime<Utc>) -> StoreResult<LinkRefused> {
    const SQL: &str = "SELECT expires_at, used_at FROM password_links WHERE token_hash = $1";
    let row: Option<(DateTime<Utc>, Option<DateTime<Utc>>)> =
        on!(tx.conn(), |c| sqlx::query_as(SQL).bind(token_hash).fetch_optional(c).await?);
    Ok(match row {
        None => LinkRefused::Unknown,
        Some((expires_at, used_at)) => LinkRefused::State(LinkState::of(expires_at, used_at, now)),
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
    const OWNER: &str = "SELECT role, deactivated_at FROM users WHERE id = $1";
    let mut tx = db.begin().await?;
    let owner: Option<(String, Option<DateTime<Utc>>)> =
        on!(tx.conn(), |c| sqlx::query_as(OWNER).bind(advertiser_id).fetch_optional(c).await?);
    match owner {
        Some((role, None)) if role == Role::Advertiser.as_str() => {}
        Some((role, Some(_))) if role == Role::Advertiser.as_str() => return Ok(Err(ContractRefused::Deactivated)),
        _ => return Ok(Err(ContractRefused::NotAnAdvertiser)),
    }
    let new = NewContract { advertiser_id, publication: &terms.publication, ad_size: &terms.ad_size, base_revisions };
    let contract = contracts::insert(&mut tx, &new, now).await?;
    let detail = format!("#{}: {} · {}", contract.id, contract.publication, contract.ad_size);
    audit(&mut tx, actor, AuditAction::ContractCreate, Some(advertiser_id), Some(contract.id), &detail, now).await?;
    tx.commit().await?;
    Ok(Ok(contract))
}

/// The newest audit entries, all or about one person; at most `limit`.
pub async fn audit_log(db: &Db, user_id: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>> {
    const SQL: &str = "SELECT a.id, a.actor, a.action, a.user_id, u.email AS user_email, a.contract_id, a.detail, \
           a.created_at \
         FROM audit_log a LEFT JOIN users u ON u.id = a.user_id \
         WHERE (CAST($1 AS BIGINT) IS NULL OR a.user_id = $1) ORDER BY a.id DESC LIMIT $2";
    on!(db.reader(), |c| Ok(sqlx::query_as::<_, AuditEntry>(SQL).bind(user_id).bind(limit).fetch_all(c).await?))
}
