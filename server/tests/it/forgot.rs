//! "Forgot your password?" over HTTP against the real router, with a real SMTP server
//! (`.ci/with-smtp`): the same answer for every address, mail only for an active account, a link
//! that works once for an hour and ends every session, and throttles that stop the mail but not
//! the answer. With email off the page says to ask the publisher and nothing is sent.
use crate::helpers::*;
use crate::mailbox::{received_by, wait_for, with_mail};
use crate::on_both_databases;
use crate::password_mail::send_now;
use crate::people::link_in;
use crate::web::{Answer, Site};
use app::domain::people::forgot::{ANSWER, MAIL_OFF, PER_ACCOUNT, PER_ADDRESS};
use app::web::contracts::MyContracts;
use app::web::forgot::RequestPasswordLink;

on_both_databases!(
    every_address_gets_the_same_answer_and_only_an_active_account_mail,
    the_link_sets_a_password_once_and_ends_every_session,
    a_link_older_than_an_hour_is_refused,
    the_throttles_stop_the_mail_but_not_the_answer,
    with_mail_off_the_page_says_to_ask_the_publisher,
);

const PASSWORD: &str = "forgetful-password";

/// A new advertiser with an address of this test's own (the SMTP server's folder is shared).
async fn someone(site: &Site) -> (String, i64) {
    let email = format!("forgetful-{}@web.test", unique());
    let u = app::services::accounts::create_user(
        &site.app.services.db,
        &email,
        app::domain::users::Role::Advertiser,
        PASSWORD,
    )
    .await
    .unwrap();
    (email, u.id)
}

async fn ask(site: &Site, email: &str) -> Answer {
    site.call::<RequestPasswordLink>(None, &[("email", email)]).await
}

/// What a request was answered: the same for everyone is the point.
fn answer(a: &Answer) -> (u16, String, String) {
    (a.status, a.location().to_string(), a.body.clone())
}

async fn queued_for(site: &Site, to: &str) -> usize {
    let rows = app::store::mail_outbox::recent(&site.app.services.db, 1000).await.unwrap();
    rows.iter().filter(|m| m.recipient == to).count()
}

