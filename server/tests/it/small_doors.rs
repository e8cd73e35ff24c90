//! Issue 22's small doors and clocks: admin downloads no cache keeps, a Stripe that never
//! answers, reconciliations at shutdown, and the artwork sweep's clock.
use crate::helpers::*;
use crate::on_both_databases;
use crate::web::{Site, ADMIN, ANN};
use app::stripe::simulator::Faults;
use app::web::checkout::BuyPack;
use std::time::Duration;

on_both_databases!(
    admin_downloads_are_never_kept_by_a_cache,
    a_stripe_that_never_answers_fails_the_purchase_with_a_clear_message,
    a_reconciliation_running_at_shutdown_ends_as_abandoned_with_its_reason,
);

/// Every file an admin downloads holds customers' payments or emails: a proxy or the browser's
/// cache must not keep a copy once the session ends.
async fn admin_downloads_are_never_kept_by_a_cache(kind: DbKind) {
    let site = Site::start(kind).await;
    let store = &site.app.services.db;
    let anns = site.contract_of(ANN.0).await;
    let credit = app::domain::events::Credit {
        contract_id: anns,
        payment_id: new_payment_id(),
        revisions: 2,
        amount: app::domain::Money::new(15_000, app::domain::Currency::parse("usd").unwrap()),
        livemode: false,
    };
    let now = chrono::Utc::now();
    app::services::fulfil::fulfil(store, &credit, app::services::fulfil::Evidence::Confirmed, now).await.unwrap();
    let opts = app::services::reconcile::Options {
        from: now - chrono::Duration::days(1),
        to: now + chrono::Duration::minutes(1),
        dry_run: false,
        started_by: "cli",
        rate: 100,
    };
    let run = app::services::reconcile::run(&site.app.services, &opts, &|_| {}).await.unwrap().run_id;
    let admin = site.sign_in(ADMIN, None).await;
    let today = now.date_naive();
    for path in [
        format!("/admin/revenue.csv?from={today}&to={today}"),
        "/admin/events.csv".to_string(),
        "/admin/events.ndjson".to_string(),
        format!("/admin/payments/{}/evidence.tar", credit.payment_id),
        format!("/admin/reconciliation/{}/findings.csv", run),
    ] {
        let file = site.get(&path, Some(&admin)).await;
        assert_eq!(file.status, 200, "{path}: {}", file.body);
        assert_eq!(file.headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "{path}");
    }
    site.app.stop().await;
}

/// A Stripe that accepts the connection and then says nothing (an outage, a black-holed route)
/// ends the buyer's wait at the client's deadline with words they can act on; without a
/// deadline the click waited as long as the socket lived (here, past the test's own patience).
async fn a_stripe_that_never_answers_fails_the_purchase_with_a_clear_message(kind: DbKind) {
    let site = Site::start_with(kind, |s| s.stripe.timeout = Duration::from_secs(1)).await;
    let anns = site.contract_of(ANN.0).await.to_string();
    let ann = site.sign_in(ANN, None).await;
    let sim = site.app.simulator.as_ref().unwrap();
    sim.set_faults(Faults { api_delay_ms: 120_000, ..Faults::default() }).unwrap();
    let refused = site.call::<BuyPack>(Some(&ann), &[("contract_id", &anns)]).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("could not be started") && refused.body.contains("try again"), "{}", refused.body);
    // Stripe answers again: the same click works, nothing was left half-done.
    sim.set_faults(Faults::default()).unwrap();
    let bought = site.call::<BuyPack>(Some(&ann), &[("contract_id", &anns)]).await;
    assert_eq!(bought.status, 200, "{}", bought.body);
    site.app.stop().await;
}

/// An admin's reconciliation runs in the background. A graceful stop used to close the database
/// under it mid-run, leaving its run `running` (and the schedule blocked) until another process
/// declared it dead; now the stop tells it, waits for it, and it ends with the reason.
async fn a_reconciliation_running_at_shutdown_ends_as_abandoned_with_its_reason(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let site = Site::start_on(db.shared(), |_| {}).await;
    site.seed().await;
    let anns = site.contract_of(ANN.0).await.to_string();
    let ann = site.sign_in(ANN, None).await;
    // A payment for the run to check, so it has work past its first call.
    assert_eq!(site.call::<BuyPack>(Some(&ann), &[("contract_id", &anns)]).await.status, 200);
    let admin = site.sign_in(ADMIN, None).await;
    // Every Stripe call now takes a while, so the run is still going when the stop comes.
    let sim = site.app.simulator.as_ref().unwrap();
    sim.set_faults(Faults { api_delay_ms: 1_500, ..Faults::default() }).unwrap();
    let start = hyper::Request::post(format!("{}/admin/reconciliation/run", site.app.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", site.origin())
        .header("cookie", admin);
    assert_eq!(site.send(start, bytes::Bytes::new()).await.status, 303);
    let store = site.app.services.db.clone();
    let running = eventually(PATIENCE, || async {
        app::store::reconciliation::runs(&store, 1).await.unwrap().first().is_some_and(|r| r.status == "running")
    })
    .await;
    assert!(running, "the run started");
    let app = site.app;
    app.shut_down().await;
    let db = app::store::Db::connect(&db.url, &app::store::DbOptions::default()).await.unwrap();
    let run = app::store::reconciliation::runs(&db, 1).await.unwrap().remove(0);
    assert_eq!(run.status, "abandoned", "{run:?}");
    assert!(run.error.as_deref().is_some_and(|e| e.contains("server stopped")), "{run:?}");
    assert!(run.finished_at.is_some(), "{run:?}");
    db.close().await;
}
