//! The simulator's objects are Stripe's in shape: every object it answers or sends in an event
//! (PaymentIntent, Charge, Refund, Dispute, Event) is compared key by key, nested objects
//! included, with Stripe's own example of that object (`fixtures/stripe/*.json`, Stripe's
//! published OpenAPI fixtures, copied from the stripe/openapi repository; their values are
//! placeholders). A key Stripe has and ours lacks fails, as does one of another JSON type, and
//! one ours has that Stripe's object does not, unless Stripe documents it (argued below).
//!
//! Not compared: the Radar EarlyFraudWarning (Stripe publishes no fixture of it in this set)
//! and the BalanceTransaction (the simulator keeps no balance and makes none:
//! `balance_transaction` is null on its charges and refunds, `balance_transactions` empty on
//! its disputes).
use crate::helpers::*;
use app::stripe::simulator::{self, Faults, RefundSettlement, Simulator};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const KEY: &str = "sk_test_simulated";

/// One object type: Stripe's example and where Stripe allows what the fixture does not show.
struct Stripe {
    fixture: &'static str,
    /// Paths where the fixture has a value but Stripe's API reference marks the field nullable
    /// (async-stripe reads each as an `Option`), so null is Stripe's shape too.
    nullable: &'static [&'static str],
    /// Paths the fixture leaves out that Stripe documents on this object, each argued.
    documented: &'static [&'static str],
    /// Keys Stripe leaves out unless expanded ("includable"), at the API version the simulator
    /// renders: absent is Stripe's shape, and when present they are compared.
    includable: &'static [&'static str],
}

const PAYMENT_INTENT: Stripe = Stripe {
    fixture: include_str!("fixtures/stripe/payment_intent.json"),
    nullable: &[
        "amount_details",
        "automatic_payment_methods",
        "canceled_at",
        "client_secret",
        "last_payment_error",
        "managed_payments",
        "next_action",
        "payment_method_configuration_details",
        "payment_method_options",
        "processing",
        "shipping",
        "transfer_data",
    ],
    documented: &[
        // "automatic_payment_methods.allow_redirects": always or never, documented beside
        // `enabled` (the fixture shows only the required key).
        "automatic_payment_methods.allow_redirects",
        // `last_payment_error` is Stripe's error object: `code`, `decline_code` (card errors)
        // and `message` are its documented fields; the fixture shows only `type`.
        "last_payment_error.code",
        "last_payment_error.decline_code",
        "last_payment_error.message",
        // `next_action.use_stripe_sdk`: documented, "when type is use_stripe_sdk" (3-D Secure).
        "next_action.use_stripe_sdk",
        // `payment_method_options.card`: documented; Stripe fills it for card payments.
        "payment_method_options.card",
    ],
    includable: &[],
};

const CHARGE: Stripe = Stripe {
    fixture: include_str!("fixtures/stripe/charge.json"),
    nullable: &[
        "balance_transaction",
        "billing_details.address",
        "billing_details.name",
        "description",
        "fraud_details",
        "outcome",
        "payment_method",
        "payment_method_details",
        "payment_method_details.card.brand",
        "payment_method_details.card.checks",
        "payment_method_details.card.checks.cvc_check",
        "payment_method_details.card.country",
        "payment_method_details.card.extended_authorization",
        "payment_method_details.card.fingerprint",
        "payment_method_details.card.funding",
        "payment_method_details.card.incremental_authorization",
        "payment_method_details.card.installments",
        "payment_method_details.card.last4",
        "payment_method_details.card.multicapture",
        "payment_method_details.card.network",
        "payment_method_details.card.network_token",
        "payment_method_details.card.overcapture",
        "payment_method_details.card.three_d_secure",
        "payment_method_details.card.wallet",
        "receipt_url",
        "refunds",
        "shipping",
        "source",
        "transfer_data",
    ],
    documented: &[
        // `outcome.risk_level`: documented ("Stripe Radar's evaluation of the riskiness"),
        // present for Radar-screened card payments; the fixture shows the required keys only.
        "outcome.risk_level",
    ],
    // `refunds`: since API version 2022-11-15 only with `expand[]=refunds`.
    includable: &["refunds"],
};

