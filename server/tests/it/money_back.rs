//! The ledger going down: refunds and disputes, through the simulator's Stripe objects and
//! events, on both databases. Each test waits for a condition, never a fixed delay.
use crate::helpers::*;
use crate::on_both_databases;
use app::domain::RevisionBalance;
use app::services::purchase::start_purchase;
use app::store::adjustments;
use app::stripe::simulator::{DisputeOutcome, Faults};
use serde_json::json;

on_both_databases!(
    a_full_refund_takes_the_pack_back,
    partial_refunds_revoke_whole_revisions_by_the_payments_value,
    a_refund_that_fails_later_gives_its_revisions_back,
    refund_events_delivered_five_times_or_in_reverse_give_the_same_ledger,
    a_dispute_holds_unused_revisions_and_a_lost_one_revokes_them,
    a_won_dispute_releases_the_hold,
    a_refund_racing_a_lost_dispute_never_revokes_more_than_the_pack,
    below_zero_a_request_is_refused_and_says_why,
    a_refund_reported_before_its_payment_is_credited_is_booked_when_it_is,
    refunds_delivered_at_the_same_moment_as_their_payments_are_each_booked_once,
    rate_card_refunds_are_recorded_against_the_external_payment,
    a_price_change_between_purchase_and_webhook_credits_at_the_purchases_terms,
    a_closed_inquiry_releases_the_hold,
    a_test_mode_refund_never_touches_a_live_ledger,
    early_fraud_warnings_are_kept_for_admins,
);

/// A signed event of `event_type` carrying `object`, in `livemode`.
fn money_event(event_type: &str, object: serde_json::Value, livemode: bool) -> (String, String) {
    let id = format!("evt_m{}", unique());
    let body = json!({"id": id, "object": "event", "api_version": "2026-09-30.endive", "created": now(),
        "livemode": livemode, "type": event_type, "data": {"object": object}})
    .to_string();
    (id, body)
}

/// Buys a pack on `t`'s contract through the simulator with `card`; waits for the credit.
/// Returns the PaymentIntent id.
pub async fn buy(t: &TestApp, card: &str) -> String {
    let pi = pay(t, card).await;
    assert!(
        eventually(PATIENCE, || async {
            app::store::ledger::credit_for_payment(t.store(), &pi).await.unwrap().is_some()
        })
        .await,
        "the payment was not credited"
    );
    pi
}

/// Pays a pack on `t`'s contract through the simulator with `card` (a purchase started as the
/// page starts it, confirmed as Stripe.js confirms it); does not wait for the credit.
pub async fn pay(t: &TestApp, card: &str) -> String {
    let p = start_purchase(&t.app.services, t.advertiser_id, t.contract_id).await.unwrap();
    let r = post_form(
        &format!("{}/stripe-sim/v1/payment_intents/{}/confirm", t.app.url(), p.payment_intent_id),
        app::stripe::simulator::PUBLISHABLE_KEY,
        &[
            ("client_secret", &p.client_secret),
            ("payment_method_data[type]", "card"),
            ("payment_method_data[card][number]", card),
        ],
    )
    .await;
    assert_eq!(r.body["status"], "succeeded", "{:?}", r.body);
    p.payment_intent_id
}

async fn refund(t: &TestApp, pi: &str, amount: i64) -> app::domain::events::RefundFacts {
    let stripe = t.app.services.stripe.as_ref().unwrap();
    stripe.create_refund(pi, amount, Some("requested_by_customer"), &[], &format!("test-{}", unique())).await.unwrap()
}

/// Waits until the contract's balance satisfies `check`; returns it.
async fn balance_until(t: &TestApp, check: impl Fn(&RevisionBalance) -> bool) -> RevisionBalance {
    let ok = eventually(PATIENCE, || async { check(&t.balance().await) }).await;
    let b = t.balance().await;
    assert!(ok, "balance never got there: {b:?}");
    b
}

