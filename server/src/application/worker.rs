//! The background worker: retries due events, and picks up anything a request left pending
//! (its inline processing failed, or the process died) once the lease runs out. Now and then
//! it also indexes new events for search, removes expired sign-in sessions, starts the scheduled reconciliation, seals closed
//! hours of events, sends the daily Slack summary, sends email from the outbox, forwards stored
//! events to the publisher's destinations and removes artwork files no request kept.
//! Each sweep it also gathers this process's webhook faults for the alerts, and about once a
//! minute evaluates the alert rules (one evaluation at a time across every process).
use app::services::processing::run_due;
use app::services::reconcile::{self, ReconcileError};
use app::services::Services;
use app::store::reconciliation;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Sweeps between expired-session clean-ups (about every ten minutes at the default interval).
const SESSION_SWEEP_EVERY: u32 = 120;
/// Events indexed for search per sweep at most.
const INDEX_BATCH: i64 = 1_000;
/// Sweeps between looks at the reconciliation schedule (about a minute at the default interval).
const SCHEDULE_LOOK_EVERY: u32 = 12;
/// Sweeps between looks for orphaned artwork files (about an hour at the default interval: an
/// orphan only costs disk space, and none can be removed before its hour of grace anyway).
const ARTWORK_SWEEP_EVERY: u32 = 720;
/// Sweeps between checks of the kept balances against the ledger (about a day at the default
/// interval). The check reads every ledger row, so it is rare; a difference is a bug or a hand
/// edit, for a person to look at (`revision-store balances check`), never rewritten unasked.
const BALANCE_CHECK_EVERY: u32 = 17_280;

/// Sweeps every `interval` until `stop` turns true (between sweeps: a sweep is never cut short).
pub async fn run(
    svc: Services,
    artwork: crate::artwork::store::ArtworkStore,
    interval: Duration,
    reconcile_every: Option<Duration>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut sweeps = 0u32;
    let reconciling = Arc::new(AtomicBool::new(false));
    loop {
        if let Err(e) = run_due(&svc, false).await {
            tracing::error!(error = %e, "worker sweep failed; retrying next interval");
        }
        // Keep the search index up with the event store, a batch a sweep (a first start on a
        // large store works through its backlog a batch at a time).
        match app::store::event_search::index_pending(&svc.db, INDEX_BATCH).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(indexed = n, "indexed events for search"),
            Err(e) => tracing::warn!(error = %e, "indexing events for search failed; trying again next sweep"),
        }
        if let Err(e) = app::services::alerts::gather_faults(&svc, chrono::Utc::now()).await {
            tracing::warn!(error = %e, "gathering webhook faults for the alerts failed; kept for the next sweep");
        }
        // Email: receipts and notices for new ledger rows queued, due messages sent (a sweep's
        // worth at most; a mail server that hangs is cut off by the mailer's own timeout).
        match app::services::mail::work(&svc, chrono::Utc::now()).await {
            Ok(look) if look == Default::default() => {}
            Ok(look) => tracing::debug!(queued = look.queued, sent = look.sent, failed = look.failed, "email"),
            Err(e) => tracing::warn!(error = %e, "the email outbox could not be worked; trying again next sweep"),
        }
        // Forwarding: new events fanned out into deliveries, and a sender started for each
        // destination that has none here. Sending runs in the senders' own tasks, so a slow
        // receiver never holds this sweep.
        forward(&svc).await;
        if sweeps.is_multiple_of(SESSION_SWEEP_EVERY) {
            clean_up(&svc).await;
        }
        if sweeps % SCHEDULE_LOOK_EVERY == SCHEDULE_LOOK_EVERY / 4 {
            // A quarter look after the other schedules (not on a start's own busy sweep).
            evaluate_alerts(&svc).await;
        }
        if let Some(every) = reconcile_every.filter(|_| sweeps.is_multiple_of(SCHEDULE_LOOK_EVERY)) {
            start_if_due(&svc, every, &reconciling).await;
        }
        if sweeps % SCHEDULE_LOOK_EVERY == SCHEDULE_LOOK_EVERY / 2 {
            // Seal the hours that closed (a day's backlog at most per look, so a first start on
            // a large store works through it a slice at a time). Half a look after the other
            // schedules, so the two never start on the same sweep.
            match app::services::seals::seal_closed(&svc, chrono::Utc::now(), 24).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sealed = n, "sealed closed hours of events"),
                Err(e) => tracing::warn!(error = %e, "sealing events failed; trying again later"),
            }
        }
        if svc.settings.slack.webhook.is_some() && sweeps.is_multiple_of(SCHEDULE_LOOK_EVERY) {
            // Bounded by the post's 10 s timeout; the summary row makes it once a day across
            // every process, whichever of them gets here first.
            if let Err(e) = app::services::slack::send_daily_if_due(&svc, chrono::Utc::now()).await {
                tracing::warn!(error = %e, "the daily Slack summary could not be prepared; trying again later");
            }
        }
        if sweeps % ARTWORK_SWEEP_EVERY == SESSION_SWEEP_EVERY / 2 {
            // Half a session clean-up after start (off the start's own busy sweep, and so a
            // process restarted more often than hourly still sweeps), then hourly.
            sweep_artwork(&svc, &artwork).await;
        }
        if sweeps % BALANCE_CHECK_EVERY == ARTWORK_SWEEP_EVERY / 4 {
            check_balances(&svc).await;
        }
        sweeps = sweeps.wrapping_add(1);
        // Retries wait 30 s at least and fresh events are processed in their request, so a
        // sweep every few seconds is prompt enough.
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = crate::application::serve::stopped(&mut stop) => return,
        }
    }
}

