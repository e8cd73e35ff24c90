//! Alerts, end to end: bad signatures sent to the real router are counted in memory, gathered
//! into the shared per-minute tallies (one row, not one per request), and evaluated into one
//! alert with one Slack message when it starts and one when it resolves (time driven by the
//! `now` passed in, never by sleeping); two evaluators at once send one notice; a failed send is
//! sent at the next evaluation; every rule fires on real rows; the worker does it by itself; the
//! admin page and `alerts list` show it.
use crate::helpers::*;
use crate::on_both_databases;
use crate::web::{Site, ADMIN, ANN};
use app::domain::alerts::{Fault, NoticeKind, Rule};
use app::services::alerts::{evaluate, facts, gather_faults};
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::Ordering;

on_both_databases!(
    a_storm_of_bad_signatures_is_one_alert_started_and_resolved_once,
    two_evaluators_at_once_send_one_notice,
    a_notice_slack_refused_is_sent_at_the_next_evaluation,
    faults_webhooks_and_purchases_fire_their_rules,
    event_and_reconciliation_rows_fire_their_rules,
    the_worker_gathers_faults_and_evaluates_by_itself,
    the_page_and_the_cli_show_what_fires_and_admins_opt_in_to_emails,
);

/// The app's services as another process would have them, with Slack posting to `slack`.
async fn process_with_slack(t: &TestApp, slack: &SlackStandIn) -> app::services::Services {
    let db = app::store::Db::connect(&t.db.url, &Default::default()).await.unwrap();
    let mut svc = server::services(&settings(&t.db.url), db, t.app.mode);
    let s = std::sync::Arc::make_mut(&mut svc.settings);
    s.slack = slack.config("08:00");
    s.web.public_origin = Some("https://shop.example.com".into());
    svc
}

/// A delivery signed with a secret we do not hold.
async fn forged(t: &TestApp) -> u16 {
    let body = paid(&new_event_id(), &new_payment_id(), t.contract_id);
    let signature = sign(&body, "whsec_not_ours", now());
    t.post("/webhooks/stripe", &[("stripe-signature", signature)], body).await.status
}

fn alert_texts(slack: &SlackStandIn) -> Vec<String> {
    slack.texts().into_iter().filter(|t| t.starts_with("[alert]")).collect()
}

async fn a_storm_of_bad_signatures_is_one_alert_started_and_resolved_once(kind: DbKind) {
    let slack = SlackStandIn::start().await;
    let t = TestApp::spawn(kind).await;
    let svc = process_with_slack(&t, &slack).await;
    for _ in 0..30 {
        assert_eq!(forged(&t).await, 400);
    }
    let now = Utc::now();
    // The process's tallies go to the database as one row for the minute, then are spent.
    assert_eq!(gather_faults(&t.app.services, now).await.unwrap(), 30);
    assert_eq!(gather_faults(&t.app.services, now).await.unwrap(), 0);
    let tallies = app::store::webhook_faults::since(t.store(), facts::minute_of(now)).await.unwrap();
    assert_eq!(tallies, vec![("no_match".to_string(), 30)]);

    let first = evaluate(&svc, now).await.unwrap();
    assert_eq!(first.firing, vec![Rule::SignatureFailures]);
    assert_eq!(first.sent.len(), 1);
    let texts = alert_texts(&slack);
    assert_eq!(texts.len(), 1);
    let start = &texts[0];
    assert!(start.starts_with("[alert] FIRING: Webhook signatures refused\n30 signatures refused"), "{start}");
    assert!(start.contains("What to check first: STRIPE_WEBHOOK_SECRETS"), "{start}");
    assert!(start.contains("https://shop.example.com/admin/alerts#signature_failures"), "{start}");
    // Every process's /metrics says it fires.
    assert!(t.metrics().await.contains("revision_store_alert_firing{rule=\"signature_failures\"} 1"));

    // The storm goes on: more failures, more evaluations, no more messages.
    for _ in 0..20 {
        forged(&t).await;
    }
    gather_faults(&t.app.services, now + Duration::minutes(1)).await.unwrap();
    for m in 1..4 {
        let e = evaluate(&svc, now + Duration::minutes(m)).await.unwrap();
        assert_eq!((e.firing.len(), e.sent.len()), (1, 0), "minute {m}");
    }
    assert_eq!(alert_texts(&slack).len(), 1);
    let state = app::store::alerts::states(t.store()).await.unwrap();
    let row = state.iter().find(|r| r.rule == "signature_failures").unwrap();
    assert_eq!((row.count, row.peak), (50, 50));

    // Past the window it resolves: one message, then quiet.
    let resolved = evaluate(&svc, now + Duration::minutes(7)).await.unwrap();
    assert!(resolved.firing.is_empty());
    assert_eq!(resolved.sent.iter().map(|n| n.kind).collect::<Vec<_>>(), vec![NoticeKind::Resolved]);
    evaluate(&svc, now + Duration::minutes(8)).await.unwrap();
    let texts = alert_texts(&slack);
    assert_eq!(texts.len(), 2);
    assert!(texts[1].starts_with("[alert] RESOLVED: Webhook signatures refused"), "{}", texts[1]);
    assert!(texts[1].contains("(at most 50)"), "{}", texts[1]);
    let history = app::store::alerts::history(t.store(), 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].rule.as_str(), history[0].peak), ("signature_failures", 50));
    assert!(history[0].resolved_at.is_some());
    assert!(t.metrics().await.contains("revision_store_alert_firing{rule=\"signature_failures\"} 0"));
    // The daily summary names the day's alerts.
    let summary = app::services::slack::summary(&svc, now.date_naive()).await.unwrap();
    assert!(summary.contains("Alerts: 1, see the admin pages: Webhook signatures refused (started "), "{summary}");
}

