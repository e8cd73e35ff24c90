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
    let m = |refunds: &[RefundFact], disputes: &[DisputeStatus]| payment_moment(&PACK, refunds, disputes).fingerprint();
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
    assert_eq!(plan_refund(&PACK, &[], &none, RefundAsk::Revisions(1)), Ok(RefundPlan { amount: 7_500, revisions: 1 }));
    assert!(plan_refund(&PACK, &[], &none, RefundAsk::Revisions(3)).unwrap_err().contains("only 2 revisions"));
    assert!(plan_refund(&PACK, &[], &none, RefundAsk::Revisions(0)).is_err());
    // After a $50 refund (no revision yet), one more revision needs $25 more.
    let facts = [refund(5_000, R::Succeeded)];
    let r = revocation(&PACK, &facts, &[]);
    assert_eq!(plan_refund(&PACK, &facts, &r, RefundAsk::Revisions(1)), Ok(RefundPlan { amount: 2_500, revisions: 1 }));
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

#[test]
fn a_merged_status_only_moves_forward_and_an_unreadable_one_counts_as_none() {
    assert_eq!(merged_refund_status(None, R::Pending), R::Pending);
    assert_eq!(merged_refund_status(Some("succeeded"), R::Pending), R::Succeeded, "a late pending");
    assert_eq!(merged_refund_status(Some("succeeded"), R::Failed), R::Failed);
    assert_eq!(merged_refund_status(Some("refunded?"), R::Pending), R::Pending);
    assert_eq!(merged_dispute_status(None, D::NeedsResponse), D::NeedsResponse);
    assert_eq!(merged_dispute_status(Some("lost"), D::UnderReview), D::Lost, "a verdict is final");
    assert_eq!(merged_dispute_status(Some("won"), D::Lost), D::Won, "the first verdict stays");
    assert_eq!(merged_dispute_status(Some("escalated?"), D::Won), D::Won);
}

#[test]
fn a_payment_without_a_credit_belongs_to_the_rate_card_then_our_purchase() {
    assert_eq!(uncredited_owner(true, Some(7)), PaymentOwner::RateCard);
    assert_eq!(uncredited_owner(true, None), PaymentOwner::RateCard);
    assert_eq!(uncredited_owner(false, Some(7)), PaymentOwner::Uncredited(7));
    assert_eq!(uncredited_owner(false, None), PaymentOwner::Unknown);
}

#[test]
fn a_settlement_books_the_difference_and_holds_what_pending_refunds_would_revoke() {
    let none = Booked::default();
    // A pending $75 holds one revision and books nothing.
    let s = settlement("pi_1", &PACK, &[refund(7_500, R::Pending)], &[], None, none);
    assert_eq!((s.hold, s.entry, s.revocation.refunding), (Some(1), None, 1));
    // It succeeds: the hold goes, one revision is booked under the refund's key.
    let facts = [refund(7_500, R::Succeeded)];
    let cause = refund_cause("re_1", 7_500, R::Succeeded);
    let s = settlement("pi_1", &PACK, &facts, &[], cause.clone(), none);
    assert_eq!(s.hold, None);
    let e = s.entry.expect("booked");
    assert_eq!(
        (e.keys, e.kind, e.revoked, e.amount),
        (vec!["re_1".into(), "re_1:0".into()], AdjustmentKind::Refund, 1, 7_500)
    );
    // Redelivered once booked: the same key, nothing more revoked.
    let s = settlement("pi_1", &PACK, &facts, &[], cause, Booked { revoked: 1, rows: 1 });
    let e = s.entry.expect("the refund shows in the trail");
    assert_eq!((e.keys, e.revoked), (vec!["re_1".to_string()], 0));
    // Settling with nothing new and nothing short: no row, no hold.
    let s = settlement("pi_1", &PACK, &facts, &[], None, Booked { revoked: 1, rows: 1 });
    assert_eq!((s.hold, s.entry), (None, None));
    // Facts that arrived before the credit: caught up under a key of the ledger's state.
    let s = settlement("pi_1", &PACK, &facts, &[D::Lost], None, Booked { revoked: 1, rows: 1 });
    let e = s.entry.expect("caught up");
    assert_eq!((e.keys[0].as_str(), e.kind, e.revoked), ("pi_1:catch-up:1", AdjustmentKind::CatchUp, 1));
    // An open dispute holds the pack itself: pending refunds hold nothing beside it.
    let s = settlement("pi_1", &PACK, &[refund(7_500, R::Pending)], &[D::NeedsResponse], None, none);
    assert_eq!((s.hold, s.revocation.disputed), (None, true));
}
