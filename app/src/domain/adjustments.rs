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

/// The status to keep for a refund reported as `incoming` when the store holds it as `held`
/// (None: a refund not seen before; a held status this build cannot read counts as none).
/// A status only moves forward, so a late or repeated event cannot undo a later one.
pub fn merged_refund_status(held: Option<&str>, incoming: RefundStatus) -> RefundStatus {
    match held.map(RefundStatus::parse) {
        Some(Ok(held)) => held.merge(incoming),
        _ => incoming,
    }
}

/// `merged_refund_status` for a dispute.
pub fn merged_dispute_status(held: Option<&str>, incoming: DisputeStatus) -> DisputeStatus {
    match held.map(DisputeStatus::parse) {
        Some(Ok(held)) => held.merge(incoming),
        _ => incoming,
    }
}

/// Whose payment a fact is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOwner {
    /// Credited to this contract: its ledger follows the facts.
    Contract(i64),
    /// A Rate Card Landing Page payment: recorded against it, never a contract.
    RateCard,
    /// One of our purchases, not credited yet: booked when it is.
    Uncredited(i64),
    /// Not a payment we know.
    Unknown,
}

/// The owner of a payment no contract has a credit for: a Rate Card payment's (whatever
/// purchase shares its id), else the contract of our purchase, else no one we know.
pub fn uncredited_owner(rate_card: bool, purchase_contract: Option<i64>) -> PaymentOwner {
    match (rate_card, purchase_contract) {
        (true, _) => PaymentOwner::RateCard,
        (false, Some(contract)) => PaymentOwner::Uncredited(contract),
        (false, None) => PaymentOwner::Unknown,
    }
}

/// What the ledger already holds for one payment: `revoked` revisions in `rows` adjustment rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Booked {
    pub revoked: i64,
    pub rows: i64,
}

/// What a credited payment's facts, as merged now, ask of its ledger: all that booking them
/// decides, so the store only reads the facts and writes this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// What the facts revoke and hold.
    pub revocation: Revocation,
    /// The revisions pending refunds hold, kept beside the payment so a balance sums them as it
    /// sums an open dispute's (None: nothing is held, and no hold is kept).
    pub hold: Option<i64>,
    /// The adjustment row to book, if the ledger is short of the facts or `cause` must show.
    pub entry: Option<Entry>,
}

/// Settles a credited payment: what its refunds and disputes revoke and hold now, against what
/// the ledger `booked` before; `cause` is the fact just merged, if any (see `entry`).
pub fn settlement(
    payment_id: &str,
    pack: &PaidPack,
    refunds: &[RefundFact],
    disputes: &[DisputeStatus],
    cause: Option<Cause>,
    booked: Booked,
) -> Settlement {
    let revocation = revocation(pack, refunds, disputes);
    let hold = (revocation.refunding > 0).then_some(revocation.refunding);
    let entry = entry(payment_id, cause, revocation.revoked, booked.revoked, booked.rows, pack.revisions);
    Settlement { revocation, hold, entry }
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
mod tests;

/// The money rules under any delivery, folded as `store::adjustments::book` folds them.
#[cfg(test)]
mod properties;
