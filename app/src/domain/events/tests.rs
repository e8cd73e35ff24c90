use super::*;
use crate::domain::money::PackTerms;
use serde_json::json;

#[test]
fn retries_back_off_exponentially_then_stop() {
    let p = RetryPolicy { first_delay_secs: 30, max_delay_secs: 3600, max_attempts: 10 };
    let delays: Vec<_> = (1..=10).map(|n| p.delay_after(n)).collect();
    assert_eq!(&delays[..8], &[Some(30), Some(60), Some(120), Some(240), Some(480), Some(960), Some(1920), Some(3600)]);
    assert_eq!(delays[9], None);
}

fn event(event_type: &str, livemode: bool, metadata: serde_json::Value, amount: i64, currency: &str) -> StripeEvent {
    let body = json!({
        "id": "evt_1", "object": "event", "type": event_type, "livemode": livemode,
        "api_version": "2024-06-20", "created": 1_700_000_000,
        "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": amount,
            "amount_received": amount, "currency": currency, "status":
            if event_type == "payment_intent.succeeded" { "succeeded" } else { "requires_payment_method" },
            "metadata": metadata}}
    });
    StripeEvent::parse(body.to_string().as_bytes()).unwrap()
}

fn terms() -> PackTerms {
    PackTerms::standard()
}

#[test]
fn a_credit_goes_to_the_contract_of_the_recorded_purchase_or_to_none() {
    assert_eq!(credit_target(Some(7), 7), Ok(7));
    assert_eq!(credit_target(None, 9), Ok(9), "no purchase of ours: the metadata decides");
    let e = credit_target(Some(7), 9).unwrap_err();
    assert_eq!(e, ContractMismatch { bought_for: 7, metadata_names: 9 });
    assert!(e.to_string().contains("names contract 9 but it was bought for contract 7"), "{e}");
}

#[test]
fn a_succeeded_pack_payment_credits_its_contract() {
    let e = event("payment_intent.succeeded", false, json!({"contractId": "42"}), 15_000, "usd");
    match route(&e, StripeMode::Test, &terms()) {
        Action::Credit(c) => {
            assert_eq!(c.contract_id, 42);
            assert_eq!(c.payment_id, "pi_1");
            assert_eq!(c.revisions, 2);
            assert_eq!(c.amount.minor, 15_000);
        }
        other => panic!("expected a credit, got {other:?}"),
    }
}

#[test]
fn wrong_amount_or_currency_is_a_dead_letter() {
    let e = event("payment_intent.succeeded", false, json!({"contractId": "42"}), 100, "usd");
    assert!(
        matches!(route(&e, StripeMode::Test, &terms()), Action::DeadLetter { reason } if reason.contains("pack price"))
    );
    let e = event("payment_intent.succeeded", false, json!({"contractId": "42"}), 15_000, "eur");
    assert!(
        matches!(route(&e, StripeMode::Test, &terms()), Action::DeadLetter { reason } if reason.contains("currency"))
    );
}

#[test]
fn a_test_event_never_credits_a_live_deployment() {
    let e = event("payment_intent.succeeded", false, json!({"contractId": "42"}), 15_000, "usd");
    assert!(
        matches!(route(&e, StripeMode::Live, &terms()), Action::Ignore { reason } if reason.contains("never credited"))
    );
    let e = event("payment_intent.succeeded", true, json!({"contractId": "42"}), 15_000, "usd");
    assert!(matches!(route(&e, StripeMode::Test, &terms()), Action::Ignore { .. }));
}

#[test]
fn rate_card_payments_are_recorded_for_the_external_system() {
    let meta = json!({"advertiserId": "adv-9", "sizeId": "half-page", "publicationId": "pub-3"});
    let e = event("payment_intent.succeeded", false, meta.clone(), 9_900, "usd");
    match route(&e, StripeMode::Test, &terms()) {
        Action::RecordExternal(x) => {
            assert_eq!(
                (x.advertiser_ref.as_str(), x.size_ref.as_str(), x.publication_ref.as_str()),
                ("adv-9", "half-page", "pub-3")
            );
            assert_eq!(x.amount, 9_900);
        }
        other => panic!("expected an external payment, got {other:?}"),
    }
    let e = event("payment_intent.payment_failed", false, meta, 9_900, "usd");
    assert!(matches!(route(&e, StripeMode::Test, &terms()), Action::Ignore { .. }));
}