async fn a_full_refund_takes_the_pack_back(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let pi = buy(&t, "4242424242424242").await;
    assert_eq!(t.available().await, 5);
    let r = refund(&t, &pi, 15_000).await;
    let b = balance_until(&t, |b| b.revoked == 2).await;
    assert_eq!(b.available(), 3);
    assert_eq!(b.explain(), "3 included + 2 purchased − 2 revoked − 0 requested = 3 available");
    let rows = adjustments::for_payment(t.store(), &pi).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].cause_key.as_str(), rows[0].revoked, rows[0].kind.as_str()), (r.id.as_str(), 2, "refund"));
    // Every refund event (refund.created, charge.refunded) is stored and processed.
    let pi2 = pi.clone();
    assert!(
        eventually(PATIENCE, || async {
            let events = app::store::events::list(t.store(), None, 100).await.unwrap();
            ["refund.created", "charge.refunded"]
                .iter()
                .all(|ty| events.iter().any(|e| e.event_type == *ty && e.status == "processed"))
        })
        .await
    );
    assert_eq!(adjustments::for_payment(t.store(), &pi2).await.unwrap().len(), 1, "booked once however reported");
    crate::balances::assert_kept_balances_match(t.store()).await;
}

async fn partial_refunds_revoke_whole_revisions_by_the_payments_value(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    // $75 is one revision.
    let pi = buy(&t, "4242424242424242").await;
    refund(&t, &pi, 7_500).await;
    assert_eq!(balance_until(&t, |b| b.revoked == 1).await.available(), 4);
    // A second $75: the other one.
    refund(&t, &pi, 7_500).await;
    assert_eq!(balance_until(&t, |b| b.revoked == 2).await.available(), 3);
    // $100 of another pack: one revision (and change).
    let pi = buy(&t, "4242424242424242").await;
    refund(&t, &pi, 10_000).await;
    let b = balance_until(&t, |b| b.revoked == 3).await;
    assert_eq!(b.available(), 4);
    // Nothing more is booked once the events settle.
    let pi2 = pi.clone();
    assert!(
        eventually(PATIENCE, || async {
            app::store::events::list(t.store(), Some("pending"), 10).await.unwrap().is_empty()
        })
        .await
    );
    assert_eq!(t.balance().await.revoked, 3);
    assert_eq!(adjustments::refunds_for_payment(t.store(), &pi2).await.unwrap().len(), 1);
    crate::balances::assert_kept_balances_match(t.store()).await;
}

async fn a_refund_that_fails_later_gives_its_revisions_back(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    // Stripe's test card whose refunds fail later: 3 s later, so refund.created is delivered
    // and booked first (the rows below say so) also on a loaded machine; 1 s left too little.
    t.sim().set_faults(Faults { refund_failure_ms: 3_000, ..Faults::default() }).unwrap();
    let pi = buy(&t, "4000000000005126").await;
    let r = refund(&t, &pi, 15_000).await;
    assert_eq!(r.status.as_str(), "succeeded", "it starts succeeded");
    // Booked as revoked, then given back when refund.failed arrives.
    let rid = r.id.clone();
    assert!(
        eventually(PATIENCE, || async {
            adjustments::for_payment(t.store(), &pi).await.unwrap().iter().any(|a| a.kind == "refund_failed")
        })
        .await,
        "the failure was never booked"
    );
    let b = t.balance().await;
    assert_eq!((b.revoked, b.available()), (0, 5));
    let rows = adjustments::for_payment(t.store(), &pi).await.unwrap();
    assert_eq!(rows.iter().map(|a| a.revoked).collect::<Vec<_>>(), vec![2, -2], "{rows:?}");
    assert_eq!(rows[0].cause_key, rid);
    let facts = adjustments::refunds_for_payment(t.store(), &pi).await.unwrap();
    assert_eq!(facts[0].status, "failed");
    crate::balances::assert_kept_balances_match(t.store()).await;
}

