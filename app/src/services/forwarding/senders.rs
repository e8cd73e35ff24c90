//! Each destination's sender: at most one per destination in a process, in its own task, so a
//! slow or dead receiver only ever holds its own destination's deliveries, never another's, the
//! worker's sweep, or intake.
//!
//! A sender claims due deliveries, as many as its destination has slots free (`max_in_flight`)
//! up to a second's worth at its rate, in one statement; sends each in a task of its own when
//! the rate allows (`rate_per_second`, a GCRA limiter), bounded by the request timeout; and
//! writes the results as they come back, whatever has arrived in one transaction (`settle`), so
//! a busy destination costs the database's writer a commit per batch, not two per delivery. The claim is a lease on the row (see
//! `store::deliveries::claim_due`), so senders in two processes on one PostgreSQL never send the
//! same attempt; a process that dies mid-send leaves the row due again when the lease ends, and
//! it is sent again (at least once).
//!
//! **Between batches a sender sleeps, and costs nothing.** When a claim comes back short it
//! lets its sends settle, reads when its next delivery is due (one indexed read) and sleeps
//! until then, or until woken: by this process's fan-out when it made deliveries for the
//! destination (it claims at once), or by the worker's sweep (it reads again, for what another
//! process fanned out or an operator replayed). While webhook deliveries are being taken in, a
//! sweep's wake is let pass unless the sender has not looked for [`FAN_OUT_DEFER_AT_MOST`], so
//! a busy intake pays nothing for destinations with nothing to send. A sender that has claimed
//! nothing for `idle` ends (a paused or disabled destination's too); the next sweep starts
//! another when the destination sends.
use super::send::{self, HttpClient};
use crate::domain::forwarding::{next_delay, outcome, Outcome};
use crate::services::Services;
use crate::store::deliveries::{self, Claimed, Settle};
use crate::store::delivery_attempts::NewAttempt;
use crate::store::forward_destinations::{self, DestinationRow};
use chrono::Utc;
use std::collections::HashMap;
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
    /// The senders running in this process, by destination, each with what wakes it.
    running: Mutex<HashMap<i64, Arc<Wake>>>,
    /// Webhook deliveries being taken in by this process right now (Stripe's and the gateway's):
    /// senders yield to them (see [`YIELD_AT_MOST`]).
    intake: Arc<std::sync::atomic::AtomicUsize>,
    /// When the last of them finished ([`monotonic_ms`]).
    intake_ended_ms: Arc<AtomicU64>,
    /// When this process's fan-out last ran, and last looked back, per destination.
    looks: Mutex<HashMap<i64, Looks>>,
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

    /// Counts a webhook delivery as being taken in until the guard drops.
    pub fn taking_in(&self) -> TakingIn {
        self.intake.fetch_add(1, Ordering::Relaxed);
        TakingIn(self.intake.clone(), self.intake_ended_ms.clone())
    }

    /// Whether intake is busy: a delivery is being taken in, or one ended within
    /// [`INTAKE_QUIET_AFTER`] (between a busy sender's requests nothing may be in flight for a
    /// moment; that is not quiet).
    pub fn intake_busy(&self) -> bool {
        self.intake.load(Ordering::Relaxed) > 0
            || monotonic_ms().saturating_sub(self.intake_ended_ms.load(Ordering::Relaxed))
                < INTAKE_QUIET_AFTER.as_millis() as u64
    }

    /// Whether destination `id`'s fan-out should run now, and whether it should look back too
    /// (noting that it does). It runs every sweep while intake is quiet; while webhook
    /// deliveries are being taken in it waits, but never longer than [`FAN_OUT_DEFER_AT_MOST`]
    /// (a fan-out writes a row per event, as much again as intake's own writes for it).
    pub fn fan_out_due(&self, id: i64, look_back_every: Duration) -> Option<bool> {
        let mut looks = self.looks.lock().unwrap_or_else(PoisonError::into_inner);
        let now = std::time::Instant::now();
        let busy = self.intake_busy();
        let last = looks.get(&id).copied();
        if busy && last.is_some_and(|l| now.duration_since(l.fanned) < FAN_OUT_DEFER_AT_MOST) {
            return None;
        }
        let look_back = last.is_none_or(|l| now.duration_since(l.looked_back) >= look_back_every);
        let looked_back = if look_back { now } else { last.map_or(now, |l| l.looked_back) };
        looks.insert(id, Looks { fanned: now, looked_back });
        Some(look_back)
    }

    /// Whether a sender for destination `id` runs in this process.
    pub fn is_running(&self, id: i64) -> bool {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).contains_key(&id)
    }
}

