//! Managing people: who may do what to whom, the one-time links that set a password, and the
//! words of the audit log. Plain rules; the store applies them in one transaction per action.
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long a set-password link works. Long enough for an advertiser to find the email the admin
/// passed the link on in, short enough that a link forgotten in an inbox goes stale.
pub fn link_lifetime() -> Duration {
    Duration::hours(72)
}

/// The path a set-password link opens (invitations and resets alike); the token follows.
pub const LINK_PATH: &str = "/password/";

/// A request path as it may be written to a log: a set-password link's token is the key to an
/// account for 72 hours, so it is replaced by `…` (logs are read, shipped and kept by more people
/// and systems than the database's `password_links`, which holds only the token's hash).
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix(LINK_PATH) {
        Some(rest) if !rest.is_empty() => {
            // Whatever follows the token (nothing today) is as secret as the token: drop it all.
            std::borrow::Cow::Owned(format!("{LINK_PATH}…"))
        }
        _ => std::borrow::Cow::Borrowed(path),
    }
}

/// Why a link was made: a new advertiser's first password, an admin's reset, or the person's own
/// request ("Forgot your password?", which leaves the current password working).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkPurpose {
    Invite,
    Reset,
    Forgot,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::Reset => "reset",
            Self::Forgot => "forgot",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Invite, Self::Reset, Self::Forgot].into_iter().find(|p| p.as_str() == s)
    }
    /// How long a link of this purpose works. A forgotten password's link is asked for by
    /// whoever typed the address and goes straight to the inbox: an hour is enough to use it,
    /// and little for anyone who reads that inbox later.
    pub fn lifetime(self) -> Duration {
        match self {
            Self::Forgot => forgot::LINK_LIFETIME,
            Self::Invite | Self::Reset => link_lifetime(),
        }
    }
}

/// "Forgot your password?": the one answer, and how often a link may be asked for.
pub mod forgot {
    use chrono::Duration;

    /// What every request is told: whether or not the address has an account, whether or not
    /// it was throttled, so the form tells nobody who has an account.
    pub const ANSWER: &str = "If an account exists for that address, we have emailed it a link to choose a new \
        password. The link works once, for an hour. Nothing arrived? Check the spam folder, or ask the publisher.";
    /// Said instead of the form when the store sends no email.
    pub const MAIL_OFF: &str =
        "This store does not send email, so a link cannot be sent: ask the publisher to reset your password.";
    pub const LINK_LIFETIME: Duration = Duration::hours(1);
    /// Requests are counted over this window.
    pub const WINDOW: Duration = Duration::hours(1);
    /// Links per address asked for (account or not) in a window: a person who lost the first
    /// email or two still gets one; nobody can fill an inbox.
    pub const PER_ACCOUNT: i64 = 3;
    /// Requests per client address (`throttle::address_group`) in a window: enough for an office
    /// behind one address, too few to probe many addresses.
    pub const PER_ADDRESS: i64 = 10;

    /// Whether a request, counted with the others in the window (itself included), may send.
    pub fn allowed(for_account: i64, from_address: i64) -> bool {
        for_account <= PER_ACCOUNT && from_address <= PER_ADDRESS
    }
}

/// Where a set-password link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkState {
    /// It can be used until then.
    Open {
        expires_at: DateTime<Utc>,
    },
    Used,
    Expired,
}

impl LinkState {
    pub fn of(expires_at: DateTime<Utc>, used_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        match used_at {
            Some(_) => Self::Used,
            None if now >= expires_at => Self::Expired,
            None => Self::Open { expires_at },
        }
    }

    /// What the person who opened the link is told when it cannot be used. The same words for a
    /// link that never existed and one that was replaced, so a guess learns nothing.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Self::Open { .. } => None,
            Self::Used => Some("This link has been used already. Sign in with the password you set, or ask the publisher for a new link."),
            Self::Expired => Some("This link has expired. Ask the publisher for a new one."),
        }
    }
}

