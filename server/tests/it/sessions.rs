//! Sessions end when the account's credentials change, even one whose sign-in was verifying the
//! old password at that moment, and live at most 30 days however busy; set-password links stay
//! out of session rows.
use crate::helpers::*;
use crate::on_both_databases;
use crate::web::{Site, ADMIN, ANN};
use app::domain::people::Actor;
use app::web::auth::SignIn;
use app::web::contracts::MyContracts;
use std::time::Duration;
use tower_sessions::session::{Id, Record};
use tower_sessions::SessionStore;

on_both_databases!(
    a_sign_in_that_verified_the_old_password_during_a_reset_gets_a_dead_session,
    sign_ins_racing_a_reset_leave_no_working_session,
    deactivation_ends_a_session_saved_after_it_even_once_reactivated,
    a_session_lives_at_most_thirty_days_however_busy,
    a_set_password_link_waits_in_the_session_sealed,
    ipv6_addresses_of_one_64_share_a_budget,
    a_forged_client_header_from_an_untrusted_peer_is_ignored,
    the_account_ceiling_slows_unknown_browsers_but_not_a_known_one,
    password_hashing_is_bounded_and_beyond_it_answers_429,
    setting_a_password_through_a_link_waits_for_a_hashing_turn_too,
);

/// What a sign-in that read `user` (its hash and version) writes when it finishes: a new session
/// naming them, stamped with what it read. Returns the cookie.
async fn session_as_sign_in_writes_it(site: &Site, user: &app::store::users::User) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut record = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(12),
    };
    for (key, value) in [
        (app::store::sessions::USER_KEY, user.id),
        (app::store::sessions::VERSION_KEY, user.credential_version),
        (app::store::sessions::SIGNED_IN_KEY, now),
        ("touched_at", now),
    ] {
        record.data.insert(key.to_string(), value.into());
    }
    site.app.services.db.create(&mut record).await.unwrap();
    format!("revision_store_session={}", record.id)
}

async fn user(site: &Site, email: &str) -> app::store::users::User {
    let email = app::domain::users::Email::parse(email).unwrap();
    app::store::users::find_by_email(&site.app.services.db, &email).await.unwrap().unwrap()
}

async fn a_sign_in_that_verified_the_old_password_during_a_reset_gets_a_dead_session(kind: DbKind) {
    let site = Site::start(kind).await;
    // The sign-in reads Ann's hash and version, and verifies her (old, right) password...
    let read = user(&site, ANN.0).await;
    assert!(app::services::accounts::verify_password(ANN.1, &read.password_hash));
    // ...meanwhile an admin resets her password, which ends her sessions...
    let admin = Actor::User { id: user(&site, ADMIN.0).await.id, email: ADMIN.0.into() };
    app::services::people::reset_password(&site.app.services, read.id, "http://x", &admin).await.unwrap();
    // ...and then the sign-in's session is written. It must not work.
    let late = session_as_sign_in_writes_it(&site, &read).await;
    assert_eq!(site.call::<MyContracts>(Some(&late), &[]).await.status, 401);
    assert_eq!(site.get("/contracts", Some(&late)).await.status, 303);
    // The same session stamped with the current version does (the stamp is what decides).
    let fresh = session_as_sign_in_writes_it(&site, &user(&site, ANN.0).await).await;
    assert_eq!(site.call::<MyContracts>(Some(&fresh), &[]).await.status, 200);
    site.app.stop().await;
}

async fn sign_ins_racing_a_reset_leave_no_working_session(kind: DbKind) {
    let site = Site::start(kind).await;
    let ann = user(&site, ANN.0).await;
    let admin = Actor::User { id: user(&site, ADMIN.0).await.id, email: ADMIN.0.into() };
    // Sign-ins from several addresses (so throttling stays out of it) while the reset commits.
    let proxied = Site::start_on(site_db(&site), |s| s.web.client_ip_header = Some("x-forwarded-for".into())).await;
    let addresses: Vec<String> = (0..6).map(|i| format!("203.0.113.{}", 40 + i)).collect();
    let fields = [("email", ANN.0), ("password", ANN.1)];
    let sign_ins = futures_util::future::join_all(addresses.iter().map(|a| {
        let proxied = &proxied;
        async move { proxied.call_with::<SignIn>(None, &[("x-forwarded-for", a.as_str())], &fields).await }
    }));
    let reset = async {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        app::services::people::reset_password(&site.app.services, ann.id, "http://x", &admin).await.unwrap()
    };
    let (answers, _) = tokio::join!(sign_ins, reset);
    for a in &answers {
        if let Some((cookie, _)) = a.session_cookie() {
            assert_eq!(
                proxied.call::<MyContracts>(Some(&cookie), &[]).await.status,
                401,
                "a session outlived the reset"
            );
        }
    }
    proxied.app.stop().await;
    site.app.stop().await;
}

