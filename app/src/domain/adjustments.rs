//! Money moving back: what refunds and disputes do to the revisions a payment granted. Pure
//! rules over the facts Stripe reports; the store books their result as append-only rows.
//!
//! The rules, in the business' words:
//! - A payment's terms are its own, not today's price: a revision is worth the pack's amount ÷
//!   its revisions.
//! - Refunds revoke floor(Σ succeeded refunded ÷ revision value) revisions, never more than the
//!   pack. Two $75 refunds of a $150 / 2-revision pack revoke one each; a $100 refund revokes one.
//! - A refund that fails later counts no more, so what it revoked comes back.
//! - An open dispute holds the payment's revisions that are not revoked and not yet used; a lost
//!   dispute revokes everything not already revoked; won or warning_closed releases the hold.
//! - Every figure is recomputed from all the facts each time, so the same facts, delivered any
//!   number of times in any order, give the same ledger.
use serde::{Deserialize, Serialize};

/// What one credited payment bought: the terms the revocation is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidPack {
    /// What was paid, minor units.
    pub amount: i64,
    /// Revisions it granted.
    pub revisions: i64,
}

impl PaidPack {
    /// Revisions that `refunded` minor units pay back: floor(refunded ÷ (amount ÷ revisions)),
    /// computed as floor(refunded × revisions ÷ amount) so a value like $100 ÷ 3 is exact.
    pub fn revisions_refunded(&self, refunded: i64) -> i64 {
        if self.amount <= 0 || refunded <= 0 {
            return 0;
        }
        let n = (i128::from(refunded) * i128::from(self.revisions)) / i128::from(self.amount);
        (n as i64).min(self.revisions)
    }

    /// The least total refund that revokes `revisions` revisions: ceil(revisions × amount ÷ pack
    /// revisions), so a refund planned by revisions revokes exactly that many.
    pub fn refund_for_revisions(&self, revisions: i64) -> i64 {
        let revisions = revisions.clamp(0, self.revisions);
        let num = i128::from(revisions) * i128::from(self.amount);
        let den = i128::from(self.revisions.max(1));
        ((num + den - 1) / den) as i64
    }
}

/// A Refund's `status` as Stripe reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundStatus {
    Pending,
    RequiresAction,
    Succeeded,
    Failed,
    Canceled,
}

impl RefundStatus {
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "pending" => Self::Pending,
            "requires_action" => Self::RequiresAction,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            other => return Err(format!("`{other}` is not a refund status")),
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::RequiresAction => "requires_action",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
    /// How far along a refund's life the status is. A refund only moves forward (pending →
    /// succeeded → failed for a card that cannot take the money back), so a late event
    /// carrying an earlier status must not undo a later one.
    fn stage(self) -> u8 {
        match self {
            Self::Pending | Self::RequiresAction => 0,
            Self::Succeeded => 1,
            Self::Failed | Self::Canceled => 2,
        }
    }
    /// The status to keep when `incoming` is reported for a refund we hold as `self`.
    pub fn merge(self, incoming: Self) -> Self {
        if incoming.stage() > self.stage() || (incoming.stage() == 0 && self.stage() == 0) {
            incoming
        } else {
            self
        }
    }
    /// Whether the money went back to the customer (and so counts against the pack).
    pub fn counts(self) -> bool {
        self == Self::Succeeded
    }
    /// Whether Stripe still counts the amount as refunded or being refunded (what remains
    /// refundable excludes it).
    pub fn reserves_amount(self) -> bool {
        matches!(self, Self::Pending | Self::RequiresAction | Self::Succeeded)
    }
}

/// A Dispute's `status` as Stripe reports it. `warning_*` are inquiries, which may escalate
/// into a chargeback (`needs_response`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DisputeStatus {
    WarningNeedsResponse,
    WarningUnderReview,
    WarningClosed,
    NeedsResponse,
    UnderReview,
    Won,
    Lost,
    Prevented,
}

