//! Set-password links by email (`.ci/with-smtp`): an admin's invitation and reset arrive in the
//! person's inbox with a link that works, and the admin is told it was emailed instead of being
//! shown it; with email off the admin is shown the link and told email is off.
use crate::helpers::*;
use crate::mailbox::{wait_for, with_mail};
use crate::on_both_databases;
use crate::people::link_in;
use crate::web::{Site, ADMIN};

on_both_databases!(
    an_invitation_and_a_reset_are_emailed_with_a_link_that_works,
    with_mail_off_the_admin_is_shown_the_link,
);

/// Sends what the outbox holds now (the worker would, a moment later).
pub(crate) async fn send_now(site: &Site) {
    app::services::mail::send_due(&site.app.services, chrono::Utc::now()).await.unwrap();
}

async fn an_invitation_and_a_reset_are_emailed_with_a_link_that_works(kind: DbKind) {
    let site = Site::start_with(kind, with_mail).await;
    let admin = site.sign_in(ADMIN, None).await;
    let to = format!("dora-{}@web.test", unique());
    let a = site.post_form("/admin/people", Some(&admin), &[("email", &to)]).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let dora = site.user_id(&to).await;
    // The admin is told where it went, and not shown the link: it is Dora's alone.
    let page = site.get(&format!("/admin/people/{dora}"), Some(&admin)).await;
    assert!(page.body.contains(&format!("Emailed to {to}")), "{}", page.body);
    assert_eq!(link_in(&page.body), None, "{}", page.body);
    assert!(site.get("/admin/people", Some(&admin)).await.body.contains("Email: on"));

    send_now(&site).await;
    let got = wait_for(&to, 1, PATIENCE).await;
    assert_eq!(got[0].subject, "Your Revision Store account");
    assert!(got[0].text.contains("https://shop.example/password/"), "{}", got[0].text);
    let link = link_in(&got[0].text).expect("the link in the email");
    let set =
        site.post_form(&link, None, &[("password", "dora-long-password"), ("confirm", "dora-long-password")]).await;
    assert_eq!((set.status, set.location()), (303, "/login?password=set"));
    let session = site.try_sign_in(&to, "dora-long-password").await.expect("signs in");

    // A reset: emailed too, and it works; the old password and session are gone.
    site.post_form(&format!("/admin/people/{dora}/password-link"), Some(&admin), &[]).await;
    let page = site.get(&format!("/admin/people/{dora}"), Some(&admin)).await;
    assert!(page.body.contains(&format!("Emailed to {to}")), "{}", page.body);
    assert_eq!(link_in(&page.body), None);
    assert_eq!(site.session_count(dora).await, 0, "signed out everywhere: {session}");
    send_now(&site).await;
    let got = wait_for(&to, 2, PATIENCE).await;
    assert_eq!(got[1].subject, "Your Revision Store password was reset");
    let link = link_in(&got[1].text).expect("the link in the email");
    site.post_form(&link, None, &[("password", "dora-newer-password"), ("confirm", "dora-newer-password")]).await;
    assert!(site.try_sign_in(&to, "dora-long-password").await.is_err());
    assert!(site.try_sign_in(&to, "dora-newer-password").await.is_ok());
    site.app.stop().await;
}

async fn with_mail_off_the_admin_is_shown_the_link(kind: DbKind) {
    let site = Site::start(kind).await;
    let admin = site.sign_in(ADMIN, None).await;
    site.post_form("/admin/people", Some(&admin), &[("email", "erin@web.test")]).await;
    let erin = site.user_id("erin@web.test").await;
    let page = site.get(&format!("/admin/people/{erin}"), Some(&admin)).await;
    assert!(link_in(&page.body).is_some(), "{}", page.body);
    assert!(page.body.contains("Email: off"), "{}", page.body);
    assert!(!page.body.contains("Emailed to"), "{}", page.body);
    assert!(site.get("/admin/people", Some(&admin)).await.body.contains("Email: off"));
    let outbox = app::store::mail_outbox::recent(&site.app.services.db, 10).await.unwrap();
    assert!(outbox.is_empty(), "nothing queued: {outbox:?}");
    site.app.stop().await;
}
