//! Issue 22 §1, money, on both databases: an admin's refund confirmation is spent once and
//! only while the payment is as quoted; a pending refund holds its revisions; a credit goes to
//! the contract of the purchase we recorded or to none; and shuffled, repeated deliveries of a
//! payment's events book what the same events in order book.
use crate::helpers::*;
use crate::money_back::buy;
use crate::on_both_databases;
use app::domain::adjustments::RefundAsk;
use app::services::refunds::{offer, refund_pack, RefundError, RefundOrder, CHANGED, WAITING};
use app::store::adjustments;
use app::store::ledger::request_revision;
use app::stripe::simulator::RefundSettlement;
use serde_json::json;

on_both_databases!(
    two_confirmations_of_one_pack_make_one_refund_and_one_revocation,
    a_confirmation_stripe_did_not_answer_can_be_submitted_again_and_refunds_once,
    a_lost_answer_stripe_cannot_be_asked_about_holds_off_other_confirmations_of_that_moment,
    unused_confirmations_are_removed_after_a_day_and_used_ones_kept,
    two_confirmation_pages_of_one_pack_submitted_by_an_admin_refund_once,
    a_pending_refund_holds_its_revisions_until_it_fails_or_succeeds,
    a_payment_whose_metadata_names_another_contract_than_its_purchase_is_credited_to_neither,
    a_webhook_naming_another_contract_than_its_purchase_is_a_dead_letter_however_often_it_comes,
    shuffled_and_repeated_deliveries_of_a_payments_events_book_what_they_book_in_order,
);

fn order<'a>(payment_id: &'a str, token: &'a str) -> RefundOrder<'a> {
    RefundOrder { admin_email: "admin@example.com", payment_id, reason: "requested_by_customer", note: "", token }
}

async fn two_confirmations_of_one_pack_make_one_refund_and_one_revocation(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let svc = &t.app.services;
    let pi = buy(&t, "4242424242424242").await;
    // Two tabs confirm one revision's refund of the same pack; both are submitted at once.
    let a = offer(svc, &pi, RefundAsk::Revisions(1), "admin@example.com").await.unwrap();
    let b = offer(svc, &pi, RefundAsk::Revisions(1), "admin@example.com").await.unwrap();
    assert_ne!(a.token, b.token);
    let (order_a, order_b) = (order(&pi, &a.token), order(&pi, &b.token));
    let (ra, rb) = tokio::join!(refund_pack(svc, &order_a), refund_pack(svc, &order_b));
    let (done, refused) = match (ra, rb) {
        (Ok(done), Err(e)) => (done, e),
        (Err(e), Ok(done)) => (done, e),
        other => panic!("exactly one of the two confirmations must refund: {other:?}"),
    };
    assert!(matches!(&refused, RefundError::Refused(why) if why == CHANGED), "{refused:?}");
    assert_eq!(done.amount.minor, 7_500);
    // Submitting either confirmation again (a reload) is refused in words, not refunded.
    let again_a = refund_pack(svc, &order(&pi, &a.token)).await.unwrap_err();
    let again_b = refund_pack(svc, &order(&pi, &b.token)).await.unwrap_err();
    for e in [&again_a, &again_b] {
        assert!(matches!(e, RefundError::Refused(why) if why.contains("already used") || why == CHANGED), "{e:?}");
    }
    // A confirmation quoted before that refund, submitted after it: the payment changed.
    let c = offer(svc, &pi, RefundAsk::Revisions(1), "admin@example.com").await.unwrap();
    let stale = offer(svc, &pi, RefundAsk::Revisions(1), "admin@example.com").await.unwrap();
    refund_pack(svc, &order(&pi, &c.token)).await.unwrap();
    let e = refund_pack(svc, &order(&pi, &stale.token)).await.unwrap_err();
    assert!(matches!(&e, RefundError::Refused(why) if why == CHANGED), "{e:?}");
    // An unknown token is refused too.
    let e = refund_pack(svc, &order(&pi, "NoSuchConfirmationToken1")).await.unwrap_err();
    assert!(matches!(&e, RefundError::Refused(why) if why.contains("not valid")), "{e:?}");
    // Stripe holds exactly the two refunds confirmed once each; the ledger revoked each once.
    let stripe = svc.stripe.as_ref().unwrap();
    let refunds = stripe.refunds_of(&pi, None).await.unwrap();
    assert_eq!(refunds.len(), 2, "{refunds:?}");
    assert!(
        eventually(PATIENCE, || async {
            let events = app::store::events::list(t.store(), Some("pending"), 1).await.unwrap();
            events.is_empty() && t.balance().await.revoked == 2
        })
        .await
    );
    let rows = adjustments::for_payment(t.store(), &pi).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.revoked).collect::<Vec<_>>(), vec![1, 1], "{rows:?}");
    assert_eq!(t.balance().await.available(), 3);
}

