//! Forwarding (issue 25, section 2) against a real receiver on 127.0.0.1:0: every stored event
//! the filter takes arrives, signed by the Standard Webhooks scheme (verified here independently
//! with hmac and base64), byte for byte as stored, after the receiver's failures and a 429 whose
//! Retry-After is honoured; every attempt logged.
use crate::helpers::*;
use crate::on_both_databases;
use app::domain::forwarding::Filter;
use app::services::forwarding::{self, NewDestinationSpec};
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

on_both_databases!(
    events_arrive_signed_byte_for_byte_after_failures_and_a_429,
    a_filter_routes_rate_card_payments_to_one_destination,
    a_410_disables_the_destination_and_its_deliveries_wait_for_it,
    dead_letters_after_the_last_attempt_are_replayed,
    a_paused_destination_queues_and_resumes,
    a_sender_sleeps_between_events_and_the_fan_out_wakes_it,
    a_rotated_secret_signs_beside_the_old_one_for_its_overlap,
    a_gateway_sources_events_are_forwarded_under_a_stable_id,
    two_processes_deliver_each_event_once,
    a_slow_destination_delays_neither_another_nor_intake,
    deliveries_keep_to_the_destinations_rate_and_concurrency,
    the_cli_manages_destinations_and_their_deliveries,
    admins_see_and_steer_a_destination_from_its_page,
    admins_add_a_destination_from_the_page,
);

#[derive(Clone)]
struct Got {
    id: String,
    ts: String,
    sig: String,
    source: String,
    body: bytes::Bytes,
    at: Instant,
}

/// A receiver on 127.0.0.1:0 that logs every request as it arrives, then (once `open`, when
/// given, is true) answers the `nth` (0-based) request of each webhook-id with `answer(nth)`:
/// (status, Retry-After). It counts the requests it holds at once.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
    most_at_once: Arc<AtomicUsize>,
}

impl Receiver {
    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
    fn count(&self, id: &str) -> usize {
        self.got.lock().unwrap().iter().filter(|g| g.id == id).count()
    }
}

