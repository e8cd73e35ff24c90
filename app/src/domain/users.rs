//! Who uses Revision Store.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Holds contracts, buys and requests revisions.
    Advertiser,
    /// The publisher's staff: sees every contract and the money trail.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "advertiser" => Ok(Self::Advertiser),
            "admin" => Ok(Self::Admin),
            other => Err(format!("`{other}` is not a role: use advertiser or admin")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Advertiser => "advertiser",
            Self::Admin => "admin",
        }
    }
}

/// An email address as a sign-in name: trimmed, lower-cased, plausibly shaped. Deliverability
/// is not our business here; uniqueness is, and lower-casing makes it mean one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim().to_lowercase();
        let valid = s.len() <= 254
            && !s.chars().any(char::is_whitespace)
            && matches!(s.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@'));
        if valid {
            Ok(Self(s))
        } else {
            Err(format!("`{s}` is not an email address"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("  Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@example.com", "ann@example", "a b@example.com", "a@b@c.com", "ann@.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_parse() {
        assert_eq!(Role::parse("Admin").unwrap(), Role::Admin);
        assert_eq!(Role::parse("advertiser").unwrap().as_str(), "advertiser");
        assert!(Role::parse("root").is_err());
    }
}