/// Every ten minutes or so: expired sessions, spent sign-in and forgot-password counters and
/// unused refund confirmations go; the search index catches what its look-back missed.
async fn clean_up(svc: &Services) {
    if let Err(e) = app::store::sessions::delete_expired(&svc.db, chrono::Utc::now()).await {
        tracing::warn!(error = %e, "removing expired sessions failed; trying again later");
    }
    let now = chrono::Utc::now();
    if let Err(e) = app::store::sign_in_throttle::delete_expired(&svc.db, &svc.sign_in.policy, now).await {
        tracing::warn!(error = %e, "removing spent sign-in counters failed; trying again later");
    }
    if let Err(e) = app::services::forgot::clean_up(svc, now).await {
        tracing::warn!(error = %e, "removing spent forgot-password counters failed; trying again later");
    }
    let unused = now - app::store::refund_quotes::UNUSED_KEPT;
    if let Err(e) = app::store::refund_quotes::delete_unused(&svc.db, unused).await {
        tracing::warn!(error = %e, "removing unused refund confirmations failed; trying again later");
    }
    // What the look-back above cannot see (an event received long before the newest
    // indexed one), and contracts learned after their events were indexed.
    match app::store::event_search::index_missed(&svc.db, INDEX_BATCH).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(indexed = n, "indexed events the regular look-back missed"),
        Err(e) => tracing::warn!(error = %e, "the full indexing sweep failed; trying again later"),
    }
    let day_ago = chrono::Utc::now() - chrono::Duration::days(1);
    if let Err(e) = app::store::event_search::fill_contracts(&svc.db, day_ago).await {
        tracing::warn!(error = %e, "filling in events' contracts failed; trying again later");
    }
    let old = chrono::Utc::now() - app::services::alerts::FAULTS_KEPT;
    if let Err(e) = app::store::webhook_faults::delete_before(&svc.db, old).await {
        tracing::warn!(error = %e, "removing old webhook fault tallies failed; trying again later");
    }
}

/// Forwarding's step: fan-out, and a sender started per destination with none here.
async fn forward(svc: &Services) {
    match app::services::forwarding::work(svc, chrono::Utc::now()).await {
        Ok(look) if look == Default::default() => {}
        Ok(look) => tracing::debug!(fanned = look.fanned, senders = look.started, "forwarding"),
        Err(e) => tracing::warn!(error = %e, "forwarding could not look for new events; trying again next sweep"),
    }
}

/// The alert rules, evaluated (unless another process is at it) and their notices sent.
async fn evaluate_alerts(svc: &Services) {
    match app::services::alerts::evaluate(svc, chrono::Utc::now()).await {
        Ok(e) if e.busy => tracing::debug!("alerts are being evaluated elsewhere"),
        Ok(e) => tracing::debug!(firing = e.firing.len(), sent = e.sent.len(), "alerts evaluated"),
        Err(e) => tracing::warn!(error = %e, "evaluating the alerts failed; trying again in a minute"),
    }
}

/// Artwork files no request kept, past their grace, go.
async fn sweep_artwork(svc: &Services, artwork: &crate::artwork::store::ArtworkStore) {
    let now = std::time::SystemTime::now();
    let swept = crate::artwork::sweep::sweep(&svc.db, artwork, now, crate::artwork::sweep::GRACE).await;
    if swept != crate::artwork::sweep::Swept::default() {
        tracing::info!(orphans = swept.orphans, staged = swept.staged, "removed artwork files no request kept");
    }
}

/// Kept balances against the ledger: a difference is logged for a person, never rewritten.
async fn check_balances(svc: &Services) {
    match app::store::balances::drift(&svc.db, 10).await {
        Ok(d) if d.is_empty() => tracing::debug!("kept balances match the ledger"),
        Ok(d) => {
            let contracts: Vec<i64> = d.iter().map(|d| d.contract_id).collect();
            tracing::error!(
                ?contracts,
                "kept balances differ from the ledger; run `revision-store balances check` and look"
            );
        }
        Err(e) => tracing::warn!(error = %e, "checking the kept balances failed; trying again tomorrow"),
    }
}

/// Starts a scheduled reconciliation when the last one (by any process: the schedule's clock is
/// the database) started `every` ago or more. The run itself refuses to start beside another.
async fn start_if_due(svc: &Services, every: Duration, reconciling: &Arc<AtomicBool>) {
    if reconciling.load(Ordering::Acquire) || svc.stripe.is_none() {
        return;
    }
    let now = chrono::Utc::now();
    let due = match reconciliation::last_scheduled_start(&svc.db).await {
        Ok(last) => last.is_none_or(|last| now - last >= chrono::Duration::from_std(every).unwrap_or_default()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the reconciliation schedule; trying again later");
            return;
        }
    };
    if !due {
        return;
    }
    reconciling.store(true, Ordering::Release);
    let (svc, reconciling) = (svc.clone(), reconciling.clone());
    let background = svc.background.clone();
    background.spawn(async move {
        let opts = reconcile::Options {
            from: now - svc.settings.reconcile.window,
            to: now,
            dry_run: false,
            started_by: "schedule",
            rate: svc.settings.reconcile.rate,
        };
        match reconcile::run(&svc, &opts, &|_| {}).await {
            Ok(report) => {
                tracing::info!(run = report.run_id, findings = report.total(), "scheduled reconciliation done")
            }
            Err(ReconcileError::AlreadyRunning) => tracing::info!("reconciliation already running elsewhere"),
            Err(e) => tracing::error!(error = %e, "scheduled reconciliation failed"),
        }
        reconciling.store(false, Ordering::Release);
    });
}