type Answer = Arc<dyn Fn(usize) -> (u16, Option<&'static str>) + Send + Sync>;

async fn receiver_with(answer: Answer, open: Option<tokio::sync::watch::Receiver<bool>>, pause: Duration) -> Receiver {
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let (now_in, most_at_once) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (g, n, m) = (got.clone(), now_in.clone(), most_at_once.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (g, n, m, answer, mut open) = (g.clone(), n.clone(), m.clone(), answer.clone(), open.clone());
            async move {
                let inside = n.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(inside, Ordering::SeqCst);
                let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let got = Got {
                    id: h("webhook-id"),
                    ts: h("webhook-timestamp"),
                    sig: h("webhook-signature"),
                    source: h("webhook-source"),
                    body,
                    at: Instant::now(),
                };
                let nth = {
                    let mut all = g.lock().unwrap();
                    let nth = all.iter().filter(|x| x.id == got.id).count();
                    all.push(got);
                    nth
                };
                if let Some(open) = open.as_mut() {
                    open.wait_for(|o| *o).await.unwrap();
                }
                // A receiver that takes its time (the concurrency test's), not a test's wait.
                tokio::time::sleep(pause).await;
                let (status, retry) = answer(nth);
                n.fetch_sub(1, Ordering::SeqCst);
                let mut res = axum::response::Response::builder().status(status);
                if let Some(r) = retry {
                    res = res.header("retry-after", r);
                }
                res.body(axum::body::Body::from("boom")).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url: format!("http://{addr}/hook"), got, most_at_once }
}

async fn receiver(answer: fn(usize) -> (u16, Option<&'static str>)) -> (String, Arc<Mutex<Vec<Got>>>) {
    let r = receiver_with(Arc::new(answer), None, Duration::ZERO).await;
    (r.url, r.got)
}

/// A receiver answering 200, or `status` while `switch` is on.
async fn switched(status: u16, switch: &Arc<AtomicBool>) -> Receiver {
    let s = switch.clone();
    receiver_with(Arc::new(move |_| (if s.load(Ordering::SeqCst) { status } else { 200 }, None)), None, Duration::ZERO)
        .await
}

/// Adds a destination taking every Stripe event (or `filter`); returns its secret.
async fn destination(t: &TestApp, name: &str, url: &str, filter: Option<Filter>, pace: (u32, u32)) -> String {
    let filter = filter.unwrap_or_else(|| Filter::new(vec!["stripe".into()], vec![], vec![]).unwrap());
    let spec = NewDestinationSpec {
        name: name.into(),
        url: url.into(),
        filter,
        rate_per_second: pace.0,
        max_in_flight: pace.1,
    };
    forwarding::add(t.store(), &spec, chrono::Utc::now()).await.unwrap().1
}

/// Delivers `n` paid events through the webhook; their ids.
async fn paid_events(t: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = new_event_id();
        assert_eq!(t.deliver(&paid(&id, &new_payment_id(), t.contract_id)).await.status, 200);
        ids.push(id);
    }
    ids
}

/// Sweeps (as the worker does) until `name` has `n` deliveries of `status`.
async fn sweep_until(t: &TestApp, name: &str, status: &str, n: usize) -> bool {
    let svc = t.app.services.clone();
    eventually(PATIENCE, || async {
        forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
        forwarding::deliveries(t.store(), name, Some(status), (None, None), 1000).await.unwrap().len() == n
    })
    .await
}

async fn statuses(t: &TestApp, delivery: i64) -> Vec<Option<i64>> {
    let log = app::store::delivery_attempts::for_delivery(t.store(), delivery).await.unwrap();
    log.iter().map(|a| a.http_status).collect()
}

fn verifies(secret: &str, g: &Got) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", g.id, g.ts).as_bytes());
    mac.update(&g.body);
    let want = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    g.sig.split(' ').any(|s| s == want)
}

fn short_schedule(s: &mut server::config::Settings) {
    // The longest delay (2 s) caps Retry-After; the 1 s asked for is below it, so it is honoured.
    s.forwarding.schedule = [0, 20, 20, 20, 2000].map(Duration::from_millis).to_vec();
    s.forwarding.request_timeout = Duration::from_secs(5);
    s.forwarding.idle = Duration::from_secs(3);
}

async fn events_arrive_signed_byte_for_byte_after_failures_and_a_429(kind: DbKind) {
    let t = TestApp::spawn_with(kind, short_schedule).await;
    // Two 500s, then 429 asking for a second, then 200.
    let (url, got) = receiver(|nth| match nth {
        0 | 1 => (500, None),
        2 => (429, Some("1")),
        _ => (200, None),
    })
    .await;
    let spec = NewDestinationSpec {
        name: "books".into(),
        url,
        filter: Filter::new(vec!["stripe".into()], vec![], vec![]).unwrap(),
        rate_per_second: 100,
        max_in_flight: 4,
    };
    let (_, secret) = forwarding::add(t.store(), &spec, chrono::Utc::now()).await.unwrap();
    assert!(secret.starts_with("whsec_"));
    let ids: Vec<String> = (0..3).map(|_| new_event_id()).collect();
    for id in &ids {
        assert_eq!(t.deliver(&paid(id, &new_payment_id(), t.contract_id)).await.status, 200);
    }
    let svc = t.app.services.clone();
    let all_delivered = eventually(PATIENCE, || async {
        forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
        let rows = forwarding::deliveries(t.store(), "books", Some("delivered"), (None, None), 10).await.unwrap();
        rows.len() == ids.len()
    })
    .await;
    assert!(all_delivered, "every event delivered");
    let got = got.lock().unwrap().clone();
    for id in &ids {
        let mine: Vec<&Got> = got.iter().filter(|g| &g.id == id).collect();
        assert_eq!(mine.len(), 4, "{id}: two 500s, a 429, then 200");
        let stored = app::store::events::evidence(t.store(), id).await.unwrap().unwrap().payload;
        for g in &mine {
            assert!(verifies(&secret, g), "{id}: signed with our secret");
            assert_eq!(g.body.as_ref(), stored.as_slice(), "{id}: byte for byte");
            assert_eq!(g.source, "stripe");
        }
        assert!(mine[3].at - mine[2].at >= Duration::from_secs(1), "{id}: Retry-After honoured");
    }
    let rows = forwarding::deliveries(t.store(), "books", None, (None, None), 10).await.unwrap();
    for d in rows {
        assert_eq!((d.status.as_str(), d.attempts), ("delivered", 4));
        let log = app::store::delivery_attempts::for_delivery(t.store(), d.id).await.unwrap();
        let statuses: Vec<Option<i64>> = log.iter().map(|a| a.http_status).collect();
        assert_eq!(statuses, [Some(500), Some(500), Some(429), Some(200)]);
        assert_eq!(log[0].answer, "boom");
    }
}

async fn a_filter_routes_rate_card_payments_to_one_destination(kind: DbKind) {
    use app::domain::forwarding::{MetadataRule, RATE_CARD_KEYS};
    let t = TestApp::spawn_with(kind, short_schedule).await;
    let (every_url, every) = receiver(|_| (200, None)).await;
    let (card_url, card) = receiver(|_| (200, None)).await;
    let rules = RATE_CARD_KEYS.iter().map(|k| MetadataRule::parse(k).unwrap()).collect();
    let dests = [
        ("all-stripe", every_url, Filter::new(vec!["stripe".into()], vec![], vec![]).unwrap()),
        (
            "rate-card",
            card_url,
            Filter::new(vec!["stripe".into()], vec!["payment_intent.succeeded".into()], rules).unwrap(),
        ),
    ];
    for (name, url, filter) in dests {
        let spec = NewDestinationSpec { name: name.into(), url, filter, rate_per_second: 100, max_in_flight: 4 };
        forwarding::add(t.store(), &spec, chrono::Utc::now()).await.unwrap();
    }
    let card_event = new_event_id();
    let meta = serde_json::json!({"advertiserId": "7", "sizeId": "2", "publicationId": "3"});
    let partial = serde_json::json!({"advertiserId": "7", "sizeId": "2"});
    let bodies = [
        pi_event(&card_event, "payment_intent.succeeded", &new_payment_id(), meta, 5_000, "usd"),
        pi_event(&new_event_id(), "payment_intent.succeeded", &new_payment_id(), partial, 5_000, "usd"),
        paid(&new_event_id(), &new_payment_id(), t.contract_id),
    ];
    for body in &bodies {
        assert_eq!(t.deliver(body).await.status, 200);
    }
    let svc = t.app.services.clone();
    let done = eventually(PATIENCE, || async {
        forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
        every.lock().unwrap().len() == 3 && card.lock().unwrap().len() == 1
    })
    .await;
    assert!(done, "every Stripe event to one, the Rate Card payment to the other");
    assert_eq!(card.lock().unwrap()[0].id, card_event);
    let rows = forwarding::deliveries(t.store(), "rate-card", None, (None, None), 10).await.unwrap();
    assert_eq!(rows.len(), 1, "no delivery made for what the filter refused");
}

async fn a_410_disables_the_destination_and_its_deliveries_wait_for_it(kind: DbKind) {
    let t = TestApp::spawn_with(kind, short_schedule).await;
    let gone = Arc::new(AtomicBool::new(true));
    let r = switched(410, &gone).await;
    // One at a time, so the 410 is seen before any other claim.
    destination(&t, "books", &r.url, None, (100, 1)).await;
    let ids = paid_events(&t, 3).await;
    let svc = t.app.services.clone();
    let disabled = eventually(PATIENCE, || async {
        forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
        let row = forwarding::destination(t.store(), "books").await.unwrap();
        row.disabled_at.is_some() && !svc.forwarding.is_running(row.id)
    })
    .await;
    assert!(disabled, "a 410 disables the destination and its sender stops");
    let row = forwarding::destination(t.store(), "books").await.unwrap();
    assert_eq!(row.disabled_reason.as_deref(), Some("the receiver answered 410 Gone"));
    let look = forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
    assert_eq!(look.started, 0, "a disabled destination gets no sender");
    assert_eq!(r.got().len(), 1, "nothing more is sent once the receiver said 410");
    let rows = forwarding::deliveries(t.store(), "books", None, (None, None), 10).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|d| d.status == "pending"), "every delivery waits, none is dead: {rows:?}");
    let listed = forwarding::list(t.store(), chrono::Utc::now()).await.unwrap();
    assert_eq!((listed[0].pending, listed[0].delivered, listed[0].dead), (3, 0, 0));

    // The receiver is back: enabled, everything waiting goes out, the 410 stays in the log.
    gone.store(false, Ordering::SeqCst);
    forwarding::enable(t.store(), "books").await.unwrap();
    assert!(sweep_until(&t, "books", "delivered", 3).await, "every waiting delivery sent after enabling");
    assert!(forwarding::destination(t.store(), "books").await.unwrap().disabled_at.is_none());
    let first = r.got()[0].id.clone();
    assert!(ids.contains(&first));
    let d = rows.iter().find(|d| d.event_id == first).unwrap();
    assert_eq!(statuses(&t, d.id).await, [Some(410), Some(200)]);
    assert!(matches!(forwarding::enable(t.store(), "nobody").await, Err(forwarding::ForwardingError::Unknown(_))));
}

