//! The operator CLI, run as a real process against both databases.
use crate::helpers::*;
use crate::on_both_databases;
use std::io::Write;
use std::process::{Command, Output, Stdio};

on_both_databases!(
    the_cli_creates_users_and_contracts_and_explains_balances,
    the_cli_lists_and_replays_events,
    the_cli_reconciles_with_the_running_simulator,
    the_cli_takes_the_stripe_mode_from_the_database,
);

fn cli(db_url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_revision-store"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env_remove("STRIPE_SECRET_KEY")
        .env_remove("STRIPE_PUBLISHABLE_KEY")
        .env_remove("STRIPE_WEBHOOK_SECRET")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run revision-store");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn the_cli_creates_users_and_contracts_and_explains_balances(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || {
        let o = cli(&url, &["migrate"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = cli(
            &url,
            &["user", "create", "--email", "Ann@Example.com", "--role", "advertiser"],
            Some("a-long-password\n"),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("Created advertiser ann@example.com"));
        assert!(!stdout(&o).contains("Password"), "a piped password is not echoed");
        let o = cli(&url, &["user", "create", "--email", "boss@example.com", "--role", "admin"], None);
        assert!(stdout(&o).contains("Password (shown once): "), "{}", stdout(&o));

        let o = cli(
            &url,
            &["user", "create", "--email", "ann@example.com", "--role", "advertiser"],
            Some("a-long-password\n"),
        );
        assert!(!o.status.success());
        assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
        let o = cli(&url, &["user", "create", "--email", "x@example.com", "--role", "advertiser"], Some("short\n"));
        assert!(stderr(&o).contains("at least 12 characters"));
        let o = cli(&url, &["user", "create", "--email", "x@example.com", "--role", "owner"], None);
        assert!(stderr(&o).contains("not a role"));

        let o = cli(
            &url,
            &[
                "contract",
                "create",
                "--advertiser",
                "ann@example.com",
                "--publication",
                "Daily Planet",
                "--ad-size",
                "Half page",
            ],
            None,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let id = stdout(&o).trim().to_string();
        assert!(id.parse::<i64>().is_ok(), "prints the new id: {id}");
        let o = cli(
            &url,
            &["contract", "create", "--advertiser", "boss@example.com", "--publication", "P", "--ad-size", "S"],
            None,
        );
        assert!(stderr(&o).contains("not an advertiser"));
        let o = cli(
            &url,
            &["contract", "create", "--advertiser", "nobody@example.com", "--publication", "P", "--ad-size", "S"],
            None,
        );
        assert!(stderr(&o).contains("no user with email"));

        let o = cli(&url, &["contract", "show", &id], None);
        assert!(o.status.success());
        assert!(
            stdout(&o).contains("3 included + 0 purchased − 0 revoked − 0 requested = 3 available"),
            "{}",
            stdout(&o)
        );
        let o = cli(&url, &["contract", "show", "777"], None);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("no contract 777"));
        let o = cli(&url, &["--pack-price=-5", "migrate"], None);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("pack price must be positive"));
    })
    .await
    .unwrap();
}

async fn the_cli_lists_and_replays_events(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let (ok, bad) = (new_event_id(), new_event_id());
    let payment = new_payment_id();
    t.deliver(&paid(&ok, &payment, t.contract_id)).await;
    t.deliver(&pi_event(&bad, "payment_intent.succeeded", &new_payment_id(), serde_json::json!({}), 15_000, "usd"))
        .await;
    let url = t.db.url.clone();
    let contract = t.contract_id.to_string();
    let (ok2, bad2, payment2) = (ok.clone(), bad.clone(), payment.clone());
    tokio::task::spawn_blocking(move || {
        let o = cli(&url, &["events", "list"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains(&ok2) && out.contains(&bad2), "{out}");
        let o = cli(&url, &["events", "list", "--status", "failed"], None);
        let out = stdout(&o);
        assert!(out.contains(&bad2) && !out.contains(&ok2), "{out}");
        assert!(out.contains("neither contractId"), "the reason is shown: {out}");
        let o = cli(&url, &["events", "list", "--status", "weird"], None);
        assert!(stderr(&o).contains("not a status"));

        let o = cli(&url, &["events", "replay", &ok2], None);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("already credited"), "{}", stdout(&o));
        let o = cli(&url, &["events", "replay", "evt_nope"], None);
        assert!(stderr(&o).contains("no stored event evt_nope"));

        let o = cli(&url, &["contract", "show", &contract], None);
        let out = stdout(&o);
        assert!(out.contains("3 included + 2 purchased − 0 revoked − 0 requested = 5 available"), "{out}");
        assert!(out.contains(&payment2) && out.contains(&ok2), "the ledger names payment and event: {out}");
    })
    .await
    .unwrap();
    assert_eq!(t.available().await, 5);
}

