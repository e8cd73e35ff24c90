//! Revision accounting. The balance is always derived from rows (base + purchases − revocations
//! − requests), never kept as a running counter, so it cannot drift from the ledger that proves it.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionBalance {
    /// Revisions the contract includes.
    pub base: i64,
    /// Σ revisions of the contract's credited packs.
    pub purchased: i64,
    /// Σ revisions taken back by refunds and lost disputes (net of refunds that failed).
    pub revoked: i64,
    /// Number of revision requests made.
    pub requested: i64,
    /// Revisions of payments under an open dispute that are not revoked: the most a dispute
    /// can hold (see `held`).
    pub disputed: i64,
    /// Revisions that refunds still pending would revoke (`Revocation::refunding`, summed over
    /// the contract's payments): held like a dispute's until the refund succeeds or fails.
    #[serde(default)]
    pub refunding: i64,
}

/// Why a revision cannot be requested now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{}", .0.refusal())]
pub struct NoRevisionsLeft(pub RevisionBalance);

impl RevisionBalance {
    /// A contract's balance with nothing bought, revoked or used yet.
    pub fn new(base: i64) -> Self {
        Self { base, purchased: 0, revoked: 0, requested: 0, disputed: 0, refunding: 0 }
    }

    /// available = base + Σ purchased − Σ revoked − Σ requested. The one formula used everywhere.
    /// It may go below zero: revisions used, then their payment refunded.
    pub fn available(&self) -> i64 {
        self.base + self.purchased - self.revoked - self.requested
    }

    /// Revisions held while a payment is disputed: its revisions not revoked and not yet used
    /// (the dispute can only take back what is still there to take).
    /// A pending refund's revisions are held the same way (the domain never counts a payment's
    /// revisions under both).
    pub fn held(&self) -> i64 {
        (self.disputed + self.refunding).min(self.available()).max(0)
    }