async fn every_address_gets_the_same_answer_and_only_an_active_account_mail(kind: DbKind) {
    let site = Site::start_with(kind, with_mail).await;
    let (known, _) = someone(&site).await;
    let (deactivated, gone) = someone(&site).await;
    app::store::people::deactivate(
        &site.app.services.db,
        gone,
        &app::domain::people::Actor::CommandLine,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let unknown = format!("nobody-{}@web.test", unique());
    let form = site.get("/forgot-password", None).await;
    assert!(form.body.contains(r#"name="email""#) && !form.body.contains(MAIL_OFF), "{}", form.body);

    let a = ask(&site, &known).await;
    assert_eq!(a.location(), "/forgot-password?sent=1", "{} {}", a.status, a.body);
    for other in [unknown.as_str(), deactivated.as_str(), "not an address", &known.to_uppercase()] {
        assert_eq!(answer(&ask(&site, other).await), answer(&a), "{other}");
    }
    let page = site.get("/forgot-password?sent=1", None).await;
    assert!(page.body.contains(ANSWER), "{}", page.body);

    // Asking disables nothing: anyone may ask for anyone.
    assert!(site.try_sign_in(&known, PASSWORD).await.is_ok());
    send_now(&site).await;
    let got = wait_for(&known, 2, PATIENCE).await;
    assert_eq!(got[0].subject, "Reset your Revision Store password");
    assert!(got[0].text.contains("https://shop.example/password/"), "{}", got[0].text);
    for nobody in [&unknown, &deactivated] {
        assert!(received_by(nobody).is_empty(), "{nobody} was mailed");
        assert_eq!(queued_for(&site, nobody).await, 0);
    }
    // Only the newest link works (the second request voided the first).
    let (first, second) = (link_in(&got[0].text).unwrap(), link_in(&got[1].text).unwrap());
    assert!(site.get(&first, None).await.body.contains("not valid"));
    assert!(site.get(&second, None).await.body.contains(&known));
    site.app.stop().await;
}

async fn the_link_sets_a_password_once_and_ends_every_session(kind: DbKind) {
    let site = Site::start_with(kind, with_mail).await;
    let (email, id) = someone(&site).await;
    let old = site.try_sign_in(&email, PASSWORD).await.expect("signs in");
    let other = site.try_sign_in(&email, PASSWORD).await.expect("signs in again");
    assert_eq!(site.call::<MyContracts>(Some(&old), &[]).await.status, 200);
    ask(&site, &email).await;
    send_now(&site).await;
    let link = link_in(&wait_for(&email, 1, PATIENCE).await[0].text).expect("a link");
    assert_eq!(site.call::<MyContracts>(Some(&old), &[]).await.status, 200, "asking ends no session");

    let set =
        site.post_form(&link, None, &[("password", "remembered-at-last"), ("confirm", "remembered-at-last")]).await;
    assert_eq!((set.status, set.location()), (303, "/login?password=set"));
    for cookie in [&old, &other] {
        assert_eq!(site.call::<MyContracts>(Some(cookie), &[]).await.status, 401, "signed out everywhere");
    }
    assert_eq!(site.session_count(id).await, 0);
    assert!(site.try_sign_in(&email, PASSWORD).await.is_err(), "the old password is gone");
    assert!(site.try_sign_in(&email, "remembered-at-last").await.is_ok());

    // Once only.
    let again = site.post_form(&link, None, &[("password", "another-long-one"), ("confirm", "another-long-one")]).await;
    assert_eq!(again.location(), link);
    assert!(site.get(&link, None).await.body.contains("used already"));
    assert!(site.try_sign_in(&email, "another-long-one").await.is_err());
    site.app.stop().await;
}

async fn a_link_older_than_an_hour_is_refused(kind: DbKind) {
    use app::services::forgot::{request_link, Outcome};
    let site = Site::start_with(kind, with_mail).await;
    let (email, _) = someone(&site).await;
    let svc = &site.app.services;
    // Asked for 61 minutes ago.
    let then = chrono::Utc::now() - chrono::Duration::minutes(61);
    assert_eq!(request_link(svc, &email, "203.0.113.9", then).await.unwrap(), Outcome::Sent);
    send_now(&site).await;
    let got = wait_for(&email, 1, PATIENCE).await;
    assert!(got[0].text.contains("It works once, until"), "{}", got[0].text);
    let link = link_in(&got[0].text).expect("a link");
    assert!(site.get(&link, None).await.body.contains("expired"));
    site.post_form(&link, None, &[("password", "too-late-password"), ("confirm", "too-late-password")]).await;
    assert!(site.try_sign_in(&email, "too-late-password").await.is_err());
    assert!(site.try_sign_in(&email, PASSWORD).await.is_ok(), "the password stays as it was");

    // Asked for 59 minutes ago: still good.
    let then = chrono::Utc::now() - chrono::Duration::minutes(59);
    assert_eq!(request_link(svc, &email, "203.0.113.9", then).await.unwrap(), Outcome::Sent);
    send_now(&site).await;
    let link = link_in(&wait_for(&email, 2, PATIENCE).await[1].text).expect("a link");
    site.post_form(&link, None, &[("password", "just-in-time-pw"), ("confirm", "just-in-time-pw")]).await;
    assert!(site.try_sign_in(&email, "just-in-time-pw").await.is_ok());
    site.app.stop().await;
}

async fn the_throttles_stop_the_mail_but_not_the_answer(kind: DbKind) {
    let site = Site::start_with(kind, with_mail).await;
    let (email, _) = someone(&site).await;
    let first = answer(&ask(&site, &email).await);
    // Per account: PER_ACCOUNT links an hour, however many are asked for.
    for _ in 0..PER_ACCOUNT {
        assert_eq!(answer(&ask(&site, &email).await), first);
    }
    assert_eq!(queued_for(&site, &email).await, PER_ACCOUNT as usize);
    // Per client address (every request here comes from 127.0.0.1): PER_ADDRESS requests an
    // hour, whatever they ask about; then not even an unthrottled account is mailed.
    for _ in PER_ACCOUNT + 1..PER_ADDRESS {
        assert_eq!(answer(&ask(&site, &format!("nobody-{}@web.test", unique())).await), first);
    }
    let (fresh, _) = someone(&site).await;
    assert_eq!(answer(&ask(&site, &fresh).await), first);
    assert_eq!(queued_for(&site, &fresh).await, 0, "the address has asked {PER_ADDRESS} times this hour");
    // Another client address is not held by this one's count.
    let svc = &site.app.services;
    let now = chrono::Utc::now();
    let outcome = app::services::forgot::request_link(svc, &fresh, "198.51.100.0", now).await.unwrap();
    assert_eq!(outcome, app::services::forgot::Outcome::Sent);
    send_now(&site).await;
    assert_eq!(wait_for(&email, PER_ACCOUNT as usize, PATIENCE).await.len(), PER_ACCOUNT as usize);
    wait_for(&fresh, 1, PATIENCE).await;
    site.app.stop().await;
}

async fn with_mail_off_the_page_says_to_ask_the_publisher(kind: DbKind) {
    let site = Site::start(kind).await;
    let login = site.get("/login", None).await;
    assert!(login.body.contains(r#"href="/forgot-password""#), "{}", login.body);
    let page = site.get("/forgot-password", None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(MAIL_OFF), "{}", page.body);
    assert!(!page.body.contains(r#"name="email""#), "no form: {}", page.body);
    let a = ask(&site, crate::web::ANN.0).await;
    assert!(a.status >= 400 && a.body.contains("does not send email"), "{} {}", a.status, a.body);
    assert!(app::store::mail_outbox::recent(&site.app.services.db, 10).await.unwrap().is_empty());
    site.app.stop().await;
}
