//! The app's metrics through the `metrics` crate, rendered in Prometheus's text format (with
//! `# TYPE` lines) by its Prometheus exporter at /metrics. Each `Stats` owns its recorder rather
//! than installing the process-wide one, so every app instance (several run in one test
//! process) counts only its own traffic; the counters are registered once, here, and the rest of
//! the code increments handles.
use crate::domain::alerts::{Fault, Rule};
use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::sync::atomic::{AtomicU64, Ordering};

/// Latency buckets in seconds: a webhook answers in milliseconds, a page in tens of them; the
/// top buckets catch a database outage's waits.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

pub struct Stats {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    pub deliveries: Counter,
    pub rejected_missing_header: Counter,
    pub rejected_malformed_header: Counter,
    pub rejected_no_match: Counter,
    pub rejected_outside_tolerance: Counter,
    pub rejected_malformed_body: Counter,
    pub rejected_too_large: Counter,
    /// Bodies that stopped arriving (the sender disconnected or stalled past the body timeout).
    pub rejected_incomplete: Counter,
    pub stored: Counter,
    pub duplicates: Counter,
    pub store_unavailable: Counter,
    /// Packs credited, by the path that credited them.
    pub credited: Counter,
    pub credited_return_page: Counter,
    pub credited_reconciliation: Counter,
    pub dead_lettered: Counter,
    pub retries_scheduled: Counter,
    /// Findings the last completed reconciliation left open.
    pub open_findings: Gauge,
    /// Daily Slack summaries this process sent, and its failed attempts.
    pub slack_summaries_sent: Counter,
    pub slack_summary_failures: Counter,
    /// Seconds from receiving a request to answering it: Stripe's deliveries, and everything
    /// else people and scripts ask (pages, server functions, exports; not static files).
    pub webhook_seconds: Histogram,
    pub page_seconds: Histogram,
    /// How long the oldest event still waiting to be processed has waited (set at each scrape).
    pub processing_lag: Gauge,
    /// `/readyz` probes answered, and the database checks made for them (at most one a second
    /// however many probes come: the rest are answered from the last check).
    pub readiness_probes: Counter,
    pub readiness_checks: Counter,
    /// Artwork uploads being received right now, and those refused because their uploader
    /// already had as many in progress as allowed.
    pub uploads_in_progress: Gauge,
    pub uploads_refused_busy: Counter,
    /// Purchases started (PaymentIntents created and recorded): the silence rule's other half.
    pub purchases_started: Counter,
    /// 1 while an alert rule fires, by rule (set at each scrape from the shared alert state).
    alert_firing: Vec<Gauge>,
    /// When a reconciliation last completed, unix seconds (set at each scrape; 0: never).
    pub last_reconciled: Gauge,
    /// Faults counted since the worker last gathered them into the database (`take_faults`):
    /// plain tallies beside the counters, so a storm of bad requests costs memory increments,
    /// never a write each.
    unflushed: [AtomicU64; 5],
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stats")
    }
}

const META: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    Key::from_parts(name, labels.iter().map(|(k, v)| Label::new(*k, *v)).collect::<Vec<_>>())
}

impl Default for Stats {
    fn default() -> Self {
        Self::labelled(None)
    }
}