impl DisputeStatus {
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "warning_needs_response" => Self::WarningNeedsResponse,
            "warning_under_review" => Self::WarningUnderReview,
            "warning_closed" => Self::WarningClosed,
            "needs_response" => Self::NeedsResponse,
            "under_review" => Self::UnderReview,
            "won" => Self::Won,
            "lost" => Self::Lost,
            "prevented" => Self::Prevented,
            other => return Err(format!("`{other}` is not a dispute status")),
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WarningNeedsResponse => "warning_needs_response",
            Self::WarningUnderReview => "warning_under_review",
            Self::WarningClosed => "warning_closed",
            Self::NeedsResponse => "needs_response",
            Self::UnderReview => "under_review",
            Self::Won => "won",
            Self::Lost => "lost",
            Self::Prevented => "prevented",
        }
    }
    /// Order of a dispute's life: an inquiry, its close, its escalation to a chargeback, the
    /// review, the verdict. Events may arrive in any order; the furthest status wins.
    fn stage(self) -> u8 {
        match self {
            Self::WarningNeedsResponse => 0,
            Self::WarningUnderReview => 1,
            Self::WarningClosed | Self::Prevented => 2,
            Self::NeedsResponse => 3,
            Self::UnderReview => 4,
            Self::Won | Self::Lost => 5,
        }
    }
    /// The status to keep when `incoming` is reported for a dispute we hold as `self`. A verdict
    /// is final: the first one reported stays.
    pub fn merge(self, incoming: Self) -> Self {
        if incoming.stage() > self.stage() {
            incoming
        } else {
            self
        }
    }
    /// While open, the payment's unused revisions are held.
    pub fn is_open(self) -> bool {
        matches!(self, Self::WarningNeedsResponse | Self::WarningUnderReview | Self::NeedsResponse | Self::UnderReview)
    }
}

/// One refund of a payment, as far as the rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundFact {
    pub amount: i64,
    pub status: RefundStatus,
}

/// What the facts about one payment mean for its revisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Revisions taken back from the pack (0..=pack).
    pub revoked: i64,
    /// A dispute is open: the pack's remaining revisions are held.
    pub disputed: bool,
    /// A dispute was lost: the whole pack is revoked.
    pub lost: bool,
    /// Σ succeeded refunds, minor units.
    pub refunded: i64,
}

/// The rule: what a payment's refunds and disputes revoke and hold.
pub fn revocation(pack: &PaidPack, refunds: &[RefundFact], disputes: &[DisputeStatus]) -> Revocation {
    let refunded: i64 = refunds.iter().filter(|r| r.status.counts()).map(|r| r.amount).sum();
    let lost = disputes.contains(&DisputeStatus::Lost);
    // A lost dispute takes back what refunds have not already; either way never more than the
    // pack granted (a refund racing a dispute on one payment).
    let revoked = if lost { pack.revisions } else { pack.revisions_refunded(refunded) };
    Revocation { revoked, disputed: disputes.iter().any(|d| d.is_open()), lost, refunded }
}

/// Why an adjustment row is booked; the row's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdjustmentKind {
    /// A refund succeeded (possibly revoking 0 revisions: below one revision's value).
    Refund,
    /// A refund failed or was canceled after it had counted: revisions come back.
    RefundFailed,
    /// A dispute was lost.
    DisputeLost,
    /// Facts that arrived before the payment was credited, booked when it was.
    CatchUp,
}

impl AdjustmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refund => "refund",
            Self::RefundFailed => "refund_failed",
            Self::DisputeLost => "dispute_lost",
            Self::CatchUp => "catch_up",
        }
    }
}

/// What a refund an admin asks for should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundAsk {
    /// Everything not yet refunded.
    Full,
    /// Enough to revoke this many more revisions.
    Revisions(i64),
}

/// A refund to ask Stripe for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundPlan {
    /// Minor units.
    pub amount: i64,
    /// Revisions it will revoke.
    pub revisions: i64,
}