async fn a_confirmation_stripe_did_not_answer_can_be_submitted_again_and_refunds_once(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let svc = &t.app.services;
    let pi = buy(&t, "4242424242424242").await;
    let q = offer(svc, &pi, RefundAsk::Full, "admin@example.com").await.unwrap();
    // Stripe answers the refund, and the client's three retries, with a 500: nothing was made,
    // and the confirmation is given back.
    let faults =
        app::stripe::simulator::Faults { api_error_status: Some(500), api_error_count: 4, ..Default::default() };
    t.sim().set_faults(faults).unwrap();
    let e = refund_pack(svc, &order(&pi, &q.token)).await.unwrap_err();
    assert!(matches!(&e, RefundError::Stripe(_)), "{e:?}");
    t.sim().set_faults(app::stripe::simulator::Faults::default()).unwrap();
    // The same confirmation again: one refund, then spent.
    let done = refund_pack(svc, &order(&pi, &q.token)).await.unwrap();
    assert_eq!(done.amount.minor, 15_000);
    // Booked by the admin's call or by its webhook, whichever came first: once.
    settled_balance(&t, |b| b.revoked == 2).await;
    let rows = adjustments::for_payment(t.store(), &pi).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.revoked).collect::<Vec<_>>(), vec![2], "{rows:?}");
    let again = refund_pack(svc, &order(&pi, &q.token)).await.unwrap_err();
    assert!(matches!(&again, RefundError::Refused(why) if why.contains("already used")), "{again:?}");
    let refunds = svc.stripe.as_ref().unwrap().refunds_of(&pi, None).await.unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
}

/// Stripe's answer to a refund is lost and Stripe cannot even be asked what it holds: the refund
/// may exist. Another confirmation of the same moment (a second tab) must not make a second one;
/// it waits until Stripe can be asked, and goes ahead only if Stripe holds none.
async fn a_lost_answer_stripe_cannot_be_asked_about_holds_off_other_confirmations_of_that_moment(kind: DbKind) {
    use app::stripe::simulator::Faults;
    let t = TestApp::spawn_simulated(kind).await;
    let svc = &t.app.services;
    let pi = buy(&t, "4242424242424242").await;
    let a = offer(svc, &pi, RefundAsk::Full, "admin@example.com").await.unwrap();
    let b = offer(svc, &pi, RefundAsk::Full, "admin@example.com").await.unwrap();
    // Every call fails: the refund, its retries and the listing after them.
    t.sim().set_faults(Faults { api_error_status: Some(500), api_error_count: 1_000, ..Default::default() }).unwrap();
    let lost = refund_pack(svc, &order(&pi, &a.token)).await.unwrap_err();
    assert!(matches!(&lost, RefundError::Stripe(_)), "{lost:?}");
    let held = refund_pack(svc, &order(&pi, &b.token)).await.unwrap_err();
    assert!(matches!(&held, RefundError::Refused(why) if why == WAITING), "{held:?}");
    // Stripe answers again and holds no refund of the payment: the second tab's goes ahead.
    t.sim().set_faults(Faults::default()).unwrap();
    let done = refund_pack(svc, &order(&pi, &b.token)).await.unwrap();
    assert_eq!(done.amount.minor, 15_000);
    let again = refund_pack(svc, &order(&pi, &a.token)).await.unwrap_err();
    assert!(matches!(&again, RefundError::Refused(why) if why == CHANGED), "{again:?}");
    let refunds = svc.stripe.as_ref().unwrap().refunds_of(&pi, None).await.unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    settled_balance(&t, |b| b.revoked == 2).await;
}

