//! The Stripe client (async-stripe) against the simulator over HTTP, and starting a purchase.
use crate::helpers::*;
use crate::on_both_databases;
use app::domain::PackTerms;
use app::services::purchase::{start_purchase, PurchaseError};
use app::stripe::{StripeApi, StripeApiError};

async fn simulator() -> String {
    let (addr, _task) =
        app::stripe::simulator::start("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
    format!("http://{addr}")
}

#[tokio::test]
async fn the_client_creates_retrieves_and_replays_idempotent_creates() {
    let api = StripeApi::new("sk_test_client", &simulator().await).unwrap();
    let terms = PackTerms::standard();
    let pi = api.create_pack_payment(42, &terms, "key-1").await.unwrap();
    assert!(pi.id.starts_with("pi_"));
    assert_eq!((pi.amount, pi.currency.as_str(), pi.status.as_str()), (15_000, "usd", "requires_payment_method"));
    assert_eq!(pi.metadata.get("contractId").map(String::as_str), Some("42"));
    assert!(pi.client_secret.as_deref().unwrap().starts_with(&format!("{}_secret_", pi.id)));
    assert!(!pi.livemode);

    let again = api.create_pack_payment(42, &terms, "key-1").await.unwrap();
    assert_eq!(again.id, pi.id, "the same idempotency key replays the first answer");
    match api.create_pack_payment(43, &terms, "key-1").await {
        Err(StripeApiError::Api { status: 400, message, .. }) => {
            assert!(message.contains("same parameters"), "{message}")
        }
        other => panic!("expected an idempotency error, got {other:?}"),
    }
    assert_eq!(api.retrieve(&pi.id).await.unwrap(), pi);
}

#[tokio::test]
async fn every_post_honours_idempotency_keys_as_stripe_does() {
    let base = simulator().await;
    let sk = "sk_test_client";
    let api = StripeApi::new(sk, &base).unwrap();
    let pi = api.create_pack_payment(7, &PackTerms::standard(), "create-7").await.unwrap();
    let keyed = |path: String, key: &'static str, fields: Vec<(&'static str, String)>| {
        let base = base.clone();
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form_keyed(&format!("{base}{path}"), sk, Some(key), &fields).await
        }
    };
    let confirm = format!("/v1/payment_intents/{}/confirm", pi.id);
    let card = || vec![("payment_method", "pm_card_visa".to_string())];
    // Confirm twice with one key: the first answer, replayed (a second confirm would be a 400).
    let (first, replayed) = keyed(confirm.clone(), "confirm-7", card()).await;
    assert_eq!((first.status, first.body["status"].as_str(), replayed), (200, Some("succeeded"), false));
    let (again, replayed) = keyed(confirm.clone(), "confirm-7", card()).await;
    assert_eq!((again.status, &again.body, replayed), (200, &first.body, true));
    // A refund retried with its key refunds once: 5,000 + a further 10,000 still fit the 15,000
    // charge only if the retry did not refund again.
    let refund = |amount: &str| vec![("payment_intent", pi.id.clone()), ("amount", amount.to_string())];
    let (r1, _) = keyed("/v1/refunds".into(), "refund-7", refund("5000")).await;
    let (r2, replayed) = keyed("/v1/refunds".into(), "refund-7", refund("5000")).await;
    assert_eq!((r1.status, &r2.body["id"], replayed), (200, &r1.body["id"], true), "{}", r1.body);
    let (r3, _) = keyed("/v1/refunds".into(), "refund-7b", refund("10000")).await;
    assert_eq!(r3.status, 200, "{}", r3.body);
    // The same key with other parameters, or on another endpoint, is an error.
    let (other, _) = keyed("/v1/refunds".into(), "refund-7", refund("100")).await;
    assert_eq!((other.status, other.body["error"]["type"].as_str()), (400, Some("idempotency_error")));
    let (elsewhere, _) = keyed(confirm.clone(), "refund-7", refund("5000")).await;
    assert_eq!(elsewhere.body["error"]["type"], "idempotency_error");
    // A request refused for its parameters is not kept: fixed, it runs under the same key.
    let (bad, _) = keyed("/v1/payment_intents".into(), "fix-me", vec![("currency", "usd".into())]).await;
    assert_eq!(
        (bad.status, bad.body["error"]["code"].as_str(), bad.body["error"]["param"].as_str()),
        (400, Some("parameter_missing"), Some("amount"))
    );
    let fixed = vec![("currency", "usd".to_string()), ("amount", "15000".to_string())];
    let (ok, replayed) = keyed("/v1/payment_intents".into(), "fix-me", fixed.clone()).await;
    assert_eq!((ok.status, replayed), (200, false), "{}", ok.body);
    // A replay goes only to the caller that made the request: no key, a live key or another
    // key gets no stored answer (which may hold a client secret).
    let create = format!("{base}/v1/payment_intents");
    let fixed_fields: Vec<(&str, &str)> = fixed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (other_key, status) in [("", 401), ("sk_live_x", 401), ("sk_test_someone_else", 400)] {
        let (r, replayed) = post_form_keyed(&create, other_key, Some("fix-me"), &fixed_fields).await;
        assert_eq!((r.status, replayed), (status, false), "{other_key:?}: {}", r.body);
        assert!(r.body.get("id").is_none() && !r.body.to_string().contains("_secret_"), "{}", r.body);
    }
    // Cancel, too, answers a retry with its first answer.
    let cancel = format!("/v1/payment_intents/{}/cancel", ok.body["id"].as_str().unwrap());
    let (c1, _) = keyed(cancel.clone(), "cancel-1", vec![]).await;
    let (c2, replayed) = keyed(cancel, "cancel-1", vec![]).await;
    assert_eq!((c1.body["status"].as_str(), &c2.body, replayed), (Some("canceled"), &c1.body, true));
}

