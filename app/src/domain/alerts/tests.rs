use super::*;
use chrono::TimeZone;

fn t(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap() + Duration::minutes(min)
}

fn faults(kind: Fault, n: i64) -> Facts {
    let mut f = Facts::default();
    f.faults[kind.index()] = n;
    f
}

fn fire(count: i64) -> Observation {
    Observation { firing: true, count, detail: format!("{count} seen") }
}

fn quiet() -> Observation {
    Observation::default()
}

#[test]
fn every_rule_has_a_unique_name_a_runbook_a_page_and_a_default() {
    let mut names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), Rule::ALL.len());
    for r in Rule::ALL {
        assert_eq!(Rule::parse(r.name()), Some(r));
        assert!(r.default_threshold() >= 1);
        assert!(!r.runbook().contains('\n') && r.runbook().len() > 20, "{r:?}");
        assert!(r.page().starts_with("/admin"), "{r:?}");
        assert_eq!(r.alert_page(), format!("/admin/alerts#{}", r.name()));
    }
    assert_eq!(Rule::parse("nope"), None);
    for f in Fault::ALL {
        assert_eq!(Fault::parse(f.as_str()), Some(f));
    }
}

#[test]
fn thresholds_default_and_parse_overrides() {
    let d = Thresholds::default();
    assert_eq!(d.get(Rule::SignatureFailures), 10);
    assert_eq!(d.get(Rule::WebhookSilence), 6);
    let t = Thresholds::parse(&["signature_failures=25, webhook_silence=2".into(), "dead_letters=3".into()]).unwrap();
    assert_eq!((t.get(Rule::SignatureFailures), t.get(Rule::WebhookSilence), t.get(Rule::DeadLetters)), (25, 2, 3));
    assert_eq!(t.get(Rule::StoreUnavailable), 1);
    assert_eq!(Thresholds::parse(&[]).unwrap(), d);
    for bad in ["signature_failures", "nope=3", "dead_letters=0", "dead_letters=x", "dead_letters=-1"] {
        assert!(Thresholds::parse(&[bad.into()]).is_err(), "{bad}");
    }
    assert!(Thresholds::parse(&["nope=1".into()]).unwrap_err().contains("signature_failures"));
}

#[test]
fn faults_fire_at_their_threshold_and_say_how_many() {
    let s = Settings::default();
    let o = evaluate(Rule::StoreUnavailable, &faults(Fault::StoreUnavailable, 1), &s, t(0));
    assert!(o.firing && o.count == 1, "{o:?}");
    assert!(o.detail.contains("1 delivery answered 503"), "{}", o.detail);
    assert!(!evaluate(Rule::StoreUnavailable, &Facts::default(), &s, t(0)).firing);

    assert!(!evaluate(Rule::SignatureFailures, &faults(Fault::NoMatch, 9), &s, t(0)).firing);
    let mut f = faults(Fault::NoMatch, 10_000);
    f.faults[Fault::MissingHeader.index()] = 3;
    let o = evaluate(Rule::SignatureFailures, &f, &s, t(0));
    assert!(o.firing && o.count == 10_003, "{o:?}");
    assert!(o.detail.contains("10000 no_match, 3 missing_header"), "{}", o.detail);
    // 503s are not signature failures.
    assert_eq!(evaluate(Rule::SignatureFailures, &faults(Fault::StoreUnavailable, 50), &s, t(0)).count, 0);
}

#[test]
fn silence_needs_both_no_webhook_for_hours_and_purchases() {
    let s = Settings::default();
    let now = t(0);
    let mut f = Facts { last_webhook: Some(now - Duration::hours(7)), purchases_in_silence: 2, ..Default::default() };
    let o = evaluate(Rule::WebhookSilence, &f, &s, now);
    assert!(o.firing, "{o:?}");
    assert!(
        o.detail.contains("no verified webhook for 6 hours") && o.detail.contains("2 purchases were"),
        "{}",
        o.detail
    );
    f.purchases_in_silence = 0;
    assert!(!evaluate(Rule::WebhookSilence, &f, &s, now).firing, "no purchases: nothing to miss");
    f.purchases_in_silence = 1;
    f.last_webhook = Some(now - Duration::hours(5));
    assert!(!evaluate(Rule::WebhookSilence, &f, &s, now).firing, "a webhook within the hours");
    f.last_webhook = None;
    assert!(evaluate(Rule::WebhookSilence, &f, &s, now).firing, "never a webhook, purchases made");
}

