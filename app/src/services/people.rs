//! People, managed by admins: inviting an advertiser (a one-time link to set a password, emailed
//! to them, or shown to the admin to pass on when email is off), resetting a password, deactivating and reactivating, creating a
//! contract; and the person's side: setting a password through the link. Each action is one
//! transaction in `store::people` with its audit row; the rules are `domain::people`'s.
use super::accounts::hash_password;
use super::Services;
use crate::domain::mail::Kind;
use crate::domain::people::{check_deactivate, check_new_password, Actor, ContractTerms, LinkPurpose};
use crate::domain::people::{LinkState, PasswordProblem, UNKNOWN_LINK};
use crate::domain::users::{Email, Role};
use crate::store::contracts::Contract;
use crate::store::people::{self as store, ContractRefused, LinkRefused, NewLink};
use crate::store::users::User;
use crate::store::{ConstraintKind, StoreError};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    /// The input is wrong; the message says how, for the person who typed it.
    #[error("{0}")]
    Invalid(String),
    #[error("a user with email {0} already exists")]
    EmailTaken(String),
    #[error("no such user")]
    NotFound,
    /// The new password is not acceptable.
    #[error("{}", .0.message())]
    Password(PasswordProblem),
    /// The action does not apply (deactivating oneself, a deactivated person's contract).
    #[error("{0}")]
    Refused(String),
    /// Too many passwords are being hashed at once (`sign_in_throttle::HashingPermits`): try
    /// again in a second.
    #[error("busy: too many passwords are being checked at once")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A set-password link made for someone: emailed to them, or (email off, or the outbox did not
/// take it) to show the admin once.
#[derive(Debug, Clone)]
pub struct IssuedLink {
    pub user: User,
    pub url: String,
    pub expires_at: DateTime<Utc>,
    /// Queued in the outbox for the person: the admin is told so and not shown the link.
    pub emailed: bool,
}

/// Queues the email with a new link; false when email is off. The link exists already, so a
/// failed queue is not the action's failure: the admin is shown the link instead.
async fn email_link(svc: &Services, kind: Kind, user: &User, url: &str, expires_at: DateTime<Utc>) -> bool {
    let letter = crate::domain::mail::link(kind, url, expires_at);
    match super::mail::queue(svc, kind, None, &user.email, &letter).await {
        Ok(queued) => queued,
        Err(e) => {
            tracing::error!(error = %e, user = user.id, kind = kind.as_str(), "could not queue a link's email; showing it");
            false
        }
    }
}

pub use crate::domain::people::LINK_PATH;

/// A link's token is 32 random bytes (hex): unguessable, and only its SHA-256 is stored.
fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A password hash nobody can match: the hash of a random secret that is thrown away. Used
/// until the person sets their own through a link (the users table insists on an argon2 hash).
async fn unusable_hash() -> String {
    let secret = new_token();
    tokio::task::spawn_blocking(move || hash_password(&secret)).await.expect("hashing does not panic")
}

/// A new link of `purpose` (valid for its `lifetime`): its address, and what the store keeps.
pub(super) fn link_for(origin: &str, purpose: LinkPurpose, now: DateTime<Utc>) -> (String, NewLink) {
    let token = new_token();
    let url = format!("{}{LINK_PATH}{token}", origin.trim_end_matches('/'));
    (url, NewLink { token_hash: token_hash(&token), purpose, expires_at: now + purpose.lifetime() })
}

/// Creates an advertiser who sets their own password through the link returned (and emailed). `origin` is the
/// site's address as users reach it (`PUBLIC_URL`, else where the admin's request came to).
pub async fn invite_advertiser(
    svc: &Services,
    email: &str,
    origin: &str,
    actor: &Actor,
) -> Result<IssuedLink, PeopleError> {
    let email = Email::parse(email).map_err(PeopleError::Invalid)?;
    let now = Utc::now();
    let (url, link) = link_for(origin, LinkPurpose::Invite, now);
    let hash = unusable_hash().await;
    let user =
        store::create_user(&svc.db, &email, Role::Advertiser, &hash, Some(&link), actor, now).await.map_err(|e| {
            if e.is_constraint(ConstraintKind::Unique) {
                PeopleError::EmailTaken(email.as_str().to_string())
            } else {
                PeopleError::Store(e)
            }
        })?;
    let emailed = email_link(svc, Kind::Invitation, &user, &url, link.expires_at).await;
    Ok(IssuedLink { user, url, expires_at: link.expires_at, emailed })
}