/// Refund events as Stripe would send them for one refund of a credited payment.
fn refund_events(pi: &str, charge: &str, refund_id: &str, amount: i64, tag: &str) -> Vec<String> {
    let refund = json!({"id": refund_id, "object": "refund", "amount": amount, "currency": "usd",
        "payment_intent": pi, "charge": charge, "status": "succeeded", "reason": null, "metadata": {}});
    let charge_obj = json!({"id": charge, "object": "charge", "amount": 15000, "amount_refunded": amount,
        "currency": "usd", "payment_intent": pi, "refunded": amount == 15000, "disputed": false});
    let ev = |ty: &str, obj: &serde_json::Value, n: u32| {
        json!({"id": format!("evt_{tag}{n}"), "object": "event", "api_version": "2026-09-30.endive",
            "created": now(), "livemode": false, "type": ty, "data": {"object": obj}})
        .to_string()
    };
    vec![ev("refund.created", &refund, 1), ev("charge.refunded", &charge_obj, 2), ev("refund.updated", &refund, 3)]
}

async fn refund_events_delivered_five_times_or_in_reverse_give_the_same_ledger(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    // In order, each delivered five times at once.
    let a = buy(&t, "4242424242424242").await;
    let events = refund_events(&a, "ch_testA", &format!("re_{}", unique()), 7_500, &format!("a{}", unique()));
    for body in &events {
        let replies = futures_util::future::join_all((0..5).map(|_| t.deliver(body))).await;
        assert!(replies.iter().all(|r| r.status == 200), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    }
    let after_a = t.balance().await;
    assert_eq!(after_a.revoked, 1);
    // Another payment, the same refund events in reverse order, five times each.
    let b = buy(&t, "4242424242424242").await;
    let mut events = refund_events(&b, "ch_testB", &format!("re_{}", unique()), 7_500, &format!("b{}", unique()));
    events.reverse();
    for _ in 0..5 {
        for body in &events {
            assert_eq!(t.deliver(body).await.status, 200);
        }
    }
    let after_b = t.balance().await;
    assert_eq!(after_b.revoked, 2, "one revision for each payment, whatever the order");
    for pi in [&a, &b] {
        let rows = adjustments::for_payment(t.store(), pi).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.revoked).sum::<i64>(), 1, "{rows:?}");
        assert_eq!(rows.len(), 1, "{rows:?}");
    }
    let failed = app::store::events::list(t.store(), Some("failed"), 10).await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    crate::balances::assert_kept_balances_match(t.store()).await;
}

async fn a_dispute_holds_unused_revisions_and_a_lost_one_revokes_them(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let pi = buy(&t, "4242424242424242").await;
    let dispute = t.sim().open_dispute(&pi).unwrap();
    let b = balance_until(&t, |b| b.held() == 2).await;
    assert_eq!((b.available(), b.spendable()), (5, 3), "the disputed pack is held, the included ones are not");
    // Three requests use what is not held; the fourth is refused because of the hold.
    for _ in 0..3 {
        app::store::ledger::request_revision(t.store(), t.contract_id, t.advertiser_id, "n", None, chrono::Utc::now())
            .await
            .unwrap();
    }
    let refused =
        app::store::ledger::request_revision(t.store(), t.contract_id, t.advertiser_id, "n", None, chrono::Utc::now())
            .await
            .unwrap_err();
    assert!(refused.to_string().contains("held until the dispute"), "{refused}");
    t.sim().close_dispute(&dispute, DisputeOutcome::Lost).unwrap();
    let b = balance_until(&t, |b| b.revoked == 2).await;
    assert_eq!((b.available(), b.held()), (0, 0));
    let rows = adjustments::for_payment(t.store(), &pi).await.unwrap();
    assert_eq!((rows.len(), rows[0].kind.as_str()), (1, "dispute_lost"), "{rows:?}");
    crate::balances::assert_kept_balances_match(t.store()).await;
}