impl Stats {
    /// Figures that carry `instance="<name>"` on every line when a name is given. Prometheus
    /// labels what it scrapes by target on its own; a name is for figures collected any other
    /// way (through a load balancer, by a push gateway, by an agent that merges processes), where
    /// two processes' counters would otherwise be one series that jumps back and forth.
    pub fn labelled(instance: Option<&str>) -> Self {
        let mut builder = PrometheusBuilder::new();
        if let Some(name) = instance {
            builder = builder.add_global_label("instance", name);
        }
        let recorder = builder.set_buckets(&LATENCY_BUCKETS).expect("the buckets are not empty").build_recorder();
        let handle = recorder.handle();
        let counter =
            |name, labels: &[(&'static str, &'static str)]| recorder.register_counter(&key(name, labels), &META);
        let rejected = |reason| counter("revision_store_webhook_rejected_total", &[("reason", reason)]);
        let credited = |path| counter("revision_store_ledger_credits_total", &[("path", path)]);
        let latency = |route| {
            recorder.register_histogram(&key("revision_store_request_duration_seconds", &[("route", route)]), &META)
        };
        Self {
            deliveries: counter("revision_store_webhook_deliveries_total", &[]),
            rejected_missing_header: rejected("missing_header"),
            rejected_malformed_header: rejected("malformed_header"),
            rejected_no_match: rejected("no_match"),
            rejected_outside_tolerance: rejected("outside_tolerance"),
            rejected_malformed_body: rejected("malformed_body"),
            rejected_too_large: rejected("too_large"),
            rejected_incomplete: rejected("incomplete_body"),
            stored: counter("revision_store_webhook_events_stored_total", &[]),
            duplicates: counter("revision_store_webhook_events_duplicate_total", &[]),
            store_unavailable: counter("revision_store_webhook_store_unavailable_total", &[]),
            credited: credited("webhook"),
            credited_return_page: credited("return_page"),
            credited_reconciliation: credited("reconciliation"),
            dead_lettered: counter("revision_store_events_dead_lettered_total", &[]),
            retries_scheduled: counter("revision_store_events_retries_scheduled_total", &[]),
            open_findings: recorder.register_gauge(&key("revision_store_reconciliation_open_findings", &[]), &META),
            slack_summaries_sent: counter("revision_store_slack_summaries_sent_total", &[]),
            slack_summary_failures: counter("revision_store_slack_summary_failures_total", &[]),
            webhook_seconds: latency("webhook"),
            page_seconds: latency("page"),
            processing_lag: recorder.register_gauge(&key("revision_store_processing_lag_seconds", &[]), &META),
            readiness_probes: counter("revision_store_readiness_probes_total", &[]),
            readiness_checks: counter("revision_store_readiness_checks_total", &[]),
            uploads_in_progress: recorder.register_gauge(&key("revision_store_uploads_in_progress", &[]), &META),
            uploads_refused_busy: counter("revision_store_uploads_refused_busy_total", &[]),
            purchases_started: counter("revision_store_purchases_started_total", &[]),
            alert_firing: Rule::ALL
                .iter()
                .map(|r| recorder.register_gauge(&key("revision_store_alert_firing", &[("rule", r.name())]), &META))
                .collect(),
            last_reconciled: recorder
                .register_gauge(&key("revision_store_reconciliation_last_completed_timestamp_seconds", &[]), &META),
            unflushed: Default::default(),
            recorder,
            handle,
        }
    }

    /// Counts a delivery to one of the gateway's sources by its outcome (`stored`, `duplicate`,
    /// `refused_<reason>`, `unavailable`). Only configured sources are named: a name from an
    /// unknown URL is never a label, so nobody can grow our series by inventing sources.
    pub fn gateway_delivery(&self, source: &str, outcome: &'static str) {
        let key = Key::from_parts(
            "revision_store_gateway_deliveries_total",
            vec![Label::new("source", source.to_string()), Label::new("outcome", outcome)],
        );
        self.recorder.register_counter(&key, &META).increment(1);
    }

    pub fn inc(counter: &Counter) {
        counter.increment(1);
    }

    /// A reconciliation finding, by category and state (labels known only at run time).
    pub fn finding(&self, category: &str, state: &str) {
        let key = Key::from_parts(
            "revision_store_reconciliation_findings_total",
            vec![Label::new("category", category.to_string()), Label::new("state", state.to_string())],
        );
        self.recorder.register_counter(&key, &META).increment(1);
    }