/// Every confirmation page stores a quote; those never submitted go after a day (a submit of
/// one then starts again), while used ones stay as the record of who confirmed what.
async fn unused_confirmations_are_removed_after_a_day_and_used_ones_kept(kind: DbKind) {
    use app::store::refund_quotes::{delete_unused, UNUSED_KEPT};
    let t = TestApp::spawn_simulated(kind).await;
    let svc = &t.app.services;
    let pi = buy(&t, "4242424242424242").await;
    let used = offer(svc, &pi, RefundAsk::Revisions(1), "admin@example.com").await.unwrap();
    refund_pack(svc, &order(&pi, &used.token)).await.unwrap();
    let unused = offer(svc, &pi, RefundAsk::Revisions(1), "admin@example.com").await.unwrap();
    let now = chrono::Utc::now();
    assert_eq!(delete_unused(&svc.db, now - UNUSED_KEPT).await.unwrap(), 0, "a fresh one is kept");
    assert_eq!(delete_unused(&svc.db, now + UNUSED_KEPT).await.unwrap(), 1, "only the unused one goes");
    let late = refund_pack(svc, &order(&pi, &unused.token)).await.unwrap_err();
    assert!(matches!(&late, RefundError::Refused(why) if why.contains("start the refund again")), "{late:?}");
    let again = refund_pack(svc, &order(&pi, &used.token)).await.unwrap_err();
    assert!(matches!(&again, RefundError::Refused(why) if why.contains("already used")), "{again:?}");
}

/// The one-time token a confirmation page's form carries.
fn attempt_of(page: &str) -> String {
    let at = page.find("name=\"attempt\" value=\"").expect("the confirmation form") + "name=\"attempt\" value=\"".len();
    page[at..].split('"').next().unwrap().to_string()
}

