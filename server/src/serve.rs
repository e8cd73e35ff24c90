//! The HTTP server loop. `axum::serve` sets no timeouts and no connection cap: a connection that
//! sends half a request head and then nothing was held for ever, and a few thousand of them
//! used up the process's file descriptors until valid webhook deliveries and `/healthz` timed
//! out. Here every connection is bounded:
//! - a request head must arrive within `header_timeout`; hyper starts that clock whenever it
//!   waits for a head, so the same limit ends idle keep-alive connections;
//! - a request body must keep arriving (`body_timeout` between chunks, `tower_http`'s
//!   `RequestBodyTimeoutLayer` in the router);
//! - at most `max_connections` are open at once; beyond that, new ones wait in the kernel's
//!   accept queue until a slot frees, which the two timeouts above guarantee;
//! - on shutdown the listener closes, in-flight requests finish (up to `drain_timeout`), idle
//!   connections close.
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub drain_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            // Under the common 1,024 open-files limit, with room for the database pool, the
            // artwork files and the listener.
            max_connections: 768,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `stop` turns true, then drains.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
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
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(open, "stopped accepting; draining in-flight requests");
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(after = ?limits.drain_timeout, "connections still open after the drain; closing them");
    }
}

/// Resolves once `stop` is true (or its sender is gone: nobody can stop us any more, so stop).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