#[tokio::test]
async fn stripe_errors_keep_their_status_and_code() {
    let base = simulator().await;
    let api = StripeApi::new("sk_test_client", &base).unwrap();
    match api.retrieve("pi_doesnotexist").await {
        Err(StripeApiError::Api { status: 404, code, .. }) => assert_eq!(code.as_deref(), Some("resource_missing")),
        other => panic!("{other:?}"),
    }
    let live = StripeApi::new("sk_live_nope", &base).unwrap();
    assert!(matches!(live.retrieve("pi_x").await, Err(StripeApiError::Api { status: 401, .. })));
    let nowhere = StripeApi::new("sk_test_client", "http://127.0.0.1:9").unwrap();
    assert!(matches!(nowhere.retrieve("pi_x").await, Err(StripeApiError::Transport(_))));
}

#[tokio::test]
async fn listing_by_created_range_follows_every_page() {
    let api = StripeApi::new("sk_test_client", &simulator().await).unwrap();
    let terms = PackTerms::standard();
    let from = chrono::Utc::now().timestamp();
    let mut ids = std::collections::BTreeSet::new();
    for n in 0..105 {
        ids.insert(api.create_pack_payment(n, &terms, &format!("list-{n}")).await.unwrap().id);
    }
    let to = chrono::Utc::now().timestamp();
    let listed = api.list_created_between(from, to).await.unwrap();
    assert_eq!(listed.len(), 105, "two pages of 100 and 5");
    assert_eq!(listed.iter().map(|p| p.id.clone()).collect::<std::collections::BTreeSet<_>>(), ids);
    assert!(api.list_created_between(to + 10, to + 20).await.unwrap().is_empty());
}

on_both_databases!(starting_a_purchase_records_the_payment_intent_for_the_owner_only);

async fn starting_a_purchase_records_the_payment_intent_for_the_owner_only(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let mut svc = t.app.services.clone();
    assert!(matches!(
        start_purchase(&svc, t.advertiser_id, t.contract_id).await,
        Err(PurchaseError::PaymentsUnavailable)
    ));
    svc.stripe = Some(StripeApi::new("sk_test_purchase", &simulator().await).unwrap());

    let started = start_purchase(&svc, t.advertiser_id, t.contract_id).await.unwrap();
    assert_eq!((started.amount, started.currency.as_str(), started.revisions), (15_000, "usd", 2));
    let p = app::store::purchases::find(t.store(), &started.payment_intent_id).await.unwrap().expect("recorded");
    assert_eq!(
        (p.contract_id, p.created_by, p.status.as_str()),
        (t.contract_id, t.advertiser_id, "requires_payment_method")
    );
    let pi = svc.stripe.as_ref().unwrap().retrieve(&started.payment_intent_id).await.unwrap();
    assert_eq!(pi.metadata.get("contractId"), Some(&t.contract_id.to_string()));

    // Another advertiser's contract and a missing one get the same answer.
    let other = app::services::accounts::create_user(
        t.store(),
        &format!("other{}@example.com", unique()),
        app::domain::users::Role::Advertiser,
        "a-long-password",
    )
    .await
    .unwrap();
    assert!(matches!(start_purchase(&svc, other.id, t.contract_id).await, Err(PurchaseError::NotFound)));
    assert!(matches!(start_purchase(&svc, t.advertiser_id, 987_654).await, Err(PurchaseError::NotFound)));
    assert_eq!(app::store::purchases::for_contract(t.store(), t.contract_id).await.unwrap().len(), 1);
}