async fn dead_letters_after_the_last_attempt_are_replayed(kind: DbKind) {
    let t = TestApp::spawn_with(kind, |s| {
        short_schedule(s);
        s.forwarding.schedule = [0, 20, 20].map(Duration::from_millis).to_vec();
    })
    .await;
    let failing = Arc::new(AtomicBool::new(true));
    let r = switched(500, &failing).await;
    destination(&t, "books", &r.url, None, (100, 4)).await;
    let ids = paid_events(&t, 2).await;
    assert!(sweep_until(&t, "books", "dead", 2).await, "dead after the schedule's three attempts");
    for id in &ids {
        assert_eq!(r.count(id), 3, "{id}: three attempts, no more");
    }
    let dead = forwarding::deliveries(t.store(), "books", Some("dead"), (None, None), 10).await.unwrap();
    assert!(dead.iter().all(|d| d.attempts == 3 && d.last_error.is_some()), "{dead:?}");

    failing.store(false, Ordering::SeqCst);
    let now = chrono::Utc::now();
    // A window that holds none of them replays nothing; one that holds both replays both.
    let before = now - chrono::Duration::hours(2);
    assert_eq!(forwarding::replay_failed(t.store(), "books", before, before, now).await.unwrap(), 0);
    let hour_ago = now - chrono::Duration::hours(1);
    assert_eq!(forwarding::replay_failed(t.store(), "books", hour_ago, now, now).await.unwrap(), 2);
    assert!(sweep_until(&t, "books", "delivered", 2).await);
    for d in &dead {
        assert_eq!(statuses(&t, d.id).await, [Some(500), Some(500), Some(500), Some(200)]);
    }
    // Replaying one delivered delivery sends it once more, under the same webhook-id.
    forwarding::replay(t.store(), "books", dead[0].id, chrono::Utc::now()).await.unwrap();
    let svc = t.app.services.clone();
    let again = eventually(PATIENCE, || async {
        forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
        r.count(&dead[0].event_id) == 5
    })
    .await;
    assert!(again, "replayed once more");
    assert!(matches!(
        forwarding::replay(t.store(), "books", 999_999, chrono::Utc::now()).await,
        Err(forwarding::ForwardingError::UnknownDelivery(..))
    ));
    assert!(matches!(
        forwarding::replay_failed(t.store(), "books", now, hour_ago, now).await,
        Err(forwarding::ForwardingError::Window)
    ));
}

