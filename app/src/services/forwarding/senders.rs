//! Each destination's sender: at most one per destination in a process, in its own task, so a
//! slow or dead receiver only ever holds its own destination's deliveries, never another's, the
//! worker's sweep, or intake.
//!
//! A sender claims one due delivery at a time, when one of its destination's slots is free
//! (`max_in_flight`) and its rate allows (`rate_per_second`, a GCRA limiter), and sends it in a
//! task of its own, bounded by the request timeout. The claim is a lease on the row (see
//! `store::deliveries::claim_due`), so senders in two processes on one PostgreSQL never send the
//! same attempt; a process that dies mid-send leaves the row due again when the lease ends, and
//! it is sent again (at least once). When nothing is due the sender waits for its in-flight
//! sends, waits a little (`idle`) for the next due delivery, and ends; the next sweep starts
//! another when there is work.
use super::send::{self, HttpClient};
use crate::domain::forwarding::{next_delay, outcome, Outcome};
use crate::services::Services;
use crate::store::deliveries::{self, Claimed, Settle};
use crate::store::delivery_attempts::NewAttempt;
use crate::store::forward_destinations::{self, DestinationRow};
use chrono::Utc;
use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How much longer than the request timeout a claim's lease runs: time to write the result.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The senders running in this process, and what they share.
#[derive(Default)]
pub struct Senders {
    running: Mutex<BTreeSet<i64>>,
    client: OnceLock<HttpClient>,
    /// Names this process's claims (with `claims`), so a result is written only by its claimer.
    token: OnceLock<String>,
    claims: AtomicU64,
}

impl std::fmt::Debug for Senders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("Senders").field("running", &running).finish()
    }
}

impl Senders {
    fn client(&self) -> &HttpClient {
        self.client.get_or_init(send::client)
    }

    /// A claim name no other claim, in this process or another, has.
    fn next_claim(&self) -> String {
        let token = self.token.get_or_init(|| {
            use ring::rand::SecureRandom;
            let mut bytes = [0u8; 8];
            ring::rand::SystemRandom::new().fill(&mut bytes).expect("the system's random generator works");
            hex::encode(bytes)
        });
        format!("{token}-{}", self.claims.fetch_add(1, Ordering::Relaxed))
    }

    /// Whether a sender for destination `id` runs in this process.
    pub fn is_running(&self, id: i64) -> bool {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).contains(&id)
    }
}

