//! Seals: tamper evidence for the event store beyond its append-only triggers. Each closed hour
//! of received events gets a SHA-256 over its events in a fixed order, chained to the seal before
//! it, written by the worker off the request path (intake never waits for it). `verify`
//! recomputes them from the events as they are now and names the first hour that differs.
//!
//! What a seal covers of each event, in order (received_at, then event id): its id, type,
//! received time (RFC 3339, microseconds, UTC) and the SHA-256 of its payload bytes.
use super::Services;
use crate::store::seals::{self, Seal, SealedFields};
use crate::store::{Db, StoreError};
use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

/// One seal per hour.
pub fn period() -> Duration {
    Duration::hours(1)
}

/// An hour is sealed only this long after it ends: a delivery received at 13:59:59.9 may commit
/// a moment after 14:00, and the seal must not miss it.
pub fn grace() -> Duration {
    Duration::minutes(5)
}

/// The start of the period holding `t`.
pub fn period_start(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(period()).expect("an hour divides any time")
}

/// The digest of one period's events, fed in order.
#[derive(Default)]
pub struct PeriodDigest {
    sha: Sha256,
    pub count: i64,
}

impl PeriodDigest {
    pub fn feed(&mut self, e: &SealedFields) {
        self.sha.update(e.event_id.as_bytes());
        self.sha.update(b"\n");
        self.sha.update(e.event_type.as_bytes());
        self.sha.update(b"\n");
        self.sha.update(e.received_at.to_rfc3339_opts(SecondsFormat::Micros, true).as_bytes());
        self.sha.update(b"\n");
        self.sha.update(crate::store::events::NewEvent::digest(&e.payload).as_bytes());
        self.sha.update(b"\n");
        self.count += 1;
    }
    pub fn finish(self) -> (i64, String) {
        (self.count, hex::encode(self.sha.finalize()))
    }
}

/// The chain link: the previous seal's link, the period, its count and its digest. Changing
/// or removing any seal breaks every link after it.
pub fn chain(previous: Option<&str>, start: DateTime<Utc>, end: DateTime<Utc>, count: i64, digest: &str) -> String {
    let mut sha = Sha256::new();
    sha.update(previous.unwrap_or("genesis").as_bytes());
    sha.update(b"\n");
    sha.update(start.to_rfc3339_opts(SecondsFormat::Secs, true).as_bytes());
    sha.update(b"\n");
    sha.update(end.to_rfc3339_opts(SecondsFormat::Secs, true).as_bytes());
    sha.update(b"\n");
    sha.update(count.to_string().as_bytes());
    sha.update(b"\n");
    sha.update(digest.as_bytes());
    hex::encode(sha.finalize())
}

