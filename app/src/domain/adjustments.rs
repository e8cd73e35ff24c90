//! Money moving back: what refunds and disputes do to the revisions a payment granted. Pure
//! rules over the facts Stripe reports; the store books their result as append-only rows.
//!
//! The rules, in the business' words:
//! - A payment's terms are its own, not today's price: a revision is worth the pack's amount ÷
//!   its revisions.
//! - Refunds revoke floor(Σ succeeded refunded ÷ revision value) revisions, never more than the
//!   pack. Two $75 refunds of a $150 / 2-revision pack revoke one each; a $100 refund revokes one.
//! - A refund that fails later counts no more, so what it revoked comes back.
//! - A refund still on its way (`pending`, `requires_action`) holds the revisions it would revoke
//!   if it succeeded, as an open dispute holds: they cannot be spent meanwhile, so a refund that
//!   succeeds late never leaves the contract owing. It revokes them when it succeeds and releases
//!   them when it fails or is canceled.
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
    /// Whether the money is on its way back but not there yet: its revisions are held.
    pub fn in_flight(self) -> bool {
        matches!(self, Self::Pending | Self::RequiresAction)
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
    /// Revisions held because refunds of this payment are still pending: those they would
    /// revoke on success beyond `revoked` (0 while a dispute holds the whole pack, or after it
    /// was lost).
    #[serde(default)]
    pub refunding: i64,
}

/// The rule: what a payment's refunds and disputes revoke and hold.
pub fn revocation(pack: &PaidPack, refunds: &[RefundFact], disputes: &[DisputeStatus]) -> Revocation {
    let refunded: i64 = refunds.iter().filter(|r| r.status.counts()).map(|r| r.amount).sum();
    let lost = disputes.contains(&DisputeStatus::Lost);
    // A lost dispute takes back what refunds have not already; either way never more than the
    // pack granted (a refund racing a dispute on one payment).
    let revoked = if lost { pack.revisions } else { pack.revisions_refunded(refunded) };
    let disputed = disputes.iter().any(|d| d.is_open());
    let pending: i64 = refunds.iter().filter(|r| r.status.in_flight()).map(|r| r.amount).sum();
    // An open dispute already holds every revision not revoked; holding some twice would hide
    // revisions the advertiser still has.
    let refunding = if lost || disputed { 0 } else { (pack.revisions_refunded(refunded + pending) - revoked).max(0) };
    Revocation { revoked, disputed, lost, refunded, refunding }
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

/// The fact that made a booking necessary, and the key that books it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub key: String,
    pub kind: AdjustmentKind,
    /// Minor units the cause is about (the refund's, the dispute's).
    pub amount: i64,
    pub note: String,
}

/// The cause a refund in (merged) `status` books: a success revokes, a failure or cancelation
/// gives back; a refund on its way books nothing (what it holds is `Revocation::refunding`).
pub fn refund_cause(refund_id: &str, amount: i64, status: RefundStatus) -> Option<Cause> {
    match status {
        RefundStatus::Succeeded => Some(Cause {
            key: refund_id.to_string(),
            kind: AdjustmentKind::Refund,
            amount,
            note: format!("refund {refund_id} succeeded"),
        }),
        RefundStatus::Failed | RefundStatus::Canceled => Some(Cause {
            key: format!("{refund_id}:{}", status.as_str()),
            kind: AdjustmentKind::RefundFailed,
            amount,
            note: format!("refund {refund_id} {}: the money stayed with us", status.as_str()),
        }),
        RefundStatus::Pending | RefundStatus::RequiresAction => None,
    }
}

/// The cause a dispute in (merged) `status` books: only a lost one revokes.
pub fn dispute_cause(dispute_id: &str, amount: i64, status: DisputeStatus, reason: Option<&str>) -> Option<Cause> {
    (status == DisputeStatus::Lost).then(|| Cause {
        key: format!("{dispute_id}:lost"),
        kind: AdjustmentKind::DisputeLost,
        amount,
        note: format!("dispute {dispute_id} lost ({})", reason.unwrap_or("no reason given")),
    })
}

