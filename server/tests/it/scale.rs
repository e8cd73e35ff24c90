//! Many deliveries of one event at the same moment (Stripe after a timeout; one delivery to each
//! of two instances behind a load balancer): intake's group-commit batches must not deadlock.
use crate::helpers::*;
use crate::on_both_databases;
use app::store::events::{store_batch, NewEvent, StoreJob, Stored};

on_both_databases!(
    batches_holding_the_same_events_in_opposite_orders_store_each_once_without_deadlock,
    a_batch_mixing_new_events_duplicates_and_a_refused_row_answers_each_delivery_rightly,
    a_payments_events_come_from_the_search_index_once_indexed_and_from_their_payloads_before,
    a_batch_names_only_the_credits_whose_payments_had_refunds_stored_before,
);

fn job(id: &str) -> StoreJob {
    let body = format!(
        r#"{{"id":"{id}","object":"event","type":"customer.created","livemode":false,"created":1,"data":{{"object":{{}}}}}}"#
    );
    let now = chrono::Utc::now();
    StoreJob {
        event: NewEvent {
            event_id: id.to_string(),
            event_type: "customer.created".into(),
            livemode: false,
            api_version: None,
            stripe_created: 1,
            payload_sha256: NewEvent::digest(body.as_bytes()),
            payload: body.into_bytes(),
            signature_header: "t=1,v1=00".into(),
            request_headers: "{}".into(),
            received_at: now,
        },
        credit: None,
        lease_until: now,
    }
}

async fn batches_holding_the_same_events_in_opposite_orders_store_each_once_without_deadlock(kind: DbKind) {
    let test_db = TestDb::new(kind).await;
    let db = app::store::Db::connect(&test_db.url, &Default::default()).await.unwrap();
    db.migrate().await.unwrap();
    // Before intake stored a batch in id order, PostgreSQL failed one of two such batches with
    // "deadlock detected" in nearly every round.
    for round in 0..10 {
        let jobs: Vec<StoreJob> = (0..64).map(|i| job(&format!("evt_round{round}_{i:03}"))).collect();
        let forward: Vec<&StoreJob> = jobs.iter().collect();
        let backward: Vec<&StoreJob> = jobs.iter().rev().collect();
        let (a, b) = tokio::join!(store_batch(&db, &forward), store_batch(&db, &backward));
        let (a, b) = (a.expect("first batch stored"), b.expect("second batch stored"));
        // Every event stored by exactly one of the two batches; the other saw a duplicate.
        for i in 0..64 {
            let (x, y) = (a[i], b[63 - i]);
            assert!((x == Stored::Duplicate) != (y == Stored::Duplicate), "round {round}, event {i}: {x:?} and {y:?}");
        }
    }
    db.close().await;
}