/// The digest of `[start, end)` as the events are now.
pub async fn digest_of(db: &Db, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(i64, String), StoreError> {
    let mut d = PeriodDigest::default();
    seals::for_each_in_period(db, start, end, &mut |e| d.feed(&e)).await?;
    Ok(d.finish())
}

/// Seals every closed period not yet sealed, up to `max` of them (the worker calls this each
/// minute, so a long backlog is worked off a slice at a time). Returns how many it sealed.
pub async fn seal_closed(svc: &Services, now: DateTime<Utc>, max: usize) -> Result<usize, StoreError> {
    let db = &svc.db;
    let last = seals::last(db).await?;
    let mut start = match &last {
        Some(s) => s.period_end,
        None => match seals::first_event_at(db).await? {
            Some(first) => period_start(first),
            None => return Ok(0),
        },
    };
    let mut previous = last.map(|s| s.chained);
    let mut sealed = 0;
    while sealed < max && start + period() + grace() <= now {
        let end = start + period();
        let (count, digest) = digest_of(db, start, end).await?;
        let chained = chain(previous.as_deref(), start, end, count, &digest);
        let seal = Seal {
            period_start: start,
            period_end: end,
            event_count: count,
            digest,
            previous: previous.clone(),
            chained: chained.clone(),
            sealed_at: Utc::now(),
        };
        if seals::insert(db, &seal).await? {
            sealed += 1;
        }
        previous = Some(chained);
        start = end;
    }
    Ok(sealed)
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every seal recomputed to the same digest and the chain is whole.
    Intact { seals: usize, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>> },
    /// The first period that differs, and how.
    Broken { period_start: DateTime<Utc>, problem: String },
}

/// Recomputes every seal from `since` (all when None) against the events as they are now.
pub async fn verify(db: &Db, since: Option<DateTime<Utc>>) -> Result<Verdict, StoreError> {
    let all = seals::since(db, since).await?;
    let mut previous: Option<&Seal> = None;
    for seal in &all {
        // The chain: each seal names the one before it, and its own link is what we compute.
        if let Some(p) = previous {
            if seal.previous.as_deref() != Some(p.chained.as_str()) || seal.period_start != p.period_end {
                return Ok(Verdict::Broken {
                    period_start: seal.period_start,
                    problem: "the seal chain is broken here: a seal before it was changed or removed".into(),
                });
            }
        }
        let link = chain(seal.previous.as_deref(), seal.period_start, seal.period_end, seal.event_count, &seal.digest);
        if link != seal.chained {
            return Ok(Verdict::Broken {
                period_start: seal.period_start,
                problem: "this seal was altered after it was written".into(),
            });
        }
        let (count, digest) = digest_of(db, seal.period_start, seal.period_end).await?;
        if count != seal.event_count || digest != seal.digest {
            let problem = match count.cmp(&seal.event_count) {
                std::cmp::Ordering::Less => format!(
                    "{} event(s) removed since it was sealed ({} sealed, {count} now)",
                    seal.event_count - count,
                    seal.event_count
                ),
                std::cmp::Ordering::Greater => format!(
                    "{} event(s) added since it was sealed ({} sealed, {count} now)",
                    count - seal.event_count,
                    seal.event_count
                ),
                std::cmp::Ordering::Equal => {
                    format!("its events were altered since it was sealed ({count} events, a different digest)")
                }
            };
            return Ok(Verdict::Broken { period_start: seal.period_start, problem });
        }
        previous = Some(seal);
    }
    Ok(Verdict::Intact {
        seals: all.len(),
        from: all.first().map(|s| s.period_start),
        to: all.last().map(|s| s.period_end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ev(id: &str, payload: &str) -> SealedFields {
        SealedFields {
            event_id: id.into(),
            event_type: "payment_intent.succeeded".into(),
            received_at: at("2026-11-27T14:05:00.123456Z"),
            payload: payload.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_digest_changes_with_any_byte_any_event_and_the_order() {
        let digest = |events: &[SealedFields]| {
            let mut d = PeriodDigest::default();
            events.iter().for_each(|e| d.feed(e));
            d.finish()
        };
        let base = digest(&[ev("evt_1", "{\"a\":1}"), ev("evt_2", "{}")]);
        assert_eq!(base.0, 2);
        assert_eq!(base, digest(&[ev("evt_1", "{\"a\":1}"), ev("evt_2", "{}")]), "deterministic");
        assert_ne!(base, digest(&[ev("evt_1", "{\"a\":2}"), ev("evt_2", "{}")]));
        assert_ne!(base, digest(&[ev("evt_2", "{}"), ev("evt_1", "{\"a\":1}")]));
        assert_ne!(base.1, digest(&[ev("evt_1", "{\"a\":1}")]).1);
        assert_eq!(digest(&[]).0, 0);
    }

    #[test]
    fn periods_are_hours_and_links_depend_on_everything_before() {
        assert_eq!(period_start(at("2026-11-27T14:59:59.999Z")), at("2026-11-27T14:00:00Z"));
        let (s, e) = (at("2026-11-27T14:00:00Z"), at("2026-11-27T15:00:00Z"));
        let first = chain(None, s, e, 3, "d");
        assert_ne!(first, chain(Some("x"), s, e, 3, "d"));
        assert_ne!(first, chain(None, s, e, 4, "d"));
        assert_ne!(first, chain(None, s, e, 3, "e"));
        assert_eq!(first.len(), 64);
    }
}
