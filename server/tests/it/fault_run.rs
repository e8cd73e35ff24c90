//! The fault run (issue 24, "Measured"): the webhook secret is changed under us while
//! advertisers pay, so every delivery fails its signature. The alert fires within its window and
//! arrives once in Slack's stand-in and once by email to the admin who opted in; it stays one
//! alert however many deliveries fail; it resolves once after the fault ends; and reconciliation
//! credits every payment exactly once. Time is driven by the `now` handed to the evaluator.
use crate::helpers::*;
use crate::mailbox::{received_by, wait_for, with_mail};
use crate::money_back::pay;
use crate::on_both_databases;
use app::domain::alerts::Rule;
use app::services::{alerts, mail, reconcile};
use app::stripe::simulator::Faults;
use chrono::{Duration, Utc};

on_both_databases!(a_changed_secret_while_paying_is_one_alert_and_every_payment_is_credited_once);

const TITLE: &str = "Webhook signatures refused";

async fn a_changed_secret_while_paying_is_one_alert_and_every_payment_is_credited_once(kind: DbKind) {
    let slack = SlackStandIn::start().await;
    let t = TestApp::spawn_with(kind, |s| {
        s.stripe.mode = Some(app::domain::deployment::DeploymentMode::Simulator);
        s.slack = slack.config("08:00");
        with_mail(s);
    })
    .await;
    let svc = &t.app.services;
    let admin_email = format!("oncall{}@example.com", unique());
    let admin = app::services::accounts::create_user(
        t.store(),
        &admin_email,
        app::domain::users::Role::Admin,
        "an-admin-password",
    )
    .await
    .unwrap();
    assert!(app::store::users::set_alert_emails(t.store(), admin.id, true).await.unwrap());

    // The fault: Stripe signs with a secret we do not hold (a rotation done on one side only).
    t.sim().set_faults(Faults { wrong_secret: true, ..Faults::default() }).unwrap();
    let mut payments = Vec::new();
    for _ in 0..4 {
        payments.push(pay(&t, "4242424242424242").await);
    }
    // Every payment's events are refused; the process gathers its tallies (as its worker does).
    let refused = std::sync::atomic::AtomicU64::new(0);
    let gathered = eventually(PATIENCE, || async {
        let n = alerts::gather_faults(svc, Utc::now()).await.unwrap();
        refused.fetch_add(n, std::sync::atomic::Ordering::SeqCst) + n >= 10
    })
    .await;
    assert!(gathered, "the deliveries were not refused: {refused:?}");
    assert_eq!(t.credit_rows().await, 0, "nothing is credited on a forged signature");

    // Fires within its window, once in Slack and once by email.
    let start = Utc::now();
    let first = alerts::evaluate(svc, start).await.unwrap();
    assert!(first.firing.contains(&Rule::SignatureFailures), "{first:?}");
    for m in 1..4 {
        alerts::gather_faults(svc, start + Duration::minutes(m)).await.unwrap();
        alerts::evaluate(svc, start + Duration::minutes(m)).await.unwrap();
    }
    let ours = |texts: Vec<String>| texts.into_iter().filter(|t| t.contains(TITLE)).collect::<Vec<_>>();
    let started = ours(slack.texts());
    assert_eq!(started.len(), 1, "one message while it fires: {started:?}");
    assert!(started[0].starts_with(&format!("[alert] FIRING: {TITLE}")), "{}", started[0]);
    mail::send_due(svc, Utc::now()).await.unwrap();
    let got = wait_for(&admin_email, 1, PATIENCE).await;
    assert_eq!(got.iter().filter(|m| m.subject.contains(TITLE)).count(), 1, "{got:#?}");
    assert!(got[0].text.contains("https://shop.example/admin/alerts#signature_failures"), "{}", got[0].text);

    // The fault ends (the secret is put right); reconciliation finds what Stripe could not
    // deliver and credits it.
    t.sim().set_faults(Faults::default()).unwrap();
    let now = Utc::now();
    let opts = reconcile::Options {
        from: now - Duration::hours(1),
        to: now + Duration::minutes(1),
        dry_run: false,
        started_by: "cli",
        rate: 100,
    };
    reconcile::run(svc, &opts, &|_| {}).await.unwrap();
    reconcile::run(svc, &opts, &|_| {}).await.unwrap();
    for pi in &payments {
        let credit = app::store::ledger::credit_for_payment(t.store(), pi).await.unwrap();
        assert!(credit.is_some(), "{pi} credited");
    }
    assert_eq!(t.credit_rows().await, payments.len(), "each payment credited exactly once");
    assert_eq!(t.available().await, 3 + 2 * payments.len() as i64);

    // Past the window with no new failures, it resolves: once in Slack, once by email.
    let later = start + Duration::minutes(10);
    alerts::evaluate(svc, later).await.unwrap();
    alerts::evaluate(svc, later + Duration::minutes(1)).await.unwrap();
    let texts = ours(slack.texts());
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].starts_with(&format!("[alert] RESOLVED: {TITLE}")), "{}", texts[1]);
    mail::send_due(svc, Utc::now()).await.unwrap();
    mail::send_due(svc, Utc::now()).await.unwrap();
    let ours_by_mail =
        |all: Vec<crate::mailbox::Received>| all.into_iter().filter(|m| m.subject.contains(TITLE)).count();
    assert!(eventually(PATIENCE, || async { ours_by_mail(received_by(&admin_email)) == 2 }).await);
    let mails: Vec<_> = received_by(&admin_email).into_iter().filter(|m| m.subject.contains(TITLE)).collect();
    assert_eq!(mails[1].subject, format!("[alert] RESOLVED: {TITLE}"));
    // The day's summary names it.
    let summary = app::services::slack::summary(svc, start.date_naive()).await.unwrap();
    assert!(summary.contains(TITLE), "{summary}");
}
