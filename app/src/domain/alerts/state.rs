//! An alert's life: episodes (firing since, resolved at), and the notice each owes. A notice is
//! owed when an episode starts and when it ends, and stays owed until it was sent (`notified`),
//! so a failed send is tried again at the next evaluation, never lost, never repeated once sent.
use super::{Observation, Rule};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeKind {
    Started,
    Resolved,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Started => "started",
            NoticeKind::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "started" => Some(NoticeKind::Started),
            "resolved" => Some(NoticeKind::Resolved),
            _ => None,
        }
    }
}

/// A rule's state between evaluations (one `alert_state` row).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    /// When the latest episode started (kept after it resolves); None: never fired.
    pub firing_since: Option<DateTime<Utc>>,
    /// When the latest episode ended; None while it fires.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The count the last evaluation saw, and the episode's largest.
    pub count: i64,
    pub peak: i64,
    pub detail: String,
    /// The notice not yet sent.
    pub owed: Option<NoticeKind>,
    pub last_notified_at: Option<DateTime<Utc>>,
}

impl State {
    pub fn firing(&self) -> bool {
        self.firing_since.is_some() && self.resolved_at.is_none()
    }
}

/// What is sent to the team: one per episode start and one per end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub rule: Rule,
    pub kind: NoticeKind,
    pub since: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub count: i64,
    pub peak: i64,
    pub detail: String,
}

fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl Notice {
    /// Names this notice uniquely (rule, start or end, episode): a channel that queues messages
    /// (an email outbox) can use it to take the same notice once however often it is handed it.
    pub fn key(&self) -> String {
        format!("alert:{}:{}:{}", self.rule.name(), self.kind.as_str(), self.since.timestamp())
    }

    /// One line: what, and whether it starts or ends.
    pub fn subject(&self) -> String {
        match self.kind {
            NoticeKind::Started => format!("[alert] FIRING: {}", self.rule.title()),
            NoticeKind::Resolved => format!("[alert] RESOLVED: {}", self.rule.title()),
        }
    }

    /// The plain-text message: what was seen, since when, what to check first, and where the
    /// admin pages explain it (`origin`: the site's address, e.g. `https://shop.example.com`).
    pub fn body(&self, origin: &str) -> String {
        let origin = origin.trim_end_matches('/');
        let when = match (self.kind, self.resolved_at) {
            (NoticeKind::Resolved, Some(r)) => {
                format!("Fired from {} to {} (at most {}).", at(self.since), at(r), self.peak)
            }
            _ => format!("Firing since {}.", at(self.since)),
        };
        format!(
            "{}\n{}\n{when}\nWhat to check first: {}\nThe alert: {origin}{}\nWhere to look: {origin}{}",
            self.subject(),
            self.detail,
            self.rule.runbook(),
            self.rule.alert_page(),
            self.rule.page(),
        )
    }
}

/// The state after `obs`, seen at `now`, and the notice it owes (a notice owed before and not
/// yet sent is owed again). A rule that keeps firing owes nothing new: a storm of bad signatures
/// is one start notice with its count, then one resolution. A new start owed while a resolution
/// was never sent replaces it: the start says the alert fires, which is what is true now.
pub fn next(rule: Rule, state: &State, obs: &Observation, now: DateTime<Utc>) -> (State, Option<Notice>) {
    let mut s = state.clone();
    s.count = obs.count;
    match (state.firing(), obs.firing) {
        (false, true) => {
            s.firing_since = Some(now);
            s.resolved_at = None;
            s.peak = obs.count;
            s.detail = obs.detail.clone();
            s.owed = Some(NoticeKind::Started);
        }
        (true, true) => {
            s.peak = s.peak.max(obs.count);
            s.detail = obs.detail.clone();
        }
        (true, false) => {
            s.resolved_at = Some(now);
            s.owed = Some(NoticeKind::Resolved);
        }
        (false, false) => {}
    }
    let notice = owed_notice(rule, &s);
    (s, notice)
}

/// The notice `state` still owes, if any.
pub fn owed_notice(rule: Rule, state: &State) -> Option<Notice> {
    let kind = state.owed?;
    Some(Notice {
        rule,
        kind,
        since: state.firing_since?,
        resolved_at: state.resolved_at,
        count: state.count,
        peak: state.peak,
        detail: state.detail.clone(),
    })
}

/// The state after `notice` was sent at `now`: nothing owed any more, unless the state moved on
/// to owe another notice meanwhile.
pub fn notified(state: &State, notice: &Notice, now: DateTime<Utc>) -> State {
    let mut s = state.clone();
    if s.owed == Some(notice.kind) && s.firing_since == Some(notice.since) {
        s.owed = None;
        s.last_notified_at = Some(now);
    }
    s
}
