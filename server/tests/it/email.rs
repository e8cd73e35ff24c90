//! Email through a real SMTP server (`.ci/with-smtp`): receipts and revocation notices from the
//! outbox, each once per ledger row however often and however many workers look; failed sends
//! retried with backoff, refused ones given up; nothing queued or sent with mail off.
use crate::helpers::*;
use crate::mailbox::{received_by, wait_for, with_mail};
use crate::money_back::buy;
use crate::on_both_databases;
use app::domain::mail::{link, Kind};
use app::services::mail;
use app::store::mail_outbox;
use std::time::Duration;

on_both_databases!(
    a_credit_is_mailed_once_as_a_receipt_however_many_look,
    the_worker_mails_the_receipt_after_the_commit,
    a_refund_that_takes_revisions_back_is_mailed_as_a_notice,
    a_refused_send_is_retried_with_backoff_and_a_rejected_one_given_up,
    a_mail_server_that_is_down_loses_nothing,
    with_mail_off_nothing_is_queued,
);

async fn advertiser_email(t: &TestApp) -> String {
    app::store::users::find(t.store(), t.advertiser_id).await.unwrap().unwrap().email
}

async fn a_credit_is_mailed_once_as_a_receipt_however_many_look(kind: DbKind) {
    let t = TestApp::spawn_with(kind, |s| {
        s.stripe.mode = Some(app::domain::deployment::DeploymentMode::Simulator);
        with_mail(s);
    })
    .await;
    let to = advertiser_email(&t).await;
    let pi = buy(&t, "4242424242424242").await;
    // Three looks at once (three workers, say), then two more: one receipt.
    let svc = &t.app.services;
    let now = chrono::Utc::now();
    let (a, b, c) = tokio::join!(mail::work(svc, now), mail::work(svc, now), mail::work(svc, now));
    let queued: usize = [a, b, c].into_iter().map(|l| l.unwrap().queued).sum();
    assert_eq!(queued, 1, "one receipt queued for one credit");
    mail::work(svc, chrono::Utc::now()).await.unwrap();
    let got = wait_for(&to, 1, PATIENCE).await;
    mail::work(svc, chrono::Utc::now()).await.unwrap();
    assert_eq!(received_by(&to).len(), 1, "mailed once: {got:#?}");
    let r = &got[0];
    assert_eq!(r.subject, "Receipt: 2 revisions for $150.00");
    assert!(r.from.contains("store@shop.example"), "{}", r.from);
    assert_eq!(r.to, to);
    for needle in [
        "$150.00".to_string(),
        format!("contract #{} (Daily Planet, Half page)", t.contract_id),
        "Revisions available now: 5".into(),
        pi.clone(),
        format!("https://shop.example/contracts/{}", t.contract_id),
    ] {
        assert!(r.text.contains(&needle), "{needle} not in {}", r.text);
    }
    assert!(r.html.contains(&format!("href=\"https://shop.example/contracts/{}\"", t.contract_id)), "{}", r.html);
    let rows = mail_outbox::recent(t.store(), 10).await.unwrap();
    let receipt: Vec<_> = rows.iter().filter(|m| m.recipient == to).collect();
    assert_eq!(receipt.len(), 1);
    assert_eq!((receipt[0].status.as_str(), receipt[0].attempts), ("sent", 1));
    let credit = app::store::ledger::credit_for_payment(t.store(), &pi).await.unwrap().unwrap();
    assert_eq!(receipt[0].ref_id, Some(credit.id), "keyed by its ledger row");
}

async fn the_worker_mails_the_receipt_after_the_commit(kind: DbKind) {
    let t = TestApp::spawn_with(kind, |s| {
        s.stripe.mode = Some(app::domain::deployment::DeploymentMode::Simulator);
        s.reconcile.worker_interval = Duration::from_millis(100);
        with_mail(s);
    })
    .await;
    let to = advertiser_email(&t).await;
    buy(&t, "4242424242424242").await;
    // Nobody but the running worker sends it.
    let got = wait_for(&to, 1, PATIENCE).await;
    assert!(got[0].subject.starts_with("Receipt:"), "{got:#?}");
}

async fn a_refund_that_takes_revisions_back_is_mailed_as_a_notice(kind: DbKind) {
    let t = TestApp::spawn_with(kind, |s| {
        s.stripe.mode = Some(app::domain::deployment::DeploymentMode::Simulator);
        with_mail(s);
    })
    .await;
    let to = advertiser_email(&t).await;
    let pi = buy(&t, "4242424242424242").await;
    let stripe = t.app.services.stripe.as_ref().unwrap();
    stripe.create_refund(&pi, 15_000, Some("requested_by_customer"), &[], &format!("t-{}", unique())).await.unwrap();
    assert!(eventually(PATIENCE, || async { t.balance().await.revoked == 2 }).await, "the refund was booked");
    for _ in 0..3 {
        mail::work(&t.app.services, chrono::Utc::now()).await.unwrap();
    }
    let got = wait_for(&to, 2, PATIENCE).await;
    mail::work(&t.app.services, chrono::Utc::now()).await.unwrap();
    assert_eq!(received_by(&to).len(), 2, "a receipt and one notice: {got:#?}");
    let notice = got.iter().find(|m| m.subject.starts_with("Refund:")).expect("the notice");
    assert_eq!(notice.subject, "Refund: 2 revisions taken back");
    assert!(notice.text.contains(&format!("A refund of $150.00 was made on payment {pi}")), "{}", notice.text);
    assert!(notice.text.contains("Revisions available now: 3"), "{}", notice.text);
}