/// Removes a sender from [`Senders`] when it ends, however it ends.
struct Running {
    id: i64,
    senders: Arc<Senders>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.senders.running.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// Starts destination `id`'s sender unless one runs in this process; whether it started one.
pub fn ensure(svc: &Services, id: i64) -> bool {
    if !svc.forwarding.running.lock().unwrap_or_else(PoisonError::into_inner).insert(id) {
        return false;
    }
    let running = Running { id, senders: svc.forwarding.clone() };
    let svc = svc.clone();
    let background = svc.background.clone();
    background.spawn(async move {
        let _running = running;
        if let Err(e) = run(&svc, id).await {
            tracing::warn!(destination = id, error = %e, "a forwarding sender stopped; the next sweep starts another");
        }
    });
    true
}

/// The sender's loop (see the module's comment).
async fn run(svc: &Services, id: i64) -> Result<(), crate::store::StoreError> {
    let Some(first) = forward_destinations::get(&svc.db, id).await? else { return Ok(()) };
    let slots = first.max_in_flight.clamp(1, i64::from(super::MAX_IN_FLIGHT)) as u32;
    let permits = Arc::new(Semaphore::new(slots as usize));
    let rate = NonZeroU32::new(first.rate_per_second.clamp(1, i64::from(super::MAX_RATE_PER_SECOND)) as u32)
        .expect("at least 1");
    // No burst beyond one: a destination gets its pace from the first delivery on.
    let limiter = governor::RateLimiter::direct(governor::Quota::per_second(rate).allow_burst(NonZeroU32::MIN));
    let ended = rounds(svc, id, (&permits, slots), &limiter).await;
    // Never end with sends in flight: the next sender would find the slots free beside them.
    drop(permits.acquire_many(slots).await.expect("the semaphore is never closed"));
    ended
}

/// Claims and sends until nothing is due soon, the destination stops sending, or the server stops.
async fn rounds(
    svc: &Services,
    id: i64,
    (permits, slots): (&Arc<Semaphore>, u32),
    limiter: &governor::DefaultDirectRateLimiter,
) -> Result<(), crate::store::StoreError> {
    let timeout = svc.settings.forwarding.request_timeout;
    loop {
        if svc.background.is_stopping() {
            return Ok(());
        }
        let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        // A pause, or a 410 seen by another send, takes effect before the next claim.
        let Some(dest) = forward_destinations::get(&svc.db, id).await?.filter(DestinationRow::sending) else {
            return Ok(());
        };
        limiter.until_ready().await;
        let now = Utc::now();
        let lease = now + chrono::Duration::from_std(timeout + LEASE_MARGIN).expect("a short lease");
        let claim = svc.forwarding.next_claim();
        if let Some(d) = deliveries::claim_due(&svc.db, id, now, lease, &claim, 1).await?.pop() {
            let (svc, client) = (svc.clone(), svc.forwarding.clone());
            svc.background.clone().spawn(async move {
                deliver(&svc, client.client(), &dest, d, &claim, timeout).await;
                drop(permit);
            });
            continue;
        }
        drop(permit);
        // Nothing due: let the sends in flight settle (a failure may be due again at once),
        // then wait for the next due delivery if it is near, or end.
        drop(permits.acquire_many(slots).await.expect("the semaphore is never closed"));
        let Some(next) = deliveries::next_due(&svc.db, id).await? else { return Ok(()) };
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        if wait > svc.settings.forwarding.idle {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = svc.background.stopped() => return Ok(()),
        }
    }
}

/// One attempt and its result: the attempt logged, the delivery settled (delivered, due again
/// on the schedule, or dead), and on a 410 the destination disabled.
async fn deliver(
    svc: &Services,
    client: &HttpClient,
    dest: &DestinationRow,
    d: Claimed,
    claim: &str,
    timeout: Duration,
) {
    let attempted_at = Utc::now();
    let a = send::attempt(&svc.db, client, dest, (&d.source, &d.event_id), timeout).await;
    let done = Utc::now();
    let attempts = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
    let settle = match outcome(a.status) {
        Outcome::Delivered => Settle::Delivered,
        Outcome::Gone => {
            let reason = "the receiver answered 410 Gone";
            if let Err(e) = forward_destinations::disable(&svc.db, dest.id, reason, done).await {
                tracing::warn!(destination = %dest.name, error = %e, "could not disable a destination that answered 410");
            }
            tracing::warn!(destination = %dest.name, "disabled: the receiver answered 410 Gone");
            // Waits, due, for the destination to be enabled again.
            Settle::RetryAt(done)
        }
        Outcome::Failed => match next_delay(&svc.settings.forwarding.schedule, attempts, a.asked_wait) {
            Some(wait) => Settle::RetryAt(done + chrono::Duration::from_std(wait).unwrap_or_default()),
            None => Settle::Dead,
        },
    };
    let attempt = NewAttempt {
        delivery_id: d.id,
        attempted_at,
        http_status: a.status,
        error: a.error.as_deref(),
        latency_ms: i64::try_from(a.latency.as_millis()).unwrap_or(i64::MAX),
        answer: &a.answer,
    };
    match deliveries::settle(&svc.db, claim, &attempt, settle).await {
        Ok(true) => {}
        Ok(false) => tracing::debug!(delivery = d.id, "replayed or taken over while sending; result logged only"),
        // The lease runs out and the delivery is sent again: at least once.
        Err(e) => tracing::warn!(delivery = d.id, error = %e, "could not record a forwarding attempt"),
    }
    if settle == Settle::Dead {
        tracing::warn!(destination = %dest.name, delivery = d.id, event = %d.event_id, "delivery is dead after its last attempt");
    }
}