/// Plans an admin's refund of one payment, or says why it cannot be made. `refunds` are the
/// payment's known refunds (pending ones included: Stripe already counts them against the
/// charge), `revocation` what the ledger already holds for it.
pub fn plan_refund(
    pack: &PaidPack,
    refunds: &[RefundFact],
    revocation: &Revocation,
    ask: RefundAsk,
) -> Result<RefundPlan, String> {
    if revocation.disputed {
        // Stripe refuses to refund a charge under dispute; the dispute itself decides.
        return Err("this payment is disputed: answer the dispute in Stripe instead of refunding it".into());
    }
    let reserved: i64 = refunds.iter().filter(|r| r.status.reserves_amount()).map(|r| r.amount).sum();
    let remaining_money = pack.amount - reserved;
    // Pending refunds count here too: the money is on its way back, so its revisions are spoken for.
    let remaining_revisions = pack.revisions - pack.revisions_refunded(reserved).max(revocation.revoked);
    if remaining_money <= 0 || revocation.lost {
        return Err("nothing is left to refund on this payment".into());
    }
    match ask {
        RefundAsk::Full => Ok(RefundPlan { amount: remaining_money, revisions: 0 }.fix(pack, reserved)),
        RefundAsk::Revisions(n) if n < 1 => Err("refund at least one revision".into()),
        RefundAsk::Revisions(n) if n > remaining_revisions => Err(format!(
            "only {remaining_revisions} revision{} of this pack can still be refunded, not {n}",
            if remaining_revisions == 1 { "" } else { "s" }
        )),
        RefundAsk::Revisions(n) => {
            let already = pack.revisions_refunded(reserved);
            let amount = (pack.refund_for_revisions(already + n) - reserved).clamp(1, remaining_money);
            Ok(RefundPlan { amount, revisions: n }.fix(pack, reserved))
        }
    }
}