async fn two_evaluators_at_once_send_one_notice(kind: DbKind) {
    let slack = SlackStandIn::start().await;
    let t = TestApp::spawn(kind).await;
    let a = process_with_slack(&t, &slack).await;
    let b = process_with_slack(&t, &slack).await;
    let now = Utc::now();
    app::store::webhook_faults::add(t.store(), facts::minute_of(now), &[(Fault::StoreUnavailable.as_str(), 3)])
        .await
        .unwrap();
    let tries = (0..8).map(|i| {
        let svc = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move { evaluate(&svc, now).await.unwrap() })
    });
    let outcomes: Vec<_> = futures_util::future::join_all(tries).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(outcomes.iter().map(|o| o.sent.len()).sum::<usize>(), 1, "{outcomes:?}");
    let texts = alert_texts(&slack);
    assert_eq!(texts.len(), 1);
    assert!(texts[0].starts_with("[alert] FIRING: Webhook deliveries answered 503\n3 deliveries answered 503"));
}

async fn a_notice_slack_refused_is_sent_at_the_next_evaluation(kind: DbKind) {
    let slack = SlackStandIn::start().await;
    let t = TestApp::spawn(kind).await;
    let svc = process_with_slack(&t, &slack).await;
    let now = Utc::now();
    app::store::webhook_faults::add(t.store(), facts::minute_of(now), &[("store_unavailable", 1)]).await.unwrap();
    slack.status.store(500, Ordering::SeqCst);
    let failed = evaluate(&svc, now).await.unwrap();
    assert_eq!((failed.sent.len(), failed.failed.len()), (0, 1));
    assert!(failed.failed[0].1.contains("500"), "{:?}", failed.failed);
    let row = app::store::alerts::states(t.store()).await.unwrap().into_iter().find(|r| r.rule == "store_unavailable");
    let row = row.unwrap();
    assert_eq!(row.owed.as_deref(), Some("started"));
    assert!(row.notify_error.as_deref().unwrap().contains("Slack"), "{row:?}");
    // Slack is back: the owed start goes once, and only once.
    slack.status.store(200, Ordering::SeqCst);
    let sent = evaluate(&svc, now + Duration::minutes(1)).await.unwrap();
    assert_eq!(sent.sent.len(), 1);
    assert_eq!(sent.sent[0].since, failed.failed[0].0.since, "the same episode");
    assert_eq!(evaluate(&svc, now + Duration::minutes(2)).await.unwrap().sent.len(), 0);
    let texts = alert_texts(&slack);
    assert_eq!(texts.len(), 2, "one refused, one taken: {texts:?}");
    assert!(texts.iter().all(|t| t.starts_with("[alert] FIRING: Webhook deliveries answered 503")));
    let row = app::store::alerts::states(t.store()).await.unwrap().into_iter().find(|r| r.rule == "store_unavailable");
    let row = row.unwrap();
    assert_eq!((row.owed, row.notify_error), (None, None));
    assert!(row.last_notified_at.is_some());
}

