//! The HTTP server loop. `axum::serve` sets no timeouts and no connection cap: a connection that
//! sends half a request head and then nothing was held for ever, and a few thousand of them
//! used up the process's file descriptors until valid webhook deliveries and `/healthz` timed
//! out. Here every connection is bounded:
//! - a request head must arrive within `header_timeout`; hyper starts that clock whenever it
//!   waits for a head, so the same limit ends idle keep-alive connections;
//! - a request body must keep arriving (`body_timeout` between chunks, `tower_http`'s
//!   `RequestBodyTimeoutLayer` in the router) and must be complete within its deadline
//!   (`body_deadline`, in the router: that clock never restarts, so a body trickled a byte at a
//!   time ends too; 408);
//! - at most `max_connections` are open at once; beyond that, new ones wait in the kernel's
//!   accept queue until a slot frees, which the limits above guarantee within a deadline;
//! - at most `max_connections_per_client` of them come from one address: one more is closed
//!   as soon as it is accepted, so one client (however slowly it sends) cannot hold the slots
//!   everyone else needs. Off behind a reverse proxy (`CLIENT_IP_HEADER`), where every peer is
//!   the proxy;
//! - on shutdown the listener closes, in-flight requests finish (up to `drain_timeout`), idle
//!   connections close.
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    /// Connections one client address may hold open at once; None: no such cap (behind a
    /// proxy, or where tests and benchmarks send everything from one address).
    pub max_connections_per_client: Option<usize>,
    /// How long a whole request body may take (`body_deadline`).
    pub body_deadlines: crate::application::middleware::body_deadline::BodyDeadlines,
    pub drain_timeout: Duration,
}

/// Connections one client address may hold by default (`MAX_CONNECTIONS_PER_CLIENT`): far more
/// than a browser opens (six per host) or Stripe uses, a twelfth of `max_connections`.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 64;

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            // Under the common 1,024 open-files limit, with room for the database pool, the
            // artwork files and the listener.
            max_connections: 768,
            max_connections_per_client: Some(MAX_CONNECTIONS_PER_CLIENT),
            body_deadlines: Default::default(),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `stop` turns true, then drains.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = limits.max_connections_per_client.map(PerClient::new);
    let graceful = GracefulShutdown::new();
    let mut warned_full = false;
    loop {
        let slot = tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        if slots.available_permits() == 0 && !warned_full {
            tracing::warn!(max = limits.max_connections, "connection cap reached; new connections wait");
            warned_full = true;
        } else if slots.available_permits() > limits.max_connections / 10 {
            warned_full = false;
        }
        let (stream, peer) = tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // pause briefly rather than spin on an error that repeats at once.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let client_slot = match &per_client {
            None => None,
            Some(clients) => match clients.enter(peer.ip()) {
                Some(held) => Some(held),
                None => {
                    // Closed at once (the global slot taken for it is given back here too).
                    clients.refused(peer.ip());
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // The peer's address reaches handlers as `ConnectInfo` (sign-in throttling per address).
        let service = TowerToHyperService::new(app.clone().map_request(move |mut r: axum::extract::Request<_>| {
            r.extensions_mut().insert(ConnectInfo(peer));
            r
        }));
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(limits.header_timeout)
                .keep_alive_timeout(limits.header_timeout);
            if let Err(e) = watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(slot);
            drop(client_slot);
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(open, "stopped accepting; draining in-flight requests");
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(after = ?limits.drain_timeout, "connections still open after the drain; closing them");
    }
}

/// Open connections per client address, capped.
struct PerClient {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// When a refusal was last logged, and how many since: one line per ten seconds at most,
    /// however hard a client pushes.
    refusals: Mutex<(Option<Instant>, u64)>,
}

/// One client's open connection; its count goes down when this is dropped.
struct ClientSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerClient {
    fn new(max: usize) -> Self {
        Self { max, open: Arc::default(), refusals: Mutex::new((None, 0)) }
    }

    /// A slot for one more connection from `ip`, unless it holds `max` already.
    fn enter(&self, ip: IpAddr) -> Option<ClientSlot> {
        // An IPv4 client reaching an IPv6 socket is one client whichever way it is written.
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot { ip, open: self.open.clone() })
    }

    fn refused(&self, ip: IpAddr) {
        let mut refusals = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        refusals.1 += 1;
        if refusals.0.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(client = %ip, max = self.max, refused = refusals.1, "a client holds its most connections; closing its new ones");
            *refusals = (Some(Instant::now()), 0);
        }
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone: nobody can stop us any more, so stop).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    #[test]
    fn a_client_holds_at_most_its_share_and_gets_it_back() {
        let clients = super::PerClient::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = clients.enter(a).expect("first");
        let _second = clients.enter(a).expect("second");
        assert!(clients.enter(a).is_none(), "a third from the same address");
        assert!(clients.enter("::ffff:127.0.0.1".parse().unwrap()).is_none(), "the same client over IPv6");
        assert!(clients.enter(b).is_some(), "another address has its own share");
        drop(first);
        assert!(clients.enter(a).is_some(), "a closed connection frees its place");
    }
}