async fn a_paused_destination_queues_and_resumes(kind: DbKind) {
    let t = TestApp::spawn_with(kind, short_schedule).await;
    let r = receiver_with(Arc::new(|_| (200, None)), None, Duration::ZERO).await;
    destination(&t, "books", &r.url, None, (100, 4)).await;
    forwarding::set_paused(t.store(), "books", true, chrono::Utc::now()).await.unwrap();
    let ids = paid_events(&t, 2).await;
    let svc = t.app.services.clone();
    // The fan-out still queues a paused destination's events, so nothing is missed; no sender starts.
    let fanned = eventually(PATIENCE, || async {
        let look = forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
        assert_eq!(look.started, 0, "no sender for a paused destination");
        forwarding::deliveries(t.store(), "books", Some("pending"), (None, None), 10).await.unwrap().len() == 2
    })
    .await;
    assert!(fanned);
    assert!(r.got().is_empty(), "nothing sent while paused");
    forwarding::set_paused(t.store(), "books", false, chrono::Utc::now()).await.unwrap();
    assert!(sweep_until(&t, "books", "delivered", 2).await);
    let mut got: Vec<String> = r.got().into_iter().map(|g| g.id).collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want, "each sent once after resuming");
}

/// A sender is started once and sleeps between events: each sweep's fan-out wakes it (no new
/// sender), and what it made arrives without another sweep; with nothing to send for `idle`
/// (3 s here) the sender ends, and the next sweep starts one.
async fn a_sender_sleeps_between_events_and_the_fan_out_wakes_it(kind: DbKind) {
    let t = TestApp::spawn_with(kind, short_schedule).await;
    let r = receiver_with(Arc::new(|_| (200, None)), None, Duration::ZERO).await;
    destination(&t, "books", &r.url, None, (100, 4)).await;
    let svc = t.app.services.clone();
    let id = forwarding::destination(t.store(), "books").await.unwrap().id;
    let first = forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
    assert_eq!(first, forwarding::Look { fanned: 0, started: 1 });
    for round in 0..3 {
        let ids = paid_events(&t, 2).await;
        // The fan-out waits for a busy intake; these deliveries were the last.
        assert!(eventually(PATIENCE, || async { !svc.forwarding.intake_busy() }).await);
        let look = forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
        assert_eq!(look, forwarding::Look { fanned: 2, started: 0 }, "round {round}: woken, not started again");
        let arrived = eventually(PATIENCE, || async { ids.iter().all(|e| r.count(e) == 1) }).await;
        assert!(arrived, "round {round}: sent with no further sweep: {:?}", r.got().len());
        assert!(svc.forwarding.is_running(id), "round {round}: the sender sleeps, it has not ended");
    }
    assert!(eventually(PATIENCE, || async { !svc.forwarding.is_running(id) }).await, "ends after idle");
    assert_eq!(r.got().len(), 6, "each event once");
    let again = forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
    assert_eq!(again, forwarding::Look { fanned: 0, started: 1 }, "the next sweep starts one");
}

async fn a_rotated_secret_signs_beside_the_old_one_for_its_overlap(kind: DbKind) {
    let t = TestApp::spawn_with(kind, short_schedule).await;
    let r = receiver_with(Arc::new(|_| (200, None)), None, Duration::ZERO).await;
    let first = destination(&t, "books", &r.url, None, (100, 4)).await;
    let second = forwarding::rotate(t.store(), "books", chrono::Duration::hours(1), chrono::Utc::now()).await.unwrap();
    assert_ne!(first, second);
    let ids = paid_events(&t, 1).await;
    assert!(sweep_until(&t, "books", "delivered", 1).await);
    let got = r.got();
    assert_eq!(got[0].sig.split(' ').count(), 2, "one v1 per active secret: {}", got[0].sig);
    assert!(verifies(&first, &got[0]) && verifies(&second, &got[0]), "either secret verifies during the overlap");
    let listed = forwarding::list(t.store(), chrono::Utc::now()).await.unwrap();
    assert_eq!(listed[0].active_secrets, 2);

    // No overlap: the old secrets stop signing at once.
    let third = forwarding::rotate(t.store(), "books", chrono::Duration::zero(), chrono::Utc::now()).await.unwrap();
    let d = forwarding::deliveries(t.store(), "books", None, (None, None), 1).await.unwrap().remove(0);
    forwarding::replay(t.store(), "books", d.id, chrono::Utc::now()).await.unwrap();
    let svc = t.app.services.clone();
    assert!(
        eventually(PATIENCE, || async {
            forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
            r.count(&ids[0]) == 2
        })
        .await
    );
    let last = r.got().pop().unwrap();
    assert!(verifies(&third, &last) && !verifies(&first, &last) && !verifies(&second, &last), "{}", last.sig);
    assert!(matches!(
        forwarding::rotate(t.store(), "books", chrono::Duration::hours(169), chrono::Utc::now()).await,
        Err(forwarding::ForwardingError::Overlap)
    ));
}