impl RefundPlan {
    /// The revisions a plan's amount really revokes under the rule, whatever was asked.
    fn fix(self, pack: &PaidPack, reserved: i64) -> Self {
        let revisions = pack.revisions_refunded(reserved + self.amount) - pack.revisions_refunded(reserved);
        Self { revisions, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DisputeStatus as D;
    use RefundStatus as R;

    const PACK: PaidPack = PaidPack { amount: 15_000, revisions: 2 };

    fn refund(amount: i64, status: RefundStatus) -> RefundFact {
        RefundFact { amount, status }
    }

    #[test]
    fn refunds_revoke_whole_revisions_by_the_payments_own_value() {
        let revoked = |refunds: &[RefundFact]| revocation(&PACK, refunds, &[]).revoked;
        assert_eq!(revoked(&[refund(15_000, R::Succeeded)]), 2, "a full refund takes the pack back");
        assert_eq!(revoked(&[refund(7_500, R::Succeeded)]), 1, "$75 is one revision");
        assert_eq!(revoked(&[refund(7_500, R::Succeeded), refund(7_500, R::Succeeded)]), 2);
        assert_eq!(revoked(&[refund(10_000, R::Succeeded)]), 1, "$100 is one revision and change");
        assert_eq!(revoked(&[refund(7_499, R::Succeeded)]), 0, "below one revision's value");
        assert_eq!(revoked(&[refund(7_500, R::Pending)]), 0, "pending money has not gone back");
        assert_eq!(revoked(&[refund(15_000, R::Failed)]), 0, "a failed refund counts for nothing");
        // A pack bought at other terms is measured by its own: $100 for 3 revisions.
        let odd = PaidPack { amount: 10_000, revisions: 3 };
        assert_eq!(revocation(&odd, &[refund(3_334, R::Succeeded)], &[]).revoked, 1);
        assert_eq!(revocation(&odd, &[refund(3_333, R::Succeeded)], &[]).revoked, 0);
    }

    #[test]
    fn the_same_facts_in_any_order_give_the_same_revocation() {
        let facts = [refund(7_500, R::Succeeded), refund(5_000, R::Failed), refund(2_500, R::Succeeded)];
        let a = revocation(&PACK, &facts, &[D::UnderReview]);
        let mut reversed = facts;
        reversed.reverse();
        assert_eq!(a, revocation(&PACK, &reversed, &[D::UnderReview]));
        assert_eq!(a.revoked, 1);
    }

    #[test]
    fn statuses_only_move_forward_whatever_order_events_arrive_in() {
        assert_eq!(R::Succeeded.merge(R::Pending), R::Succeeded);
        assert_eq!(R::Pending.merge(R::Succeeded), R::Succeeded);
        assert_eq!(R::Failed.merge(R::Succeeded), R::Failed, "a late refund.created cannot undo refund.failed");
        assert_eq!(R::Succeeded.merge(R::Failed), R::Failed);
        assert_eq!(R::RequiresAction.merge(R::Pending), R::Pending);
        assert_eq!(D::Lost.merge(D::NeedsResponse), D::Lost);
        assert_eq!(D::NeedsResponse.merge(D::UnderReview), D::UnderReview);
        assert_eq!(D::Won.merge(D::Lost), D::Won, "the first verdict stays");
        assert_eq!(D::WarningClosed.merge(D::NeedsResponse), D::NeedsResponse, "an inquiry may escalate");
        assert_eq!(D::NeedsResponse.merge(D::WarningClosed), D::NeedsResponse);
    }

    #[test]
    fn disputes_hold_while_open_and_revoke_when_lost() {
        let open = revocation(&PACK, &[], &[D::NeedsResponse]);
        assert!(open.disputed && !open.lost && open.revoked == 0);
        let lost = revocation(&PACK, &[], &[D::Lost]);
        assert!(!lost.disputed && lost.lost && lost.revoked == 2);
        for released in [D::Won, D::WarningClosed] {
            let r = revocation(&PACK, &[], &[released]);
            assert!(!r.disputed && r.revoked == 0, "{released:?}");
        }
    }

    #[test]
    fn a_refund_racing_a_lost_dispute_never_revokes_more_than_the_pack() {
        let r = revocation(&PACK, &[refund(15_000, R::Succeeded)], &[D::Lost]);
        assert_eq!(r.revoked, 2);
        let r = revocation(&PACK, &[refund(7_500, R::Succeeded)], &[D::Lost]);
        assert_eq!(r.revoked, 2);
    }

    #[test]
    fn an_admin_refund_is_planned_in_whole_revisions_and_never_past_what_remains() {
        let none = revocation(&PACK, &[], &[]);
        assert_eq!(plan_refund(&PACK, &[], &none, RefundAsk::Full), Ok(RefundPlan { amount: 15_000, revisions: 2 }));
        assert_eq!(
            plan_refund(&PACK, &[], &none, RefundAsk::Revisions(1)),
            Ok(RefundPlan { amount: 7_500, revisions: 1 })
        );
        assert!(plan_refund(&PACK, &[], &none, RefundAsk::Revisions(3)).unwrap_err().contains("only 2 revisions"));
        assert!(plan_refund(&PACK, &[], &none, RefundAsk::Revisions(0)).is_err());
        // After a $50 refund (no revision yet), one more revision needs $25 more.
        let facts = [refund(5_000, R::Succeeded)];
        let r = revocation(&PACK, &facts, &[]);
        assert_eq!(
            plan_refund(&PACK, &facts, &r, RefundAsk::Revisions(1)),
            Ok(RefundPlan { amount: 2_500, revisions: 1 })
        );
        assert_eq!(plan_refund(&PACK, &facts, &r, RefundAsk::Full), Ok(RefundPlan { amount: 10_000, revisions: 2 }));
        // A pending $75 speaks for one revision already: only one more can be refunded.
        let facts = [refund(7_500, R::Pending)];
        let r = revocation(&PACK, &facts, &[]);
        assert!(plan_refund(&PACK, &facts, &r, RefundAsk::Revisions(2)).unwrap_err().contains("only 1 revision "));
        // Fully refunded: nothing left; a pending refund already reserves its amount.
        let facts = [refund(15_000, R::Pending)];
        let r = revocation(&PACK, &facts, &[]);
        assert!(plan_refund(&PACK, &facts, &r, RefundAsk::Full).unwrap_err().contains("nothing is left"));
        // Disputed: Stripe would refuse; say what to do instead.
        let r = revocation(&PACK, &[], &[D::NeedsResponse]);
        assert!(plan_refund(&PACK, &[], &r, RefundAsk::Full).unwrap_err().contains("disputed"));
    }
}
