//! People managed from the admin pages, over HTTP against the real router: inviting an
//! advertiser with a one-time set-password link, using it (once, even when submitted at the same
//! moment twice), deactivating (every session ends at once) and reactivating, resetting a
//! password, creating contracts; every action in the audit log with who did it.
use crate::helpers::*;
use crate::on_both_databases;
use crate::web::{Answer, Site, ADMIN, ANN, BOB};
use app::web::auth::SignIn;
use app::web::contracts::MyContracts;
use bytes::Bytes;

on_both_databases!(
    an_invited_advertiser_sets_a_password_once_and_signs_in,
    of_simultaneous_submissions_of_one_link_exactly_one_sets_the_password,
    deactivating_ends_every_session_at_once_and_reactivating_lets_them_back,
    a_reset_voids_the_old_password_the_sessions_and_the_older_link,
    admins_create_contracts_for_active_advertisers_only,
    only_admins_manage_people,
);

impl Site {
    /// A form post from this site's own origin.
    pub(crate) async fn post_form(&self, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let mut req = hyper::Request::post(format!("{}{path}", self.app.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", self.origin());
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        self.send(req, Bytes::from(body)).await
    }

    pub(crate) async fn user_id(&self, email: &str) -> i64 {
        let email = app::domain::users::Email::parse(email).unwrap();
        app::store::users::find_by_email(&self.app.services.db, &email).await.unwrap().expect("the user").id
    }

    /// Signs in and says whether it worked (the answer's body when not).
    pub(crate) async fn try_sign_in(&self, email: &str, password: &str) -> Result<String, String> {
        let a = self.call::<SignIn>(None, &[("email", email), ("password", password)]).await;
        if a.status < 400 {
            Ok(a.session_cookie().expect("a session cookie").0)
        } else {
            Err(a.body)
        }
    }

    /// The set-password link the person's page shows once after an action made one.
    pub(crate) async fn shown_link(&self, admin: &str, user_id: i64) -> String {
        let page = self.get(&format!("/admin/people/{user_id}"), Some(admin)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        link_in(&page.body).unwrap_or_else(|| panic!("no link shown: {}", page.body))
    }

    async fn audit(&self, user_id: i64) -> Vec<(String, String)> {
        app::store::people::audit_log(&self.app.services.db, Some(user_id), 100)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .map(|a| (a.actor, a.action))
            .collect()
    }

    pub(crate) async fn session_count(&self, user_id: i64) -> i64 {
        let sql = "SELECT COUNT(*) FROM sessions WHERE user_id = $1";
        match &self.app.services.db {
            app::store::Db::Sqlite(s) => sqlx::query_scalar(sql).bind(user_id).fetch_one(&s.writer).await.unwrap(),
            app::store::Db::Postgres(p) => sqlx::query_scalar(sql).bind(user_id).fetch_one(p).await.unwrap(),
        }
    }
}

/// The path of the first set-password link in a page (`/password/<64 hex>`).
pub(crate) fn link_in(body: &str) -> Option<String> {
    let start = body.find("/password/")?;
    let token: String = body[start + 10..].chars().take_while(char::is_ascii_hexdigit).collect();
    (token.len() == 64).then(|| format!("/password/{token}"))
}

async fn an_invited_advertiser_sets_a_password_once_and_signs_in(kind: DbKind) {
    let site = Site::start(kind).await;
    let admin = site.sign_in(ADMIN, None).await;
    let a = site.post_form("/admin/people", Some(&admin), &[("email", "  Cleo@Web.test ")]).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let cleo = site.user_id("cleo@web.test").await;
    assert_eq!(a.location(), format!("/admin/people/{cleo}"));

    // The link is shown once, absolute, on the person's page; a reload does not show it again.
    let page = site.get(&format!("/admin/people/{cleo}"), Some(&admin)).await;
    assert!(page.body.contains(&format!("{}/password/", site.origin())), "{}", page.body);
    let link = link_in(&page.body).expect("the link");
    assert!(page.body.contains("invited"), "{}", page.body);
    assert_eq!(link_in(&site.get(&format!("/admin/people/{cleo}"), Some(&admin)).await.body), None);

    // Until the link is used the account has no password anyone knows.
    for guess in ["", "cleo-password", "not anyone's password"] {
        assert!(site.try_sign_in("cleo@web.test", guess).await.is_err());
    }

    // Opening the link: whose it is, and the form.
    let form = site.get(&link, None).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("cleo@web.test") && form.body.contains(r#"name="confirm""#), "{}", form.body);

    // Refused passwords change nothing and say why by a code the page turns into words.
    let short = site.post_form(&link, None, &[("password", "short"), ("confirm", "short")]).await;
    assert_eq!((short.status, short.location()), (303, format!("{link}?error=too-short").as_str()));
    let page = site.get(short.location(), None).await;
    assert!(page.body.contains("at least 12 characters"), "{}", page.body);
    let differ =
        site.post_form(&link, None, &[("password", "cleo-long-password"), ("confirm", "cleo-long-passw0rd")]).await;
    assert_eq!(differ.location(), format!("{link}?error=differ"));

    let set =
        site.post_form(&link, None, &[("password", "cleo-long-password"), ("confirm", "cleo-long-password")]).await;
    assert_eq!((set.status, set.location()), (303, "/login?password=set"));
    assert!(site.get("/login?password=set", None).await.body.contains("Your password is set"));
    let cookie = site.try_sign_in("cleo@web.test", "cleo-long-password").await.expect("signs in");
    assert_eq!(site.call::<MyContracts>(Some(&cookie), &[]).await.status, 200);

    // Once only: the link is spent, and says so.
    let again = site.post_form(&link, None, &[("password", "another-long-one"), ("confirm", "another-long-one")]).await;
    assert_eq!(again.location(), link);
    assert!(site.get(&link, None).await.body.contains("used already"));
    assert!(site.try_sign_in("cleo@web.test", "another-long-one").await.is_err());
    // A token never issued, and one that is not even hex.
    let unknown = format!("/password/{}", "ab".repeat(32));
    assert!(site.get(&unknown, None).await.body.contains("not valid"));
    assert_eq!(
        site.post_form("/password/zz%3Cscript%3E", None, &[("password", "x"), ("confirm", "x")]).await.status,
        404
    );

    // Inviting an email that has an account changes nothing and says so.
    let dup = site.post_form("/admin/people", Some(&admin), &[("email", "cleo@web.test")]).await;
    assert_eq!(dup.location(), "/admin/people");
    assert!(site.get("/admin/people", Some(&admin)).await.body.contains("has an account already"));
    let bad = site.post_form("/admin/people", Some(&admin), &[("email", "not an email")]).await;
    assert_eq!(bad.location(), "/admin/people");
    assert!(site.get("/admin/people", Some(&admin)).await.body.contains("is not an email address"));

    let who = site.audit(cleo).await;
    assert_eq!(
        who,
        [
            (ADMIN.0.to_string(), "user.create".to_string()),
            ("cleo@web.test".to_string(), "user.password_set".to_string())
        ]
    );
    site.app.stop().await;
}

async fn of_simultaneous_submissions_of_one_link_exactly_one_sets_the_password(kind: DbKind) {
    let site = Site::start(kind).await;
    let admin = site.sign_in(ADMIN, None).await;
    site.post_form("/admin/people", Some(&admin), &[("email", "dora@web.test")]).await;
    let dora = site.user_id("dora@web.test").await;
    let link = site.shown_link(&admin, dora).await;
    let passwords: Vec<String> = (0..6).map(|i| format!("dora-password-{i}")).collect();
    let forms: Vec<[(&str, &str); 2]> = passwords.iter().map(|p| [("password", p.as_str()), ("confirm", p)]).collect();
    let answers = futures_util::future::join_all(forms.iter().map(|f| site.post_form(&link, None, f))).await;
    let winners: Vec<&String> =
        passwords.iter().zip(&answers).filter(|(_, a)| a.location() == "/login?password=set").map(|(p, _)| p).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        answers.iter().map(|a| (a.status, a.location().to_string())).collect::<Vec<_>>()
    );
    assert!(site.try_sign_in("dora@web.test", winners[0]).await.is_ok());
    // A few of the losers (sign-in throttling slows a run of failures, which is not under test).
    for p in passwords.iter().filter(|p| *p != winners[0]).take(3) {
        assert!(site.try_sign_in("dora@web.test", p).await.is_err(), "{p}");
    }
    let sets = site.audit(dora).await.iter().filter(|(_, a)| a == "user.password_set").count();
    assert_eq!(sets, 1);
    site.app.stop().await;
}

async fn deactivating_ends_every_session_at_once_and_reactivating_lets_them_back(kind: DbKind) {
    let site = Site::start(kind).await;
    let admin = site.sign_in(ADMIN, None).await;
    let ann = site.user_id(ANN.0).await;
    let (phone, laptop) = (site.sign_in(ANN, None).await, site.sign_in(ANN, None).await);
    let bob = site.sign_in(BOB, None).await;
    assert_eq!(site.session_count(ann).await, 2);

    let a = site.post_form(&format!("/admin/people/{ann}/deactivate"), Some(&admin), &[]).await;
    assert_eq!((a.status, a.location()), (303, format!("/admin/people/{ann}").as_str()));
    for cookie in [&phone, &laptop] {
        assert_eq!(site.call::<MyContracts>(Some(cookie), &[]).await.status, 401);
        assert_eq!(site.get("/contracts", Some(cookie)).await.status, 303);
    }
    assert_eq!(site.session_count(ann).await, 0, "her sessions are gone, not just refused");
    // Someone else's session is untouched.
    assert_eq!(site.call::<MyContracts>(Some(&bob), &[]).await.status, 200);
    // The right password is told the account is shut; a wrong one learns nothing new.
    assert!(site.try_sign_in(ANN.0, ANN.1).await.unwrap_err().contains("deactivated"));
    assert!(!site.try_sign_in(ANN.0, "wrong-password-x").await.unwrap_err().contains("deactivated"));
    let page = site.get(&format!("/admin/people/{ann}"), Some(&admin)).await;
    assert!(page.body.contains("is deactivated and signed out everywhere"), "{}", page.body);
    // Twice is refused, and so is deactivating oneself.
    site.post_form(&format!("/admin/people/{ann}/deactivate"), Some(&admin), &[]).await;
    assert!(site.get(&format!("/admin/people/{ann}"), Some(&admin)).await.body.contains("deactivated already"));
    let me = site.user_id(ADMIN.0).await;
    site.post_form(&format!("/admin/people/{me}/deactivate"), Some(&admin), &[]).await;
    assert!(site.get(&format!("/admin/people/{me}"), Some(&admin)).await.body.contains("cannot deactivate your own"));
    assert_eq!(site.get("/admin", Some(&admin)).await.status, 200, "still signed in");

    site.post_form(&format!("/admin/people/{ann}/reactivate"), Some(&admin), &[]).await;
    let back = site.try_sign_in(ANN.0, ANN.1).await.expect("signs in with her password");
    assert_eq!(site.call::<MyContracts>(Some(&back), &[]).await.status, 200);
    // Reactivation does not revive the sessions that deactivation ended.
    assert_eq!(site.call::<MyContracts>(Some(&phone), &[]).await.status, 401);

    let actions: Vec<String> = site.audit(ann).await.into_iter().map(|(who, what)| format!("{who} {what}")).collect();
    assert_eq!(
        actions,
        [
            "command line user.create".to_string(),
            format!("{} user.deactivate", ADMIN.0),
            format!("{} user.reactivate", ADMIN.0)
        ]
    );
    site.app.stop().await;
}

async fn a_reset_voids_the_old_password_the_sessions_and_the_older_link(kind: DbKind) {
    let site = Site::start(kind).await;
    let admin = site.sign_in(ADMIN, None).await;
    let bob = site.user_id(BOB.0).await;
    let session = site.sign_in(BOB, None).await;

    site.post_form(&format!("/admin/people/{bob}/password-link"), Some(&admin), &[]).await;
    let first = site.shown_link(&admin, bob).await;
    assert_eq!(site.call::<MyContracts>(Some(&session), &[]).await.status, 401, "signed out everywhere");
    assert!(site.try_sign_in(BOB.0, BOB.1).await.is_err(), "the old password no longer works");

    site.post_form(&format!("/admin/people/{bob}/password-link"), Some(&admin), &[]).await;
    let second = site.shown_link(&admin, bob).await;
    assert_ne!(first, second);
    assert!(site.get(&first, None).await.body.contains("not valid"), "a newer link voids the older");
    let used_first =
        site.post_form(&first, None, &[("password", "bob-new-password"), ("confirm", "bob-new-password")]).await;
    assert_eq!(used_first.location(), first);
    assert!(site.try_sign_in(BOB.0, "bob-new-password").await.is_err());

    // An expired link is refused, on the page and on submission.
    let sql = "UPDATE password_links SET expires_at = $1 WHERE user_id = $2";
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    let changed = match &site.app.services.db {
        app::store::Db::Sqlite(s) => {
            sqlx::query(sql).bind(past).bind(bob).execute(&s.writer).await.unwrap().rows_affected()
        }
        app::store::Db::Postgres(p) => sqlx::query(sql).bind(past).bind(bob).execute(p).await.unwrap().rows_affected(),
    };
    assert_eq!(changed, 1, "one live link");
    assert!(site.get(&second, None).await.body.contains("expired"));
    site.post_form(&second, None, &[("password", "bob-new-password"), ("confirm", "bob-new-password")]).await;
    assert!(site.try_sign_in(BOB.0, "bob-new-password").await.is_err());

    site.post_form(&format!("/admin/people/{bob}/password-link"), Some(&admin), &[]).await;
    let third = site.shown_link(&admin, bob).await;
    site.post_form(&third, None, &[("password", "bob-new-password"), ("confirm", "bob-new-password")]).await;
    assert!(site.try_sign_in(BOB.0, "bob-new-password").await.is_ok());
    let links = site.audit(bob).await.iter().filter(|(_, a)| a == "user.password_link").count();
    assert_eq!(links, 3);
    site.app.stop().await;
}

async fn admins_create_contracts_for_active_advertisers_only(kind: DbKind) {
    let site = Site::start(kind).await;
    let admin = site.sign_in(ADMIN, None).await;
    let ann = site.user_id(ANN.0).await;
    let page = format!("/admin/people/{ann}");
    let a = site
        .post_form(
            &format!("{page}/contracts"),
            Some(&admin),
            &[("publication", " Daily Planet "), ("ad_size", "Full page")],
        )
        .await;
    assert_eq!(a.location(), page);
    let shown = site.get(&page, Some(&admin)).await.body;
    assert!(shown.contains("created: Daily Planet · Full page, 3 revisions included"), "{shown}");
    let cookie = site.sign_in(ANN, None).await;
    let mine = site.call::<MyContracts>(Some(&cookie), &[]).await.json();
    let planet = mine.as_array().unwrap().iter().find(|c| c["publication"] == "Daily Planet").expect("hers");
    assert_eq!(planet["balance"]["base"], 3);
    let entries = app::store::people::audit_log(&site.app.services.db, Some(ann), 10).await.unwrap();
    assert_eq!(entries[0].action, "contract.create");
    assert_eq!(entries[0].contract_id, planet["id"].as_i64());

    // Refused: no publication, an admin as the holder, a deactivated advertiser. Nothing made.
    let count = |s: &Site| {
        let db = s.app.services.db.clone();
        async move { app::store::people::audit_log(&db, None, 1000).await.unwrap().len() }
    };
    let before = count(&site).await;
    site.post_form(&format!("{page}/contracts"), Some(&admin), &[("publication", "  "), ("ad_size", "Full page")])
        .await;
    assert!(site.get(&page, Some(&admin)).await.body.contains("The publication must have 1 to 200 characters"));
    let me = site.user_id(ADMIN.0).await;
    site.post_form(&format!("/admin/people/{me}/contracts"), Some(&admin), &[("publication", "X"), ("ad_size", "Y")])
        .await;
    assert!(site
        .get(&format!("/admin/people/{me}"), Some(&admin))
        .await
        .body
        .contains("Contracts are for advertisers"));
    site.post_form(&format!("{page}/deactivate"), Some(&admin), &[]).await;
    site.post_form(&format!("{page}/contracts"), Some(&admin), &[("publication", "X"), ("ad_size", "Y")]).await;
    assert!(site.get(&page, Some(&admin)).await.body.contains("reactivate them first"));
    assert_eq!(count(&site).await, before + 1, "only the deactivation was recorded");
    assert_eq!(
        site.post_form("/admin/people/999999/contracts", Some(&admin), &[("publication", "X"), ("ad_size", "Y")])
            .await
            .status,
        404
    );
    site.app.stop().await;
}

async fn only_admins_manage_people(kind: DbKind) {
    let site = Site::start(kind).await;
    let ann_cookie = site.sign_in(ANN, None).await;
    let bob = site.user_id(BOB.0).await;
    for (path, fields) in [
        ("/admin/people".to_string(), vec![("email", "eve@web.test")]),
        (format!("/admin/people/{bob}/deactivate"), vec![]),
        (format!("/admin/people/{bob}/password-link"), vec![]),
        (format!("/admin/people/{bob}/contracts"), vec![("publication", "X"), ("ad_size", "Y")]),
    ] {
        assert_eq!(site.post_form(&path, Some(&ann_cookie), &fields).await.status, 403, "{path}");
        assert_eq!(site.post_form(&path, None, &fields).await.status, 401, "{path}");
    }
    assert_eq!(site.get("/admin/people", Some(&ann_cookie)).await.status, 403);
    assert_eq!(site.get(&format!("/admin/people/{bob}"), Some(&ann_cookie)).await.status, 403);
    // A cross-site form cannot do it in an admin's name either.
    let admin = site.sign_in(ADMIN, None).await;
    let body = Bytes::from("email=eve%40web.test");
    let req = hyper::Request::post(format!("{}/admin/people", site.app.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .header("cookie", &admin);
    assert_eq!(site.send(req, body).await.status, 403);
    assert!(app::store::people::audit_log(&site.app.services.db, None, 100)
        .await
        .unwrap()
        .iter()
        .all(|a| a.actor == "command line"));
    assert_eq!(site.call::<MyContracts>(Some(&ann_cookie), &[]).await.status, 200);
    site.app.stop().await;
}