/// One adjustment row to book: `revoked` under the first of `keys` not yet booked (the
/// ledger's UNIQUE cause key makes a second booking of one key write nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The cause's own key; then, when a redelivered cause finds the ledger still short of
    /// the facts, a key made from the ledger's state, so that difference too is booked once.
    pub keys: Vec<String>,
    pub kind: AdjustmentKind,
    pub revoked: i64,
    pub amount: i64,
    pub note: String,
}

/// What to book for a payment whose facts now revoke `target` revisions of `pack_revisions`,
/// when the ledger holds `held` in `booked` rows and `cause` (if any) is the fact just merged.
/// A succeeded refund is booked even when it revokes nothing (below one revision's value), so
/// the trail shows it.
pub fn entry(
    payment_id: &str,
    cause: Option<Cause>,
    target: i64,
    held: i64,
    booked: i64,
    pack_revisions: i64,
) -> Option<Entry> {
    let delta = target - held;
    let (key, kind, amount, note) = match cause {
        Some(c) if delta != 0 || c.kind == AdjustmentKind::Refund => {
            let kind = if delta < 0 { AdjustmentKind::RefundFailed } else { c.kind };
            (c.key, kind, c.amount, c.note)
        }
        _ if delta != 0 => (
            format!("{payment_id}:catch-up:{booked}"),
            if delta < 0 { AdjustmentKind::RefundFailed } else { AdjustmentKind::CatchUp },
            0,
            "refunds or disputes reported before the payment was credited".to_string(),
        ),
        _ => return None,
    };
    let note = format!(
        "{note}: {} revision{} {} ({target} of {pack_revisions} now revoked)",
        delta.abs(),
        if delta.abs() == 1 { "" } else { "s" },
        if delta < 0 { "given back" } else { "revoked" },
    );
    // A redelivered cause that changes nothing has nothing more to book.
    let keys = if delta == 0 { vec![key] } else { vec![key.clone(), format!("{key}:{booked}")] };
    Some(Entry { keys, kind, revoked: delta, amount, note })
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

/// A payment's state as far as money going back goes: what a refund confirmation was quoted
/// against. Two moments differ whenever a refund was made or moved, a dispute opened or moved,
/// or revisions were revoked, and a payment never returns to an earlier moment (refunds and
/// disputes are only ever added, their statuses only move forward).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMoment {
    pub refunds: usize,
    /// Σ refunds pending or succeeded (what Stripe counts against the charge), minor units.
    pub reserved: i64,
    /// Σ succeeded refunds, minor units.
    pub refunded: i64,
    /// Refunds that failed or were canceled.
    pub refunds_failed: usize,
    pub disputes: usize,
    pub disputes_open: usize,
    pub lost: bool,
    pub revoked: i64,
}

/// The moment of a payment with these facts.
pub fn payment_moment(pack: &PaidPack, refunds: &[RefundFact], disputes: &[DisputeStatus]) -> PaymentMoment {
    let r = revocation(pack, refunds, disputes);
    PaymentMoment {
        refunds: refunds.len(),
        reserved: refunds.iter().filter(|f| f.status.reserves_amount()).map(|f| f.amount).sum(),
        refunded: r.refunded,
        refunds_failed: refunds.iter().filter(|f| !f.status.reserves_amount()).count(),
        disputes: disputes.len(),
        disputes_open: disputes.iter().filter(|d| d.is_open()).count(),
        lost: r.lost,
        revoked: r.revoked,
    }
}