async fn the_cli_reconciles_with_the_running_simulator(kind: DbKind) {
    let t = TestApp::spawn_simulated(kind).await;
    // One payment whose webhooks were all dropped: only reconciliation can credit it.
    t.sim().set_faults(app::stripe::simulator::Faults { drop: true, ..Default::default() }).unwrap();
    let p = app::services::purchase::start_purchase(&t.app.services, t.advertiser_id, t.contract_id).await.unwrap();
    let r = post_form(
        &format!("{}/stripe-sim/v1/payment_intents/{}/confirm", t.app.url(), p.payment_intent_id),
        app::stripe::simulator::PUBLISHABLE_KEY,
        &[("client_secret", &p.client_secret), ("payment_method_data[card][number]", "4242424242424242")],
    )
    .await;
    assert_eq!(r.body["status"], "succeeded");
    assert_eq!(t.available().await, 3);
    let (url, bind) = (t.db.url.clone(), t.app.addr.to_string());
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    tokio::task::spawn_blocking(move || {
        let o = cli(&url, &["reconcile", "--since", "yesterday"], None);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("is not a date"), "{}", stderr(&o));
        // In simulator mode the CLI asks the serving process's simulator (BIND_ADDR).
        let o = cli(&url, &["--bind", &bind, "reconcile", "--since", &today, "--dry-run"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("undelivered_event    would_heal 3"), "{}", stdout(&o));
        assert!(stderr(&o).contains("payments checked"), "progress is shown: {}", stderr(&o));
        let o = cli(&url, &["--bind", &bind, "reconcile", "--since", &today], None);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("undelivered_event    healed     3"), "{}", stdout(&o));
    })
    .await
    .unwrap();
    assert_eq!(t.available().await, 5, "credited by the run, once");
    let runs = app::store::reconciliation::runs(t.store(), 5).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| (r.started_by.as_str(), r.dry_run)).collect::<Vec<_>>(),
        vec![("cli", false), ("cli", true)]
    );
}

async fn the_cli_takes_the_stripe_mode_from_the_database(kind: DbKind) {
    // A live deployment; an operator's shell without its keys (the old trap: the CLI then ran in
    // test mode and a replay marked a live payment `ignored` for ever).
    let t = TestApp::spawn_with(kind, |s| s.stripe.mode = Some(app::domain::deployment::DeploymentMode::Live)).await;
    let (event, payment) = (new_event_id(), new_payment_id());
    t.deliver(&paid(&event, &payment, t.contract_id).replace("\"livemode\":false", "\"livemode\":true")).await;
    assert_eq!(t.available().await, 5, "a live payment credits a live deployment");
    let (url, ev) = (t.db.url.clone(), event.clone());
    tokio::task::spawn_blocking(move || {
        let o = cli(&url, &["events", "replay", &ev], None);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("already credited"), "replayed as live, not ignored: {}", stdout(&o));
        // Reconciling needs the database's own mode's key, not whatever the shell has.
        let o = cli(&url, &["reconcile"], None);
        assert!(stderr(&o).contains("served with Stripe in live mode"), "{}", stderr(&o));
    })
    .await
    .unwrap();
    assert_eq!(t.event_status(&event).await.status, "processed");

    // A database never served has no mode: replaying there is refused, creating users is not.
    let fresh = TestDb::new(kind).await;
    let url = fresh.url.clone();
    tokio::task::spawn_blocking(move || {
        let o = cli(&url, &["events", "replay", "evt_1"], None);
        assert!(stderr(&o).contains("never been served"), "{}", stderr(&o));
        let o = cli(&url, &["user", "create", "--email", "first@example.com", "--role", "admin"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        // And serving needs a choice: no keys and no --stripe-simulator stops with one line.
        let o = cli(&url, &["serve", "--bind", "127.0.0.1:0"], None);
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        assert!(err.contains("STRIPE_SECRET_KEY") && err.contains("--stripe-simulator"), "{err}");
    })
    .await
    .unwrap();
}

#[test]
fn help_names_database_url_but_never_prints_its_password() {
    let out = run_cli("postgres://app:s3cret@db.invalid/rs?password=an0ther", &["--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(help.contains("DATABASE_URL"), "{help}");
    assert!(!help.contains("s3cret") && !help.contains("an0ther"), "{help}");
}