async fn firing(svc: &app::services::Services, now: DateTime<Utc>) -> Vec<Rule> {
    let settings = app::services::alerts::settings(svc);
    let f = facts::read(svc, &settings, now).await.unwrap();
    Rule::ALL.into_iter().filter(|r| app::domain::alerts::evaluate(*r, &f, &settings, now).firing).collect()
}

async fn faults_webhooks_and_purchases_fire_their_rules(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let svc = &t.app.services;
    let now = Utc::now();
    assert_eq!(firing(svc, now).await, vec![]);
    // Faults of five minutes count; older ones do not.
    let minute = facts::minute_of(now);
    app::store::webhook_faults::add(t.store(), minute - Duration::minutes(6), &[("no_match", 50)]).await.unwrap();
    app::store::webhook_faults::add(
        t.store(),
        minute - Duration::minutes(4),
        &[("no_match", 6), ("store_unavailable", 1)],
    )
    .await
    .unwrap();
    app::store::webhook_faults::add(t.store(), minute, &[("outside_tolerance", 4)]).await.unwrap();
    assert_eq!(firing(svc, now).await, vec![Rule::StoreUnavailable, Rule::SignatureFailures]);
    assert_eq!(firing(svc, now + Duration::minutes(6)).await, vec![]);

    // A purchase started and no webhook ever: silence, after its hours.
    let pi = new_payment_id();
    let purchase = app::store::purchases::Purchase {
        payment_intent_id: pi.clone(),
        contract_id: t.contract_id,
        created_by: t.advertiser_id,
        amount: 15_000,
        currency: "usd".into(),
        revisions: 2,
        status: "requires_payment_method".into(),
        idempotency_key: unique(),
        livemode: false,
        created_at: now,
        updated_at: now,
    };
    app::store::purchases::record(t.store(), &purchase).await.unwrap();
    assert_eq!(firing(svc, now + Duration::hours(1)).await, vec![Rule::WebhookSilence]);
    // A verified webhook within the hours: quiet again.
    assert_eq!(t.deliver(&paid(&new_event_id(), &pi, t.contract_id)).await.status, 200);
    assert_eq!(firing(svc, now + Duration::hours(1)).await, vec![]);
    assert_eq!(firing(svc, now + Duration::hours(7)).await, vec![], "no purchase in the last six hours");

    // The return page credited a payment whose webhook never came: after ten minutes.
    let returned = new_payment_id();
    let credit = app::domain::events::Credit {
        contract_id: t.contract_id,
        payment_id: returned.clone(),
        revisions: 2,
        amount: app::domain::Money::new(15_000, app::domain::Currency::parse("usd").unwrap()),
        livemode: false,
    };
    app::services::fulfil::fulfil(t.store(), &credit, app::services::fulfil::Evidence::Confirmed, now).await.unwrap();
    assert_eq!(firing(svc, now + Duration::minutes(9)).await, vec![]);
    let settings = app::services::alerts::settings(svc);
    let f = facts::read(svc, &settings, now + Duration::minutes(11)).await.unwrap();
    assert_eq!(f.returns_without_webhook, (vec![returned.clone()], 1));
    assert_eq!(firing(svc, now + Duration::minutes(11)).await, vec![Rule::ReturnWithoutWebhook]);
    // Its webhook arrives (late): nothing missing any more.
    assert_eq!(t.deliver(&paid(&new_event_id(), &returned, t.contract_id)).await.status, 200);
    assert_eq!(firing(svc, now + Duration::minutes(11)).await, vec![]);
}