/// The answer for a token we do not hold (never issued, replaced by a newer link, or mistyped).
pub const UNKNOWN_LINK: &str = "This link is not valid. Ask the publisher for a new one.";

/// Whether `actor` may deactivate `target`. Admins may deactivate anyone but themselves: an admin
/// who could deactivate themself could leave nobody able to sign in to undo it, and the actor is
/// always an active admin, so at least one remains.
pub fn check_deactivate(actor_id: i64, target_id: i64) -> Result<(), String> {
    if actor_id == target_id {
        return Err("You cannot deactivate your own account; ask another admin.".into());
    }
    Ok(())
}

/// Why a new password was refused. The set-password page is sent back a code, never text, so a
/// crafted link cannot make it say anything but these messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PasswordProblem {
    TooShort,
    TooLong,
    Differ,
}

/// The shortest password accepted: long enough that guessing is not worth it (NIST SP 800-63B
/// asks for length, not composition rules).
pub const MIN_PASSWORD_LEN: usize = 12;
/// The longest: hashing cost stays bounded.
pub const MAX_PASSWORD_LEN: usize = 200;

impl PasswordProblem {
    const ALL: [Self; 3] = [Self::TooShort, Self::TooLong, Self::Differ];
    pub fn code(self) -> &'static str {
        match self {
            Self::TooShort => "too-short",
            Self::TooLong => "too-long",
            Self::Differ => "differ",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }
    pub fn message(self) -> String {
        match self {
            Self::TooShort => format!("The password must have at least {MIN_PASSWORD_LEN} characters."),
            Self::TooLong => format!("The password must have at most {MAX_PASSWORD_LEN} characters."),
            Self::Differ => "The two passwords differ.".into(),
        }
    }
}

/// A new password, as typed twice.
pub fn check_new_password(password: &str, confirm: &str) -> Result<(), PasswordProblem> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(PasswordProblem::TooShort);
    }
    if len > MAX_PASSWORD_LEN {
        return Err(PasswordProblem::TooLong);
    }
    if password != confirm {
        return Err(PasswordProblem::Differ);
    }
    Ok(())
}

/// A new contract's publication and ad size, trimmed and within the lengths the database allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractTerms {
    pub publication: String,
    pub ad_size: String,
}

impl ContractTerms {
    pub fn parse(publication: &str, ad_size: &str) -> Result<Self, String> {
        for (name, value, max) in [("publication", publication, 200), ("ad size", ad_size, 100)] {
            let len = value.trim().chars().count();
            if len == 0 || len > max {
                return Err(format!("The {name} must have 1 to {max} characters."));
            }
        }
        Ok(Self { publication: publication.trim().to_string(), ad_size: ad_size.trim().to_string() })
    }
}

/// What the audit log records. Each variant is one action; `as_str` is the stored word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditAction {
    UserCreate,
    UserDeactivate,
    UserReactivate,
    PasswordLink,
    PasswordSet,
    ContractCreate,
}

impl AuditAction {
    pub const ALL: [Self; 6] = [
        Self::UserCreate,
        Self::UserDeactivate,
        Self::UserReactivate,
        Self::PasswordLink,
        Self::PasswordSet,
        Self::ContractCreate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreate => "user.create",
            Self::UserDeactivate => "user.deactivate",
            Self::UserReactivate => "user.reactivate",
            Self::PasswordLink => "user.password_link",
            Self::PasswordSet => "user.password_set",
            Self::ContractCreate => "contract.create",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// As an admin reads it in the log.
    pub fn describe(self) -> &'static str {
        match self {
            Self::UserCreate => "created the account",
            Self::UserDeactivate => "deactivated the account",
            Self::UserReactivate => "reactivated the account",
            Self::PasswordLink => "issued a set-password link",
            Self::PasswordSet => "set the password",
            Self::ContractCreate => "created a contract",
        }
    }
}

/// Who acted: a signed-in admin, the person themself (setting their password), or the operator
/// at the command line, who has no account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User {
        id: i64,
        email: String,
    },
    CommandLine,
    /// Whoever typed the address into "Forgot your password?" (not signed in, not known).
    ForgotForm,
}

