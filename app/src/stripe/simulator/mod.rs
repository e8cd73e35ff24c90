//! The Stripe simulator: a local stand-in for Stripe's API that speaks its wire formats
//! (form-encoded requests with bracketed keys, JSON objects shaped like Stripe's, Stripe's
//! error object and status codes, idempotency keys), so production code paths (async-stripe)
//! run unchanged against it. Test mode only: a live key is refused.
//!
//! This part covers the PaymentIntents API the server uses; state is in memory.
mod api;

pub use api::{router, Simulator};

/// Starts the simulator on `addr` (port 0 picks a free port); returns where it listens.
pub async fn start(addr: std::net::SocketAddr) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(Simulator::default());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "Stripe simulator stopped");
        }
    });
    Ok((local, task))
}