#[test]
fn reconciliation_rules_read_the_last_run() {
    let s = Settings::default();
    let run = RunFacts { id: 7, finished_at: t(-60), undelivered: 2, open: 0, self_credited: 1 };
    let f = Facts { last_run: Some(run), ..Default::default() };
    let o = evaluate(Rule::UndeliveredEvents, &f, &s, t(0));
    assert!(o.firing && o.count == 2 && o.detail.contains("reconciliation #7"), "{o:?}");
    assert!(!evaluate(Rule::FindingsOpen, &f, &s, t(0)).firing);
    assert!(evaluate(Rule::SelfCredited, &f, &s, t(0)).firing);
    let none = evaluate(Rule::FindingsOpen, &Facts::default(), &s, t(0));
    assert!(!none.firing && none.detail.contains("no reconciliation"), "{none:?}");
}

#[test]
fn dead_letters_overdue_events_and_returns_without_webhook() {
    let s = Settings::default();
    let f = Facts {
        dead_letters: 1,
        overdue_events: 0,
        returns_without_webhook: (vec!["pi_1".into(), "pi_2".into()], 5),
        ..Default::default()
    };
    assert!(evaluate(Rule::DeadLetters, &f, &s, t(0)).firing);
    assert!(!evaluate(Rule::OverdueEvents, &f, &s, t(0)).firing);
    let o = evaluate(Rule::ReturnWithoutWebhook, &f, &s, t(0));
    assert!(o.firing && o.count == 5, "{o:?}");
    assert!(o.detail.contains("5 payments credited by the return page more than 10 minutes ago"), "{}", o.detail);
    assert!(o.detail.ends_with(": pi_1, pi_2"), "{}", o.detail);
}

#[test]
fn a_reconciliation_is_overdue_after_its_interval_and_the_grace() {
    let mut s = Settings { reconcile_interval: Some(Duration::hours(24)), ..Default::default() };
    let now = t(0);
    let f = |done: Option<i64>, first: Option<i64>| Facts {
        last_reconciled: done.map(|h| now - Duration::hours(h)),
        first_reconcile_start: first.map(|h| now - Duration::hours(h)),
        ..Default::default()
    };
    assert!(!evaluate(Rule::ReconciliationOverdue, &f(Some(24), None), &s, now).firing);
    assert!(!evaluate(Rule::ReconciliationOverdue, &f(Some(24), Some(48)), &s, now - Duration::minutes(1)).firing);
    let o = evaluate(Rule::ReconciliationOverdue, &f(Some(25), Some(100)), &s, now);
    assert!(o.firing && o.count == 1, "{o:?}");
    // Never completed: from the first try.
    assert!(evaluate(Rule::ReconciliationOverdue, &f(None, Some(26)), &s, now).firing);
    assert!(!evaluate(Rule::ReconciliationOverdue, &f(None, Some(2)), &s, now).firing);
    // Nothing ever started, or no schedule: nothing can be overdue.
    assert!(!evaluate(Rule::ReconciliationOverdue, &f(None, None), &s, now).firing);
    s.reconcile_interval = None;
    assert!(!evaluate(Rule::ReconciliationOverdue, &f(Some(100), Some(100)), &s, now).firing);
}

#[test]
fn a_storm_is_one_start_notice_with_its_count_then_one_resolution() {
    let rule = Rule::SignatureFailures;
    let (s1, n1) = next(rule, &State::default(), &fire(10_000), t(0));
    let n1 = n1.expect("a start notice");
    assert_eq!((n1.kind, n1.count, n1.since), (NoticeKind::Started, 10_000, t(0)));
    assert!(n1.body("https://shop.example.com/").contains("10000 seen"));
    let s1 = notified(&s1, &n1, t(0));
    assert_eq!((s1.owed, s1.last_notified_at), (None, Some(t(0))));
    // Still firing, more and fewer: nothing new to say.
    let (s2, n2) = next(rule, &s1, &fire(25_000), t(1));
    assert_eq!(n2, None);
    let (s3, n3) = next(rule, &s2, &fire(40), t(2));
    assert_eq!(n3, None);
    assert_eq!((s3.peak, s3.count, s3.firing_since), (25_000, 40, Some(t(0))));
    // It ends: one resolution, with the episode.
    let (s4, n4) = next(rule, &s3, &quiet(), t(8));
    let n4 = n4.expect("a resolution");
    assert_eq!((n4.kind, n4.since, n4.resolved_at, n4.peak), (NoticeKind::Resolved, t(0), Some(t(8)), 25_000));
    assert!(n4.body("https://x").contains("Fired from 2026-03-10 12:00 UTC to 2026-03-10 12:08 UTC (at most 25000)."));
    let s4 = notified(&s4, &n4, t(8));
    // Resolved once: quiet evaluations say nothing more.
    let (s5, n5) = next(rule, &s4, &quiet(), t(9));
    assert_eq!(n5, None);
    assert!(!s5.firing() && s5.resolved_at == Some(t(8)));
}