#[test]
fn unusable_metadata_is_a_dead_letter_with_its_reason() {
    let cases = [
        (json!({}), "neither"),
        (json!({"contractId": "abc"}), "not a contract id"),
        (json!({"contractId": "-3"}), "not a contract id"),
        (json!({"advertiserId": "a", "sizeId": "s"}), "missing publicationId"),
        (json!({"contractId": "1", "sizeId": "s"}), "both"),
    ];
    for (meta, expected) in cases {
        let e = event("payment_intent.succeeded", false, meta.clone(), 15_000, "usd");
        match route(&e, StripeMode::Test, &terms()) {
            Action::DeadLetter { reason } => assert!(reason.contains(expected), "{meta}: {reason}"),
            other => panic!("{meta}: expected a dead letter, got {other:?}"),
        }
    }
}

#[test]
fn failures_and_cancellations_update_our_purchase() {
    for t in ["payment_intent.payment_failed", "payment_intent.canceled", "payment_intent.processing"] {
        let e = event(t, false, json!({"contractId": "7"}), 15_000, "usd");
        assert!(
            matches!(route(&e, StripeMode::Test, &terms()), Action::UpdatePurchase { payment_id, .. } if payment_id == "pi_1")
        );
    }
}

#[test]
fn a_failed_attempt_says_why_in_stripes_words() {
    let failed = |e: serde_json::Value| {
        json!({"id": "evt_f", "type": "payment_intent.payment_failed", "data": {"object": {"id": "pi_1", "last_payment_error": e}}})
            .to_string()
    };
    let declined = failed(json!({"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
        "message": "Your card was declined."}));
    assert_eq!(
        payment_failure(declined.as_bytes()).as_deref(),
        Some("Your card was declined. (card_declined, generic_decline)")
    );
    let bare = failed(json!({"code": "payment_intent_authentication_failure"}));
    assert_eq!(payment_failure(bare.as_bytes()).as_deref(), Some("payment_intent_authentication_failure"));
    assert_eq!(payment_failure(failed(json!(null)).as_bytes()), None);
    assert_eq!(payment_failure(b"not json"), None);
}

#[test]
fn a_late_created_event_never_rewinds_a_purchase() {
    let e = event("payment_intent.created", false, json!({"contractId": "7"}), 15_000, "usd");
    assert!(matches!(route(&e, StripeMode::Test, &terms()), Action::Ignore { .. }));
}

#[test]
fn other_event_types_are_only_evidence() {
    let body = json!({"id": "evt_2", "type": "customer.created", "livemode": false, "api_version": null,
        "created": 1, "data": {"object": {"id": "cus_1", "object": "customer"}}});
    let e = StripeEvent::parse(body.to_string().as_bytes()).unwrap();
    assert!(e.payment_intent().is_none());
    assert!(matches!(route(&e, StripeMode::Test, &terms()), Action::Ignore { .. }));
}

fn money_event(event_type: &str, livemode: bool, object: serde_json::Value) -> StripeEvent {
    let body = json!({"id": "evt_9", "object": "event", "type": event_type, "livemode": livemode,
        "api_version": "2026-09-30.endive", "created": 1_700_000_000, "data": {"object": object}});
    StripeEvent::parse(body.to_string().as_bytes()).unwrap()
}

