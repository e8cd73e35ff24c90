//! Sign-in throttling that an attacker cannot turn into a lockout.
//!
//! Counting failures per email locked the account for everybody: anyone could keep any user,
//! admins included, out by typing wrong passwords. So failures are counted per (email, client
//! address) pair, with delays that grow after a few free attempts, and per address across all
//! emails, with a cap. An attacker slows only their own address; the real user, signing in from
//! theirs, is never held up by someone else's failures.
//!
//! An address is what one client controls: an IPv4 address, or an IPv6 /64 (one subscriber
//! usually holds a whole /64 and can pick any address in it; counted apart, each would get its
//! own budget). See `address_group`.
//!
//! Guesses spread over many addresses still meet a ceiling per account: past `account_free`
//! failures in a window, each further attempt at the account from a browser we do not know
//! waits, with growing delays. A browser that signed in to the account before carries a signed
//! device cookie (OWASP's "device cookies") and is not held by that ceiling, so the real user
//! still signs in at once while someone guesses at their account.
//!
//! Every attempt is counted as a failure before its password is checked (so parallel guesses
//! cannot all slip past), and a success takes its count back. Pure: the caller passes the clock
//! and keeps the counters (shared by every process through the database).
use chrono::{DateTime, Duration, Utc};
use std::net::IpAddr;

/// The address a client's failures are counted under: an IPv4 address as it is, an IPv6
/// address by its /64 (`2001:db8:1:2::/64`), an IPv4 address written as IPv6 (`::ffff:a.b.c.d`)
/// as the IPv4 address it is.
pub fn address_group(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let network = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{network}/64")
            }
        },
    }
}

/// Failures of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub failures: i64,
    /// When the current count began (the address cap's window).
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// No attempt before this (the pair's growing delay, the address's capped window).
    pub next_allowed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures of a pair without any delay (typos).
    pub free: i64,
    /// The delay after the first failure past the free ones; it doubles with each further one.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// A counter with no failure for this long starts again from zero.
    pub window: Duration,
    /// Failures one address may make in a window, whatever the emails.
    pub per_address: i64,
    /// Failures at one account, from browsers without its device cookie, before each further
    /// attempt waits (growing delays from `first_delay`, as a pair's).
    pub account_free: i64,
}

impl Default for Policy {
    /// Four typos free, then 15 s, 30 s, 1 min, … up to 15 min between a pair's attempts (about
    /// a dozen guesses per quarter hour); thirty failures per address per quarter hour; ten
    /// failures per account from unknown browsers, then the same growing delays.
    fn default() -> Self {
        Self {
            free: 4,
            first_delay: Duration::seconds(15),
            max_delay: Duration::minutes(15),
            window: Duration::minutes(15),
            per_address: 30,
            account_free: 10,
        }
    }
}

impl Policy {
    /// How long a pair waits after its `failures`-th failure.
    pub fn delay_after(&self, failures: i64) -> Duration {
        self.delay_past(self.free, failures)
    }

    fn delay_past(&self, free: i64, failures: i64) -> Duration {
        let past_free = failures - free;
        if past_free <= 0 {
            return Duration::zero();
        }
        // 2^(past_free - 1) first delays, capped (and never overflowing).
        let doublings = (past_free - 1).min(20) as u32;
        (self.first_delay * 2i32.pow(doublings)).min(self.max_delay)
    }

    fn live(&self, c: Option<Counter>, now: DateTime<Utc>) -> Option<Counter> {
        c.filter(|c| now - c.last_at < self.window || now < c.next_allowed_at)
    }

    /// A pair's attempt: Err(wait) while its delay runs, else its counter with this attempt
    /// counted as a failure.
    pub fn pair_attempt(&self, c: Option<Counter>, now: DateTime<Utc>) -> Result<Counter, Duration> {
        self.delayed_attempt(self.free, c, now)
    }

    /// An account's attempt from a browser without its device cookie: as a pair's, with
    /// `account_free` free failures.
    pub fn account_attempt(&self, c: Option<Counter>, now: DateTime<Utc>) -> Result<Counter, Duration> {
        self.delayed_attempt(self.account_free, c, now)
    }

    fn delayed_attempt(&self, free: i64, c: Option<Counter>, now: DateTime<Utc>) -> Result<Counter, Duration> {
        let now = not_before(c, now);
        let c = self.live(c, now);
        if let Some(c) = c.filter(|c| now < c.next_allowed_at) {
            return Err(c.next_allowed_at - now);
        }
        let failures = c.map_or(0, |c| c.failures) + 1;
        Ok(Counter {
            failures,
            first_at: c.map_or(now, |c| c.first_at),
            last_at: now,
            next_allowed_at: now + self.delay_past(free, failures),
        })
    }

    /// An address's attempt: Err(wait) once it has used its failures for the window, else its
    /// counter with this attempt counted.
    pub fn address_attempt(&self, c: Option<Counter>, now: DateTime<Utc>) -> Result<Counter, Duration> {
        let now = not_before(c, now);
        let c = self.live(c, now).filter(|c| now - c.first_at < self.window);
        match c {
            Some(c) if c.failures >= self.per_address => {
                Err((c.first_at + self.window - now).max(Duration::seconds(1)))
            }
            Some(c) => {
                let failures = c.failures + 1;
                let full = failures >= self.per_address;
                Ok(Counter {
                    failures,
                    last_at: now,
                    next_allowed_at: if full { c.first_at + self.window } else { now },
                    ..c
                })
            }
            None => Ok(Counter { failures: 1, first_at: now, last_at: now, next_allowed_at: now }),
        }
    }

