//! Slack, against a real HTTP server standing in for Slack's incoming webhook: the daily summary
//! is sent once per day across processes and restarts, retried after a failure that shows on the
//! admin page and in metrics; `/revenue` commands, signed here independently of the code under
//! test, are answered only when the signature and its timestamp hold.
use crate::helpers::*;
use crate::on_both_databases;
use app::services::slack::{send_daily_if_due, Sent};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::atomic::Ordering;
use std::time::Duration;

on_both_databases!(
    the_daily_summary_is_sent_once_across_processes_and_restarts,
    a_failed_summary_is_retried_later_and_shows,
    the_worker_sends_the_summary_when_it_is_due,
    revenue_commands_are_answered_only_when_signed_and_fresh,
    revenue_commands_from_another_workspace_or_an_unlisted_member_are_refused,
);

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A pack credited for the app's contract at `when`.
async fn pack(t: &TestApp, when: DateTime<Utc>) {
    let credit = app::domain::events::Credit {
        contract_id: t.contract_id,
        payment_id: new_payment_id(),
        revisions: 2,
        amount: app::domain::Money::new(15_000, app::domain::Currency::parse("usd").unwrap()),
        livemode: false,
    };
    app::services::fulfil::fulfil(t.store(), &credit, app::services::fulfil::Evidence::Confirmed, when).await.unwrap();
}

/// The app's services as another process would have them: its own connection pool.
async fn another_process(t: &TestApp, slack: app::services::slack::SlackConfig) -> app::services::Services {
    let db = app::store::Db::connect(&t.db.url, &Default::default()).await.unwrap();
    let mut svc = server::services(&settings(&t.db.url), db, t.app.mode);
    std::sync::Arc::make_mut(&mut svc.settings).slack = slack;
    svc
}

async fn the_daily_summary_is_sent_once_across_processes_and_restarts(kind: DbKind) {
    let slack = SlackStandIn::start().await;
    let t = TestApp::spawn(kind).await;
    pack(&t, at("2026-11-26T12:00:00Z")).await;
    let a = another_process(&t, slack.config("08:00")).await;
    let b = another_process(&t, slack.config("08:00")).await;
    // Before its time, nobody sends.
    assert_eq!(send_daily_if_due(&a, at("2026-11-27T07:59:59Z")).await.unwrap(), None);
    // Ten tries at once from two processes: one sends.
    let now = at("2026-11-27T08:00:01Z");
    let tries = (0..10).map(|i| {
        let svc = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move { send_daily_if_due(&svc, now).await.unwrap() })
    });
    let outcomes: Vec<Option<Sent>> =
        futures_util::future::join_all(tries).await.into_iter().map(Result::unwrap).collect();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    assert_eq!(outcomes.iter().filter(|o| **o == Some(Sent::Sent(day))).count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| o.is_none()).count(), 9);
    assert_eq!(slack.count(), 1);
    // A restarted process, later the same day: nothing more.
    let c = another_process(&t, slack.config("08:00")).await;
    assert_eq!(send_daily_if_due(&c, at("2026-11-27T20:00:00Z")).await.unwrap(), None);
    assert_eq!(slack.count(), 1);
    let text = &slack.texts()[0];
    assert!(text.contains("*Revision Store, 2026-11-26 (UTC, test mode)*"), "{text}");
    assert!(text.contains("Yesterday: gross $150.00 · refunds $0.00 · *net $150.00* · 1 pack"), "{text}");
    assert!(text.contains("Month to date (2026-11-01 to 2026-11-26)"), "{text}");
    assert!(text.contains("Reconciliation: no findings open") && text.contains("Failed Stripe events: none"));
    assert!(text.ends_with("Alerts: none"), "{text}");
    for pii in ["@", "pi_", "evt_", "Daily Planet", "contract"] {
        assert!(!text.contains(pii), "`{pii}` in {text}");
    }
    // The next day has its own row.
    assert_eq!(
        send_daily_if_due(&c, at("2026-11-28T08:00:00Z")).await.unwrap(),
        Some(Sent::Sent(day.succ_opt().unwrap()))
    );
    assert_eq!(slack.count(), 2);
    let line = app::services::slack::status_line(&c).await.unwrap();
    assert!(line.contains("the last, for 2026-11-27, went out"), "{line}");
}

