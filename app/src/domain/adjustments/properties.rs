//! The money rules under any delivery: a payment's events (its success, refunds created,
//! updated, failed, `charge.refunded`, disputes opened, moved and closed, early fraud warnings)
//! folded through the rules of `domain::adjustments` in any order, any number of times, book the same ledger as in
//! order, never let the contract spend what the payment's refunds and disputes speak for, and
//! never book anything twice. The fold is what `store::adjustments::book` does around these
//! rules: merge the fact, settle (`settlement`), book its `entry` under its first free key.
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
        let booked = Booked { revoked: self.booked(), rows: self.rows.len() as i64 };
        let settled = settlement("pi_1", &PACK, &self.refund_facts(), &self.dispute_facts(), cause, booked);
        let Some(entry) = settled.entry else {
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