    /// A success takes back the attempt it counted on the address or the account (shared, so
    /// their other failures stay); the pair's counter is simply removed.
    pub fn address_success(&self, c: Counter) -> Counter {
        Counter { failures: (c.failures - 1).max(0), next_allowed_at: c.last_at.min(c.next_allowed_at), ..c }
    }

    /// Whether a stored counter can go: nothing it holds still matters.
    pub fn expired(&self, c: &Counter, now: DateTime<Utc>) -> bool {
        self.live(Some(*c), now).is_none()
    }
}

/// The clock of an attempt that waited for another's count (or came from a process whose clock
/// runs a little behind) may read earlier than the failure counted before it: time never runs
/// backwards for a counter, or such an attempt would wait for a delay that has already passed.
fn not_before(c: Option<Counter>, now: DateTime<Utc>) -> DateTime<Utc> {
    c.map_or(now, |c| now.max(c.last_at))
}

/// The wait as a person reads it: whole minutes, at least one.
pub fn minutes(wait: Duration) -> i64 {
    ((wait.num_seconds() + 59) / 60).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_pair_gets_a_few_free_tries_then_growing_delays() {
        let p = Policy::default();
        let mut c = None;
        for i in 0..4 {
            c = Some(p.pair_attempt(c, at(i)).unwrap_or_else(|w| panic!("try {i} waits {w}")));
        }
        // The fifth failure starts the delays: 15 s, then 30 s, 60 s, ...
        c = Some(p.pair_attempt(c, at(4)).unwrap());
        assert_eq!(p.pair_attempt(c, at(10)).unwrap_err(), Duration::seconds(9));
        c = Some(p.pair_attempt(c, at(19)).unwrap());
        assert_eq!(c.unwrap().next_allowed_at, at(49), "doubled");
        assert!(p.pair_attempt(c, at(48)).is_err());
        assert_eq!(p.delay_after(40), Duration::minutes(15), "capped");
        // An attempt whose clock reads before the last failure counts from that failure.
        let four = (0..4).fold(None, |c, _| Some(p.pair_attempt(c, at(100)).unwrap()));
        assert!(p.pair_attempt(four, at(99)).is_ok(), "the fifth try is free even with an earlier clock");
        // Long quiet: the count starts again.
        let fresh = p.pair_attempt(c, at(49) + p.window).unwrap();
        assert_eq!(fresh.failures, 1);
    }

    #[test]
    fn an_address_is_capped_across_emails_until_its_window_ends() {
        let p = Policy { per_address: 3, ..Policy::default() };
        let mut c = None;
        for i in 0..3 {
            c = Some(p.address_attempt(c, at(i)).unwrap());
        }
        assert_eq!(p.address_attempt(c, at(60)).unwrap_err(), p.window - Duration::seconds(60));
        // A success gives one attempt back; the other failures stay.
        let back = p.address_success(c.unwrap());
        assert_eq!(back.failures, 2);
        assert!(p.address_attempt(Some(back), at(61)).is_ok());
        // After the window, a fresh count.
        assert_eq!(p.address_attempt(c, at(0) + p.window).unwrap().failures, 1);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let group = |s: &str| address_group(s.parse().unwrap());
        assert_eq!(group("203.0.113.7"), "203.0.113.7");
        assert_ne!(group("203.0.113.7"), group("203.0.113.8"), "IPv4 addresses stay apart");
        assert_eq!(group("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(group("2001:db8:1:2:ffff:ffff:ffff:ffff"), group("2001:db8:1:2::1"), "one /64, one budget");
        assert_ne!(group("2001:db8:1:3::1"), group("2001:db8:1:2::1"), "the next /64 is someone else");
        assert_eq!(group("::ffff:203.0.113.7"), "203.0.113.7", "IPv4 written as IPv6");
    }

    #[test]
    fn an_account_allows_more_failures_then_slows() {
        let p = Policy::default();
        let mut c = None;
        for i in 0..p.account_free {
            c = Some(p.account_attempt(c, at(i)).unwrap_or_else(|w| panic!("try {i} waits {w}")));
        }
        c = Some(p.account_attempt(c, at(20)).unwrap());
        assert_eq!(p.account_attempt(c, at(21)).unwrap_err(), Duration::seconds(14));
        assert!(p.pair_attempt(None, at(21)).is_ok(), "the pair rules are apart");
    }

    #[test]
    fn expired_counters_are_recognised() {
        let p = Policy::default();
        let c = p.pair_attempt(None, at(0)).unwrap();
        assert!(!p.expired(&c, at(60)));
        assert!(p.expired(&c, at(0) + p.window));
        assert_eq!(minutes(Duration::seconds(61)), 2);
        assert_eq!(minutes(Duration::seconds(5)), 1);
    }
}