async fn a_failed_summary_is_retried_later_and_shows(kind: DbKind) {
    let slack = SlackStandIn::start().await;
    let t = TestApp::spawn(kind).await;
    let svc = another_process(&t, slack.config("06:00")).await;
    slack.status.store(500, Ordering::SeqCst);
    let now = at("2026-11-27T06:00:00Z");
    let failed = send_daily_if_due(&svc, now).await.unwrap();
    let Some(Sent::Failed { error, next_at, .. }) = failed else { panic!("{failed:?}") };
    assert!(error.contains("500") && error.contains("invalid_payload"), "{error}");
    assert_eq!(next_at, now + chrono::Duration::minutes(1));
    let line = app::services::slack::status_line(&svc).await.unwrap();
    assert!(line.contains("FAILED for 2026-11-26 (attempt 1)") && line.contains("500"), "{line}");
    assert!(svc.stats.render().contains("revision_store_slack_summary_failures_total 1"));
    // Not again before the backoff has passed.
    assert_eq!(send_daily_if_due(&svc, now + chrono::Duration::seconds(30)).await.unwrap(), None);
    assert_eq!(slack.count(), 1);
    // Then Slack is back and the retry goes out, once.
    slack.status.store(200, Ordering::SeqCst);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    assert_eq!(send_daily_if_due(&svc, next_at).await.unwrap(), Some(Sent::Sent(day)));
    assert_eq!(send_daily_if_due(&svc, next_at + chrono::Duration::hours(1)).await.unwrap(), None);
    assert_eq!(slack.count(), 2);
    assert!(svc.stats.render().contains("revision_store_slack_summaries_sent_total 1"));
    // A Slack that never comes back is given up after a bounded number of attempts.
    slack.status.store(503, Ordering::SeqCst);
    let mut when = at("2026-11-28T06:00:00Z");
    let mut attempts = 0;
    while let Some(Sent::Failed { next_at, .. }) = send_daily_if_due(&svc, when).await.unwrap() {
        attempts += 1;
        when = next_at;
        assert!(attempts <= app::domain::slack::MAX_ATTEMPTS, "never gives up");
    }
    assert_eq!(attempts, app::domain::slack::MAX_ATTEMPTS);
    let line = app::services::slack::status_line(&svc).await.unwrap();
    assert!(line.contains("given up"), "{line}");
}

async fn the_worker_sends_the_summary_when_it_is_due(kind: DbKind) {
    let slack = SlackStandIn::start().await;
    let config = slack.config("00:00");
    let t = TestApp::spawn_with(kind, move |s| s.slack = config).await;
    // The worker's first sweep looks at the schedule; at 00:00 yesterday's summary is due.
    assert!(eventually(Duration::from_secs(20), || async { slack.count() == 1 }).await);
    let sent = eventually(Duration::from_secs(10), || async {
        app::store::slack::latest(t.store()).await.unwrap().is_some_and(|r| r.status == "sent")
    })
    .await;
    assert!(sent);
    let metrics = t.metrics().await;
    assert!(metrics.contains("revision_store_slack_summaries_sent_total 1"), "{metrics}");
}

const SIGNING_SECRET: &str = "slack-signing-secret-for-tests-0123";

/// Slack's v0 scheme, written here independently of the code under test.
fn slack_sign(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{t}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn command_body(text: &str) -> String {
    command_body_from("T000", "U000", text)
}

/// The workspace the test apps answer.
fn our_workspace() -> app::domain::slack::Askers {
    app::domain::slack::Askers { team_id: Some("T000".into()), users: vec![] }
}

fn command_body_from(team: &str, user: &str, text: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("token", "legacy-token-unused"),
            ("team_id", team),
            ("channel_id", "C000"),
            ("user_id", user),
            ("user_name", "finance"),
            ("command", "/revenue"),
            ("text", text),
            ("response_url", "https://hooks.slack.com/commands/T000/1/x"),
        ])
        .finish()
}