const REFUND: Stripe = Stripe {
    fixture: include_str!("fixtures/stripe/refund.json"),
    nullable: &["destination_details"],
    documented: &[
        // `failure_reason`: documented ("Provides the reason for the refund failure"), what a
        // failed refund says; null until then.
        "failure_reason",
    ],
    includable: &[],
};

const DISPUTE: Stripe = Stripe {
    fixture: include_str!("fixtures/stripe/dispute.json"),
    nullable: &["evidence_details.due_by", "payment_method_details", "payment_method_details.card.network_reason_code"],
    documented: &[],
    includable: &[],
};

const EVENT: Stripe = Stripe {
    fixture: include_str!("fixtures/stripe/event.json"),
    nullable: &["request"],
    documented: &[
        // `data.previous_attributes`: documented, on `*.updated` events only.
        "data.previous_attributes",
    ],
    includable: &[],
};

/// What a comparison found: each difference, and how many of the fixture's key paths ours has.
#[derive(Debug, Default)]
struct Shape {
    problems: Vec<String>,
    keys_present: usize,
    keys_total: usize,
}

/// Compares `ours` with Stripe's `fixture` key by key, recursively (an array by its first
/// element when both have one). A null in the fixture allows any value; a null in ours is
/// allowed only where the fixture has null or `nullable` names the path. Numbers must agree on
/// being integers.
fn compare(fixture: &Value, ours: &Value, rules: &Rules) -> Shape {
    let mut shape = Shape::default();
    walk("", fixture, ours, rules, &mut shape);
    shape
}

#[derive(Default)]
struct Rules<'a> {
    nullable: &'a [&'a str],
    documented: &'a [&'a str],
    includable: &'a [&'a str],
}

fn walk(path: &str, fixture: &Value, ours: &Value, rules: &Rules, shape: &mut Shape) {
    let shown = if path.is_empty() { "(the object)" } else { path };
    match (fixture, ours) {
        (Value::Null, _) => {}
        // `metadata` is Stripe's set of key-value pairs: any keys, string values.
        (Value::Object(_), Value::Object(o)) if path == "metadata" || path.ends_with(".metadata") => {
            shape.keys_present += key_paths(fixture);
            shape.keys_total += key_paths(fixture);
            for (key, value) in o.iter().filter(|(_, v)| !v.is_string()) {
                shape.problems.push(format!("{path}.{key}: {} where Stripe has string", json_type(value)));
            }
        }
        (_, Value::Null) if rules.nullable.contains(&path) => {
            // Null stands for the whole of Stripe's nested object here: its keys count as had.
            shape.keys_present += key_paths(fixture);
            shape.keys_total += key_paths(fixture);
        }
        (Value::Object(f), Value::Object(o)) => {
            for (key, f_value) in f {
                let inner = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                shape.keys_total += 1;
                match o.get(key) {
                    Some(o_value) => {
                        shape.keys_present += 1;
                        walk(&inner, f_value, o_value, rules, shape);
                    }
                    None if rules.includable.contains(&inner.as_str()) => shape.keys_total += key_paths(f_value),
                    None => {
                        shape.problems.push(format!("missing {inner}"));
                        shape.keys_total += key_paths(f_value);
                    }
                }
            }
            for key in o.keys().filter(|k| !f.contains_key(*k)) {
                let inner = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if !rules.documented.contains(&inner.as_str()) {
                    shape.problems.push(format!("extra {inner} (Stripe's object has no such key)"));
                }
            }
        }
        (Value::Array(f), Value::Array(o)) => {
            if let (Some(f0), Some(o0)) = (f.first(), o.first()) {
                walk(&format!("{path}[]"), f0, o0, rules, shape);
            }
        }
        _ if json_type(fixture) == json_type(ours) => {}
        _ => shape.problems.push(format!("{shown}: {} where Stripe has {}", json_type(ours), json_type(fixture))),
    }
}