/// Stripe's side of the two-process test: one simulator (it is a single-process tool: its
/// payments live in this test process) whose webhooks go to a stand-in for a load balancer that
/// has lost track of which process answered, so it delivers every event to both processes at
/// the same moment. It answers Stripe 200 only when both did, so a failure is retried.
/// Returns the simulator (its API at `…/`), and where to tell the stand-in the processes are.
async fn stripe_for_two(
) -> (app::stripe::simulator::Simulator, String, std::sync::Arc<std::sync::OnceLock<[String; 2]>>) {
    use app::stripe::simulator::{Simulator, WebhookConfig};
    let processes = std::sync::Arc::new(std::sync::OnceLock::<[String; 2]>::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let both = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
    let to = processes.clone();
    let fan_out = axum::Router::new().route(
        "/webhooks/stripe",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
            let to = to.clone();
            async move {
                let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<http_body_util::Full<bytes::Bytes>>();
                let Some(bases) = to.get() else { return axum::http::StatusCode::SERVICE_UNAVAILABLE };
                let copies = bases.iter().map(|base| {
                    let mut req = hyper::Request::post(format!("{base}/webhooks/stripe"));
                    for name in ["content-type", "stripe-signature", "user-agent"] {
                        if let Some(v) = headers.get(name) {
                            req = req.header(name, v);
                        }
                    }
                    http.request(req.body(http_body_util::Full::new(body.clone())).unwrap())
                });
                let answers = futures_util::future::join_all(copies).await;
                if answers.iter().all(|a| a.as_ref().is_ok_and(|r| r.status().is_success())) {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, fan_out).await.unwrap() });
    let sim = Simulator::with_webhooks(WebhookConfig {
        url: both,
        secret: app::stripe::WebhookSecret::parse(SECRET).unwrap(),
        retry_base: std::time::Duration::from_millis(100),
        max_attempts: 5,
    });
    let (addr, _) = app::stripe::simulator::start("127.0.0.1:0".parse().unwrap(), sim.clone()).await.unwrap();
    (sim, format!("http://{addr}/"), processes)
}

/// Two `revision-store serve` processes on one PostgreSQL behave as one: 1,000 payments, each
/// event delivered to both at the same moment, credit once and are stored and processed once;
/// a session made on one works on the other; revision packs bought at one and confirmed on the
/// return page at both, while Stripe's webhooks reach both too, credit once each; revision
/// requests racing for a contract's last credit, split across both, use it exactly once; and
/// artwork uploaded at one is served by the other (each has its own data directory: the
/// artwork is in S3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgresql_credit_store_and_spend_once() {
    use futures_util::stream::{self, StreamExt};
    let test_db = TestDb::new(DbKind::Postgres).await;
    let db = app::store::Db::connect(&test_db.url, &Default::default()).await.unwrap();
    db.migrate().await.unwrap();
    let advertiser = app::services::accounts::create_user(
        &db,
        "two@scale.test",
        app::domain::users::Role::Advertiser,
        "two-processes-password",
    )
    .await
    .unwrap();
    let contract = |base_revisions| app::store::contracts::NewContract {
        advertiser_id: advertiser.id,
        publication: "Scale",
        ad_size: "Page",
        base_revisions,
    };
    let paid_into = app::store::contracts::create(&db, &contract(3), chrono::Utc::now()).await.unwrap().id;
    let last_credit = app::store::contracts::create(&db, &contract(1), chrono::Utc::now()).await.unwrap().id;
    let bought_for = app::store::contracts::create(&db, &contract(3), chrono::Utc::now()).await.unwrap().id;
    let (sim, sim_api, processes) = stripe_for_two().await;
    let (endpoint, bucket) = new_bucket().await;
    let store = format!("s3://{bucket}/artwork-of-both");
    let env = [
        ("STRIPE_API_BASE", sim_api.as_str()),
        ("ARTWORK_STORE", store.as_str()),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let named = |name| {
        let mut env = env.to_vec();
        env.extend([("INSTANCE_NAME", name), ("METRICS_TOKEN", METRICS_TOKEN), ("RUST_LOG", "warn")]);
        env
    };
    let (env_a, env_b) = (named("a"), named("b"));
    let (process_a, process_b) = tokio::join!(
        ServeProcess::start(&test_db.url, dir_a.path(), &env_a),
        ServeProcess::start(&test_db.url, dir_b.path(), &env_b)
    );
    let (a, b) = (process_a.base.clone(), process_b.base.clone());
    processes.set([a.clone(), b.clone()]).unwrap();
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let deliver = |base: String, body: String| {
        let req = hyper::Request::post(format!("{base}/webhooks/stripe"))
            .header("content-type", "application/json")
            .header("stripe-signature", sign(&body, SECRET, now()))
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let http = http.clone();
        async move {
            tokio::time::timeout(REQUEST_TIMEOUT, http.request(req)).await.expect("answered").expect("request").status()
        }
    };

    // Each event to both processes at once, 16 events in flight.
    let statuses: Vec<(hyper::StatusCode, hyper::StatusCode)> = stream::iter(0..1_000)
        .map(|_| {
            let body = paid(&new_event_id(), &new_payment_id(), paid_into);
            let (to_a, to_b) = (deliver(a.clone(), body.clone()), deliver(b.clone(), body));
            async move { tokio::join!(to_a, to_b) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|(x, y)| x.is_success() && y.is_success()), "every copy answered 2xx");
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            match &db {
                app::store::Db::Postgres(p) => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await.unwrap(),
                app::store::Db::Sqlite(_) => unreachable!("PostgreSQL only"),
            }
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM stripe_events").await, 1_000, "each event stored once");
    assert_eq!(count("SELECT COUNT(*) FROM contract_revisions").await, 1_000, "each payment credited once");
    let processed_once = eventually(PATIENCE, || async {
        count("SELECT COUNT(*) FROM stripe_event_processing WHERE status = 'processed' AND attempts = 1").await == 1_000
    })
    .await;
    assert!(processed_once, "every event processed, once");
    let balance = app::store::ledger::balance(&db, paid_into).await.unwrap().unwrap();
    assert_eq!(balance.available(), 3 + 2 * 1_000);

    // Signed in at one process, the session works at the other.
    let sign_in = hyper::Request::post(format!("{a}{}", <app::web::auth::SignIn as leptos::server_fn::ServerFn>::PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", &a)
        .body(http_body_util::Full::new(bytes::Bytes::from("email=two%40scale.test&password=two-processes-password")))
        .unwrap();
    let answer = http.request(sign_in).await.unwrap();
    assert!(answer.status().as_u16() < 400, "{}", answer.status());
    let cookie = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("revision_store_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("a session cookie");

    // Revision packs: bought at one process, paid in the "browser" (the Payment Element's
    // confirm, with the publishable key), then the return page confirms at both processes at
    // once while Stripe's webhooks reach both as well. Each payment is credited once.
    let call = |base: &str, path: &str, fields: &[(&str, &str)]| {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let req = hyper::Request::post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", base)
            .header("cookie", &cookie)
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let http = http.clone();
        async move {
            let res = tokio::time::timeout(REQUEST_TIMEOUT, http.request(req)).await.unwrap().unwrap();
            let status = res.status();
            let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
            assert!(status.is_success(), "{status}: {}", String::from_utf8_lossy(&body));
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()
        }
    };
    let (buy, confirm) = (
        <app::web::checkout::BuyPack as leptos::server_fn::ServerFn>::PATH,
        <app::web::checkout::ConfirmPayment as leptos::server_fn::ServerFn>::PATH,
    );
    let contract_field = bought_for.to_string();
    let mut bought = Vec::new();
    for i in 0..6 {
        let at = if i % 2 == 0 { &a } else { &b };
        let started = call(at, buy, &[("contract_id", &contract_field)]).await;
        let pi = started["payment_intent_id"].as_str().unwrap().to_string();
        let paid = post_form(
            &format!("{sim_api}v1/payment_intents/{pi}/confirm"),
            app::stripe::simulator::PUBLISHABLE_KEY,
            &[("client_secret", started["client_secret"].as_str().unwrap()), ("payment_method", "pm_card_visa")],
        )
        .await;
        assert_eq!(paid.body["status"], "succeeded", "{}", paid.body);
        let fields = [("payment_intent_id", pi.as_str())];
        let (at_a, at_b) = tokio::join!(call(&a, confirm, &fields), call(&b, confirm, &fields));
        for answer in [at_a, at_b] {
            assert_eq!(answer["Credited"]["added"], 2, "{answer}");
        }
        bought.push(pi);
    }
    for pi in &bought {
        let credits = app::store::ledger::credit_for_payment(&db, pi).await.unwrap();
        assert!(credits.is_some_and(|c| c.contract_id == bought_for), "{pi} credited to its contract");
    }
    assert_eq!(app::store::ledger::balance(&db, bought_for).await.unwrap().unwrap().available(), 3 + 2 * 6);
    // Every event Stripe sent about them reached both processes, was stored once and processed once.
    let succeeded: Vec<String> = eventually(PATIENCE, || async {
        sim.deliveries().iter().filter(|d| d.event_type == "payment_intent.succeeded" && d.status == Some(200)).count()
            == bought.len()
    })
    .await
    .then(|| {
        sim.deliveries()
            .into_iter()
            .filter(|d| d.event_type == "payment_intent.succeeded" && d.status == Some(200))
            .map(|d| d.event_id)
            .collect()
    })
    .expect("Stripe delivered every payment's success to both processes");
    // The payment's other events (its charge's) may still be on their way when its success has
    // arrived: wait for them, as Stripe's delivery is not ordered either.
    let all_acknowledged = eventually(PATIENCE, || async { sim.undelivered_event_ids().is_empty() }).await;
    assert!(all_acknowledged, "every simulator event was acknowledged by both: {:?}", sim.undelivered_event_ids());
    for event_id in &succeeded {
        let processed = eventually(PATIENCE, || async {
            app::store::events::summary(&db, event_id).await.unwrap().is_some_and(|e| e.status == "processed")
        })
        .await;
        assert!(processed, "{event_id} processed");
        let event = app::store::events::summary(&db, event_id).await.unwrap().unwrap();
        assert_eq!(event.attempts, 1, "{event_id} processed by one attempt");
    }
    assert_eq!(count("SELECT COUNT(*) FROM contract_revisions").await, 1_000 + 6, "one credit per payment");

    // Ten requests for the last credit, alternating between the processes: one is recorded.
    let boundary = "----scale";
    let artwork = b"%PDF-1.7\n% the artwork both processes serve\n";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"notes\"\r\n\r\nMove the logo\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"artwork\"; filename=\"ad.pdf\"\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(artwork);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let requests = (0..10).map(|i| {
        let base = if i % 2 == 0 { &a } else { &b };
        let req = hyper::Request::post(format!("{base}/contracts/{last_credit}/revisions"))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .header("origin", base.as_str())
            .header("cookie", &cookie)
            .body(http_body_util::Full::new(bytes::Bytes::from(form.clone())))
            .unwrap();
        let http = http.clone();
        async move { http.request(req).await.unwrap().status().as_u16() }
    });
    let mut answers = futures_util::future::join_all(requests).await;
    answers.sort();
    assert_eq!(answers, [201, 409, 409, 409, 409, 409, 409, 409, 409, 409], "one request per credit");
    assert_eq!(app::store::ledger::balance(&db, last_credit).await.unwrap().unwrap().available(), 0);

    // Whichever process recorded it, both serve its artwork.
    let recorded = app::store::ledger::requests(&db, last_credit).await.unwrap();
    let url = format!("/contracts/{last_credit}/revisions/{}/artwork", recorded[0].id);
    for base in [&a, &b] {
        let req =
            hyper::Request::get(format!("{base}{url}")).header("cookie", &cookie).body(Default::default()).unwrap();
        let res = tokio::time::timeout(REQUEST_TIMEOUT, http.request(req)).await.unwrap().unwrap();
        assert_eq!(res.status(), 200, "from {base}");
        let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
        assert_eq!(body.as_ref(), artwork, "from {base}");
    }

    // Each process counts what it did, under its own name: the two processes' credits add up to
    // the return-page credits above (whichever process won each race).
    let mut return_page_credits = 0;
    for (base, name) in [(&a, "a"), (&b, "b")] {
        let req = hyper::Request::get(format!("{base}/metrics"))
            .header("authorization", format!("Bearer {METRICS_TOKEN}"))
            .body(Default::default())
            .unwrap();
        let res = tokio::time::timeout(REQUEST_TIMEOUT, http.request(req)).await.unwrap().unwrap();
        assert_eq!(res.status(), 200);
        let text =
            String::from_utf8(http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes().to_vec())
                .unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("revision_store_ledger_credits_total{") && l.contains("path=\"return_page\""))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(&format!("instance=\"{name}\"")), "{line}");
        return_page_credits += line.rsplit(' ').next().unwrap().parse::<u64>().unwrap();
    }
    let by_return_page = count("SELECT COUNT(*) FROM contract_revisions WHERE credited_by = 'return_page'").await;
    assert_eq!(return_page_credits, by_return_page as u64, "each process counted its own");
    crate::balances::assert_kept_balances_match(&db).await;
    db.close().await;
}

/// Deliveries arriving together share a group-commit batch (one statement on PostgreSQL). One
/// row the database refuses (a type with a NUL character: PostgreSQL text cannot hold one) must
/// not fail its neighbours: new events are stored and credited, copies are duplicates, and the
/// refused one is answered 503 (Stripe retries) without a 2xx for an event we do not hold.
async fn a_batch_mixing_new_events_duplicates_and_a_refused_row_answers_each_delivery_rightly(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let earlier: Vec<String> = (0..8).map(|_| paid(&new_event_id(), &new_payment_id(), t.contract_id)).collect();
    for body in &earlier {
        assert_eq!(t.deliver(body).await.status, 200);
    }
    let fresh: Vec<String> = (0..8).map(|_| paid(&new_event_id(), &new_payment_id(), t.contract_id)).collect();
    let odd_id = new_event_id();
    let odd = serde_json::json!({"id": odd_id, "object": "event", "type": "customer.\u{0}created", "livemode": false,
        "created": now(), "data": {"object": {"id": "cus_1", "object": "customer"}}})
    .to_string();
    let all: Vec<&String> = fresh.iter().chain(&earlier).chain(std::iter::once(&odd)).collect();
    let answers = futures_util::future::join_all(all.iter().map(|b| t.deliver(b))).await;
    for (i, a) in answers[..8].iter().enumerate() {
        assert_eq!((a.status, a.body["status"].as_str()), (200, Some("processed")), "fresh {i}: {:?}", a.body);
    }
    for (i, a) in answers[8..16].iter().enumerate() {
        assert_eq!((a.status, &a.body["duplicate"]), (200, &serde_json::Value::Bool(true)), "copy {i}: {:?}", a.body);
    }
    let last = &answers[16];
    match kind {
        // PostgreSQL refuses the NUL: never a 2xx for it, and nothing of it kept.
        DbKind::Postgres => {
            assert!(last.status >= 500, "{} {:?}", last.status, last.body);
            assert!(app::store::events::evidence(t.store(), &odd_id).await.unwrap().is_none());
        }
        // SQLite text holds it: stored like any other event.
        DbKind::Sqlite => assert_eq!(last.status, 200, "{:?}", last.body),
    }
    assert_eq!(t.credit_rows().await, 16, "each fresh payment credited once, the copies nothing");
}

/// The admin's contract page lists each payment attempt's events. Indexed events are found
/// through the search index's payment column (a seek, at any store size); events stored since
/// the indexer's look-back and not reached yet, by their payload.
async fn a_payments_events_come_from_the_search_index_once_indexed_and_from_their_payloads_before(kind: DbKind) {
    use app::store::events::about_payment;
    let t = TestApp::spawn(kind).await;
    let (pi, other_pi) = (new_payment_id(), new_payment_id());
    let failed = pi_event(&new_event_id(), "payment_intent.payment_failed", &pi, serde_json::json!({}), 15_000, "usd");
    let paid_event = paid(&new_event_id(), &pi, t.contract_id);
    // Another payment's event that names ours only in passing (say, in a description).
    let aside_id = new_event_id();
    let aside = pi_event(
        &aside_id,
        "payment_intent.canceled",
        &other_pi,
        serde_json::json!({"note": pi.clone()}),
        15_000,
        "usd",
    );
    for body in [&failed, &paid_event, &aside] {
        assert_eq!(t.deliver(body).await.status, 200);
    }
    let types = |found: Vec<app::store::events::EventSummary>| -> Vec<String> {
        found.into_iter().map(|e| e.event_type).collect()
    };
    // Not indexed yet: found by their payloads, the mention in passing too (unless the worker's
    // first sweep, racing the test's start, has indexed it already: then it is rightly left out).
    let before = types(about_payment(t.store(), &pi, 50).await.unwrap());
    let aside_indexed = app::store::event_search::search(
        t.store(),
        &app::domain::event_search::EventFilter { payment_intent: Some(other_pi.clone()), ..Default::default() },
        None,
        10,
    )
    .await
    .unwrap()
    .iter()
    .any(|h| h.event_id == aside_id);
    assert_eq!(before.len(), if aside_indexed { 2 } else { 3 }, "{before:?}");
    // Indexed: what is about the payment, newest first; the passing mention is not.
    while app::store::event_search::index_pending(t.store(), 100).await.unwrap() > 0 {}
    let after = types(about_payment(t.store(), &pi, 50).await.unwrap());
    assert_eq!(after, ["payment_intent.succeeded", "payment_intent.payment_failed"]);
    assert_eq!(about_payment(t.store(), &pi, 1).await.unwrap().len(), 1, "the limit holds");
    // A new event after indexing is found at once, before the indexer reaches it.
    let processing = pi_event(&new_event_id(), "payment_intent.processing", &pi, serde_json::json!({}), 15_000, "usd");
    assert_eq!(t.deliver(&processing).await.status, 200);
    assert_eq!(types(about_payment(t.store(), &pi, 50).await.unwrap()).len(), 3);
}

/// The writer looks up, after a batch commits, which of its credited payments already had
/// refunds or disputes stored: one query for the batch, matched back to each payment.
async fn a_batch_names_only_the_credits_whose_payments_had_refunds_stored_before(kind: DbKind) {
    let t = TestApp::spawn(kind).await;
    let (refunded, disputed, clean) = (new_payment_id(), new_payment_id(), new_payment_id());
    let tag = unique();
    let refund = json_event(
        &format!("evt_re{tag}"),
        "refund.created",
        serde_json::json!({"id": format!("re_{tag}"), "object": "refund", "amount": 7500, "currency": "usd",
            "payment_intent": refunded, "status": "succeeded"}),
    );
    let dispute = json_event(
        &format!("evt_dp{tag}"),
        "charge.dispute.created",
        serde_json::json!({"id": format!("dp_{tag}"), "object": "dispute", "amount": 15000, "currency": "usd",
            "payment_intent": disputed, "charge": format!("ch_{tag}"), "status": "needs_response",
            "reason": "fraudulent", "created": now()}),
    );
    for body in [refund, dispute] {
        assert_eq!(t.deliver(&body).await.status, 200);
    }
    let credit_job = |payment: &str| credit_job(t.contract_id, payment);
    let jobs = [credit_job(&clean), credit_job(&refunded), credit_job(&disputed)];
    let stored = store_batch(t.store(), &jobs.iter().collect::<Vec<_>>()).await.unwrap();
    let facts: Vec<bool> = stored
        .iter()
        .map(|s| match s {
            Stored::Credited { earlier_facts, .. } => *earlier_facts,
            other => panic!("credited, not {other:?}"),
        })
        .collect();
    assert_eq!(facts, [false, true, true]);
}

/// A new event's job that credits a pack for `payment` on `contract_id`.
fn credit_job(contract_id: i64, payment: &str) -> StoreJob {
    let mut j = job(&new_event_id());
    j.credit = Some((
        app::domain::events::Credit {
            contract_id,
            payment_id: payment.to_string(),
            revisions: 2,
            amount: app::domain::Money::new(15_000, app::domain::money::Currency::parse("usd").unwrap()),
            livemode: false,
        },
        "credited".to_string(),
    ));
    j
}

/// PostgreSQL: a batch crediting a payment whose refund is being stored at that moment waits
/// for the refund's commit and then names it, rather than reading past it. The refund's side
/// (`store::adjustments::book`) holds the payment's advisory lock for its whole transaction and
/// looks for the credit only once it has it; were the batch not to wait, a refund committing
/// just after the batch's look-up would be missed by both sides. Here the refund's transaction
/// is held open by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_crediting_a_payment_waits_for_a_refund_being_stored_and_names_it() {
    let t = TestApp::spawn(DbKind::Postgres).await;
    let app::store::Db::Postgres(pool) = t.store() else { unreachable!("a PostgreSQL app") };
    let payment = new_payment_id();
    let mut refund = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&payment)
        .execute(&mut *refund)
        .await
        .unwrap();
    let batch = tokio::spawn({
        let (db, contract_id, payment) = (t.store().clone(), t.contract_id, payment.clone());
        async move { store_batch(&db, &[&credit_job(contract_id, &payment)]).await.unwrap() }
    });
    // The batch is waiting on the payment's lock.
    let waiting = eventually(PATIENCE, || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        n == 1
    })
    .await;
    assert!(waiting, "the batch waits for the refund's transaction");
    assert!(!batch.is_finished());
    sqlx::query(
        "INSERT INTO payment_refunds (refund_id, payment_id, amount, currency, status, livemode, first_seen, \
         updated_at) VALUES ($1, $2, 15000, 'usd', 'succeeded', false, now(), now())",
    )
    .bind(format!("re_{}", unique()))
    .bind(&payment)
    .execute(&mut *refund)
    .await
    .unwrap();
    refund.commit().await.unwrap();
    let stored = tokio::time::timeout(PATIENCE, batch).await.expect("the batch goes on").unwrap();
    assert!(
        matches!(stored[..], [Stored::Credited { earlier_facts: true, .. }]),
        "credited, and the refund committed meanwhile is named: {stored:?}"
    );
}

fn json_event(id: &str, event_type: &str, object: serde_json::Value) -> String {
    serde_json::json!({"id": id, "object": "event", "created": now(), "livemode": false, "type": event_type,
        "data": {"object": object}})
    .to_string()
}