fn site_db(site: &Site) -> TestDb {
    site.db().shared()
}

async fn deactivation_ends_a_session_saved_after_it_even_once_reactivated(kind: DbKind) {
    let site = Site::start(kind).await;
    let read = user(&site, ANN.0).await;
    let admin = Actor::User { id: user(&site, ADMIN.0).await.id, email: ADMIN.0.into() };
    app::services::people::deactivate(&site.app.services, read.id, &admin).await.unwrap();
    let late = session_as_sign_in_writes_it(&site, &read).await;
    assert_eq!(site.call::<MyContracts>(Some(&late), &[]).await.status, 401);
    app::services::people::reactivate(&site.app.services, read.id, &admin).await.unwrap();
    assert_eq!(site.call::<MyContracts>(Some(&late), &[]).await.status, 401, "still dead after reactivation");
    // She signs in again with her password.
    let again = site.sign_in(ANN, None).await;
    assert_eq!(site.call::<MyContracts>(Some(&again), &[]).await.status, 200);
    site.app.stop().await;
}

async fn a_session_lives_at_most_thirty_days_however_busy(kind: DbKind) {
    let site = Site::start(kind).await;
    let db = site.app.services.db.clone();
    let cookie = site.sign_in(ANN, None).await;
    let id = cookie.split_once('=').unwrap().1.to_string();
    let set_signed_in = |days: i64| {
        let at = chrono::Utc::now() - chrono::Duration::days(days);
        // Bound as a timestamp, as the store writes it.
        let db = db.clone();
        let id = id.clone();
        async move {
            let sql = "UPDATE sessions SET signed_in_at = $1 WHERE id = $2";
            match &db {
                app::store::Db::Sqlite(s) => {
                    sqlx::query(sql).bind(at).bind(&id).execute(&s.writer).await.unwrap().rows_affected()
                }
                app::store::Db::Postgres(p) => {
                    sqlx::query(sql).bind(at).bind(&id).execute(p).await.unwrap().rows_affected()
                }
            }
        }
    };
    // Used every day for 29 days: still good.
    assert_eq!(set_signed_in(29).await, 1);
    assert_eq!(site.call::<MyContracts>(Some(&cookie), &[]).await.status, 200);
    // Signed in 31 days ago, though used a moment ago (its idle expiry is fresh): over, and a
    // page view cannot touch it back to life.
    assert_eq!(set_signed_in(31).await, 1);
    assert_eq!(site.get("/contracts", Some(&cookie)).await.status, 303);
    assert_eq!(site.call::<MyContracts>(Some(&cookie), &[]).await.status, 401);
    assert_eq!(app::store::sessions::delete_expired(&db, chrono::Utc::now()).await.unwrap(), 1, "and swept");
    site.app.stop().await;
}

/// Every session row's data.
async fn session_data(db: &app::store::Db) -> Vec<String> {
    let sql = "SELECT data FROM sessions";
    match db {
        app::store::Db::Sqlite(s) => sqlx::query_scalar(sql).fetch_all(&s.writer).await.unwrap(),
        app::store::Db::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
    }
}