/// How many key paths a value holds (arrays by their first element).
fn key_paths(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.values().map(|x| 1 + key_paths(x)).sum(),
        Value::Array(a) => a.first().map_or(0, key_paths),
        _ => 0,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The simulator's objects collected under a name each, to compare.
#[derive(Default)]
struct Seen(Vec<(String, &'static Stripe, Value)>);

impl Seen {
    fn add(&mut self, name: impl Into<String>, stripe: &'static Stripe, object: &Value) {
        let name = name.into();
        assert!(object.is_object(), "{name}: not an object: {object}");
        self.0.push((name, stripe, object.clone()));
    }

    /// An event, and its `data.object` as the object it is.
    fn add_event(&mut self, event: &Value) {
        let name = format!("event {}", event["type"]);
        let object = &event["data"]["object"];
        let stripe = match object["object"].as_str() {
            Some("payment_intent") => &PAYMENT_INTENT,
            Some("charge") => &CHARGE,
            Some("refund") => &REFUND,
            Some("dispute") => &DISPUTE,
            // No fixture for the Radar EarlyFraudWarning: see the module's comment.
            Some("radar.early_fraud_warning") => return self.add(name, &EVENT, &without_data_object(event)),
            other => panic!("{name}: an object of type {other:?}"),
        };
        self.add(format!("{name} data.object"), stripe, object);
        self.add(name, &EVENT, &without_data_object(event));
    }
}

/// An event with `data.object` emptied (the fixture's too, when compared): the fixture's is a
/// Plan, and ours are compared as the objects they are.
fn without_data_object(event: &Value) -> Value {
    let mut event = event.clone();
    event["data"]["object"] = Value::Null;
    event
}

async fn post(base: &str, path: &str, fields: &[(&str, &str)]) -> Reply {
    post_form(&format!("{base}{path}"), KEY, fields).await
}

async fn create_and_confirm(base: &str, card: &str) -> (String, Reply) {
    let pi = post(
        base,
        "/v1/payment_intents",
        &[
            ("amount", "15000"),
            ("currency", "usd"),
            ("automatic_payment_methods[enabled]", "true"),
            ("metadata[contractId]", "1"),
            ("receipt_email", "advertiser@example.com"),
            ("statement_descriptor_suffix", "REVISIONS"),
        ],
    )
    .await;
    assert_eq!(pi.status, 200, "{}", pi.body);
    let id = pi.body["id"].as_str().unwrap().to_string();
    let confirmed = post(base, &format!("/v1/payment_intents/{id}/confirm"), &[("payment_method", card)]).await;
    (id, confirmed)
}

/// Every kind of object the simulator makes, in the states its API and events show them.
async fn make_objects(sim: &Simulator, base: &str, seen: &mut Seen) {
    // A card that succeeds: the PaymentIntent, its charge (expanded and on its own), a refund.
    let (paid, confirmed) = create_and_confirm(base, "pm_card_visa").await;
    seen.add("PaymentIntent succeeded", &PAYMENT_INTENT, &confirmed.body);
    let expanded = get_json(&format!("{base}/v1/payment_intents/{paid}?expand[]=latest_charge"), KEY).await;
    seen.add("PaymentIntent latest_charge expanded", &CHARGE, &expanded["latest_charge"]);
    let listed = get_json(&format!("{base}/v1/payment_intents?expand[]=data.latest_charge"), KEY).await;
    seen.add("PaymentIntent listed", &PAYMENT_INTENT, &listed["data"][0]);
    seen.add("PaymentIntent listed data.latest_charge", &CHARGE, &listed["data"][0]["latest_charge"]);
    let charge_id = expanded["latest_charge"]["id"].as_str().unwrap().to_string();
    let charge = get_json(&format!("{base}/v1/charges/{charge_id}"), KEY).await;
    seen.add("Charge", &CHARGE, &charge);
    charge_values_are_real(base, &charge).await;
    let refund = post(base, "/v1/refunds", &[("charge", &charge_id), ("amount", "500")]).await;
    seen.add("Refund", &REFUND, &refund.body);
    let with_refunds = get_json(&format!("{base}/v1/charges/{charge_id}?expand[]=refunds"), KEY).await;
    seen.add("Charge refunds expanded", &CHARGE, &with_refunds);
    assert_eq!(with_refunds["refunds"]["data"][0]["id"], refund.body["id"], "{with_refunds}");
    seen.add("Charge refunds expanded data[0]", &REFUND, &with_refunds["refunds"]["data"][0]);
    sim.early_fraud_warning(&charge_id).unwrap();

    // 3-D Secure: the challenge as next_action, then a charge that took it.
    let (challenged, action) = create_and_confirm(base, "pm_card_threeDSecure2Required").await;
    seen.add("PaymentIntent requires_action", &PAYMENT_INTENT, &action.body);
    let done = post_form(
        &format!("{base}/_simulator/payment_intents/{challenged}/authenticate"),
        "",
        &[("outcome", "complete")],
    )
    .await;
    seen.add("PaymentIntent authenticated", &PAYMENT_INTENT, &done.body);
    let charge = done.body["latest_charge"].as_str().unwrap();
    let charge = get_json(&format!("{base}/v1/charges/{charge}"), KEY).await;
    assert_eq!(charge["payment_method_details"]["card"]["three_d_secure"]["result"], "authenticated", "{charge}");

    // A dispute on it, evidence given, decided.
    let dispute = post_form(&format!("{base}/_simulator/payment_intents/{challenged}/dispute"), "", &[]).await;
    seen.add("Dispute", &DISPUTE, &dispute.body);
    let dispute_id = dispute.body["id"].as_str().unwrap().to_string();
    let updated =
        post(base, &format!("/v1/disputes/{dispute_id}"), &[("evidence[customer_name]", "A. Advertiser")]).await;
    seen.add("Dispute with evidence", &DISPUTE, &updated.body);
    sim.close_dispute(&dispute_id, simulator::DisputeOutcome::Won).unwrap();

    // A decline, with the PaymentIntent inside the error; a cancel.
    let (_, declined) = create_and_confirm(base, "pm_card_chargeDeclined").await;
    assert_eq!(declined.status, 402, "{}", declined.body);
    seen.add("PaymentIntent declined", &PAYMENT_INTENT, &declined.body["error"]["payment_intent"]);
    let declined_id = declined.body["error"]["payment_intent"]["id"].as_str().unwrap().to_string();
    let canceled = post(base, &format!("/v1/payment_intents/{declined_id}/cancel"), &[]).await;
    seen.add("PaymentIntent canceled", &PAYMENT_INTENT, &canceled.body);

    // A refund that waits, then fails (failure_reason given).
    let (_, confirmed) = create_and_confirm_number(base, "4000000000007726").await;
    let charge = confirmed.body["latest_charge"].as_str().unwrap().to_string();
    let refund = post(base, "/v1/refunds", &[("charge", &charge)]).await;
    let refund_id = refund.body["id"].as_str().unwrap();
    sim.settle_refund(refund_id, RefundSettlement::Failed).unwrap();
    seen.add("Refund failed", &REFUND, &get_json(&format!("{base}/v1/refunds/{refund_id}"), KEY).await);

    // A payment that settles later: `processing` first.
    sim.set_faults(Faults { processing_ms: 50, ..Faults::default() }).unwrap();
    let (_, processing) = create_and_confirm(base, "pm_card_visa").await;
    seen.add("PaymentIntent processing", &PAYMENT_INTENT, &processing.body);
    sim.set_faults(Faults::default()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// What the simulator knows is in the charge, not just nulls of the right keys.
async fn charge_values_are_real(base: &str, charge: &Value) {
    assert_eq!(charge["receipt_email"], "advertiser@example.com");
    assert_eq!(charge["billing_details"]["email"], "advertiser@example.com");
    assert_eq!(charge["statement_descriptor_suffix"], "REVISIONS");
    assert_eq!(charge["calculated_statement_descriptor"], "STRIPE SIM* REVISIONS");
    assert_eq!(charge["outcome"]["network_decline_code"], Value::Null);
    let card = &charge["payment_method_details"]["card"];
    assert_eq!((&card["last4"], &card["checks"]["cvc_check"]), (&"4242".into(), &"pass".into()));
    assert_eq!((&card["amount_authorized"], &card["three_d_secure"]), (&15000.into(), &Value::Null));
    assert_eq!(card["fingerprint"].as_str().map(str::len), Some(16));
    let receipt_url = charge["receipt_url"].as_str().expect("a receipt_url");
    let (status, text) = get_text(&format!("{base}{receipt_url}")).await;
    assert_eq!(status, 200, "{receipt_url}: {text}");
    assert!(text.contains(charge["id"].as_str().unwrap()) && text.contains("ending 4242"), "{text}");
}

/// `create_and_confirm` with a card number typed in, as Stripe.js sends it.
async fn create_and_confirm_number(base: &str, number: &str) -> (String, Reply) {
    let pi = post(base, "/v1/payment_intents", &[("amount", "15000"), ("currency", "usd")]).await;
    let id = pi.body["id"].as_str().unwrap().to_string();
    let fields = [("payment_method_data[type]", "card"), ("payment_method_data[card][number]", number)];
    let confirmed = post(base, &format!("/v1/payment_intents/{id}/confirm"), &fields).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    (id, confirmed)
}

#[tokio::test]
async fn simulator_objects_and_events_have_every_key_of_stripes_and_no_other() {
    let sim = Simulator::default();
    let (addr, _) = simulator::start("127.0.0.1:0".parse().unwrap(), sim.clone()).await.unwrap();
    let base = format!("http://{addr}");
    let mut seen = Seen::default();
    make_objects(&sim, &base, &mut seen).await;
    let events = get_json(&format!("{base}/v1/events?limit=100"), KEY).await;
    let events = events["data"].as_array().expect("a list of events");
    assert!(events.len() >= 20, "{} events", events.len());
    for event in events {
        seen.add_event(event);
    }

    let mut problems = Vec::new();
    // Per object type: the fewest and most of the fixture's keys seen, top level and nested.
    let mut counts: BTreeMap<String, Vec<(usize, usize, usize, usize)>> = BTreeMap::new();
    for (name, stripe, object) in &seen.0 {
        let mut fixture: Value = serde_json::from_str(stripe.fixture).unwrap();
        if fixture["object"] == "event" {
            fixture["data"]["object"] = Value::Null;
        }
        let rules = Rules { nullable: stripe.nullable, documented: stripe.documented, includable: stripe.includable };
        let shape = compare(&fixture, object, &rules);
        let top = fixture.as_object().unwrap();
        let top_present = top.keys().filter(|k| object.get(k.as_str()).is_some()).count();
        let kind = fixture["object"].as_str().unwrap().to_string();
        counts.entry(kind).or_default().push((top_present, top.len(), shape.keys_present, shape.keys_total));
        problems.extend(shape.problems.into_iter().map(|p| format!("{name}: {p}")));
    }
    for (kind, seen) in &counts {
        let (fewest, most) = (seen.iter().min().unwrap(), seen.iter().max().unwrap());
        eprintln!(
            "{kind} ({} seen): {}..{}/{} keys, {}..{}/{} key paths nested included",
            seen.len(),
            fewest.0,
            most.0,
            fewest.1,
            fewest.2,
            most.2,
            most.3
        );
    }
    let kinds: Vec<&str> = counts.keys().map(String::as_str).collect();
    assert_eq!(kinds, ["charge", "dispute", "event", "payment_intent", "refund"]);
    assert!(problems.is_empty(), "{} differences from Stripe's shapes:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_comparison_names_missing_keys_wrong_types_extras_and_unallowed_nulls() {
    let fixture = serde_json::json!({
        "id": "x", "amount": 1, "outcome": {"type": "authorized", "reason": null},
        "items": [{"a": true}], "maybe": {"k": 1}, "strict": "s", "metadata": {},
    });
    let ours = serde_json::json!({
        "id": "x", "amount": "1", "outcome": {"reason": 3}, "items": [{"a": "yes"}],
        "maybe": null, "strict": null, "ours": 1, "told": 2, "metadata": {"any": "s", "n": 1},
    });
    let shape = compare(&fixture, &ours, &Rules { nullable: &["maybe"], documented: &["told"], includable: &[] });
    let mut problems = shape.problems.clone();
    problems.sort();
    assert_eq!(
        problems,
        [
            "amount: string where Stripe has integer",
            "extra ours (Stripe's object has no such key)",
            "items[].a: string where Stripe has bool",
            "metadata.n: integer where Stripe has string",
            "missing outcome.type",
            "strict: null where Stripe has string",
        ]
    );
    // id, amount, outcome, outcome.reason, items, items[].a, maybe (and maybe.k, null for it),
    // strict, metadata; missing: outcome.type.
    assert_eq!((shape.keys_present, shape.keys_total), (10, 11));
    assert!(compare(&fixture, &fixture, &Rules::default()).problems.is_empty());
    let without_items = serde_json::json!({"id": "x"});
    let only_id = serde_json::json!({"id": "x", "items": [{"a": true}]});
    let includable = Rules { includable: &["items"], ..Rules::default() };
    assert!(compare(&only_id, &without_items, &includable).problems.is_empty());
    assert_eq!(compare(&only_id, &without_items, &Rules::default()).problems, ["missing items"]);
}