#[test]
fn refunds_disputes_and_warnings_are_routed_to_the_ledger() {
    let refund = json!({"id": "re_1", "object": "refund", "amount": 7500, "currency": "usd",
        "payment_intent": "pi_1", "charge": "ch_1", "status": "succeeded", "reason": null, "metadata": {}});
    for t in ["refund.created", "refund.updated", "refund.failed"] {
        match route(&money_event(t, false, refund.clone()), StripeMode::Test, &terms()) {
            Action::BookRefund(r) => {
                assert_eq!((r.id.as_str(), r.amount, r.status), ("re_1", 7500, RefundStatus::Succeeded))
            }
            other => panic!("{t}: {other:?}"),
        }
    }
    let dispute = json!({"id": "du_1", "object": "dispute", "amount": 15000, "currency": "usd",
        "payment_intent": "pi_1", "charge": "ch_1", "status": "lost", "reason": "fraudulent"});
    for t in ["charge.dispute.created", "charge.dispute.closed", "charge.dispute.funds_withdrawn"] {
        assert!(matches!(route(&money_event(t, false, dispute.clone()), StripeMode::Test, &terms()),
            Action::BookDispute(d) if d.status == DisputeStatus::Lost));
    }
    let charge = json!({"id": "ch_1", "object": "charge", "amount": 15000, "amount_refunded": 7500,
        "currency": "usd", "payment_intent": "pi_1", "refunded": false});
    assert!(matches!(route(&money_event("charge.refunded", false, charge.clone()), StripeMode::Test, &terms()),
        Action::SyncRefunds { payment_id, charge } if payment_id == "pi_1" && charge.amount_refunded == 7500));
    assert!(matches!(
        route(&money_event("charge.succeeded", false, charge), StripeMode::Test, &terms()),
        Action::Ignore { .. }
    ));
    let efw = json!({"id": "issfr_1", "object": "radar.early_fraud_warning", "charge": "ch_1",
        "payment_intent": "pi_1", "fraud_type": "made_with_stolen_card", "actionable": true});
    assert!(matches!(route(&money_event("radar.early_fraud_warning.created", false, efw), StripeMode::Test, &terms()),
        Action::RecordFraudWarning(w) if w.actionable));
}

#[test]
fn a_test_mode_refund_never_touches_a_live_ledger() {
    let refund = json!({"id": "re_1", "object": "refund", "amount": 7500, "currency": "usd",
        "payment_intent": "pi_1", "status": "succeeded"});
    assert!(matches!(
        route(&money_event("refund.created", false, refund), StripeMode::Live, &terms()),
        Action::Ignore { .. }
    ));
}

#[test]
fn money_objects_that_are_not_what_they_say_are_dead_letters() {
    let bad = [
        json!({"id": "x_1", "object": "refund", "amount": 1, "currency": "usd", "status": "succeeded"}),
        json!({"id": "re_1", "object": "refund", "amount": 1, "currency": "usd", "status": "weird"}),
        json!({"id": "re_1", "object": "refund", "amount": 0, "currency": "usd", "status": "succeeded"}),
        json!({"id": "re_1", "object": "refund", "amount": 1, "currency": "usd", "status": "succeeded",
            "payment_intent": "pi_1; DROP"}),
        json!({"id": "du_1", "object": "dispute", "amount": 1, "currency": "usd", "status": "maybe"}),
    ];
    for object in bad {
        let body = json!({"id": "evt_9", "type": "refund.created", "livemode": false, "created": 1,
            "data": {"object": object}});
        // Authentic all the same: stored, and dead-lettered with the reason.
        let e = StripeEvent::parse(body.to_string().as_bytes()).unwrap();
        assert!(matches!(e.object, EventObject::Unreadable { .. }), "{object}");
        assert!(
            matches!(route(&e, StripeMode::Test, &terms()), Action::DeadLetter { reason } if reason.contains("cannot be read")),
            "{object}"
        );
    }
}

#[test]
fn parse_rejects_what_is_not_an_event() {
    assert!(StripeEvent::parse(b"not json").is_err());
    assert!(StripeEvent::parse(br#"{"id":"x","type":"a","livemode":false,"created":1,"data":{"object":{}}}"#)
        .unwrap_err()
        .contains("event id"));
    let bad_pi = json!({"id": "evt_3", "type": "payment_intent.succeeded", "livemode": false, "created": 1,
        "data": {"object": {"id": "pi_1", "object": "payment_intent", "currency": "usd"}}});
    assert!(StripeEvent::parse(bad_pi.to_string().as_bytes()).unwrap_err().contains("PaymentIntent"));
}

#[test]
fn stripe_ids_are_checked() {
    assert!(valid_stripe_id("evt_1NxAbc", "evt_"));
    assert!(!valid_stripe_id("evt_", "evt_"));
    assert!(!valid_stripe_id("evt_1; DROP", "evt_"));
    assert!(!valid_stripe_id("pi_1", "evt_"));
}