impl PaymentMoment {
    /// One line that is equal for equal moments: what a quote keeps and compares.
    pub fn fingerprint(&self) -> String {
        format!(
            "r{}:{}:{}:f{}/d{}:{}:{}/v{}",
            self.refunds,
            self.reserved,
            self.refunded,
            self.refunds_failed,
            self.disputes,
            self.disputes_open,
            u8::from(self.lost),
            self.revoked
        )
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
    fn a_pending_refund_holds_what_it_would_revoke_until_it_settles() {
        let pending = revocation(&PACK, &[refund(7_500, R::Pending)], &[]);
        assert_eq!((pending.revoked, pending.refunding), (0, 1), "held, not yet revoked");
        let action = revocation(&PACK, &[refund(15_000, R::RequiresAction)], &[]);
        assert_eq!((action.revoked, action.refunding), (0, 2));
        let succeeded = revocation(&PACK, &[refund(7_500, R::Succeeded)], &[]);
        assert_eq!((succeeded.revoked, succeeded.refunding), (1, 0), "revoked once it succeeds");
        for released in [R::Failed, R::Canceled] {
            let r = revocation(&PACK, &[refund(7_500, released)], &[]);
            assert_eq!((r.revoked, r.refunding), (0, 0), "{released:?} releases the hold");
        }
        // $50 succeeded + $50 pending: the pending one completes the first revision's value.
        let mixed = revocation(&PACK, &[refund(5_000, R::Succeeded), refund(5_000, R::Pending)], &[]);
        assert_eq!((mixed.revoked, mixed.refunding), (0, 1));
        // A status merged forward from pending to succeeded moves the revision from held to revoked.
        let merged = R::Pending.merge(R::Succeeded);
        assert_eq!(revocation(&PACK, &[refund(7_500, merged)], &[]).refunding, 0);
        // An open dispute holds the whole pack already; a lost one revoked it.
        let disputed = revocation(&PACK, &[refund(7_500, R::Pending)], &[D::NeedsResponse]);
        assert_eq!(disputed.refunding, 0);
        let lost = revocation(&PACK, &[refund(7_500, R::Pending)], &[D::Lost]);
        assert_eq!((lost.revoked, lost.refunding), (2, 0));
    }

    #[test]
    fn a_payments_moment_changes_with_every_refund_dispute_or_revocation() {
        let m =
            |refunds: &[RefundFact], disputes: &[DisputeStatus]| payment_moment(&PACK, refunds, disputes).fingerprint();
        let quiet = m(&[], &[]);
        assert_eq!(quiet, m(&[], &[]), "the same facts, the same moment");
        let later = [
            m(&[refund(100, R::Pending)], &[]),
            m(&[refund(100, R::Succeeded)], &[]),
            m(&[refund(100, R::Failed)], &[]),
            m(&[refund(100, R::Failed), refund(100, R::Pending)], &[]),
            m(&[], &[D::WarningNeedsResponse]),
            m(&[], &[D::WarningClosed]),
            m(&[], &[D::Lost]),
        ];
        let mut seen = vec![quiet];
        for x in later {
            assert!(!seen.contains(&x), "{x} repeats an earlier moment");
            seen.push(x);
        }
        assert!(m(&[], &[D::Won]).len() <= 200, "fits the column");
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

/// The money rules under any delivery: a payment's events (its success, refunds created,
/// updated, failed, `charge.refunded`, disputes opened, moved and closed, early fraud warnings)
/// folded through the rules above in any order, any number of times, book the same ledger as in
/// order, never let the contract spend what the payment's refunds and disputes speak for, and
/// never book anything twice. The fold is what `store::adjustments::book` does around these
/// rules: merge the fact, recompute, book the domain's `entry` under its first free key.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::domain::RevisionBalance;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use DisputeStatus as D;
    use RefundStatus as R;

    const PACK: PaidPack = PaidPack { amount: 15_000, revisions: 2 };
    const BASE: i64 = 3;

    #[derive(Debug, Clone, PartialEq)]
    enum Event {
        /// `payment_intent.succeeded`: the pack is credited.
        Succeeded,
        /// `refund.created` / `refund.updated` / `refund.failed` / `charge.refund.updated`.
        Refund { id: usize, amount: i64, status: RefundStatus },
        /// `charge.refunded`: the payment's refunds as Stripe lists them when it is processed,
        /// which is at least as far along as when it was sent.
        ChargeRefunded(Vec<(usize, i64, RefundStatus)>),
        /// `charge.dispute.created` / `.updated` / `.closed`.
        Dispute { id: usize, status: DisputeStatus },
        /// `radar.early_fraud_warning.created`: recorded, never booked.
        FraudWarning,
    }

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Book {
        credited: bool,
        refunds: BTreeMap<usize, (i64, RefundStatus)>,
        disputes: BTreeMap<usize, DisputeStatus>,
        /// The payment's adjustment rows: cause key → revisions revoked (negative: given back).
        rows: BTreeMap<String, i64>,
    }

    impl Book {
        fn refund_facts(&self) -> Vec<RefundFact> {
            self.refunds.values().map(|&(amount, status)| RefundFact { amount, status }).collect()
        }
        fn dispute_facts(&self) -> Vec<DisputeStatus> {
            self.disputes.values().copied().collect()
        }
        fn target(&self) -> Revocation {
            revocation(&PACK, &self.refund_facts(), &self.dispute_facts())
        }
        fn booked(&self) -> i64 {
            self.rows.values().sum()
        }
        fn merge_refund(&mut self, id: usize, amount: i64, status: RefundStatus) -> Option<Cause> {
            let merged = self.refunds.get(&id).map_or(status, |&(_, held)| held.merge(status));
            self.refunds.insert(id, (amount, merged));
            refund_cause(&format!("re_{id}"), amount, merged)
        }
        fn apply(&mut self, e: &Event) {
            match e {
                Event::Succeeded => {
                    self.credited = true;
                    self.settle(None);
                }
                Event::Refund { id, amount, status } => {
                    let cause = self.merge_refund(*id, *amount, *status);
                    self.settle(cause);
                }
                Event::ChargeRefunded(listed) => {
                    for &(id, amount, status) in listed {
                        let cause = self.merge_refund(id, amount, status);
                        self.settle(cause);
                    }
                }
                Event::Dispute { id, status } => {
                    let merged = self.disputes.get(id).map_or(*status, |held| held.merge(*status));
                    self.disputes.insert(*id, merged);
                    let cause = dispute_cause(&format!("du_{id}"), 15_000, merged, None);
                    self.settle(cause);
                }
                Event::FraudWarning => {}
            }
        }
        fn settle(&mut self, cause: Option<Cause>) {
            if !self.credited {
                return; // kept, booked when the credit lands
            }
            let target = self.target();
            let Some(entry) =
                entry("pi_1", cause, target.revoked, self.booked(), self.rows.len() as i64, PACK.revisions)
            else {
                return;
            };
            if let Some(key) = entry.keys.into_iter().find(|k| !self.rows.contains_key(k)) {
                self.rows.insert(key, entry.revoked);
            }
        }
        fn balance(&self) -> RevisionBalance {
            let r = self.target();
            let purchased = if self.credited { PACK.revisions } else { 0 };
            let disputed = if self.credited && r.disputed { PACK.revisions - self.booked() } else { 0 };
            let refunding = if self.credited { r.refunding } else { 0 };
            RevisionBalance { base: BASE, purchased, revoked: self.booked(), requested: 0, disputed, refunding }
        }
    }

    /// One refund's life as Stripe can report it.
    fn refund_life() -> impl Strategy<Value = Vec<RefundStatus>> {
        prop_oneof![
            Just(vec![R::Succeeded]),
            Just(vec![R::Pending]),
            Just(vec![R::Pending, R::Succeeded]),
            Just(vec![R::Pending, R::Failed]),
            Just(vec![R::Pending, R::Canceled]),
            Just(vec![R::Succeeded, R::Failed]),
            Just(vec![R::RequiresAction, R::Pending, R::Succeeded]),
        ]
    }

    /// One dispute's life.
    fn dispute_life() -> impl Strategy<Value = Vec<DisputeStatus>> {
        prop_oneof![
            Just(vec![D::NeedsResponse]),
            Just(vec![D::NeedsResponse, D::UnderReview]),
            Just(vec![D::NeedsResponse, D::UnderReview, D::Won]),
            Just(vec![D::NeedsResponse, D::UnderReview, D::Lost]),
            Just(vec![D::NeedsResponse, D::Lost]),
            Just(vec![D::WarningNeedsResponse, D::WarningUnderReview, D::WarningClosed]),
            Just(vec![D::WarningNeedsResponse, D::NeedsResponse, D::Lost]),
        ]
    }

    /// A payment's events in the order Stripe sends them: the success, then each refund's
    /// statuses (each followed by `charge.refunded` as Stripe lists the refunds then), the
    /// disputes' and maybe a fraud warning, interleaved as `order` says.
    fn story() -> impl Strategy<Value = Vec<Event>> {
        (
            prop::collection::vec((1i64..=5_000, refund_life()), 0..=3),
            prop::collection::vec(dispute_life(), 0..=1),
            any::<bool>(),
            any::<u64>(),
        )
            .prop_map(|(refunds, disputes, warning, seed)| {
                // Each life is a queue; `seed` picks which queue speaks next, so lives interleave.
                let mut queues: Vec<Vec<Event>> = Vec::new();
                for (id, (amount, life)) in refunds.iter().enumerate() {
                    queues.push(life.iter().map(|&status| Event::Refund { id, amount: *amount, status }).collect());
                }
                for (id, life) in disputes.iter().enumerate() {
                    queues.push(life.iter().map(|&status| Event::Dispute { id, status }).collect());
                }
                if warning {
                    queues.push(vec![Event::FraudWarning]);
                }
                let mut events = vec![Event::Succeeded];
                let mut now: BTreeMap<usize, (i64, RefundStatus)> = BTreeMap::new();
                let mut pick = seed;
                while queues.iter().any(|q| !q.is_empty()) {
                    let live: Vec<usize> = (0..queues.len()).filter(|&i| !queues[i].is_empty()).collect();
                    let q = live[(pick % live.len() as u64) as usize];
                    pick = pick.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15;
                    let e = queues[q].remove(0);
                    if let Event::Refund { id, amount, status } = e {
                        now.insert(id, (amount, status));
                        events.push(e);
                        events.push(Event::ChargeRefunded(now.iter().map(|(&i, &(a, s))| (i, a, s)).collect()));
                    } else {
                        events.push(e);
                    }
                }
                events
            })
    }

    /// A story and a delivery of it: shuffled, with some events delivered more than once.
    fn delivery() -> impl Strategy<Value = (Vec<Event>, Vec<Event>)> {
        story().prop_flat_map(|events| {
            let n = events.len();
            let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            let copies = prop::collection::vec((0..n, 0..=n), 0..=n);
            (Just(events), order, copies).prop_map(|(events, order, copies)| {
                let mut delivered: Vec<Event> = order.iter().map(|&i| events[i].clone()).collect();
                for (which, at) in copies {
                    let at = at.min(delivered.len());
                    delivered.insert(at, events[which].clone());
                }
                (events, delivered)
            })
        })
    }

    /// What the facts speak for: revisions the contract must not be able to spend.
    fn spoken_for(book: &Book) -> i64 {
        if !book.credited {
            return 0;
        }
        let r = book.target();
        let reserved: i64 = book.refund_facts().iter().filter(|f| f.status.reserves_amount()).map(|f| f.amount).sum();
        if r.disputed || r.lost {
            PACK.revisions
        } else {
            PACK.revisions_refunded(reserved).max(r.revoked)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_order_and_any_repetition_of_a_payments_events_books_the_same_ledger((events, delivered) in delivery()) {
            let mut in_order = Book::default();
            for e in &events {
                in_order.apply(e);
            }
            prop_assert_eq!(in_order.booked(), in_order.target().revoked, "in order, the ledger follows the rule");

            let mut book = Book::default();
            for e in &delivered {
                book.apply(e);
                // Nothing is booked twice: the same event again changes nothing.
                let before = book.clone();
                book.apply(e);
                prop_assert_eq!(&book, &before, "a repeated {:?} booked again", e);
                // The ledger never strays from the facts, nor from what the pack granted.
                let booked = book.booked();
                prop_assert!((0..=PACK.revisions).contains(&booked), "booked {}", booked);
                if book.credited {
                    prop_assert_eq!(booked, book.target().revoked);
                }
                // Available never exceeds what the payment allows.
                let b = book.balance();
                let allowed = BASE + if book.credited { PACK.revisions - spoken_for(&book) } else { 0 };
                prop_assert!(b.spendable() <= allowed, "spendable {} > allowed {} after {:?}: {:?}", b.spendable(), allowed, e, b);
            }
            // The same end: facts, revocation, holds and Σ booked.
            prop_assert_eq!(&book.refunds, &in_order.refunds);
            prop_assert_eq!(&book.disputes, &in_order.disputes);
            prop_assert_eq!(book.target(), in_order.target());
            prop_assert_eq!(book.booked(), in_order.booked());
            prop_assert_eq!(book.balance(), in_order.balance());
        }
    }
}