async fn event_and_reconciliation_rows_fire_their_rules(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let mut svc = t.app.services.clone();
    std::sync::Arc::make_mut(&mut svc.settings).reconcile.interval = Some(std::time::Duration::from_secs(24 * 3600));
    let now = Utc::now();
    // An event for a contract that does not exist waits for its retries: pending, then overdue.
    let waiting = paid(&new_event_id(), &new_payment_id(), 999_999);
    assert_eq!(t.deliver(&waiting).await.status, 200);
    assert_eq!(firing(&svc, now).await, vec![]);
    let budget = app::domain::alerts::retry_budget(&svc.retry);
    assert_eq!(firing(&svc, now + budget + Duration::hours(2)).await, vec![Rule::OverdueEvents]);
    // A dead letter (the amount is not the pack's) counts for a day.
    let wrong = pi_event(
        &new_event_id(),
        "payment_intent.succeeded",
        &new_payment_id(),
        serde_json::json!({"contractId": t.contract_id.to_string()}),
        999,
        "usd",
    );
    assert_eq!(t.deliver(&wrong).await.status, 200);
    assert_eq!(firing(&svc, now).await, vec![Rule::DeadLetters]);
    assert_eq!(firing(&svc, now + Duration::hours(25)).await, vec![Rule::OverdueEvents]);

    // A reconciliation that found undelivered events, left one open and credited one itself.
    let db = t.store();
    let run = app::store::reconciliation::start(db, "schedule", now - Duration::days(3), now, false, now)
        .await
        .unwrap()
        .unwrap();
    for (category, state) in [("undelivered_event", "healed"), ("mismatch", "open"), ("paid_not_credited", "healed")] {
        let f = app::store::reconciliation::NewFinding {
            category,
            state,
            payment_id: None,
            object_id: None,
            contract_id: None,
            detail: "test",
            evidence: "{}",
        };
        app::store::reconciliation::add_finding(db, run, &f, now).await.unwrap();
    }
    app::store::reconciliation::finish(db, run, None, 3, 3, now).await.unwrap();
    let reconciled = [Rule::UndeliveredEvents, Rule::FindingsOpen, Rule::SelfCredited];
    let in_an_hour: Vec<Rule> =
        firing(&svc, now + Duration::hours(1)).await.into_iter().filter(|r| *r != Rule::DeadLetters).collect();
    assert_eq!(in_an_hour, reconciled);
    // A day and two hours without another: overdue too.
    let later: Vec<Rule> = firing(&svc, now + Duration::hours(26)).await;
    assert!(later.contains(&Rule::ReconciliationOverdue), "{later:?}");
    assert!(!firing(&svc, now + Duration::hours(24)).await.contains(&Rule::ReconciliationOverdue));
    // A clean run afterwards resolves the run's rules.
    let clean = app::store::reconciliation::start(
        db,
        "schedule",
        now,
        now + Duration::hours(2),
        false,
        now + Duration::hours(2),
    )
    .await
    .unwrap()
    .unwrap();
    app::store::reconciliation::finish(db, clean, None, 0, 0, now + Duration::hours(2)).await.unwrap();
    let after = firing(&svc, now + Duration::hours(3)).await;
    assert!(reconciled.iter().all(|r| !after.contains(r)), "{after:?}");
}

async fn the_worker_gathers_faults_and_evaluates_by_itself(kind: DbKind) {
    let slack = SlackStandIn::start().await;
    let config = slack.config("00:00");
    let t = TestApp::spawn_with(kind, move |s| {
        s.slack = config;
        s.reconcile.worker_interval = std::time::Duration::from_millis(100);
    })
    .await;
    for _ in 0..12 {
        assert_eq!(forged(&t).await, 400);
    }
    // Gathered each sweep, evaluated about every twelfth: one alert message.
    assert!(eventually(PATIENCE, || async { alert_texts(&slack).len() == 1 }).await, "{:?}", slack.texts());
    // (The count is what had been gathered when it first crossed the threshold.)
    assert!(alert_texts(&slack)[0].contains("signatures refused in the last 5 minutes"), "{:?}", alert_texts(&slack));
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(alert_texts(&slack).len(), 1, "still one: {:?}", alert_texts(&slack));
}