/// The most a destination's fan-out waits for a busy intake: a sustained burst is fanned out
/// this often, up to 10,000 events a look.
pub const FAN_OUT_DEFER_AT_MOST: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
struct Looks {
    fanned: std::time::Instant,
    looked_back: std::time::Instant,
}

/// How long after the last delivery taken in intake counts as quiet.
pub const INTAKE_QUIET_AFTER: Duration = Duration::from_millis(50);

/// Milliseconds on the monotonic clock, counted from the first call in this process. Not the
/// wall clock: a step back of it (NTP, a resumed VM) would make intake look busy for as long
/// as the step, and forwarding hold back all that time.
fn monotonic_ms() -> u64 {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64
}

/// A webhook delivery being taken in (see [`Senders::taking_in`]).
pub struct TakingIn(Arc<std::sync::atomic::AtomicUsize>, Arc<AtomicU64>);

impl Drop for TakingIn {
    fn drop(&mut self) {
        self.1.fetch_max(monotonic_ms(), Ordering::Relaxed);
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a sender holds back its next claim, at most, while webhook deliveries are being
/// taken in, and how often it looks whether they are done. Intake comes first: its answer is
/// what Stripe and the other senders wait for (and a slow one makes them retry, adding load),
/// while forwarding is after the fact by design. On a machine whose CPU intake fills, forwarding
/// then moves a batch every fifth of a second until intake quietens (so it never stops), and at
/// full pace after; on a quiet one an occasional delivery holds a batch back a few milliseconds.
pub const YIELD_AT_MOST: Duration = Duration::from_millis(200);
const YIELD_LOOK: Duration = Duration::from_millis(5);

/// What wakes a sleeping sender: a notice, and whether it is for deliveries just made (claim at
/// once) rather than the sweep's (read whether anything is due).
#[derive(Default)]
struct Wake {
    notify: tokio::sync::Notify,
    made: std::sync::atomic::AtomicBool,
}

/// Removes a sender from [`Senders`] when it ends, however it ends.
struct Running {
    id: i64,
    wake: Arc<Wake>,
    senders: Arc<Senders>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.senders.running.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// Starts destination `id`'s sender unless one runs in this process, or else wakes it (`made`:
/// the fan-out just made deliveries for it); whether it started one.
pub fn ensure(svc: &Services, id: i64, made: bool) -> bool {
    let wake = {
        let mut running = svc.forwarding.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(wake) = running.get(&id) {
            if made {
                wake.made.store(true, Ordering::Relaxed);
            }
            // Kept until the sender waits next, if it is busy sending now.
            wake.notify.notify_one();
            return false;
        }
        let wake = Arc::new(Wake::default());
        running.insert(id, wake.clone());
        wake
    };
    let running = Running { id, wake, senders: svc.forwarding.clone() };
    let svc = svc.clone();
    let background = svc.background.clone();
    background.spawn(async move {
        if let Err(e) = run(&svc, &running).await {
            tracing::warn!(destination = id, error = %e, "a forwarding sender stopped; the next sweep starts another");
        }
    });
    true
}

/// The sender's loop (see the module's comment).
async fn run(svc: &Services, running: &Running) -> Result<(), crate::store::StoreError> {
    let id = running.id;
    let Some(first) = forward_destinations::get(&svc.db, id).await? else { return Ok(()) };
    let slots = first.max_in_flight.clamp(1, i64::from(super::MAX_IN_FLIGHT)) as u32;
    let permits = Arc::new(Semaphore::new(slots as usize));
    let rate = NonZeroU32::new(first.rate_per_second.clamp(1, i64::from(super::MAX_RATE_PER_SECOND)) as u32)
        .expect("at least 1");
    // No burst beyond one: a destination gets its pace from the first delivery on.
    let limiter = governor::RateLimiter::direct(governor::Quota::per_second(rate).allow_burst(NonZeroU32::MIN));
    let (results, settling) = tokio::sync::mpsc::unbounded_channel();
    let settler = tokio::spawn(settle(svc.clone(), first.name.clone(), settling));
    let pace = Pace { permits: &permits, slots, batch: slots.min(rate.get()), limiter: &limiter };
    let ended = rounds(svc, (id, &*running.wake), &pace, &results).await;
    drop(results);
    // Never end with sends in flight or unsettled: the next sender would find the slots free
    // beside them.
    drop(permits.acquire_many(slots).await.expect("the semaphore is never closed"));
    if let Err(e) = settler.await {
        tracing::error!(destination = id, error = %e, "a forwarding sender's settling stopped");
    }
    ended
}

/// How hard a sender may push its destination: `slots` sends in flight (a permit each, held
/// until the result is written), at most `batch` claimed at once, at the limiter's pace.
struct Pace<'a> {
    permits: &'a Arc<Semaphore>,
    slots: u32,
    /// Claimed together: as many slots as are free, at most a second's worth at the pace, so
    /// every claimed delivery is sent well within its lease.
    batch: u32,
    limiter: &'a governor::DefaultDirectRateLimiter,
}

/// An attempt's result on its way to the database, holding its slot until it is written.
struct Done {
    claim: Arc<str>,
    event_id: String,
    delivery_id: i64,
    attempted_at: chrono::DateTime<Utc>,
    attempt: send::Attempt,
    settle: Settle,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// Claims and sends until it has claimed nothing for `idle`, the destination stops sending, or
/// the server stops.
async fn rounds(
    svc: &Services,
    (id, wake): (i64, &Wake),
    pace: &Pace<'_>,
    results: &tokio::sync::mpsc::UnboundedSender<Done>,
) -> Result<(), crate::store::StoreError> {
    let timeout = svc.settings.forwarding.request_timeout;
    let mut sent_last = std::time::Instant::now();
    // Whether deliveries are (likely) due now: at the start, and after a full batch, look at once.
    let mut due = false;
    loop {
        if svc.background.is_stopping() {
            return Ok(());
        }
        if !due {
            // Let the sends in flight settle first (a failure may be due again at once).
            drop(pace.permits.acquire_many(pace.slots).await.expect("the semaphore is never closed"));
            if !until_due(svc, id, wake, sent_last).await? {
                return Ok(());
            }
        }
        let first = pace.permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let held_back = tokio::time::Instant::now();
        while svc.forwarding.intake_busy() && held_back.elapsed() < YIELD_AT_MOST {
            tokio::time::sleep(YIELD_LOOK).await;
        }
        // A pause, or a 410 seen by another send, takes effect before the next claim.
        let Some(dest) = forward_destinations::get(&svc.db, id).await?.filter(DestinationRow::sending) else {
            return Ok(());
        };
        let mut slots = vec![first];
        while slots.len() < pace.batch as usize {
            match pace.permits.clone().try_acquire_owned() {
                Ok(p) => slots.push(p),
                Err(_) => break,
            }
        }
        let now = Utc::now();
        // Read once a batch: a rotation takes effect from the next one.
        let secrets = Arc::new(forward_destinations::active_secrets(&svc.db, id, now).await?);
        let lease = now + chrono::Duration::from_std(timeout + LEASE_MARGIN).expect("a short lease");
        let claim: Arc<str> = svc.forwarding.next_claim().into();
        let claimed = deliveries::claim_due(&svc.db, id, now, lease, &claim, slots.len() as i64).await?;
        // A full batch: more are likely due. A short one: sleep until the next is.
        due = claimed.len() == slots.len();
        if !claimed.is_empty() {
            sent_last = std::time::Instant::now();
        }
        let dest = Arc::new(dest);
        // Slots beyond the deliveries claimed are freed as `slots` drops.
        for (d, slot) in claimed.into_iter().zip(slots) {
            pace.limiter.until_ready().await;
            let (svc, senders) = (svc.clone(), svc.forwarding.clone());
            let (dest, secrets, claim, results) = (dest.clone(), secrets.clone(), claim.clone(), results.clone());
            svc.background.clone().spawn(async move {
                let done = deliver(&svc, senders.client(), &dest, d, (claim, slot), &secrets, timeout).await;
                // The settler ends only after every sender's handle is dropped: it is there.
                let _ = results.send(done);
            });
        }
    }
}

/// Sleeps until a delivery of destination `id` is due, or the fan-out made some, and then is
/// true; false when nothing was sent for `idle` since `sent_last`, or the server stops. Reads
/// when the next is due (one indexed read) on entering and on each sweep's wake, except that
/// while intake is busy a sweep's wake is let pass unless it has not read for
/// [`FAN_OUT_DEFER_AT_MOST`].
async fn until_due(
    svc: &Services,
    id: i64,
    wake: &Wake,
    sent_last: std::time::Instant,
) -> Result<bool, crate::store::StoreError> {
    let idle = svc.settings.forwarding.idle;
    loop {
        let next = deliveries::next_due(&svc.db, id).await?;
        let read = std::time::Instant::now();
        let until_next = match next {
            Some(at) => match (at - Utc::now()).to_std() {
                Ok(wait) => wait,
                // Due already.
                Err(_) => return Ok(true),
            },
            None => Duration::MAX,
        };
        // Ending: a wake that comes now is lost with it, and what the fan-out made waits for the
        // next sweep, which starts a sender again.
        let Some(idle_left) = idle.checked_sub(sent_last.elapsed()).filter(|d| !d.is_zero()) else {
            return Ok(false);
        };
        let deadline = tokio::time::Instant::now() + until_next.min(idle_left);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    // The next delivery's time, or the end of `idle` (read once more, in case).
                    if until_next <= idle_left {
                        return Ok(true);
                    }
                    break;
                }
                _ = wake.notify.notified() => {
                    if wake.made.swap(false, Ordering::Relaxed) {
                        return Ok(true);
                    }
                    if !svc.forwarding.intake_busy() || read.elapsed() >= FAN_OUT_DEFER_AT_MOST {
                        break;
                    }
                }
                _ = svc.background.stopped() => return Ok(false),
            }
        }
    }
}