async fn a_gateway_sources_events_are_forwarded_under_a_stable_id(kind: DbKind) {
    use app::senders::Scheme;
    let t = TestApp::spawn_with(kind, short_schedule).await;
    let source_secret =
        app::services::sources::add(t.store(), "billing", &Scheme::StandardWebhooks, None, chrono::Utc::now())
            .await
            .unwrap()
            .unwrap();
    let r = receiver_with(Arc::new(|_| (200, None)), None, Duration::ZERO).await;
    let filter = Filter::new(vec!["billing".into()], vec![], vec![]).unwrap();
    let secret = destination(&t, "erp", &r.url, Some(filter), (100, 4)).await;
    let body = r#"{"type": "invoice.paid", "data":{"amount":1500}}"#;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(source_secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("msg_1.{}.{body}", now()).as_bytes());
    let headers = [
        ("webhook-id", "msg_1".to_string()),
        ("webhook-timestamp", now().to_string()),
        ("webhook-signature", format!("v1,{}", b64.encode(mac.finalize().into_bytes()))),
    ];
    assert_eq!(t.post("/webhooks/billing", &headers, body).await.status, 200);
    paid_events(&t, 1).await;
    assert!(sweep_until(&t, "erp", "delivered", 1).await);
    let stored = app::store::gateway_events::get(t.store(), "billing", "msg_1").await.unwrap().unwrap();
    let got = r.got();
    assert_eq!(got.len(), 1, "only the source it subscribes to");
    assert_eq!(got[0].id, format!("billing:{}", stored.id), "our row's id, stable across attempts");
    assert_eq!((got[0].source.as_str(), got[0].body.as_ref()), ("billing", body.as_bytes()));
    assert!(verifies(&secret, &got[0]));
    let unknown = NewDestinationSpec {
        name: "other".into(),
        url: r.url.clone(),
        filter: Filter::new(vec!["nobody".into()], vec![], vec![]).unwrap(),
        rate_per_second: 10,
        max_in_flight: 1,
    };
    assert!(matches!(
        forwarding::add(t.store(), &unknown, chrono::Utc::now()).await,
        Err(forwarding::ForwardingError::UnknownSource(_))
    ));
}

async fn two_processes_deliver_each_event_once(kind: DbKind) {
    let t = TestApp::spawn_with(kind, short_schedule).await;
    let r = receiver_with(Arc::new(|_| (200, None)), None, Duration::ZERO).await;
    destination(&t, "books", &r.url, None, (1000, 8)).await;
    let db = app::store::Db::connect(&t.db.url, &Default::default()).await.unwrap();
    let mut other = server::services(&settings(&t.db.url), db, t.app.mode);
    std::sync::Arc::make_mut(&mut other.settings).forwarding = t.app.services.settings.forwarding.clone();
    let ids = paid_events(&t, 30).await;
    let svc = t.app.services.clone();
    let done = eventually(PATIENCE, || async {
        let now = chrono::Utc::now();
        let (a, b) = tokio::join!(forwarding::work(&svc, now), forwarding::work(&other, now));
        a.unwrap();
        b.unwrap();
        forwarding::deliveries(t.store(), "books", Some("delivered"), (None, None), 100).await.unwrap().len() == 30
    })
    .await;
    assert!(done);
    for id in &ids {
        assert_eq!(r.count(id), 1, "{id}: once, though both processes fanned out and sent");
    }
    assert_eq!(r.got().len(), 30);
}

async fn a_slow_destination_delays_neither_another_nor_intake(kind: DbKind) {
    let t = TestApp::spawn_with(kind, |s| {
        short_schedule(s);
        s.forwarding.request_timeout = Duration::from_secs(60);
    })
    .await;
    let (release, held) = tokio::sync::watch::channel(false);
    let slow = receiver_with(Arc::new(|_| (200, None)), Some(held), Duration::ZERO).await;
    let fast = receiver_with(Arc::new(|_| (200, None)), None, Duration::ZERO).await;
    destination(&t, "slow", &slow.url, None, (100, 2)).await;
    destination(&t, "fast", &fast.url, None, (100, 2)).await;
    paid_events(&t, 4).await;
    assert!(sweep_until(&t, "fast", "delivered", 4).await, "the fast destination gets everything");
    // Intake answers while the slow receiver holds its requests, and the fast one gets that too.
    paid_events(&t, 1).await;
    assert!(sweep_until(&t, "fast", "delivered", 5).await);
    assert!(!slow.got().is_empty(), "the slow receiver has requests in hand");
    let none = forwarding::deliveries(t.store(), "slow", Some("delivered"), (None, None), 10).await.unwrap();
    assert!(none.is_empty(), "the slow one has finished nothing yet");
    release.send(true).unwrap();
    assert!(sweep_until(&t, "slow", "delivered", 5).await, "and all of it once it answers");
}