async fn two_confirmation_pages_of_one_pack_submitted_by_an_admin_refund_once(kind: DbKind) {
    use crate::web::{Site, ADMIN, ANN};
    let site = Site::start(kind).await;
    let svc = &site.app.services;
    let anns = site.contract_of(ANN.0).await;
    let ann_id = app::store::contracts::find(&svc.db, anns).await.unwrap().unwrap().advertiser_id;
    let p = app::services::purchase::start_purchase(svc, ann_id, anns).await.unwrap();
    let r = post_form(
        &format!("{}/stripe-sim/v1/payment_intents/{}/confirm", site.app.url(), p.payment_intent_id),
        app::stripe::simulator::PUBLISHABLE_KEY,
        &[
            ("client_secret", &p.client_secret),
            ("payment_method_data[type]", "card"),
            ("payment_method_data[card][number]", "4242424242424242"),
        ],
    )
    .await;
    assert_eq!(r.body["status"], "succeeded");
    let pi = p.payment_intent_id;
    assert!(
        eventually(PATIENCE, || async {
            app::store::ledger::credit_for_payment(&svc.db, &pi).await.unwrap().is_some()
        })
        .await
    );
    let admin = site.sign_in(ADMIN, None).await;
    // Two tabs open the confirmation of the same refund; each page carries its own token.
    let confirm = format!("/admin/contracts/{anns}/refund?payment={pi}&revisions=1&reason=duplicate");
    let (one, two) = (site.get(&confirm, Some(&admin)).await, site.get(&confirm, Some(&admin)).await);
    assert_eq!((one.status, two.status), (200, 200), "{}", one.body);
    let (a, b) = (attempt_of(&one.body), attempt_of(&two.body));
    assert_ne!(a, b);
    let submit = |token: &str| {
        let req = hyper::Request::post(format!("{}/admin/contracts/{anns}/refund", site.app.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", site.origin())
            .header("cookie", admin.clone());
        (req, format!("payment={pi}&revisions=1&reason=duplicate&note=&attempt={token}&amount=7500"))
    };
    let page = format!("/admin/contracts/{anns}");
    for (token, says) in [(&a, "Refunded $75.00"), (&b, CHANGED), (&a, "already used")] {
        let (req, body) = submit(token);
        let answer = site.send(req, body).await;
        assert_eq!((answer.status, answer.location()), (303, page.as_str()));
        let shown = site.get(&page, Some(&admin)).await;
        let flash = shown.body.split("data-testid=\"flash\"").nth(1).unwrap_or_default();
        let flash = flash.split_once('>').map_or("", |(_, text)| text.split("</p>").next().unwrap_or_default());
        assert!(flash.starts_with(says) || flash.contains(says), "expected {says:?}, the page says {flash:?}");
    }
    let refunds = svc.stripe.as_ref().unwrap().refunds_of(&pi, None).await.unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert!(
        eventually(PATIENCE, || async {
            adjustments::for_payment(&svc.db, &pi).await.unwrap().iter().map(|r| r.revoked).sum::<i64>() == 1
        })
        .await
    );
    assert_eq!(adjustments::for_payment(&svc.db, &pi).await.unwrap().len(), 1, "one revocation");
    site.app.stop().await;
}

/// Waits until no stored event is left to process and the balance satisfies `check`.
async fn settled_balance(
    t: &TestApp,
    check: impl Fn(&app::domain::RevisionBalance) -> bool,
) -> app::domain::RevisionBalance {
    let ok = eventually(PATIENCE, || async {
        app::store::events::list(t.store(), Some("pending"), 1).await.unwrap().is_empty() && check(&t.balance().await)
    })
    .await;
    let b = t.balance().await;
    assert!(ok, "the balance never got there: {b:?}");
    b
}

async fn a_pending_refund_holds_its_revisions_until_it_fails_or_succeeds(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let stripe = t.app.services.stripe.as_ref().unwrap();
    // 4000 0000 0000 7726: refunds start pending.
    let pi = buy(&t, "4000000000007726").await;
    let refund = stripe.create_refund(&pi, 15_000, None, &[], &format!("k-{}", unique())).await.unwrap();
    assert_eq!(refund.status.as_str(), "pending");
    let b = settled_balance(&t, |b| b.refunding == 2).await;
    assert_eq!((b.available(), b.held(), b.spendable(), b.revoked), (5, 2, 3, 0), "{b:?}");
    assert!(b.explain().contains("2 held while a refund is pending"), "{}", b.explain());
    // The advertiser spends what is theirs, and not what is being refunded.
    for n in 0..3 {
        request_revision(t.store(), t.contract_id, t.advertiser_id, &format!("change {n}"), None, chrono::Utc::now())
            .await
            .unwrap();
    }
    let refused = request_revision(t.store(), t.contract_id, t.advertiser_id, "one more", None, chrono::Utc::now())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("pending refund"), "{refused}");
    // The refund fails: its revisions are released, spendable again.
    t.sim().settle_refund(&refund.id, RefundSettlement::Failed).unwrap();
    let b = settled_balance(&t, |b| b.refunding == 0).await;
    assert_eq!((b.revoked, b.spendable()), (0, 2), "{b:?}");
    request_revision(t.store(), t.contract_id, t.advertiser_id, "released", None, chrono::Utc::now()).await.unwrap();
    // Another pack, refunded pending, then succeeded: held, then revoked, never owed.
    let pi2 = buy(&t, "4000000000007726").await;
    let refund2 = stripe.create_refund(&pi2, 15_000, None, &[], &format!("k-{}", unique())).await.unwrap();
    let b = settled_balance(&t, |b| b.refunding == 2).await;
    assert_eq!(b.spendable(), 1, "{b:?}");
    t.sim().settle_refund(&refund2.id, RefundSettlement::Succeeded).unwrap();
    let b = settled_balance(&t, |b| b.revoked == 2 && b.refunding == 0).await;
    assert_eq!((b.available(), b.owed(), b.spendable()), (1, 0, 1), "{b:?}");
    let rows = adjustments::for_payment(t.store(), &pi2).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.revoked).sum::<i64>(), 2, "{rows:?}");
    crate::balances::assert_kept_balances_match(t.store()).await;
}