async fn a_set_password_link_waits_in_the_session_sealed(kind: DbKind) {
    let site = Site::start(kind).await;
    let admin = site.sign_in(ADMIN, None).await;
    let body = form_urlencoded::Serializer::new(String::new()).append_pair("email", "eve@web.test").finish();
    let req = hyper::Request::post(format!("{}/admin/people", site.origin()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", site.origin())
        .header("cookie", &admin);
    let a = site.send(req, body).await;
    assert_eq!(a.status, 303, "{}", a.body);
    // The link waits in the admin's session for the next page...
    let rows = session_data(&site.app.services.db).await;
    assert!(rows.iter().any(|d| d.contains("issued_link")), "{rows:?}");
    // ...which shows it (so it was there), though no row held it readable.
    let page = site.get(a.location(), Some(&admin)).await;
    let start = page.body.find("/password/").expect("the link is shown");
    let token: String = page.body[start + 10..].chars().take_while(char::is_ascii_hexdigit).collect();
    assert_eq!(token.len(), 64, "{}", page.body);
    for row in &rows {
        assert!(!row.contains(&token) && !row.contains("/password/"), "the link in plain text: {row}");
    }
    site.app.stop().await;
}

/// A site behind a proxy (`CLIENT_IP_HEADER`), so a test can speak from several addresses.
async fn proxied(kind: DbKind) -> Site {
    Site::start_with(kind, |s| s.web.client_ip_header = Some("x-forwarded-for".into())).await
}

const WRONG: &str = "wrong-password-x";

async fn ipv6_addresses_of_one_64_share_a_budget(kind: DbKind) {
    let site = proxied(kind).await;
    let fields = [("email", crate::web::BOB.0), ("password", WRONG)];
    // Six addresses of one /64: one client, so its (email, address) pair gets four free tries
    // and a fifth, then waits.
    let mut statuses = Vec::new();
    for i in 1..=6 {
        let from = format!("2001:db8:1:2::{i:x}");
        statuses.push(site.call_with::<SignIn>(None, &[("x-forwarded-for", &from)], &fields).await.status);
    }
    assert_eq!(statuses, [422, 422, 422, 422, 422, 429]);
    // The next /64 is someone else.
    let a = site.call_with::<SignIn>(None, &[("x-forwarded-for", "2001:db8:1:3::1")], &fields).await;
    assert_eq!(a.status, 422, "{}", a.body);
    site.app.stop().await;
}

async fn a_forged_client_header_from_an_untrusted_peer_is_ignored(kind: DbKind) {
    // The header is named, but the test (127.0.0.1) is not among the trusted proxies: it is a
    // client reaching the app directly, and what it says of itself is ignored.
    let site = Site::start_with(kind, |s| {
        s.web.client_ip_header = Some("x-forwarded-for".into());
        s.web.trusted_proxies = app::services::sign_in_throttle::parse_networks("10.0.0.0/8").unwrap();
    })
    .await;
    let fields = [("email", crate::web::BOB.0), ("password", WRONG)];
    let mut statuses = Vec::new();
    for i in 1..=6 {
        let forged = format!("198.51.100.{i}");
        statuses.push(site.call_with::<SignIn>(None, &[("x-forwarded-for", &forged)], &fields).await.status);
    }
    assert_eq!(statuses, [422, 422, 422, 422, 422, 429], "counted by the peer's own address");
    site.app.stop().await;
}

/// The device cookie an answer sets (`name=value`).
fn device_cookie(a: &crate::web::Answer) -> Option<String> {
    a.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.starts_with("revision_store_device=").then(|| c.split(';').next().unwrap().to_string()))
}

async fn the_account_ceiling_slows_unknown_browsers_but_not_a_known_one(kind: DbKind) {
    let site = proxied(kind).await;
    let right = [("email", ANN.0), ("password", ANN.1)];
    // Ann signs in from her laptop: it gets a signed device cookie.
    let a = site.call_with::<SignIn>(None, &[("x-forwarded-for", "203.0.113.10")], &right).await;
    assert!(a.status < 400, "{}", a.body);
    let laptop = device_cookie(&a).expect("a device cookie");
    assert!(a.headers.get_all("set-cookie").iter().any(|c| {
        let c = c.to_str().unwrap();
        c.starts_with("revision_store_device=") && c.contains("HttpOnly") && c.contains("SameSite=Lax")
    }));
    // Someone guesses at her account from many addresses, a couple of tries each (every pair
    // and address well inside its own budget): eleven failures pass, then the account waits.
    let wrong = [("email", ANN.0), ("password", WRONG)];
    for i in 0..11 {
        let from = format!("198.51.100.{}", 100 + i / 2);
        let a = site.call_with::<SignIn>(None, &[("x-forwarded-for", &from)], &wrong).await;
        assert_eq!(a.status, 422, "guess {i}: {}", a.body);
    }
    let a = site.call_with::<SignIn>(None, &[("x-forwarded-for", "198.51.100.200")], &wrong).await;
    assert_eq!(a.status, 429, "the account's ceiling: {}", a.body);
    assert!(a.headers.get("retry-after").is_some());
    // A browser that never signed in waits too, even with the right password...
    let a = site.call_with::<SignIn>(None, &[("x-forwarded-for", "203.0.113.11")], &right).await;
    assert_eq!(a.status, 429, "{}", a.body);
    // ...and so does one whose device cookie is forged...
    let forged = laptop.replacen('.', "0.", 1);
    let headers = [("x-forwarded-for", "203.0.113.12"), ("cookie", forged.as_str())];
    assert_eq!(site.call_with::<SignIn>(None, &headers, &right).await.status, 429);
    // ...but her laptop signs in at once, from wherever it is.
    let headers = [("x-forwarded-for", "203.0.113.13"), ("cookie", laptop.as_str())];
    let a = site.call_with::<SignIn>(None, &headers, &right).await;
    assert!(a.status < 400, "{}: {}", a.status, a.body);
    let session = a.session_cookie().expect("a session").0;
    assert_eq!(site.call::<MyContracts>(Some(&session), &[]).await.status, 200);
    site.app.stop().await;
}

async fn password_hashing_is_bounded_and_beyond_it_answers_429(kind: DbKind) {
    let site = Site::start(kind).await;
    let hashing = site.app.services.password_hashing.clone();
    // Every turn taken (as by as many sign-ins verifying at once).
    let all = hashing.permits.acquire_many(hashing.permits.available_permits() as u32).await.unwrap();
    let a = site.call::<SignIn>(None, &[("email", ANN.0), ("password", ANN.1)]).await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert!(a.session_cookie().is_none());
    drop(all);
    site.sign_in(ANN, None).await;
    site.app.stop().await;
}

/// SQLite has one writer, which webhook intake needs: refused sign-ins must not queue on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sign_ins_do_not_wait_for_sqlites_writer() {
    let site = proxied(DbKind::Sqlite).await;
    let attacker = [("x-forwarded-for", "198.51.100.66")];
    let wrong = [("email", crate::web::BOB.0), ("password", WRONG)];
    for _ in 0..5 {
        assert_eq!(site.call_with::<SignIn>(None, &attacker, &wrong).await.status, 422);
    }
    // The writer is busy (held here, as a long write would hold it)...
    let app::store::Db::Sqlite(sqlite) = &site.app.services.db else { unreachable!() };
    let held = sqlite.writer.acquire().await.unwrap();
    // ...and refused sign-ins are still answered, by the counters in memory: 429, not a 503
    // after waiting for the writer.
    let answers =
        futures_util::future::join_all((0..10).map(|_| site.call_with::<SignIn>(None, &attacker, &wrong))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [429; 10]);
    drop(held);
    // The counts reach the database once the writer is free (a restart keeps them).
    let db = site.app.services.db.clone();
    let written = eventually(Duration::from_secs(10), || {
        let db = db.clone();
        async move { counters_with_at_least(&db, 5).await >= 2 }
    });
    assert!(written.await, "the pair's and the address's counts are written");
    site.app.stop().await;
}

