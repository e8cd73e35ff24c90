//! Accounts: creating users with argon2-hashed passwords, and checking a password.
use crate::domain::users::{Email, Role};
use crate::store::users::User;
use crate::store::{ConstraintKind, StoreError};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub use crate::domain::people::MIN_PASSWORD_LEN;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("a user with email {0} already exists")]
    EmailTaken(String),
    #[error(transparent)]
    Store(StoreError),
}

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 with default params").to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A random password for `user create` without one: 20 characters from an unambiguous alphabet.
pub fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// Creates a user with a password, as the command line does (recorded in the audit log as the
/// command line's act).
pub async fn create_user(db: &crate::store::Db, email: &str, role: Role, password: &str) -> Result<User, AccountError> {
    let email = Email::parse(email).map_err(AccountError::Invalid)?;
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AccountError::Invalid(format!("the password must have at least {MIN_PASSWORD_LEN} characters")));
    }
    let hash = hash_password(password);
    let actor = crate::domain::people::Actor::CommandLine;
    crate::store::people::create_user(db, &email, role, &hash, None, &actor, chrono::Utc::now()).await.map_err(|e| {
        if e.is_constraint(ConstraintKind::Unique) {
            AccountError::EmailTaken(email.as_str().to_string())
        } else {
            AccountError::Store(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn generated_passwords_are_long_enough() {
        let p = generate_password();
        assert!(p.len() >= MIN_PASSWORD_LEN);
        assert_ne!(p, generate_password());
    }
}
