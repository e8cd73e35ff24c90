//! A contract's statement (`services::statement`), the one read model the advertiser's page, the
//! admin's contract page and `contract show` present: what it holds, who may read it, and that it
//! is read in the same number of queries however many purchases the contract has.
use crate::helpers::*;
use crate::on_both_databases;
use crate::web::{Site, ADMIN, ANN, BOB};
use app::services::statement::{contract_statement, Reader};
use app::web::checkout::BuyPack;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

on_both_databases!(a_statement_holds_every_attempt_and_is_read_in_a_fixed_number_of_queries);

/// Counts the statements sqlx runs on this thread (its `sqlx::query` events), to tell how many
/// queries a read takes. PostgreSQL runs each query in the calling task; SQLite runs them on its
/// own worker thread, out of this counter's sight.
struct QueryCounter(Arc<AtomicUsize>);

impl tracing::Subscriber for QueryCounter {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "sqlx::query"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The admin's statement of `contract`, and the number of queries it took (as `QueryCounter`
/// sees them).
async fn counted_statement(site: &Site, contract: i64) -> (app::services::statement::ContractStatement, usize) {
    let count = Arc::new(AtomicUsize::new(0));
    let dispatch = tracing::Dispatch::new(QueryCounter(count.clone()));
    let guard = tracing::dispatcher::set_default(&dispatch);
    let statement = contract_statement(&site.app.services.db, contract, Reader::Admin).await.unwrap();
    drop(guard);
    (statement.expect("the contract"), count.load(Ordering::SeqCst))
}

/// Starts a purchase and pays it with `card` in the simulator; the PaymentIntent id.
async fn pay(site: &Site, cookie: &str, contract: i64, card: &str, status: u16) -> String {
    let sim = format!("{}{}", site.app.url(), app::stripe::simulator::MOUNT);
    let b = site.call::<BuyPack>(Some(cookie), &[("contract_id", &contract.to_string())]).await.json();
    let (pi, secret) = (b["payment_intent_id"].as_str().unwrap().to_string(), b["client_secret"].as_str().unwrap());
    let r = post_form(
        &format!("{sim}/v1/payment_intents/{pi}/confirm"),
        app::stripe::simulator::PUBLISHABLE_KEY,
        &[("client_secret", secret), ("payment_method", card)],
    )
    .await;
    assert_eq!(r.status, status, "{}", r.body);
    pi
}

async fn a_statement_holds_every_attempt_and_is_read_in_a_fixed_number_of_queries(kind: DbKind) {
    let site = Site::start(kind).await;
    let ann = site.sign_in(ANN, None).await;
    site.sign_in(ADMIN, None).await;
    let contract = site.contract_of(ANN.0).await;
    let mut declined = vec![pay(&site, &ann, contract, "pm_card_chargeDeclined", 402).await];
    let mut paid = vec![pay(&site, &ann, contract, "pm_card_visa", 200).await];
    let settled = |paid: usize, declined: usize| {
        let site = &site;
        async move {
            let s = contract_statement(&site.app.services.db, contract, Reader::Admin).await.unwrap().unwrap();
            let a = s.admin.as_ref().unwrap();
            s.credits.len() == paid
                && a.failures.len() == declined
                && s.purchases.iter().all(|p| a.events.get(&p.payment_intent_id).is_some_and(|e| !e.is_empty()))
        }
    };
    assert!(eventually(PATIENCE, || settled(1, 1)).await, "the first payment is credited, the decline explained");
    let (_, two_purchases) = counted_statement(&site, contract).await;

    for _ in 0..3 {
        declined.push(pay(&site, &ann, contract, "pm_card_chargeDeclined", 402).await);
        paid.push(pay(&site, &ann, contract, "pm_card_visa", 200).await);
    }
    assert!(eventually(PATIENCE, || settled(4, 4)).await, "every payment is credited, every decline explained");
    let (s, eight_purchases) = counted_statement(&site, contract).await;

    // What it holds: every attempt, its events, why each declined one failed; the balance.
    assert_eq!(s.purchases.len(), 8);
    assert_eq!(s.balance().available(), 3 + 4 * 2);
    let a = s.admin.as_ref().unwrap();
    for pi in &paid {
        assert!(s.credited(pi) && !a.failures.contains_key(pi), "{pi} paid");
        assert!(a.events[pi].iter().any(|e| e.event_type == "payment_intent.succeeded"), "{pi}'s events");
    }
    for pi in &declined {
        assert!(!s.credited(pi), "{pi} declined");
        assert!(a.failures[pi].contains("Your card was declined."), "{}", a.failures[pi]);
    }
    // The same number of queries for two purchases as for eight (on PostgreSQL, where they are
    // counted: 4 for the contract, its credits, purchases and requests; 4 for the money that
    // went back; 3 for the attempts' events; 1 for the payloads of the failed ones).
    assert_eq!(eight_purchases, two_purchases, "queries grow with purchases");
    if kind == DbKind::Postgres {
        assert_eq!(eight_purchases, 12);
    }

    // Who may read it: its owner, an admin; not another advertiser.
    let ann_id = s.contract.advertiser_id;
    let owner = contract_statement(&site.app.services.db, contract, Reader::Owner(ann_id)).await.unwrap().unwrap();
    assert!(owner.admin.is_none(), "no admin detail for the owner");
    assert_eq!((owner.purchases.len(), owner.credits.len()), (8, 4));
    let bob_contract = site.contract_of(BOB.0).await;
    let bob = contract_statement(&site.app.services.db, bob_contract, Reader::Admin).await.unwrap().unwrap();
    let theirs = contract_statement(&site.app.services.db, contract, Reader::Owner(bob.contract.advertiser_id));
    assert!(theirs.await.unwrap().is_none(), "another advertiser's contract is not found");
    site.app.stop().await;
}
