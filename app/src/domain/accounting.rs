//! Revision accounting. The balance is always derived from rows (base + purchases − requests),
//! never kept as a running counter, so it cannot drift from the ledger that proves it.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionBalance {
    /// Revisions the contract includes.
    pub base: i64,
    /// Σ revisions of the contract's credited packs.
    pub purchased: i64,
    /// Number of revision requests made.
    pub requested: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("no revisions left on this contract: {base} included + {purchased} purchased − {requested} requested = {available}; buy a revision pack to request more")]
pub struct NoRevisionsLeft {
    pub base: i64,
    pub purchased: i64,
    pub requested: i64,
    pub available: i64,
}

impl RevisionBalance {
    /// available = base + Σ purchased − Σ requested. The one formula used everywhere.
    pub fn available(&self) -> i64 {
        self.base + self.purchased - self.requested
    }

    /// A request consumes one credit, so it needs at least one available.
    pub fn check_can_request(&self) -> Result<(), NoRevisionsLeft> {
        let available = self.available();
        if available > 0 {
            Ok(())
        } else {
            Err(NoRevisionsLeft { base: self.base, purchased: self.purchased, requested: self.requested, available })
        }
    }

    /// The formula in words, as shown to advertisers and admins.
    pub fn explain(&self) -> String {
        format!(
            "{} included + {} purchased − {} requested = {} available",
            self.base,
            self.purchased,
            self.requested,
            self.available()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_is_base_plus_purchased_minus_requested() {
        let b = RevisionBalance { base: 3, purchased: 4, requested: 5 };
        assert_eq!(b.available(), 2);
        assert_eq!(b.explain(), "3 included + 4 purchased − 5 requested = 2 available");
    }

    #[test]
    fn a_request_needs_one_available_credit() {
        assert!(RevisionBalance { base: 3, purchased: 0, requested: 2 }.check_can_request().is_ok());
        let err = RevisionBalance { base: 3, purchased: 0, requested: 3 }.check_can_request().unwrap_err();
        assert_eq!(err.available, 0);
        assert!(err.to_string().contains("buy a revision pack"));
        // A negative balance (possible only if data was edited by hand) still refuses.
        assert!(RevisionBalance { base: 0, purchased: 0, requested: 1 }.check_can_request().is_err());
    }

    #[test]
    fn a_purchase_raises_available_by_the_pack_size() {
        let before = RevisionBalance { base: 3, purchased: 0, requested: 3 };
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