async fn a_won_dispute_releases_the_hold(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let pi = buy(&t, "4242424242424242").await;
    let dispute = t.sim().open_dispute(&pi).unwrap();
    balance_until(&t, |b| b.held() == 2).await;
    t.sim().close_dispute(&dispute, DisputeOutcome::Won).unwrap();
    let b = balance_until(&t, |b| b.held() == 0).await;
    assert_eq!((b.revoked, b.available(), b.spendable()), (0, 5, 5));
    assert!(adjustments::for_payment(t.store(), &pi).await.unwrap().is_empty());
    let d = adjustments::disputes_for_payment(t.store(), &pi).await.unwrap();
    assert_eq!((d[0].status.as_str(), d[0].is_open), ("won", false));
}

async fn a_refund_racing_a_lost_dispute_never_revokes_more_than_the_pack(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let pi = new_payment_id();
    assert_eq!(t.deliver(&paid(&new_event_id(), &pi, t.contract_id)).await.status, 200);
    let tag = unique();
    let refund = json!({"id": format!("re_{tag}"), "object": "refund", "amount": 15000, "currency": "usd",
        "payment_intent": pi, "charge": "ch_x", "status": "succeeded"});
    let dispute = json!({"id": format!("du_{tag}"), "object": "dispute", "amount": 15000, "currency": "usd",
        "payment_intent": pi, "charge": "ch_x", "status": "lost", "reason": "fraudulent"});
    let ev = |n: u32, ty: &str, obj: &serde_json::Value| {
        json!({"id": format!("evt_r{tag}x{n}"), "object": "event", "created": now(), "livemode": false,
            "type": ty, "data": {"object": obj}})
        .to_string()
    };
    let bodies: Vec<String> = (0..8)
        .map(|n| if n % 2 == 0 { ev(n, "refund.created", &refund) } else { ev(n, "charge.dispute.closed", &dispute) })
        .collect();
    let replies = futures_util::future::join_all(bodies.iter().map(|b| t.deliver(b))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert!(
        eventually(PATIENCE, || async {
            app::store::events::list(t.store(), Some("pending"), 1).await.unwrap().is_empty()
        })
        .await
    );
    let b = t.balance().await;
    assert_eq!((b.revoked, b.available()), (2, 3), "{b:?}");
    let rows = adjustments::for_payment(t.store(), &pi).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.revoked).sum::<i64>(), 2, "{rows:?}");
    crate::balances::assert_kept_balances_match(t.store()).await;
}

async fn below_zero_a_request_is_refused_and_says_why(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let pi = buy(&t, "4242424242424242").await;
    for _ in 0..5 {
        app::store::ledger::request_revision(t.store(), t.contract_id, t.advertiser_id, "n", None, chrono::Utc::now())
            .await
            .unwrap();
    }
    refund(&t, &pi, 15_000).await;
    let b = balance_until(&t, |b| b.revoked == 2).await;
    assert_eq!((b.available(), b.owed(), b.spendable()), (-2, 2, 0));
    let refused =
        app::store::ledger::request_revision(t.store(), t.contract_id, t.advertiser_id, "n", None, chrono::Utc::now())
            .await
            .unwrap_err()
            .to_string();
    assert!(refused.contains("took back revisions that were already used"), "{refused}");
    assert_eq!(b.explain(), "3 included + 2 purchased − 2 revoked − 5 requested = -2 available");
    assert!(b.advisory().unwrap().starts_with("0 available"));
    let shown = server::cli::show_contract(t.store(), t.contract_id).await.unwrap();
    assert!(shown.contains("owes 2") && shown.contains("− 2 revoked"), "{shown}");
}

async fn a_refund_reported_before_its_payment_is_credited_is_booked_when_it_is(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let pi = new_payment_id();
    let tag = unique();
    let refund = json!({"id": format!("re_{tag}"), "object": "refund", "amount": 7500, "currency": "usd",
        "payment_intent": pi, "status": "succeeded"});
    let body = json!({"id": format!("evt_early{tag}"), "object": "event", "created": now(), "livemode": false,
        "type": "refund.created", "data": {"object": refund}})
    .to_string();
    assert_eq!(t.deliver(&body).await.status, 200);
    assert_eq!(t.balance().await.revoked, 0);
    assert_eq!(t.deliver(&paid(&new_event_id(), &pi, t.contract_id)).await.status, 200);
    let b = t.balance().await;
    assert_eq!((b.purchased, b.revoked, b.available()), (2, 1, 4));
    let rows = adjustments::for_payment(t.store(), &pi).await.unwrap();
    assert_eq!((rows.len(), rows[0].booked_by.as_str()), (1, "payment"), "{rows:?}");
    crate::balances::assert_kept_balances_match(t.store()).await;
}

