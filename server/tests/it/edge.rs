//! The HTTP edge under abuse and at shutdown: slow and idle connections are closed and cannot
//! starve deliveries, a stalled or abandoned body is not "too large", a refused body is drained
//! within bounds, and SIGTERM drains.
use crate::helpers::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or resets it); false if it stays open.
async fn closed_by_server(c: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(REQUEST_TIMEOUT, c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // a response (an error page) before the close
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_and_cannot_starve_deliveries() {
    let t = TestApp::spawn_with(DbKind::Sqlite, |s| {
        s.connections.header_timeout = Duration::from_millis(500);
        s.connections.max_connections = 50;
    })
    .await;
    // Four times the cap, each sending half a request head and then nothing.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut c = TcpStream::connect(t.app.addr).await.unwrap();
        c.write_all(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: appl").await.unwrap();
        slow.push(c);
    }
    // A real delivery still gets its answer: the head timeout frees the slots they hold.
    let event = new_event_id();
    let reply = t.deliver(&paid(&event, &new_payment_id(), t.contract_id)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(t.available().await, 5);
    for c in slow.iter_mut() {
        assert!(closed_by_server(c).await, "a half-sent head is not held open");
    }
    // A keep-alive connection that went quiet after its request is closed too.
    let mut idle = TcpStream::connect(t.app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "answered first");
    assert!(closed_by_server(&mut idle).await, "idle keep-alive ends");
}

fn rejected(metrics: &str, reason: &str) -> u64 {
    let line = format!("revision_store_webhook_rejected_total{{reason=\"{reason}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&line)).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn a_stalled_or_abandoned_body_is_incomplete_not_too_large() {
    let t = TestApp::spawn_with(DbKind::Sqlite, |s| s.connections.body_timeout = Duration::from_millis(300)).await;
    let head =
        "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n";
    // Stalls after a few bytes: the body timeout ends it with 400.
    let mut stalled = TcpStream::connect(t.app.addr).await.unwrap();
    stalled.write_all(format!("{head}{{\"id\":").as_bytes()).await.unwrap();
    let mut answer = String::new();
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, stalled.read_to_string(&mut answer)).await.expect("answered");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("request body incomplete"), "{answer}");
    // Hangs up mid-body.
    let mut gone = TcpStream::connect(t.app.addr).await.unwrap();
    gone.write_all(format!("{head}{{\"id\":").as_bytes()).await.unwrap();
    drop(gone);
    let counted = eventually(REQUEST_TIMEOUT, || async {
        let metrics = t.metrics().await;
        rejected(&metrics, "incomplete_body") == 2
    })
    .await;
    assert!(counted, "both counted as incomplete bodies");
    let metrics = t.metrics().await;
    assert_eq!(rejected(&metrics, "too_large"), 0, "{metrics}");
}

/// A refused request's unread body is read before the connection closes (so a client still
/// sending gets the answer, not a reset: `web::an_upload_refused_while_it_streams_in_…`), but
/// not for ever: a client that goes quiet, or that keeps dribbling bytes, is let go.
#[tokio::test]
async fn a_refused_body_is_read_for_a_while_not_for_ever() {
    // The body timeout out of the way: only the drain's own bounds can end these.
    let t = TestApp::spawn_with(DbKind::Sqlite, |s| s.connections.body_timeout = Duration::from_secs(600)).await;
    // Cross-site: refused before the body is read at all.
    let head = format!(
        "POST /contracts/{}/revisions HTTP/1.1\r\nHost: {}\r\nOrigin: http://evil.example\r\n\
         Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 10000000\r\n\r\n",
        t.contract_id, t.app.addr
    );
    // Goes quiet after a few bytes: answered, and closed.
    let mut quiet = TcpStream::connect(t.app.addr).await.unwrap();
    quiet.write_all(format!("{head}--x\r\n").as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(REQUEST_TIMEOUT, quiet.read_to_end(&mut answer)).await;
    assert!(matches!(read, Ok(Ok(_))), "answered and closed: {read:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    // Keeps sending a little at a time, never finishing: the connection still ends.
    let dribble = TcpStream::connect(t.app.addr).await.unwrap();
    let (mut from_server, mut to_server) = dribble.into_split();
    to_server.write_all(head.as_bytes()).await.unwrap();
    let sender = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        loop {
            ticks.tick().await;
            if to_server.write_all(&[b'a'; 100]).await.is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 1024];
    let ended = tokio::time::timeout(REQUEST_TIMEOUT, async {
        loop {
            match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    sender.abort();
    assert!(ended.is_ok(), "a client dribbling a body for ever is let go");
}

/// The real binary serving a fresh SQLite database in `dir`, with `env` added.
async fn start_binary(dir: &std::path::Path, env: &[(&str, &str)]) -> (ServeProcess, String) {
    let server = ServeProcess::start(&format!("sqlite:{}", dir.join("serve.db").display()), dir, env).await;
    let base = server.base.clone();
    (server, base)
}

/// SIGTERM during webhook load, against the real binary: it stops taking connections, answers
/// what is in flight, and exits 0; every delivery it answered 2xx is stored. Its logs are JSON
/// lines (LOG_FORMAT=json), one object per line.
#[tokio::test]
async fn sigterm_drains_without_losing_an_answered_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = start_binary(dir.path(), &[("LOG_FORMAT", "json")]).await;
    let answered_ok = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::<String>::new()));
    let mut senders = Vec::new();
    for _ in 0..4 {
        let (base, ok) = (base.clone(), answered_ok.clone());
        senders.push(tokio::spawn(async move {
            let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
            for _ in 0..5_000 {
                let event = new_event_id();
                let body = pi_event(
                    &event,
                    "payment_intent.succeeded",
                    &new_payment_id(),
                    serde_json::json!({}),
                    15_000,
                    "usd",
                );
                let req = hyper::Request::post(format!("{base}/webhooks/stripe"))
                    .header("content-type", "application/json")
                    .header("stripe-signature", sign(&body, SECRET, now()))
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .unwrap();
                match http.request(req).await {
                    Ok(res) if res.status().is_success() => ok.lock().await.push(event),
                    Ok(_) => {}
                    Err(_) => return, // the listener is closed: the server is stopping
                }
            }
        }));
    }
    // Under load: some deliveries answered, then SIGTERM.
    assert!(eventually(REQUEST_TIMEOUT, || async { answered_ok.lock().await.len() >= 50 }).await);
    let (status, log) = server.terminate().await;
    for s in senders {
        s.await.unwrap();
    }
    assert!(status.success(), "a clean exit, not killed by the signal: {status:?}\n{log}");
    assert!(log.contains("draining in-flight requests") && log.contains("\"stopped\""), "{log}");
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }

    let url = format!("sqlite:{}", dir.path().join("serve.db").display());
    let db = app::store::Db::connect(&url, &Default::default()).await.unwrap();
    let ok = answered_ok.lock().await;
    for event in ok.iter() {
        assert!(
            app::store::events::summary(&db, event).await.unwrap().is_some(),
            "{event} was answered 2xx but not stored"
        );
    }
    assert!(ok.len() >= 50);
}

/// Logs written to a pipe or file carry no terminal colour codes; an unknown LOG_FORMAT stops
/// start-up with the reason.
#[tokio::test]
async fn logs_off_a_terminal_are_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = start_binary(dir.path(), &[]).await;
    // A refused cross-site form logs a warning inside the request: the line carries the id the
    // proxy in front gave the request, and so does the answer.
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = hyper::Request::post(format!("{base}/admin/reconciliation/run"))
        .header("origin", "https://evil.example")
        .header("x-request-id", "lb-4711")
        .body(Default::default())
        .unwrap();
    let res = http.request(req).await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["x-request-id"], "lb-4711");
    let res =
        http.request(hyper::Request::get(format!("{base}/healthz")).body(Default::default()).unwrap()).await.unwrap();
    assert!(res.headers().contains_key("x-request-id"), "made here when none came");
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
    assert!(log.contains("stopped") && !log.contains('\u{1b}'), "{log:?}");
    let line = log.lines().find(|l| l.contains("refused a cross-site write")).expect("the warning");
    assert!(line.contains("request{id=lb-4711 method=POST path=/admin/reconciliation/run}"), "{line}");
    let out = run_cli("sqlite::memory:", &["serve"], &[("LOG_FORMAT", "yaml")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LOG_FORMAT must be text or json"));
}

/// A client bound to `local` (another loopback address than the tests' 127.0.0.1).
fn client_from(
    local: &str,
) -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
> {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_local_address(Some(local.parse().unwrap()));
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector)
}

/// One request from `http`: its status, within the tests' patience.
async fn status_of(
    http: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
    req: hyper::http::request::Builder,
    body: String,
) -> u16 {
    use http_body_util::BodyExt;
    let res = http.request(req.body(http_body_util::Full::new(bytes::Bytes::from(body))).unwrap());
    let res = tokio::time::timeout(REQUEST_TIMEOUT, res).await.expect("the server answers").expect("request");
    let status = res.status().as_u16();
    let _ = res.into_body().collect().await;
    status
}

/// A connection from 127.0.0.1 that sends a webhook's head announcing 1 MiB, then one byte of
/// it every 100 ms (each well inside the body timeout between chunks), for at most a minute.
/// Counts itself in `closed` when the server closes it.
async fn trickle(addr: std::net::SocketAddr, closed: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let Ok(c) = TcpStream::connect(addr).await else {
        closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return;
    };
    let (mut from_server, mut to_server) = c.into_split();
    let head = "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 1048576\r\n\r\n";
    // Whether the server closed it (a write failed) before the minute was over.
    let sending = async {
        if to_server.write_all(head.as_bytes()).await.is_err() {
            return true;
        }
        for _ in 0..600 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if to_server.write_all(b"{").await.is_err() {
                return true;
            }
        }
        false
    };
    let mut buf = [0u8; 256];
    let close = async {
        loop {
            match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    let was_closed = tokio::select! {
        _ = close => true,
        failed = sending => failed,
    };
    if was_closed {
        closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Forty clients on 127.0.0.1 trickle webhook bodies a byte at a time (never stalling long
/// enough for the body timeout), more than the server's connections. One address holds at most
/// its share (8 here): the rest are closed as they are accepted, and deliveries and `/healthz`
/// from another client (127.0.0.2) keep answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_bodies_cannot_hold_every_connection() {
    let t = TestApp::spawn_with(DbKind::Sqlite, |s| {
        s.connections.max_connections = 24;
        s.connections.max_connections_per_client = Some(8);
        s.connections.body_timeout = Duration::from_secs(5);
    })
    .await;
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let attackers: Vec<_> = (0..40).map(|_| tokio::spawn(trickle(t.app.addr, closed.clone()))).collect();
    let refused = eventually(PATIENCE, || async { closed.load(std::sync::atomic::Ordering::Relaxed) >= 32 }).await;
    assert!(
        refused,
        "connections past the client's share are closed: {} closed",
        closed.load(std::sync::atomic::Ordering::Relaxed)
    );
    let other = client_from("127.0.0.2");
    for _ in 0..3 {
        let body = paid(&new_event_id(), &new_payment_id(), t.contract_id);
        let req = hyper::Request::post(format!("{}/webhooks/stripe", t.app.url()))
            .header("content-type", "application/json")
            .header("stripe-signature", sign(&body, SECRET, now()));
        assert_eq!(status_of(&other, req, body).await, 200, "a delivery from another client");
    }
    assert_eq!(t.available().await, 9);
    let health = hyper::Request::get(format!("{}/healthz", t.app.url()));
    assert_eq!(status_of(&other, health, String::new()).await, 200);
    assert!(closed.load(std::sync::atomic::Ordering::Relaxed) <= 32, "the client's share is served");
    for a in attackers {
        a.abort();
    }
}

/// A body trickled a byte at a time, each inside the body timeout between chunks, is cut at the
/// body's deadline: 408, and the connection closes.
#[tokio::test]
async fn a_trickled_body_is_cut_at_its_deadline() {
    let t = TestApp::spawn_with(DbKind::Sqlite, |s| {
        s.connections.body_timeout = Duration::from_secs(5);
        s.connections.body_deadlines.body = Duration::from_secs(1);
    })
    .await;
    let c = TcpStream::connect(t.app.addr).await.unwrap();
    let (mut from_server, mut to_server) = c.into_split();
    to_server
        .write_all(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n")
        .await
        .unwrap();
    let sender = tokio::spawn(async move {
        for _ in 0..600 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if to_server.write_all(b"{").await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(REQUEST_TIMEOUT, from_server.read_to_end(&mut answer)).await;
    sender.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(matches!(read, Ok(Ok(_))), "answered and closed: {read:?} {answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
}

/// The same over HTTP/2 (prior knowledge, as hyper serves it on the same port), where a body
/// may come with neither Content-Length nor Transfer-Encoding: still cut at its deadline.
#[tokio::test]
async fn a_trickled_http2_body_without_a_length_is_cut_at_its_deadline() {
    use futures_util::StreamExt;
    let t = TestApp::spawn_with(DbKind::Sqlite, |s| {
        s.connections.body_timeout = Duration::from_secs(5);
        s.connections.body_deadlines.body = Duration::from_secs(1);
    })
    .await;
    let stream = TcpStream::connect(t.app.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    // A byte every 50 ms, for at most 30 s.
    let trickle = Box::pin(
        futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((Ok::<_, std::convert::Infallible>(http_body::Frame::data(bytes::Bytes::from_static(b"{"))), ()))
        })
        .take(600),
    );
    let req = hyper::Request::post(format!("{}/webhooks/stripe", t.app.url()))
        .header("content-type", "application/json")
        .body(http_body_util::StreamBody::new(trickle))
        .unwrap();
    assert!(req.headers().get("content-length").is_none());
    let res = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(req)).await.expect("answered").unwrap();
    assert_eq!(res.status(), 408);
}