    /// A fault at webhook intake: its counter, and the tally the worker gathers for the alerts.
    pub fn fault(&self, fault: Fault) {
        let counter = match fault {
            Fault::StoreUnavailable => &self.store_unavailable,
            Fault::MissingHeader => &self.rejected_missing_header,
            Fault::MalformedHeader => &self.rejected_malformed_header,
            Fault::NoMatch => &self.rejected_no_match,
            Fault::OutsideTolerance => &self.rejected_outside_tolerance,
        };
        counter.increment(1);
        self.unflushed[fault.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a fault for the alert rules only, without Stripe's own counters: a gateway
    /// source's delivery that could not be stored is the same emergency as Stripe's (the 503
    /// rule), while `/metrics` keeps the two apart (`revision_store_gateway_deliveries_total`).
    pub fn tally(&self, fault: Fault) {
        self.unflushed[fault.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The faults counted since the last call, by `Fault::ALL`'s order, and zero from now on.
    pub fn take_faults(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.unflushed[i].swap(0, Ordering::Relaxed))
    }

    /// Puts back tallies taken but not written (the database did not answer): the next
    /// gathering writes them.
    pub fn put_back_faults(&self, counts: [u64; 5]) {
        for (tally, n) in self.unflushed.iter().zip(counts) {
            tally.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn set_alert_firing(&self, rule: Rule, firing: bool) {
        if let Some(g) = Rule::ALL.iter().position(|r| *r == rule).and_then(|i| self.alert_firing.get(i)) {
            g.set(if firing { 1.0 } else { 0.0 });
        }
    }

    pub fn set_open_findings(&self, n: u64) {
        self.open_findings.set(n as f64);
    }

    /// Everything, in Prometheus's text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn figures_render_with_their_types_and_labels() {
        let s = super::Stats::default();
        super::Stats::inc(&s.rejected_too_large);
        super::Stats::inc(&s.credited_return_page);
        s.finding("paid_not_credited", "healed");
        s.webhook_seconds.record(0.003);
        let text = s.render();
        assert!(text.contains("# TYPE revision_store_webhook_rejected_total counter"), "{text}");
        assert!(text.contains("revision_store_webhook_rejected_total{reason=\"too_large\"} 1"), "{text}");
        assert!(text.contains("revision_store_ledger_credits_total{path=\"return_page\"} 1"), "{text}");
        assert!(text.contains("revision_store_ledger_credits_total{path=\"webhook\"} 0"), "{text}");
        assert!(text.contains("category=\"paid_not_credited\",state=\"healed\"} 1"), "{text}");
        assert!(text.contains("# TYPE revision_store_request_duration_seconds histogram"), "{text}");
        assert!(
            text.contains("revision_store_request_duration_seconds_bucket{route=\"webhook\",le=\"0.005\"} 1"),
            "{text}"
        );
        // Another instance counts on its own.
        assert!(super::Stats::default()
            .render()
            .contains("revision_store_webhook_rejected_total{reason=\"too_large\"} 0"));
        assert!(!text.contains("instance="), "no name, no label: {text}");
    }

    #[test]
    fn faults_count_and_are_taken_once() {
        use crate::domain::alerts::Fault;
        let s = super::Stats::default();
        for _ in 0..3 {
            s.fault(Fault::NoMatch);
        }
        s.fault(Fault::StoreUnavailable);
        let text = s.render();
        assert!(text.contains("revision_store_webhook_rejected_total{reason=\"no_match\"} 3"), "{text}");
        assert!(text.contains("revision_store_webhook_store_unavailable_total 1"), "{text}");
        let taken = s.take_faults();
        assert_eq!((taken[Fault::NoMatch.index()], taken[Fault::StoreUnavailable.index()]), (3, 1));
        assert_eq!(s.take_faults(), [0; 5], "taken once");
        s.put_back_faults(taken);
        s.fault(Fault::NoMatch);
        assert_eq!(s.take_faults()[Fault::NoMatch.index()], 4);
        s.set_alert_firing(crate::domain::alerts::Rule::DeadLetters, true);
        assert!(s.render().contains("revision_store_alert_firing{rule=\"dead_letters\"} 1"));
    }

    #[test]
    fn a_named_instance_labels_every_line() {
        let s = super::Stats::labelled(Some("web-2"));
        super::Stats::inc(&s.credited_return_page);
        s.finding("paid_not_credited", "healed");
        s.webhook_seconds.record(0.003);
        let text = s.render();
        let figures: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
        assert!(figures.len() > 20, "{text}");
        for line in figures {
            assert!(line.contains("instance=\"web-2\""), "{line}");
        }
    }
}