/// The race the credit's look-up for earlier facts exists for: a refund stored while its
/// payment's credit is being stored. Whichever commits first, one side must see the other, or
/// the refund is recorded and never booked. Forty payments, each one's `payment_intent.succeeded`
/// and full `refund.created` delivered at the same moment; every pack must end up taken back,
/// exactly once.
async fn refunds_delivered_at_the_same_moment_as_their_payments_are_each_booked_once(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let payments: Vec<String> = (0..40).map(|_| new_payment_id()).collect();
    let deliveries: Vec<String> = payments
        .iter()
        .flat_map(|pi| {
            let tag = unique();
            let refund = json!({"id": format!("re_{tag}"), "object": "refund", "amount": 15_000,
                "currency": "usd", "payment_intent": pi, "status": "succeeded"});
            let refund = json!({"id": format!("evt_race{tag}"), "object": "event", "created": now(),
                "livemode": false, "type": "refund.created", "data": {"object": refund}})
            .to_string();
            [paid(&new_event_id(), pi, t.contract_id), refund]
        })
        .collect();
    let answers = futures_util::future::join_all(deliveries.iter().map(|body| t.deliver(body))).await;
    assert!(answers.iter().all(|a| a.status == 200), "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    let b = balance_until(&t, |b| b.purchased == 80 && b.revoked == 80).await;
    assert_eq!(b.available(), 3, "{}", b.explain());
    for pi in &payments {
        let rows = adjustments::for_payment(t.store(), pi).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.revoked).sum::<i64>(), 2, "{pi}: {rows:?}");
    }
    crate::balances::assert_kept_balances_match(t.store()).await;
}

async fn rate_card_refunds_are_recorded_against_the_external_payment(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let pi = new_payment_id();
    let meta = json!({"advertiserId": "adv-1", "sizeId": "half", "publicationId": "pub-1"});
    let body = pi_event(&new_event_id(), "payment_intent.succeeded", &pi, meta, 9_900, "usd");
    assert_eq!(t.deliver(&body).await.status, 200);
    let tag = unique();
    let refund = json!({"id": format!("re_{tag}"), "object": "refund", "amount": 9900, "currency": "usd",
        "payment_intent": pi, "status": "succeeded"});
    let id = format!("evt_rc{tag}");
    let body = json!({"id": id, "object": "event", "created": now(), "livemode": false,
        "type": "refund.created", "data": {"object": refund}})
    .to_string();
    assert_eq!(t.deliver(&body).await.status, 200);
    let e = t.event_status(&id).await;
    assert_eq!(e.status, "processed");
    assert!(e.outcome.unwrap().contains("Rate Card"));
    assert_eq!(adjustments::refunds_for_payment(t.store(), &pi).await.unwrap().len(), 1);
    assert!(adjustments::for_payment(t.store(), &pi).await.unwrap().is_empty(), "no contract is touched");
    assert_eq!(t.available().await, 3);
}