async fn the_page_and_the_cli_show_what_fires_and_admins_opt_in_to_emails(kind: DbKind) {
    let site = Site::start(kind).await;
    let svc = &site.app.services;
    let now = Utc::now();
    app::store::webhook_faults::add(&svc.db, facts::minute_of(now), &[("no_match", 11)]).await.unwrap();
    let e = evaluate(svc, now).await.unwrap();
    assert_eq!(e.firing, vec![Rule::SignatureFailures]);
    assert_eq!(e.sent.len(), 1, "no channel configured: settled, not kept owed");

    let admin = site.sign_in(ADMIN, None).await;
    let page = site.get("/admin/alerts", Some(&admin)).await;
    assert_eq!(page.status, 200);
    for text in [
        "1 alert firing.",
        "Webhook signatures refused",
        "firing since",
        "11 signatures refused in the last 5 minutes (11 no_match)",
        "10 refused signatures in 5 minutes",
        "What to check first",
        "No Slack webhook is configured",
        "Email me alerts",
    ] {
        assert!(page.body.contains(text), "`{text}` missing: {}", page.body);
    }
    assert!(page.body.contains("href=\"/admin/alerts\""), "the admin nav links it");
    let ann = site.sign_in(ANN, None).await;
    assert_eq!(site.get("/admin/alerts", Some(&ann)).await.status, 403);

    // The admin opts in to emails; an advertiser cannot.
    let post = |cookie: &str, wanted: &str| {
        let req = hyper::Request::post(format!("{}/admin/alerts/emails", site.app.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", site.origin())
            .header("cookie", cookie.to_string());
        (req, Bytes::from(format!("wanted={wanted}")))
    };
    let (req, body) = post(&ann, "true");
    assert_eq!(site.send(req, body).await.status, 403);
    assert!(app::store::users::alert_email_recipients(&svc.db).await.unwrap().is_empty());
    let (req, body) = post(&admin, "true");
    let a = site.send(req, body).await;
    assert_eq!((a.status, a.location()), (303, "/admin/alerts"));
    assert_eq!(app::store::users::alert_email_recipients(&svc.db).await.unwrap(), vec![ADMIN.0.to_string()]);
    let page = site.get("/admin/alerts", Some(&admin)).await;
    assert!(page.body.contains("Stop emailing me alerts"), "{}", page.body);
    let (req, body) = post(&admin, "false");
    site.send(req, body).await;
    assert!(app::store::users::alert_email_recipients(&svc.db).await.unwrap().is_empty());

    // The command line lists every rule, the firing one with its count and runbook.
    let out = run_cli(&site.db().url, &["alerts", "list"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("{:<24} FIRING since", "signature_failures")), "{text}");
    assert!(text.contains("Webhook signatures refused: count 11"), "{text}");
    assert!(text.contains("check first: STRIPE_WEBHOOK_SECRETS"), "{text}");
    assert!(text.contains(&format!("{:<24} ok", "dead_letters")), "{text}");
    assert!(text.contains("Latest episodes:") && text.contains("still firing, at most 11"), "{text}");
}

/// The Prometheus rules file (`server/prometheus/alerts.yml`, checked and unit-tested by
/// promtool in .ci/test) mirrors the app's rules: each named by its `rule` label, with the same
/// runbook, over figures /metrics really exports.
#[test]
fn the_prometheus_rules_mirror_the_apps_and_read_exported_figures() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus/alerts.yml");
    let file = std::fs::read_to_string(&path).unwrap();
    for rule in Rule::ALL {
        assert!(file.contains(&format!("rule: {}\n", rule.name())), "{} has no Prometheus rule", rule.name());
        assert!(file.contains(&format!("runbook: \"{}\"", rule.runbook())), "{}'s runbook differs", rule.name());
    }
    let stats = app::services::stats::Stats::default();
    for f in Fault::ALL {
        stats.fault(f);
    }
    app::services::stats::Stats::inc(&stats.dead_lettered);
    stats.finding("undelivered_event", "healed");
    let exported = stats.render();
    let names: std::collections::BTreeSet<&str> = file
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("revision_store_"))
        .collect();
    for name in names {
        assert!(
            exported.contains(&format!("{name}{{")) || exported.contains(&format!("{name} ")),
            "{name} is not exported"
        );
    }
}