async fn a_refused_send_is_retried_with_backoff_and_a_rejected_one_given_up(kind: DbKind) {
    let t = TestApp::spawn_with(kind, with_mail).await;
    let svc = &t.app.services;
    let (busy, rejected) = (format!("busy-{}@example.com", unique()), format!("reject-{}@example.com", unique()));
    let letter = link(Kind::Invitation, "https://shop.example/password/x", chrono::Utc::now());
    assert!(mail::queue(svc, Kind::Invitation, None, &busy, &letter).await.unwrap());
    assert!(mail::queue(svc, Kind::Invitation, None, &rejected, &letter).await.unwrap());
    let now = chrono::Utc::now();
    let (_, failed) = mail::send_due(svc, now).await.unwrap();
    assert_eq!(failed, 2);
    let rows = mail_outbox::recent(t.store(), 10).await.unwrap();
    let row = |to: &str| rows.iter().find(|m| m.recipient == to).unwrap().clone();
    let (b, r) = (row(&busy), row(&rejected));
    // 451: tried again after a minute, the server's words kept for the admin.
    assert_eq!((b.status.as_str(), b.attempts), ("queued", 1));
    assert!(b.next_attempt_at > now + chrono::Duration::seconds(50), "{b:?}");
    assert!(b.last_error.as_deref().unwrap().contains("try again later"), "{b:?}");
    // 550: no retry can help.
    assert_eq!((r.status.as_str(), r.attempts), ("failed", 1));
    assert!(r.last_error.as_deref().unwrap().contains("no such mailbox"), "{r:?}");
    // Not due yet: nothing is tried; when due, it is tried again (and refused again).
    assert_eq!(mail::send_due(svc, now).await.unwrap(), (0, 0));
    assert_eq!(mail::send_due(svc, now + chrono::Duration::minutes(2)).await.unwrap(), (0, 1));
    let b = mail_outbox::recent(t.store(), 10).await.unwrap().into_iter().find(|m| m.recipient == busy).unwrap();
    assert_eq!(b.attempts, 2);
}

async fn a_mail_server_that_is_down_loses_nothing(kind: DbKind) {
    // A port nobody listens on: the connection is refused, a transient failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t = TestApp::spawn_with(kind, |s| {
        with_mail(s);
        s.mail = Some(app::mail::Mailer::new(&format!("smtp://127.0.0.1:{closed}"), "store@shop.example").unwrap());
    })
    .await;
    let svc = &t.app.services;
    let to = format!("down-{}@example.com", unique());
    let letter = link(Kind::Forgot, "https://shop.example/password/y", chrono::Utc::now());
    mail::queue(svc, Kind::Forgot, None, &to, &letter).await.unwrap();
    assert_eq!(mail::send_due(svc, chrono::Utc::now()).await.unwrap(), (0, 1));
    let row = mail_outbox::recent(t.store(), 10).await.unwrap().into_iter().find(|m| m.recipient == to).unwrap();
    assert_eq!(row.status, "queued", "kept for a later try: {row:?}");
    // The server is back (the test's own): the next due try delivers it.
    let mut back = t.app.services.clone();
    let mut settings = (*back.settings).clone();
    settings.mail = Some(app::mail::Mailer::new(&crate::mailbox::smtp_url(), "store@shop.example").unwrap());
    back.settings = std::sync::Arc::new(settings);
    assert_eq!(mail::send_due(&back, chrono::Utc::now() + chrono::Duration::minutes(2)).await.unwrap(), (1, 0));
    let got = wait_for(&to, 1, PATIENCE).await;
    assert_eq!(got[0].subject, "Reset your Revision Store password");
    assert!(got[0].text.contains("https://shop.example/password/y"));
}

async fn with_mail_off_nothing_is_queued(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    buy(&t, "4242424242424242").await;
    let svc = &t.app.services;
    let letter = link(Kind::Invitation, "u", chrono::Utc::now());
    assert!(!mail::queue(svc, Kind::Invitation, None, "someone@example.com", &letter).await.unwrap());
    assert_eq!(mail::work(svc, chrono::Utc::now()).await.unwrap(), mail::Look::default());
    assert!(mail_outbox::recent(t.store(), 10).await.unwrap().is_empty());
    assert!(mail::status_line(svc).starts_with("Email: off"));
}
