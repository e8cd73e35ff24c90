//! Counters for the webhook path, exposed in Prometheus text format at /metrics. Plain atomics:
//! a handful of counters does not justify an exporter stack.
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Stats {
    pub deliveries: AtomicU64,
    pub rejected_missing_header: AtomicU64,
    pub rejected_malformed_header: AtomicU64,
    pub rejected_no_match: AtomicU64,
    pub rejected_outside_tolerance: AtomicU64,
    pub rejected_malformed_body: AtomicU64,
    pub rejected_too_large: AtomicU64,
    /// Bodies that stopped arriving (the sender disconnected or stalled past the body timeout).
    pub rejected_incomplete: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub store_unavailable: AtomicU64,
    pub credited: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub retries_scheduled: AtomicU64,
    /// Reconciliation findings by (category, state), since the process started.
    pub findings: std::sync::Mutex<std::collections::BTreeMap<(String, String), u64>>,
    /// Findings the last completed reconciliation left open.
    pub open_findings: AtomicU64,
    /// Daily Slack summaries this process sent, and its failed attempts.
    pub slack_summaries_sent: AtomicU64,
    pub slack_summary_failures: AtomicU64,
}

impl Stats {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn finding(&self, category: &str, state: &str) {
        let mut f = self.findings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *f.entry((category.to_string(), state.to_string())).or_default() += 1;
    }

    pub fn set_open_findings(&self, n: u64) {
        self.open_findings.store(n, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |name: &str, labels: &str, c: &AtomicU64| {
            let _ = writeln!(out, "revision_store_{name}{labels} {}", c.load(Ordering::Relaxed));
        };
        line("webhook_deliveries_total", "", &self.deliveries);
        line("webhook_rejected_total", "{reason=\"missing_header\"}", &self.rejected_missing_header);
        line("webhook_rejected_total", "{reason=\"malformed_header\"}", &self.rejected_malformed_header);
        line("webhook_rejected_total", "{reason=\"no_match\"}", &self.rejected_no_match);
        line("webhook_rejected_total", "{reason=\"outside_tolerance\"}", &self.rejected_outside_tolerance);
        line("webhook_rejected_total", "{reason=\"malformed_body\"}", &self.rejected_malformed_body);
        line("webhook_rejected_total", "{reason=\"too_large\"}", &self.rejected_too_large);
        line("webhook_rejected_total", "{reason=\"incomplete_body\"}", &self.rejected_incomplete);
        line("webhook_events_stored_total", "", &self.stored);
        line("webhook_events_duplicate_total", "", &self.duplicates);
        line("webhook_store_unavailable_total", "", &self.store_unavailable);
        line("ledger_credits_total", "", &self.credited);
        line("events_dead_lettered_total", "", &self.dead_lettered);
        line("events_retries_scheduled_total", "", &self.retries_scheduled);
        line("reconciliation_open_findings", "", &self.open_findings);
        line("slack_summaries_sent_total", "", &self.slack_summaries_sent);
        line("slack_summary_failures_total", "", &self.slack_summary_failures);
        for ((category, state), n) in self.findings.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            let _ = writeln!(
                out,
                "revision_store_reconciliation_findings_total{{category=\"{category}\",state=\"{state}\"}} {n}"
            );
        }
        out
    }
}