async fn a_price_change_between_purchase_and_webhook_credits_at_the_purchases_terms(kind: DbKind) {
    // Bought at $150 for 2; by the time the webhook arrives the price is $200 for 3.
    for (price, size) in [(20_000, 3), (15_000, 3)] {
        let t = TestApp::spawn_with(kind, |s| {
            s.terms = app::domain::PackTerms::new(
                app::domain::Money::new(price, app::domain::Currency::parse("usd").unwrap()),
                size,
                3,
            )
            .unwrap()
        })
        .await;
        let pi = new_payment_id();
        let now = chrono::Utc::now();
        app::store::purchases::record(
            t.store(),
            &app::store::purchases::Purchase {
                payment_intent_id: pi.clone(),
                contract_id: t.contract_id,
                created_by: t.advertiser_id,
                amount: 15_000,
                currency: "usd".into(),
                revisions: 2,
                status: "requires_payment_method".into(),
                idempotency_key: format!("k{}", unique()),
                livemode: false,
                created_at: now,
                updated_at: now,
            },
        )
        .await
        .unwrap();
        let id = new_event_id();
        assert_eq!(t.deliver(&paid(&id, &pi, t.contract_id)).await.status, 200);
        let e = t.event_status(&id).await;
        assert_eq!(e.status, "processed", "{e:?}");
        let b = t.balance().await;
        assert_eq!(b.purchased, 2, "credited at the purchase's terms (price now {price} for {size})");
    }
}

async fn a_closed_inquiry_releases_the_hold(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let pi = new_payment_id();
    assert_eq!(t.deliver(&paid(&new_event_id(), &pi, t.contract_id)).await.status, 200);
    let du = format!("du_{}", unique());
    let inquiry = |status: &str| {
        json!({"id": du, "object": "dispute", "amount": 15000, "currency": "usd", "payment_intent": pi,
            "charge": "ch_x", "status": status, "reason": "general"})
    };
    let (_, opened) = money_event("charge.dispute.created", inquiry("warning_needs_response"), false);
    assert_eq!(t.deliver(&opened).await.status, 200);
    assert_eq!(t.balance().await.held(), 2, "an inquiry holds like a chargeback");
    let (id, closed) = money_event("charge.dispute.closed", inquiry("warning_closed"), false);
    assert_eq!(t.deliver(&closed).await.status, 200);
    let b = t.balance().await;
    assert_eq!((b.held(), b.revoked, b.spendable()), (0, 0, 5));
    assert!(t.event_status(&id).await.outcome.unwrap().contains("dispute"));
}

async fn a_test_mode_refund_never_touches_a_live_ledger(kind: DbKind) {
    let t = TestApp::spawn_with(kind, |s| s.stripe.mode = Some(app::domain::deployment::DeploymentMode::Live)).await;
    let pi = new_payment_id();
    let credit = json!({"id": pi, "object": "payment_intent", "amount": 15000, "amount_received": 15000,
        "currency": "usd", "status": "succeeded", "livemode": true, "metadata": {"contractId": t.contract_id.to_string()}});
    let (_, paid_live) = money_event("payment_intent.succeeded", credit, true);
    assert_eq!(t.deliver(&paid_live).await.status, 200);
    assert_eq!(t.available().await, 5);
    let refund = json!({"id": format!("re_{}", unique()), "object": "refund", "amount": 15000, "currency": "usd",
        "payment_intent": pi, "status": "succeeded"});
    let (id, test_refund) = money_event("refund.created", refund, false);
    assert_eq!(t.deliver(&test_refund).await.status, 200);
    let e = t.event_status(&id).await;
    assert_eq!(e.status, "ignored", "{e:?}");
    assert_eq!(t.available().await, 5, "a test-mode refund never changes a live ledger");
    assert!(adjustments::refunds_for_payment(t.store(), &pi).await.unwrap().is_empty());
}

async fn early_fraud_warnings_are_kept_for_admins(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let pi = buy(&t, "4242424242424242").await;
    let charge = t.sim().charge_id(&pi).unwrap();
    let warning = t.sim().early_fraud_warning(&charge).unwrap();
    let found = eventually(PATIENCE, || async {
        adjustments::fraud_warnings_for_contract(t.store(), t.contract_id)
            .await
            .unwrap()
            .iter()
            .any(|w| w.warning_id == warning)
    })
    .await;
    assert!(found, "the warning is stored against the contract's payment");
    let w = adjustments::fraud_warnings_for_contract(t.store(), t.contract_id).await.unwrap();
    assert_eq!((w[0].payment_id.as_deref(), w[0].actionable), (Some(pi.as_str()), true));
    assert_eq!(t.available().await, 5, "a warning alone changes nothing");
}