/// A new set-password link for an active person; their password stops working and their
/// sessions end.
pub async fn reset_password(
    svc: &Services,
    user_id: i64,
    origin: &str,
    actor: &Actor,
) -> Result<IssuedLink, PeopleError> {
    let now = Utc::now();
    let (url, link) = link_for(origin, LinkPurpose::Reset, now);
    let hash = unusable_hash().await;
    match store::reset_password(&svc.db, user_id, &hash, &link, actor, now).await? {
        Some(user) => {
            let emailed = email_link(svc, Kind::Reset, &user, &url, link.expires_at).await;
            Ok(IssuedLink { user, url, expires_at: link.expires_at, emailed })
        }
        None => Err(refusal_for_inactive(svc, user_id, "Reactivate the account before resetting its password.").await?),
    }
}

/// NotFound for nobody, else the refusal given.
async fn refusal_for_inactive(svc: &Services, user_id: i64, why: &str) -> Result<PeopleError, PeopleError> {
    Ok(match crate::store::users::find(&svc.db, user_id).await? {
        None => PeopleError::NotFound,
        Some(_) => PeopleError::Refused(why.into()),
    })
}

pub async fn deactivate(svc: &Services, user_id: i64, actor: &Actor) -> Result<User, PeopleError> {
    if let Some(actor_id) = actor.id() {
        check_deactivate(actor_id, user_id).map_err(PeopleError::Refused)?;
    }
    match store::deactivate(&svc.db, user_id, actor, Utc::now()).await? {
        Some(user) => Ok(user),
        None => Err(refusal_for_inactive(svc, user_id, "The account is deactivated already.").await?),
    }
}

pub async fn reactivate(svc: &Services, user_id: i64, actor: &Actor) -> Result<User, PeopleError> {
    match store::reactivate(&svc.db, user_id, actor, Utc::now()).await? {
        Some(user) => Ok(user),
        None => Err(refusal_for_inactive(svc, user_id, "The account is active already.").await?),
    }
}

pub async fn create_contract(
    svc: &Services,
    advertiser_id: i64,
    publication: &str,
    ad_size: &str,
    actor: &Actor,
) -> Result<Contract, PeopleError> {
    let terms = ContractTerms::parse(publication, ad_size).map_err(PeopleError::Invalid)?;
    match store::create_contract(&svc.db, advertiser_id, &terms, svc.terms.base_revisions, actor, Utc::now()).await? {
        Ok(c) => Ok(c),
        Err(ContractRefused::NotAnAdvertiser) => match crate::store::users::find(&svc.db, advertiser_id).await? {
            None => Err(PeopleError::NotFound),
            Some(_) => Err(PeopleError::Refused("Contracts are for advertisers.".into())),
        },
        Err(ContractRefused::Deactivated) => {
            Err(PeopleError::Refused("The advertiser is deactivated: reactivate them first.".into()))
        }
    }
}

/// What the person opening a link is told when it cannot be used.
pub fn link_refusal(r: LinkRefused) -> &'static str {
    match r {
        LinkRefused::Unknown => UNKNOWN_LINK,
        LinkRefused::State(s) => s.refusal().unwrap_or(UNKNOWN_LINK),
        LinkRefused::Deactivated => "This account is deactivated. Ask the publisher.",
    }
}

/// The email a link sets the password of, or why it cannot be used.
pub async fn open_link(svc: &Services, token: &str) -> Result<Result<String, &'static str>, StoreError> {
    Ok(store::link(&svc.db, &token_hash(token), Utc::now()).await?.map_err(link_refusal))
}

/// Sets a password through a link. A refused link or password changes nothing.
pub async fn set_password(svc: &Services, token: &str, password: &str, confirm: &str) -> Result<User, PeopleError> {
    check_new_password(password, confirm).map_err(PeopleError::Password)?;
    // Check the link before the slow hash, so a stale link is answered at once.
    if let Err(why) = open_link(svc, token).await? {
        return Err(PeopleError::Refused(why.into()));
    }
    // argon2 takes about 19 MiB and tens of milliseconds: only so many at once, as at sign-in.
    let turn = svc.password_hashing.turn().await.ok_or(PeopleError::Busy)?;
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await.expect("hashing does not panic");
    drop(turn);
    match store::redeem_link(&svc.db, &token_hash(token), &hash, Utc::now()).await? {
        Ok(user) => Ok(user),
        Err(r) => Err(PeopleError::Refused(link_refusal(r).into())),
    }
}

/// Whether a person's newest unused link still works, for the admin's list.
pub fn link_open(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    expires_at.is_some_and(|e| matches!(LinkState::of(e, None, now), LinkState::Open { .. }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (super::new_token(), super::new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(super::token_hash(&a).len(), 64);
        assert_ne!(super::token_hash(&a), a);
        let (url, link) = super::link_for("https://shop.example/", super::LinkPurpose::Invite, chrono::Utc::now());
        assert!(url.starts_with("https://shop.example/password/"));
        assert_eq!(super::token_hash(url.rsplit('/').next().unwrap()), link.token_hash);
    }
}