async fn a_payment_whose_metadata_names_another_contract_than_its_purchase_is_credited_to_neither(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    let svc = &t.app.services;
    let other = app::store::contracts::create(
        t.store(),
        &app::store::contracts::NewContract {
            advertiser_id: t.advertiser_id,
            publication: "Daily Bugle",
            ad_size: "Full page",
            base_revisions: 3,
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    // The PaymentIntent's metadata names our contract; the purchase we recorded says the other.
    t.sim().set_faults(app::stripe::simulator::Faults { drop: true, ..Default::default() }).unwrap();
    let p = app::services::purchase::start_purchase(svc, t.advertiser_id, t.contract_id).await.unwrap();
    let sql = "UPDATE purchases SET contract_id = $1 WHERE payment_intent_id = $2";
    match t.store() {
        app::store::Db::Sqlite(s) => {
            sqlx::query(sql).bind(other.id).bind(&p.payment_intent_id).execute(&s.writer).await.map(drop)
        }
        app::store::Db::Postgres(pool) => {
            sqlx::query(sql).bind(other.id).bind(&p.payment_intent_id).execute(pool).await.map(drop)
        }
    }
    .unwrap();
    let r = post_form(
        &format!("{}/stripe-sim/v1/payment_intents/{}/confirm", t.app.url(), p.payment_intent_id),
        app::stripe::simulator::PUBLISHABLE_KEY,
        &[
            ("client_secret", &p.client_secret),
            ("payment_method_data[type]", "card"),
            ("payment_method_data[card][number]", "4242424242424242"),
        ],
    )
    .await;
    assert_eq!(r.body["status"], "succeeded");
    t.sim().set_faults(app::stripe::simulator::Faults::default()).unwrap();
    // The return page refuses it.
    let e = app::services::confirm::confirm_purchase(svc, t.advertiser_id, &p.payment_intent_id).await.unwrap_err();
    assert!(e.to_string().contains("bought for contract"), "{e}");
    // Reconciliation credits neither and raises an alert.
    let now = chrono::Utc::now();
    let opts = app::services::reconcile::Options {
        from: now - chrono::Duration::hours(1),
        to: now + chrono::Duration::minutes(1),
        dry_run: false,
        started_by: "cli",
        rate: 100,
    };
    app::services::reconcile::run(svc, &opts, &|_| {}).await.unwrap();
    let findings = app::store::reconciliation::findings_for_payment(t.store(), &p.payment_intent_id).await.unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f.category == "mismatch" && f.state == "open" && f.detail.contains("bought for contract")),
        "{findings:?}"
    );
    // The webhook (its events were dropped; reconciliation fetched and processed them): a dead
    // letter with its reason, whichever path saw it first.
    let stored = app::store::events::list(t.store(), None, 100).await.unwrap();
    let succeeded =
        stored.iter().find(|e| e.event_type == "payment_intent.succeeded").expect("fetched by reconciliation");
    let summary = t.event_status(&succeeded.event_id).await;
    assert_eq!(summary.status, "failed", "{summary:?}");
    assert!(summary.last_error.as_deref().unwrap_or_default().contains("bought for contract"), "{summary:?}");
    // Nothing was credited to either contract, by any path.
    assert!(app::store::ledger::credit_for_payment(t.store(), &p.payment_intent_id).await.unwrap().is_none());
    assert_eq!(t.available().await, 3);
    assert_eq!(app::store::ledger::balance(t.store(), other.id).await.unwrap().unwrap().available(), 3);
}

async fn a_webhook_naming_another_contract_than_its_purchase_is_a_dead_letter_however_often_it_comes(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let (_, other) = advertiser_with_contract(t.store()).await;
    let pi = new_payment_id();
    let now = chrono::Utc::now();
    let purchase = app::store::purchases::Purchase {
        payment_intent_id: pi.clone(),
        contract_id: other,
        created_by: t.advertiser_id,
        amount: 15_000,
        currency: "usd".into(),
        revisions: 2,
        status: "requires_payment_method".into(),
        idempotency_key: format!("k-{}", unique()),
        livemode: false,
        created_at: now,
        updated_at: now,
    };
    app::store::purchases::record(t.store(), &purchase).await.unwrap();
    // The metadata names our contract, the purchase another: intake's shortcut does not credit,
    // `apply` dead-letters, a redelivery changes nothing.
    let event = new_event_id();
    let body = paid(&event, &pi, t.contract_id);
    for _ in 0..3 {
        assert_eq!(t.deliver(&body).await.status, 200);
    }
    let s = t.event_status(&event).await;
    assert_eq!(s.status, "failed", "{s:?}");
    assert!(s.last_error.as_deref().unwrap_or_default().contains(&format!("bought for contract {other}")), "{s:?}");
    assert!(app::store::ledger::credit_for_payment(t.store(), &pi).await.unwrap().is_none());
    assert_eq!(t.available().await, 3);
}

