//! Forwarding in the benchmark: receivers that answer at once and count what they got (each on
//! 127.0.0.1:0, on a thread and runtime of their own, like another machine's server would be),
//! destinations pointed at them, and the worker's forwarding step driven as the worker drives it.
use app::domain::forwarding::Filter;
use app::services::forwarding::{self, NewDestinationSpec};
use app::services::Services;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the benchmark runs the worker's forwarding step (`WORKER_INTERVAL_SECS=1`).
pub const SWEEP: Duration = Duration::from_secs(1);

/// `n` receivers answering 204 to every POST at once.
pub struct Sinks {
    pub urls: Vec<String>,
    ids: Vec<Arc<Mutex<HashSet<String>>>>,
    requests: Arc<AtomicUsize>,
}

impl Sinks {
    pub fn start(n: usize) -> Self {
        let requests = Arc::new(AtomicUsize::new(0));
        let ids: Vec<Arc<Mutex<HashSet<String>>>> = (0..n).map(|_| Arc::default()).collect();
        let listeners: Vec<std::net::TcpListener> = (0..n)
            .map(|_| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port for a receiver");
                l.set_nonblocking(true).expect("non-blocking");
                l
            })
            .collect();
        let urls = listeners.iter().map(|l| format!("http://{}/hook", l.local_addr().unwrap())).collect();
        let (counted, seen) = (requests.clone(), ids.clone());
        // Lives as long as the benchmark: a receiver for each run, a handful in all.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            rt.block_on(async move {
                for (listener, seen) in listeners.into_iter().zip(seen) {
                    let counted = counted.clone();
                    let app = axum::Router::new().route(
                        "/hook",
                        // The body is read, as a receiver would (and so the connection is kept).
                        axum::routing::post(move |headers: axum::http::HeaderMap, _body: axum::body::Bytes| {
                            let (counted, seen) = (counted.clone(), seen.clone());
                            async move {
                                let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                                seen.lock().unwrap().insert(id.to_string());
                                counted.fetch_add(1, Ordering::Relaxed);
                                axum::http::StatusCode::NO_CONTENT
                            }
                        }),
                    );
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
                }
                std::future::pending::<()>().await;
            });
        });
        Self { urls, ids, requests }
    }

    /// Requests received, every receiver together.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Distinct webhook-ids each receiver got.
    pub fn distinct(&self) -> Vec<usize> {
        self.ids.iter().map(|s| s.lock().unwrap().len()).collect()
    }
}

/// A destination per receiver, taking every Stripe event, at the fastest pace a destination
/// may have (a fast receiver of the publisher's own); paused when asked (events queue for it).
pub async fn destinations(db: &app::store::Db, sinks: &Sinks, paused: bool) -> Vec<String> {
    let mut names = Vec::new();
    for (i, url) in sinks.urls.iter().enumerate() {
        let spec = NewDestinationSpec {
            name: format!("sink-{i}"),
            url: url.clone(),
            filter: Filter::new(vec!["stripe".into()], vec![], vec![]).unwrap(),
            rate_per_second: forwarding::MAX_RATE_PER_SECOND,
            max_in_flight: 16,
        };
        let (row, _) = forwarding::add(db, &spec, chrono::Utc::now()).await.expect("a bench destination");
        if paused {
            forwarding::set_paused(db, &row.name, true, chrono::Utc::now()).await.unwrap();
        }
        names.push(row.name);
    }
    names
}

/// Runs the worker's forwarding step every [`SWEEP`] until `stop`, as the worker would; the
/// deliveries its fan-out made.
pub fn drive(svc: Services, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut fanned = 0;
        while !stop.load(Ordering::Relaxed) {
            fanned += forwarding::work(&svc, chrono::Utc::now()).await.expect("the forwarding step").fanned;
            tokio::time::sleep(SWEEP).await;
        }
        fanned
    })
}