/// One attempt and what it comes to: delivered, due again on the schedule, or dead; on a 410
/// the destination is disabled at once (before the result is written, so no further claim is
/// made).
async fn deliver(
    svc: &Services,
    client: &HttpClient,
    dest: &DestinationRow,
    d: Claimed,
    (claim, slot): (Arc<str>, tokio::sync::OwnedSemaphorePermit),
    secrets: &[String],
    timeout: Duration,
) -> Done {
    let attempted_at = Utc::now();
    let a = send::attempt(&svc.db, client, dest, (&d.source, &d.event_id), secrets, timeout).await;
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
    Done { claim, event_id: d.event_id, delivery_id: d.id, attempted_at, attempt: a, settle, _slot: slot }
}

/// The most results written in one transaction.
const SETTLE_BATCH: usize = 256;

/// Writes the sends' results as they come: whatever has arrived, in one transaction, so under
/// load many share a commit and when quiet each is written at once. A slot is freed when its
/// result is written.
async fn settle(svc: Services, destination: String, mut results: tokio::sync::mpsc::UnboundedReceiver<Done>) {
    while let Some(first) = results.recv().await {
        let mut batch = vec![first];
        while batch.len() < SETTLE_BATCH {
            match results.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        let rows: Vec<(&str, NewAttempt<'_>, Settle)> = batch
            .iter()
            .map(|d| {
                let attempt = NewAttempt {
                    delivery_id: d.delivery_id,
                    attempted_at: d.attempted_at,
                    http_status: d.attempt.status,
                    error: d.attempt.error.as_deref(),
                    latency_ms: i64::try_from(d.attempt.latency.as_millis()).unwrap_or(i64::MAX),
                    answer: &d.attempt.answer,
                };
                (&*d.claim, attempt, d.settle)
            })
            .collect();
        match deliveries::settle_many(&svc.db, &rows).await {
            Ok(changed) => {
                for (d, changed) in batch.iter().zip(changed) {
                    if !changed {
                        tracing::debug!(
                            delivery = d.delivery_id,
                            "replayed or taken over while sending; result logged only"
                        );
                    } else if d.settle == Settle::Dead {
                        tracing::warn!(%destination, delivery = d.delivery_id, event = %d.event_id, "delivery is dead after its last attempt");
                    }
                }
            }
            // Their leases run out and they are sent again: at least once.
            Err(e) => {
                tracing::warn!(%destination, error = %e, results = batch.len(), "could not record forwarding attempts")
            }
        }
    }
}