/// One refund's life, as the statuses Stripe reports in turn.
const REFUND_LIVES: [&[&str]; 6] = [
    &["succeeded"],
    &["pending"],
    &["pending", "succeeded"],
    &["pending", "failed"],
    &["succeeded", "failed"],
    &["pending", "canceled"],
];
/// One dispute's life.
const DISPUTE_LIVES: [&[&str]; 4] = [
    &["needs_response", "under_review"],
    &["needs_response", "under_review", "won"],
    &["needs_response", "lost"],
    &["warning_needs_response", "warning_closed"],
];

/// A payment's story: (refund amounts and lives, dispute lives, a fraud warning), generated.
type Story = (Vec<(i64, usize)>, Vec<usize>, bool);

/// The story's signed events for payment `pi` on `contract`, in the order Stripe sends them.
fn story_events(story: &Story, pi: &str, contract: i64) -> Vec<String> {
    let tag = unique();
    let charge = format!("ch_{tag}");
    let mut n = 0;
    let mut ev = |ty: &str, obj: serde_json::Value| {
        n += 1;
        json!({"id": format!("evt_p{tag}x{n}"), "object": "event", "api_version": "2026-09-30.endive",
            "created": now(), "livemode": false, "type": ty, "data": {"object": obj}})
        .to_string()
    };
    let mut events = vec![paid(&format!("evt_p{tag}x0"), pi, contract)];
    let mut reserved = 0;
    for (i, &(amount, life)) in story.0.iter().enumerate() {
        for (step, status) in REFUND_LIVES[life].iter().enumerate() {
            let ty = match (step, *status) {
                (_, "failed") => "refund.failed",
                (0, _) => "refund.created",
                _ => "refund.updated",
            };
            let refund = json!({"id": format!("re_{tag}r{i}"), "object": "refund", "amount": amount, "currency": "usd",
                "payment_intent": pi, "charge": charge, "status": status, "metadata": {}});
            events.push(ev(ty, refund));
            if step == 0 {
                reserved += amount;
                let c = json!({"id": charge, "object": "charge", "amount": 15000, "amount_refunded": reserved,
                    "currency": "usd", "payment_intent": pi, "refunded": reserved == 15000, "disputed": false});
                events.push(ev("charge.refunded", c));
            }
        }
    }
    for (i, &life) in story.1.iter().enumerate() {
        for (step, status) in DISPUTE_LIVES[life].iter().enumerate() {
            let ty = match (step, *status) {
                (0, _) => "charge.dispute.created",
                (_, "won" | "lost" | "warning_closed") => "charge.dispute.closed",
                _ => "charge.dispute.updated",
            };
            let d = json!({"id": format!("du_{tag}d{i}"), "object": "dispute", "amount": 15000, "currency": "usd",
                "payment_intent": pi, "charge": charge, "status": status, "reason": "fraudulent"});
            events.push(ev(ty, d));
        }
    }
    if story.2 {
        let w = json!({"id": format!("issfr_{tag}"), "object": "radar.early_fraud_warning", "charge": charge,
            "payment_intent": pi, "fraud_type": "made_with_stolen_card", "actionable": true});
        events.push(ev("radar.early_fraud_warning.created", w));
    }
    events
}