async fn revenue_commands_are_answered_only_when_signed_and_fresh(kind: DbKind) {
    let t = TestApp::spawn_with(kind, |s| {
        s.slack.signing_secret = Some(app::slack::SigningSecret::new(SIGNING_SECRET).unwrap());
        s.slack.askers = our_workspace();
    })
    .await;
    pack(&t, Utc::now()).await;
    let send = |body: String, headers: Vec<(&'static str, String)>| {
        let t = &t;
        async move { t.post("/slack/commands", &headers, body).await }
    };
    let signed = |body: &str, secret: &str, ts: i64| {
        vec![("x-slack-request-timestamp", ts.to_string()), ("x-slack-signature", slack_sign(secret, ts, body))]
    };
    let body = command_body("today");
    let r = send(body.clone(), signed(&body, SIGNING_SECRET, now())).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["response_type"], "ephemeral");
    let text = r.body["text"].as_str().unwrap();
    assert!(text.starts_with("Revenue today (") && text.contains("*net $150.00* · 1 pack"), "{text}");
    assert!(!text.contains('@') && !text.contains("pi_"), "{text}");

    let body = command_body("yesterday");
    let r = send(body.clone(), signed(&body, SIGNING_SECRET, now())).await;
    assert!(r.body["text"].as_str().unwrap().contains("no payments"), "{:?}", r.body);

    let body = command_body("last year");
    let r = send(body.clone(), signed(&body, SIGNING_SECRET, now())).await;
    assert_eq!(r.status, 200);
    assert!(r.body["text"].as_str().unwrap().contains(app::domain::slack::USAGE), "{:?}", r.body);

    // Refused: a tampered body, another secret, a stale or future timestamp, no signature.
    let body = command_body("30d");
    let refused = [
        (command_body("mtd"), signed(&body, SIGNING_SECRET, now())),
        (body.clone(), signed(&body, "another-secret-0123456789", now())),
        (body.clone(), signed(&body, SIGNING_SECRET, now() - 301)),
        (body.clone(), signed(&body, SIGNING_SECRET, now() + 301)),
        (body.clone(), vec![("x-slack-request-timestamp", now().to_string())]),
        (body.clone(), vec![]),
    ];
    for (i, (b, h)) in refused.into_iter().enumerate() {
        let r = send(b, h).await;
        assert_eq!(r.status, 401, "case {i}: {:?}", r.body);
    }
    // Within the five minutes either way is fine.
    let r = send(body.clone(), signed(&body, SIGNING_SECRET, now() - 290)).await;
    assert_eq!(r.status, 200);
    // Without a signing secret the command does not exist.
    let plain = TestApp::spawn(kind).await;
    let r = plain.post("/slack/commands", &signed(&body, SIGNING_SECRET, now()), body.clone()).await;
    assert_eq!(r.status, 404);
}

/// A valid signature says the command came through our Slack app, not from whom: the app may be
/// installed in another workspace, and not every member of ours may read revenue.
async fn revenue_commands_from_another_workspace_or_an_unlisted_member_are_refused(kind: DbKind) {
    let t = TestApp::spawn_with(kind, |s| {
        s.slack.signing_secret = Some(app::slack::SigningSecret::new(SIGNING_SECRET).unwrap());
        s.slack.askers = app::domain::slack::Askers { team_id: Some("T000".into()), users: vec!["U0FINANCE".into()] };
    })
    .await;
    pack(&t, Utc::now()).await;
    let ask = |team: &'static str, user: &'static str| {
        let t = &t;
        async move {
            let body = command_body_from(team, user, "today");
            let ts = now();
            let headers = vec![
                ("x-slack-request-timestamp", ts.to_string()),
                ("x-slack-signature", slack_sign(SIGNING_SECRET, ts, &body)),
            ];
            t.post("/slack/commands", &headers, body).await
        }
    };
    let r = ask("T000", "U0FINANCE").await;
    assert_eq!(r.status, 200);
    assert!(r.body["text"].as_str().unwrap().contains("*net $150.00*"), "{:?}", r.body);
    for (team, user, why) in [
        ("T0OTHER", "U0FINANCE", "not answered in this Slack workspace"),
        ("T000", "U0INTERN", "not on the list of people"),
    ] {
        let r = ask(team, user).await;
        assert_eq!(r.status, 200, "{team} {user}: Slack shows only a 200's text to the asker");
        assert_eq!(r.body["response_type"], "ephemeral");
        let text = r.body["text"].as_str().unwrap();
        assert!(text.contains(why) && !text.contains('$'), "{team} {user}: {text}");
    }
}