    /// Why revisions are held, in words that end "held while …".
    fn holding(&self) -> &'static str {
        match (self.disputed > 0, self.refunding > 0) {
            (true, true) => "a payment is disputed or being refunded",
            (false, true) => "a refund is pending",
            _ => "a payment is disputed",
        }
    }

    /// What may be requested now: available, less what a dispute holds, never below zero.
    pub fn spendable(&self) -> i64 {
        (self.available() - self.held()).max(0)
    }

    /// Revisions used beyond what the contract now holds (the advertiser owes them).
    pub fn owed(&self) -> i64 {
        (-self.available()).max(0)
    }

    /// A request consumes one credit, so it needs at least one that is neither used nor held.
    pub fn check_can_request(&self) -> Result<(), NoRevisionsLeft> {
        if self.spendable() > 0 {
            Ok(())
        } else {
            Err(NoRevisionsLeft(*self))
        }
    }

    /// The formula in words, as every page and the command line show it (what is owed is the
    /// admin's to see, shown beside it there).
    pub fn explain(&self) -> String {
        let mut s = format!(
            "{} included + {} purchased − {} revoked − {} requested = {} available",
            self.base,
            self.purchased,
            self.revoked,
            self.requested,
            self.available()
        );
        if self.held() > 0 {
            s.push_str(&format!(", {} held while {}", self.held(), self.holding()));
        }
        s
    }

    /// Why nothing can be requested, in the advertiser's words.
    pub fn refusal(&self) -> String {
        let formula = self.explain();
        if self.owed() > 0 {
            format!(
                "no revisions left: {formula}. A refunded or charged-back pack took back revisions that \
                 were already used; buy a revision pack to request more"
            )
        } else if self.held() > 0 {
            format!(
                "no revisions can be used now: {formula}. They are held until {} is resolved; buy a \
                 revision pack to request more meanwhile",
                if self.disputed > 0 { "the dispute on a payment" } else { "the pending refund" }
            )
        } else {
            format!("no revisions left on this contract: {formula}; buy a revision pack to request more")
        }
    }

    /// What the advertiser's page says under the figure when something is taken back or held.
    pub fn advisory(&self) -> Option<String> {
        if self.owed() > 0 {
            Some(format!(
                "0 available: {} revision{} already used were refunded or charged back.",
                self.owed(),
                if self.owed() == 1 { "" } else { "s" }
            ))
        } else if self.held() > 0 {
            Some(format!(
                "{} of these {} held while {} and cannot be used until it is resolved.",
                self.held(),
                if self.held() == 1 { "is" } else { "are" },
                self.holding()
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(base: i64, purchased: i64, revoked: i64, requested: i64, disputed: i64) -> RevisionBalance {
        RevisionBalance { base, purchased, revoked, requested, disputed, refunding: 0 }
    }

    #[test]
    fn available_is_base_plus_purchased_minus_revoked_minus_requested() {
        let x = b(3, 4, 0, 5, 0);
        assert_eq!(x.available(), 2);
        assert_eq!(x.explain(), "3 included + 4 purchased − 0 revoked − 5 requested = 2 available");
        assert_eq!(b(3, 4, 2, 5, 0).available(), 0);
    }

    #[test]
    fn a_request_needs_one_available_credit() {
        assert!(b(3, 0, 0, 2, 0).check_can_request().is_ok());
        let err = b(3, 0, 0, 3, 0).check_can_request().unwrap_err();
        assert_eq!(err.0.available(), 0);
        assert!(err.to_string().contains("buy a revision pack"));
    }

    #[test]
    fn below_zero_the_advertiser_sees_why_and_the_admin_sees_what_is_owed() {
        // 3 included + 2 purchased, 5 used, then the pack refunded.
        let x = b(3, 2, 2, 5, 0);
        assert_eq!(x.available(), -2);
        assert_eq!(x.owed(), 2);
        assert_eq!(x.spendable(), 0);
        assert!(x.explain().ends_with("= -2 available"));
        let err = x.check_can_request().unwrap_err().to_string();
        assert!(err.contains("took back revisions that were already used"), "{err}");
        assert!(x.advisory().unwrap().starts_with("0 available"));
    }

    #[test]
    fn a_dispute_holds_only_revisions_not_yet_used() {
        // 3 included + 2 disputed: 5 available, 2 held, 3 may be used.
        let x = b(3, 2, 0, 0, 2);
        assert_eq!((x.available(), x.held(), x.spendable()), (5, 2, 3));
        // 4 used: only 1 of the disputed pack is left to hold.
        let x = b(3, 2, 0, 4, 2);
        assert_eq!((x.available(), x.held(), x.spendable()), (1, 1, 0));
        assert!(x.check_can_request().unwrap_err().to_string().contains("held until the dispute"));
        assert!(x.explain().contains("1 held while a payment is disputed"));
    }

    #[test]
    fn a_pending_refund_holds_its_revisions_like_a_dispute() {
        // 3 included + 2 purchased, a refund of one revision pending: 5 available, 1 held.
        let x = RevisionBalance { refunding: 1, ..b(3, 2, 0, 0, 0) };
        assert_eq!((x.available(), x.held(), x.spendable()), (5, 1, 4));
        assert!(x.explain().contains("1 held while a refund is pending"), "{}", x.explain());
        // Everything else used: the pending refund's revision cannot be spent.
        let x = RevisionBalance { refunding: 1, ..b(3, 2, 0, 4, 0) };
        assert_eq!((x.available(), x.held(), x.spendable()), (1, 1, 0));
        assert!(x.check_can_request().unwrap_err().to_string().contains("held until the pending refund"));
    }

    #[test]
    fn a_purchase_raises_available_by_the_pack_size() {
        let before = b(3, 0, 0, 3, 0);
        let after = RevisionBalance { purchased: 2, ..before };
        assert_eq!(after.available() - before.available(), 2);
    }
}

/// How long the pending-payment modal waits before asking again for the balance: about a
/// second at first (most credits land within one), then backing off by half each time to at
/// most 5 s, so a slow webhook costs few requests.
pub fn poll_delay_ms(attempt: u32) -> u32 {
    let mut delay = 1000f64;
    for _ in 0..attempt {
        delay *= 1.5;
    }
    delay.min(5000.0) as u32
}

/// After this long without the credit, the modal says the payment is safe and the credit will
/// appear (and keeps checking), instead of leaving the user with a spinner.
pub const PENDING_PATIENCE_MS: u32 = 20_000;

#[cfg(test)]
mod poll_tests {
    #[test]
    fn polling_starts_near_a_second_and_backs_off_to_five() {
        let d: Vec<u32> = (0..6).map(super::poll_delay_ms).collect();
        assert_eq!(d, vec![1000, 1500, 2250, 3375, 5000, 5000]);
    }
}