/// What the domain's rules make of a story's facts, each refund and dispute at its last status.
fn rule_for(story: &Story) -> app::domain::adjustments::Revocation {
    use app::domain::adjustments::{revocation, DisputeStatus, PaidPack, RefundFact, RefundStatus};
    fn last(life: &[&'static str]) -> &'static str {
        life.last().copied().unwrap_or_default()
    }
    let refunds: Vec<RefundFact> = story
        .0
        .iter()
        .map(|&(amount, life)| RefundFact { amount, status: RefundStatus::parse(last(REFUND_LIVES[life])).unwrap() })
        .collect();
    let disputes: Vec<DisputeStatus> =
        story.1.iter().map(|&life| DisputeStatus::parse(last(DISPUTE_LIVES[life])).unwrap()).collect();
    revocation(&PaidPack { amount: 15_000, revisions: 2 }, &refunds, &disputes)
}

/// What a contract's books say of one payment: its balance and its net revocation.
async fn books(t: &TestApp, contract: i64, pi: &str) -> (app::domain::RevisionBalance, i64) {
    let b = app::store::ledger::balance(t.store(), contract).await.unwrap().unwrap();
    let revoked = adjustments::for_payment(t.store(), pi).await.unwrap().iter().map(|r| r.revoked).sum();
    (b, revoked)
}

async fn shuffled_and_repeated_deliveries_of_a_payments_events_book_what_they_book_in_order(kind: DbKind) {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    // Fewer cases than the domain's 2,000 (each is two payments through the real router), drawn
    // by proptest's generator; a failure prints the case, which is all shrinking would add.
    let t = TestApp::spawn(kind).await;
    let story = (
        prop::collection::vec((1i64..=5_000, 0..REFUND_LIVES.len()), 0..=3),
        prop::collection::vec(0..DISPUTE_LIVES.len(), 0..=1),
        any::<bool>(),
    );
    let mut runner = TestRunner::new(Config { cases: 12, ..Config::default() });
    for case in 0..12 {
        let story: Story = story.new_tree(&mut runner).unwrap().current();
        let (_, in_order_contract) = advertiser_with_contract(t.store()).await;
        let (_, shuffled_contract) = advertiser_with_contract(t.store()).await;
        let (a, b) = (new_payment_id(), new_payment_id());
        for body in story_events(&story, &a, in_order_contract) {
            assert_eq!(t.deliver(&body).await.status, 200);
        }
        let mut events = story_events(&story, &b, shuffled_contract);
        let shuffle = Just(events.clone()).prop_shuffle().new_tree(&mut runner).unwrap().current();
        let copies = prop::collection::vec(0..events.len(), 0..=events.len()).new_tree(&mut runner).unwrap().current();
        events = shuffle;
        for i in copies {
            let again = events[i].clone();
            events.push(again);
        }
        // Delivered two at a time, so some copies race.
        for pair in events.chunks(2) {
            let replies = futures_util::future::join_all(pair.iter().map(|body| t.deliver(body))).await;
            assert!(
                replies.iter().all(|r| r.status == 200),
                "case {case}: {:?}",
                replies.iter().map(|r| r.status).collect::<Vec<_>>()
            );
        }
        let expected = books(&t, in_order_contract, &a).await;
        // A refund reported before its credit is booked by the credit's settle: wait for quiet.
        let same = eventually(PATIENCE, || async { books(&t, shuffled_contract, &b).await == expected }).await;
        let got = books(&t, shuffled_contract, &b).await;
        assert!(same, "case {case} {story:?}: in order {expected:?}, shuffled {got:?}");
        // And both are what the domain's rules say of the story's last word on each refund and
        // dispute: nothing booked twice, and nothing spendable that the payment speaks for.
        let rule = rule_for(&story);
        let (balance, revoked) = got;
        assert_eq!(revoked, rule.revoked, "case {case} {story:?}: {balance:?}");
        assert_eq!(balance.refunding, rule.refunding, "case {case} {story:?}: {balance:?}");
        assert_eq!(balance.disputed, if rule.disputed { 2 - rule.revoked } else { 0 }, "case {case} {story:?}");
        let spoken_for = if rule.disputed || rule.lost { 2 } else { rule.revoked + rule.refunding };
        assert!(balance.spendable() <= 3 + 2 - spoken_for, "case {case} {story:?}: {balance:?}");
    }
    crate::balances::assert_kept_balances_match(t.store()).await;
}