async fn deliveries_keep_to_the_destinations_rate_and_concurrency(kind: DbKind) {
    let t = TestApp::spawn_with(kind, short_schedule).await;
    // Five a second: six deliveries take at least a second from the first to the last.
    let paced = receiver_with(Arc::new(|_| (200, None)), None, Duration::ZERO).await;
    destination(&t, "paced", &paced.url, None, (5, 8)).await;
    // Two at once, against a receiver that takes 100 ms an answer.
    let narrow = receiver_with(Arc::new(|_| (200, None)), None, Duration::from_millis(100)).await;
    destination(&t, "narrow", &narrow.url, None, (1000, 2)).await;
    paid_events(&t, 6).await;
    assert!(sweep_until(&t, "paced", "delivered", 6).await);
    assert!(sweep_until(&t, "narrow", "delivered", 6).await);
    let mut at: Vec<Instant> = paced.got().iter().map(|g| g.at).collect();
    at.sort();
    // 5 gaps of 200 ms; a little slack for the loopback's jitter.
    assert!(at[5] - at[0] >= Duration::from_millis(900), "six at five a second: {:?}", at[5] - at[0]);
    assert_eq!(narrow.most_at_once.load(Ordering::SeqCst), 2, "two at once, never more");
}

async fn the_cli_manages_destinations_and_their_deliveries(kind: DbKind) {
    let t = TestApp::spawn_with(kind, short_schedule).await;
    let r = receiver_with(Arc::new(|_| (200, None)), None, Duration::ZERO).await;
    let url = t.db.url.clone();
    let ok = |args: &[&str]| {
        let out = run_cli(&url, args, &[]);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let refused = |args: &[&str]| {
        let out = run_cli(&url, args, &[]);
        assert!(!out.status.success(), "{args:?} refused");
        String::from_utf8(out.stderr).unwrap()
    };
    let added = ok(&["destinations", "add", "rate-card", "--url", &r.url, "--source", "stripe", "--rate-card"]);
    assert!(added.contains("whsec_"), "{added}");
    let secret = added.split_whitespace().find(|w| w.starts_with("whsec_")).unwrap().to_string();
    assert!(refused(&["destinations", "add", "far", "--url", "http://example.com/hook", "--source", "stripe"])
        .contains("https"));
    assert!(refused(&["destinations", "add", "rate-card", "--url", &r.url, "--source", "stripe"]).contains("exists"));
    assert!(refused(&["destinations", "add", "x", "--url", &r.url, "--source", "nobody"]).contains("nobody"));
    ok(&["destinations", "pause", "rate-card"]);
    assert!(ok(&["destinations", "list"]).contains("paused"));
    let meta = serde_json::json!({"advertiserId": "7", "sizeId": "2", "publicationId": "3"});
    let card = new_event_id();
    let body = pi_event(&card, "payment_intent.succeeded", &new_payment_id(), meta, 5_000, "usd");
    assert_eq!(t.deliver(&body).await.status, 200);
    let svc = t.app.services.clone();
    forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
    let pending = ok(&["destinations", "deliveries", "rate-card", "--status", "pending"]);
    assert!(pending.contains(&card), "{pending}");
    ok(&["destinations", "resume", "rate-card"]);
    assert!(sweep_until(&t, "rate-card", "delivered", 1).await);
    assert!(verifies(&secret, &r.got()[0]));
    let listed = ok(&["destinations", "list"]);
    assert!(listed.contains("sending") && listed.contains("1 delivered"), "{listed}");
    let shown = ok(&["destinations", "deliveries", "rate-card", "--attempts"]);
    assert!(shown.contains("delivered") && shown.contains(" 200 "), "{shown}");
    let id = shown.split_whitespace().next().unwrap().to_string();
    ok(&["destinations", "replay", "rate-card", &id]);
    assert!(
        eventually(PATIENCE, || async {
            forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
            r.count(&card) == 2
        })
        .await,
        "replayed from the CLI"
    );
    assert!(ok(&["destinations", "replay-failed", "rate-card", "--since", "2026-01-01"]).contains("0 failed"));
    let rotated = ok(&["destinations", "rotate", "rate-card", "--overlap-hours", "2"]);
    assert!(rotated.contains("whsec_") && !rotated.contains(&secret), "{rotated}");
    assert!(ok(&["destinations", "list"]).contains("2 active secret(s)"));
    assert!(refused(&["destinations", "deliveries", "rate-card", "--status", "lost"]).contains("pending, failing"));
    assert!(refused(&["destinations", "pause", "nobody"]).contains("no destination named nobody"));
}

async fn admins_see_and_steer_a_destination_from_its_page(kind: DbKind) {
    use crate::web::{Site, ADMIN, ANN, BOB};
    let site = Site::start_with(kind, |s| {
        s.stripe.webhook_secrets = vec![app::stripe::WebhookSecret::parse(SECRET).unwrap()];
        short_schedule(s);
        s.forwarding.schedule = [0, 20, 20].map(Duration::from_millis).to_vec();
    })
    .await;
    let svc = site.app.services.clone();
    let failing = Arc::new(AtomicBool::new(true));
    let r = switched(500, &failing).await;
    let spec = NewDestinationSpec {
        name: "books".into(),
        url: r.url.clone(),
        filter: Filter::new(vec!["stripe".into()], vec!["payment_intent.".into()], vec![]).unwrap(),
        rate_per_second: 10,
        max_in_flight: 2,
    };
    forwarding::add(&svc.db, &spec, chrono::Utc::now()).await.unwrap();
    let event = new_event_id();
    let body = paid(&event, &new_payment_id(), site.contract_of(ANN.0).await);
    let req = hyper::Request::post(format!("{}/webhooks/stripe", site.app.url()))
        .header("content-type", "application/json")
        .header("stripe-signature", sign(&body, SECRET, now()));
    assert_eq!(site.send(req, body.clone()).await.status, 200);
    let sweep_until = |status: &'static str| {
        let svc = svc.clone();
        async move {
            eventually(PATIENCE, || async {
                forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
                forwarding::deliveries(&svc.db, "books", Some(status), (None, None), 10).await.unwrap().len() == 1
            })
            .await
        }
    };
    assert!(sweep_until("dead").await);

    let bob = site.sign_in(BOB, None).await;
    assert_eq!(site.get("/admin/destinations", Some(&bob)).await.status, 403);
    let admin = site.sign_in(ADMIN, None).await;
    let list = site.get("/admin/destinations", Some(&admin)).await;
    assert_eq!(list.status, 200);
    for shown in ["books", r.url.as_str(), "stripe · types payment_intent.", "Forwarding"] {
        assert!(list.body.contains(shown), "{shown}: {}", list.body);
    }
    let dead = site.get("/admin/destinations/books?status=dead", Some(&admin)).await;
    for shown in [event.as_str(), " · 500 · ", "boom", "dead"] {
        assert!(dead.body.contains(shown), "{shown}: {}", dead.body);
    }
    let none = site.get("/admin/destinations/books?status=delivered", Some(&admin)).await;
    assert!(none.body.contains("No deliveries match.") && !none.body.contains(event.as_str()), "{}", none.body);
    let bad = site.get("/admin/destinations/books?status=lost", Some(&admin)).await;
    assert!(bad.body.contains("pending, failing, delivered or dead"), "{}", bad.body);
    assert_eq!(site.get("/admin/destinations/nobody", Some(&admin)).await.status, 404);

    let post = |cookie: &str, path: &str, form: &str| {
        let req = hyper::Request::post(format!("{}/admin/destinations/books/{path}", site.app.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", site.origin())
            .header("cookie", cookie.to_string());
        (req, Bytes::from(form.to_string()))
    };
    let (req, form) = post(&bob, "pause", "");
    assert_eq!(site.send(req, form).await.status, 403);
    assert!(forwarding::destination(&svc.db, "books").await.unwrap().paused_at.is_none(), "bob changed nothing");

    // Replay every failed delivery of a window, with the receiver back.
    failing.store(false, Ordering::SeqCst);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (req, form) = post(&admin, "replay-failed", &format!("from=2026-01-01&to={today}"));
    let a = site.send(req, form).await;
    assert_eq!((a.status, a.location()), (303, "/admin/destinations/books"));
    let page = site.get("/admin/destinations/books", Some(&admin)).await;
    assert!(page.body.contains("1 failed or dead deliveries of books are due again."), "{}", page.body);
    assert!(sweep_until("delivered").await);
    let page = site.get("/admin/destinations/books", Some(&admin)).await;
    assert!(page.body.contains(" · 200 · "), "the log shows the delivery: {}", page.body);

    // Pause, then resume.
    let (req, form) = post(&admin, "pause", "");
    assert_eq!(site.send(req, form).await.status, 303);
    let page = site.get("/admin/destinations/books", Some(&admin)).await;
    assert!(page.body.contains("paused since") && page.body.contains(">Resume<"), "{}", page.body);
    let (req, form) = post(&admin, "resume", "");
    site.send(req, form).await;
    assert!(forwarding::destination(&svc.db, "books").await.unwrap().sending());

    // Replay one delivery: it goes out again.
    let id = forwarding::deliveries(&svc.db, "books", None, (None, None), 1).await.unwrap()[0].id;
    let (req, form) = post(&admin, &format!("deliveries/{id}/replay"), "");
    assert_eq!(site.send(req, form).await.status, 303);
    let again = eventually(PATIENCE, || async {
        forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
        r.count(&event) == 5
    })
    .await;
    assert!(again, "three 500s, the 200 after the replay of the window, and this one");

    // Rotate: the new secret is shown once; a bad overlap is refused with why.
    let (req, form) = post(&admin, "rotate", "overlap_hours=2");
    site.send(req, form).await;
    let page = site.get("/admin/destinations/books", Some(&admin)).await;
    assert!(page.body.contains("whsec_") && page.body.contains("for 2 hour(s)"), "{}", page.body);
    assert_eq!(forwarding::list(&svc.db, chrono::Utc::now()).await.unwrap()[0].active_secrets, 2);
    let (req, form) = post(&admin, "rotate", "overlap_hours=a-week");
    site.send(req, form).await;
    let page = site.get("/admin/destinations/books", Some(&admin)).await;
    assert!(page.body.contains("the overlap is 0 to 168 hours"), "{}", page.body);
    let (req, form) = post(&admin, "replay-failed", "from=2026-02-01&to=2026-01-01");
    site.send(req, form).await;
    let page = site.get("/admin/destinations/books", Some(&admin)).await;
    assert!(page.body.contains("must be after"), "a backwards window is refused: {}", page.body);
}

/// The add form on the Forwarding page: an advertiser is refused; a refused form says why and
/// comes back filled in as typed; an accepted one makes the destination (the Rate Card's
/// filter here) and shows its secret once, on its page, and events then reach it.
async fn admins_add_a_destination_from_the_page(kind: DbKind) {
    use crate::web::{Site, ADMIN, BOB};
    let site = Site::start_with(kind, |s| {
        s.stripe.webhook_secrets = vec![app::stripe::WebhookSecret::parse(SECRET).unwrap()];
        short_schedule(s);
    })
    .await;
    let svc = site.app.services.clone();
    let r = receiver_with(Arc::new(|_| (200, None)), None, Duration::ZERO).await;
    let post = |cookie: &str, form: String| {
        let req = hyper::Request::post(format!("{}/admin/destinations", site.app.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", site.origin())
            .header("cookie", cookie.to_string());
        (req, Bytes::from(form))
    };
    let form = |name: &str, sources: &str, rate: &str| {
        let mut f = form_urlencoded::Serializer::new(String::new());
        f.append_pair("name", name)
            .append_pair("url", &r.url)
            .append_pair("sources", sources)
            .append_pair("type_prefixes", "")
            .append_pair("metadata", "")
            .append_pair("rate_card", "on")
            .append_pair("rate", rate)
            .append_pair("in_flight", "2");
        f.finish()
    };

    let bob = site.sign_in(BOB, None).await;
    let (req, body) = post(&bob, form("books", "stripe", "10"));
    assert_eq!(site.send(req, body).await.status, 403);
    assert!(forwarding::list(&svc.db, chrono::Utc::now()).await.unwrap().is_empty(), "bob added nothing");

    let admin = site.sign_in(ADMIN, None).await;
    for (bad, why) in [
        (form("books", "stripe", "0"), "the rate is 1 to 1000 a second"),
        (form("books", "paypal-main", "10"), "no source named paypal-main"),
        (form("Books!", "stripe", "10"), "lowercase"),
    ] {
        let (req, body) = post(&admin, bad);
        let a = site.send(req, body).await;
        assert_eq!(a.status, 303);
        assert!(a.location().starts_with("/admin/destinations?name="), "{}", a.location());
        let page = site.get(a.location(), Some(&admin)).await;
        assert!(page.body.contains(why), "{why}: {}", page.body);
        assert!(page.body.contains(&format!("value=\"{}\"", r.url)), "the form comes back as typed: {}", page.body);
    }
    assert!(forwarding::list(&svc.db, chrono::Utc::now()).await.unwrap().is_empty(), "nothing refused was added");

    let (req, body) = post(&admin, form("books", "stripe", "10"));
    let a = site.send(req, body).await;
    assert_eq!((a.status, a.location()), (303, "/admin/destinations/books"));
    let page = site.get("/admin/destinations/books", Some(&admin)).await;
    let secret = page.body.split("give it to the receiver): ").nth(1).and_then(|s| s.split('<').next());
    let secret = secret.unwrap_or_else(|| panic!("the secret is shown: {}", page.body)).to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let again = site.get("/admin/destinations/books", Some(&admin)).await;
    assert!(!again.body.contains(&secret), "shown once");
    let row = forwarding::destination(&svc.db, "books").await.unwrap();
    assert_eq!((row.rate_per_second, row.max_in_flight), (10, 2));
    let filter = forwarding::filter_of(&row).unwrap();
    assert_eq!(filter.type_prefixes, vec!["payment_intent.succeeded".to_string()]);
    assert_eq!(filter.metadata.len(), 3, "the Rate Card's keys: {filter:?}");

    // A Rate Card payment reaches it, signed with the secret the page showed.
    let event = new_event_id();
    let meta = serde_json::json!({"advertiserId": "7", "sizeId": "2", "publicationId": "3"});
    let body = pi_event(&event, "payment_intent.succeeded", &new_payment_id(), meta, 5_000, "usd");
    let req = hyper::Request::post(format!("{}/webhooks/stripe", site.app.url()))
        .header("content-type", "application/json")
        .header("stripe-signature", sign(&body, SECRET, now()));
    assert_eq!(site.send(req, body.clone()).await.status, 200);
    let arrived = eventually(PATIENCE, || async {
        forwarding::work(&svc, chrono::Utc::now()).await.unwrap();
        r.count(&event) == 1
    })
    .await;
    assert!(arrived, "the Rate Card payment is forwarded");
    assert!(r.got().iter().all(|g| verifies(&secret, g)));
}
