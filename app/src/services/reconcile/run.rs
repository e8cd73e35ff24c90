//! A reconciliation run in progress: its heartbeat, and its findings as they are recorded.
use super::{Category, ReconcileError};
use crate::services::Services;
use crate::store::reconciliation::{self as runs, NewFinding};
use crate::store::StoreError;
use crate::stripe::Pacer;
use chrono::Utc;

pub(super) struct Run<'a> {
    pub(super) svc: &'a Services,
    pub(super) id: i64,
    pub(super) dry_run: bool,
    pub(super) pacer: Pacer,
    pub(super) findings: usize,
    pub(super) payments: usize,
    pub(super) last_beat: std::time::Instant,
}

/// How often a run says it is alive (well inside `store::reconciliation::STALE_AFTER_SECS`).
const BEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl Run<'_> {
    /// Says the run is alive (at most every `BEAT_EVERY`), and stops it if its row was marked
    /// abandoned meanwhile (another process thought it dead and may be running now).
    pub(super) async fn beat(&mut self) -> Result<(), ReconcileError> {
        // Between two payments is a safe point to stop: everything before it is booked.
        if self.svc.background.is_stopping() {
            return Err(ReconcileError::Stopped);
        }
        if self.last_beat.elapsed() < BEAT_EVERY {
            return Ok(());
        }
        self.last_beat = std::time::Instant::now();
        let alive =
            runs::heartbeat(&self.svc.db, self.id, self.pacer.calls() as i64, self.payments as i64, Utc::now()).await?;
        if alive {
            Ok(())
        } else {
            Err(ReconcileError::Abandoned)
        }
    }

    fn state(&self, healed: bool) -> &'static str {
        match (healed, self.dry_run) {
            (true, true) => "would_heal",
            (true, false) => "healed",
            (false, _) => "open",
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn found(
        &mut self,
        category: Category,
        healed: bool,
        payment_id: Option<&str>,
        object_id: Option<&str>,
        contract_id: Option<i64>,
        detail: &str,
        evidence: serde_json::Value,
    ) -> Result<(), StoreError> {
        let state = self.state(healed);
        self.findings += 1;
        self.svc.stats.finding(category.as_str(), state);
        tracing::info!(
            run = self.id,
            category = category.as_str(),
            state,
            payment_id,
            detail,
            "reconciliation finding"
        );
        runs::add_finding(
            &self.svc.db,
            self.id,
            &NewFinding {
                category: category.as_str(),
                state,
                payment_id,
                object_id,
                contract_id,
                detail,
                evidence: &evidence.to_string(),
            },
            Utc::now(),
        )
        .await
    }
}