#[test]
fn a_re_fire_after_resolving_starts_a_new_episode() {
    let rule = Rule::DeadLetters;
    let (s, n) = next(rule, &State::default(), &fire(1), t(0));
    let s = notified(&s, &n.unwrap(), t(0));
    let (s, n) = next(rule, &s, &quiet(), t(5));
    let s = notified(&s, &n.unwrap(), t(5));
    let (s, n) = next(rule, &s, &fire(3), t(30));
    let n = n.expect("a new start");
    assert_eq!((n.kind, n.since, n.count, n.peak), (NoticeKind::Started, t(30), 3, 3));
    assert_eq!((s.firing_since, s.resolved_at, s.peak), (Some(t(30)), None, 3));
}

#[test]
fn a_notice_that_failed_to_send_is_owed_again_not_lost_and_not_doubled() {
    let rule = Rule::StoreUnavailable;
    let (s, n) = next(rule, &State::default(), &fire(2), t(0));
    assert!(n.is_some());
    // The send failed: the state keeps owing it, and the next evaluation hands it over again,
    // with the same episode start and the latest count.
    let (s, again) = next(rule, &s, &fire(5), t(1));
    let again = again.expect("owed again");
    assert_eq!((again.kind, again.since, again.count, again.peak), (NoticeKind::Started, t(0), 5, 5));
    let s = notified(&s, &again, t(1));
    let (s, none) = next(rule, &s, &fire(5), t(2));
    assert_eq!(none, None, "sent once, never again");
    // The resolution fails to send twice, then goes: once.
    let (s, r) = next(rule, &s, &quiet(), t(3));
    assert_eq!(r.as_ref().map(|r| r.kind), Some(NoticeKind::Resolved));
    let (s, r2) = next(rule, &s, &quiet(), t(4));
    assert_eq!(r2, r, "the same resolution, owed again");
    let s = notified(&s, &r2.unwrap(), t(5));
    assert_eq!(next(rule, &s, &quiet(), t(6)).1, None);
}

#[test]
fn a_sent_notice_of_an_older_episode_clears_nothing_newer() {
    let rule = Rule::FindingsOpen;
    let (s, start) = next(rule, &State::default(), &fire(1), t(0));
    let start = start.unwrap();
    let (s, _) = next(rule, &s, &quiet(), t(1)); // resolution owed, the start never sent
    let (s, restart) = next(rule, &s, &fire(2), t(2));
    let restart = restart.expect("the new start replaces the unsent resolution");
    assert_eq!((restart.kind, restart.since), (NoticeKind::Started, t(2)));
    // The old start's send finishing late does not settle the new one.
    let s = notified(&s, &start, t(3));
    assert_eq!(s.owed, Some(NoticeKind::Started));
    let s = notified(&s, &restart, t(3));
    assert_eq!(s.owed, None);
}

#[test]
fn a_quick_blip_whose_start_was_never_sent_still_says_it_happened() {
    let rule = Rule::StoreUnavailable;
    let (s, _) = next(rule, &State::default(), &fire(1), t(0));
    let (_, n) = next(rule, &s, &quiet(), t(1));
    let n = n.unwrap();
    assert_eq!((n.kind, n.since, n.resolved_at), (NoticeKind::Resolved, t(0), Some(t(1))));
}

#[test]
fn notices_link_to_the_alert_and_the_page_that_shows_it() {
    let (_, n) = next(Rule::DeadLetters, &State::default(), &fire(2), t(0));
    let body = n.unwrap().body("https://shop.example.com/");
    assert!(body.starts_with("[alert] FIRING: New dead letters\n2 seen\nFiring since 2026-03-10 12:00 UTC."), "{body}");
    assert!(body.contains("What to check first: The failed events' reasons"), "{body}");
    assert!(body.contains("https://shop.example.com/admin/alerts#dead_letters"), "{body}");
    assert!(body.contains("https://shop.example.com/admin/events?status=failed"), "{body}");
}

#[test]
fn the_retry_budget_is_the_sum_of_the_delays() {
    let p = crate::domain::events::RetryPolicy { first_delay_secs: 30, max_delay_secs: 3600, max_attempts: 4 };
    // After attempts 1, 2 and 3: 30 + 60 + 120 s; the fourth failure dead-letters.
    assert_eq!(retry_budget(&p), Duration::seconds(210));
    let day = retry_budget(&crate::domain::events::RetryPolicy::default());
    assert!(day > Duration::hours(20) && day < Duration::hours(26), "{day}");
}