impl Actor {
    pub fn id(&self) -> Option<i64> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::CommandLine | Self::ForgotForm => None,
        }
    }
    pub fn name(&self) -> &str {
        match self {
            Self::User { email, .. } => email,
            Self::CommandLine => "command line",
            Self::ForgotForm => "forgot-password form",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forgotten_password_link_lasts_an_hour_and_is_asked_for_a_few_times() {
        assert_eq!(LinkPurpose::Forgot.lifetime(), Duration::hours(1));
        assert_eq!(LinkPurpose::Reset.lifetime(), link_lifetime());
        assert_eq!(LinkPurpose::parse("forgot"), Some(LinkPurpose::Forgot));
        assert!(forgot::allowed(3, 10));
        assert!(!forgot::allowed(4, 1), "a fourth link for one account in an hour");
        assert!(!forgot::allowed(1, 11), "an eleventh request from one address");
    }

    #[test]
    fn a_link_is_open_until_it_expires_or_is_used() {
        let now = Utc::now();
        let expires = now + link_lifetime();
        assert_eq!(LinkState::of(expires, None, now), LinkState::Open { expires_at: expires });
        assert_eq!(LinkState::of(expires, None, expires), LinkState::Expired);
        assert_eq!(LinkState::of(expires, Some(now), now), LinkState::Used);
        // Used wins over expired: the person is told they set a password already.
        assert_eq!(LinkState::of(now, Some(now), now + Duration::days(9)), LinkState::Used);
        assert!(LinkState::Open { expires_at: expires }.refusal().is_none());
        assert!(LinkState::Expired.refusal().unwrap().contains("expired"));
        assert_eq!(link_lifetime(), Duration::hours(72));
    }

    #[test]
    fn nobody_deactivates_themself() {
        assert!(check_deactivate(1, 1).is_err());
        assert!(check_deactivate(1, 2).is_ok());
    }

    #[test]
    fn new_passwords_need_length_and_a_matching_confirmation() {
        assert_eq!(check_new_password("short", "short"), Err(PasswordProblem::TooShort));
        assert_eq!(check_new_password("long enough pw", "long enough pw!"), Err(PasswordProblem::Differ));
        assert_eq!(check_new_password(&"x".repeat(201), &"x".repeat(201)), Err(PasswordProblem::TooLong));
        assert_eq!(check_new_password("long enough pw", "long enough pw"), Ok(()));
        for p in PasswordProblem::ALL {
            assert_eq!(PasswordProblem::from_code(p.code()), Some(p));
        }
        assert!(PasswordProblem::TooShort.message().contains("at least 12"));
        assert_eq!(PasswordProblem::from_code("<script>"), None);
    }

    #[test]
    fn contract_terms_are_trimmed_and_bounded() {
        let t = ContractTerms::parse("  Daily Planet ", " Full page").unwrap();
        assert_eq!((t.publication.as_str(), t.ad_size.as_str()), ("Daily Planet", "Full page"));
        assert!(ContractTerms::parse(" ", "Full page").unwrap_err().contains("publication"));
        assert!(ContractTerms::parse("Daily Planet", &"x".repeat(101)).unwrap_err().contains("ad size"));
    }

    #[test]
    fn audit_words_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::parse("user.delete"), None);
        assert_eq!(Actor::CommandLine.name(), "command line");
        assert_eq!(Actor::User { id: 3, email: "a@b.co".into() }.id(), Some(3));
    }

    #[test]
    fn a_link_token_never_reaches_a_log_path() {
        let token = "ab".repeat(32);
        let path = format!("/password/{token}");
        let logged = super::loggable_path(&path);
        assert_eq!(logged, "/password/…");
        assert!(!logged.contains(&token));
        assert_eq!(super::loggable_path("/password/x/y"), "/password/…");
        assert_eq!(super::loggable_path("/admin/people/7"), "/admin/people/7");
        assert_eq!(super::loggable_path("/password/"), "/password/");
    }
}