/// Stored sign-in counters with at least `failures`.
pub(crate) async fn counters_with_at_least(db: &app::store::Db, failures: i64) -> i64 {
    let sql = "SELECT COUNT(*) FROM sign_in_throttle WHERE failures >= $1";
    match db {
        app::store::Db::Sqlite(s) => sqlx::query_scalar(sql).bind(failures).fetch_one(&s.writer).await.unwrap(),
        app::store::Db::Postgres(p) => sqlx::query_scalar(sql).bind(failures).fetch_one(p).await.unwrap(),
    }
}

async fn setting_a_password_through_a_link_waits_for_a_hashing_turn_too(kind: DbKind) {
    let site = Site::start(kind).await;
    let admin = site.sign_in(ADMIN, None).await;
    let post = |path: String, cookie: Option<String>, fields: Vec<(&'static str, &'static str)>| {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let mut req = hyper::Request::post(format!("{}{path}", site.origin()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", site.origin());
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        site.send(req, body)
    };
    let a = post("/admin/people".into(), Some(admin.clone()), vec![("email", "fay@web.test")]).await;
    let page = site.get(a.location(), Some(&admin)).await;
    let start = page.body.find("/password/").expect("the link is shown");
    let token: String = page.body[start + 10..].chars().take_while(char::is_ascii_hexdigit).collect();
    let link = format!("/password/{token}");
    let fields = vec![("password", "fay-long-password"), ("confirm", "fay-long-password")];
    let hashing = site.app.services.password_hashing.clone();
    let all = hashing.permits.acquire_many(hashing.permits.available_permits() as u32).await.unwrap();
    let busy = post(link.clone(), None, fields.clone()).await;
    assert_eq!(busy.status, 429, "{}", busy.body);
    assert_eq!(busy.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    drop(all);
    // Nothing was changed: the link still works.
    let set = post(link, None, fields).await;
    assert_eq!((set.status, set.location()), (303, "/login?password=set"));
    site.app.stop().await;
}
