//! Sign-in throttling: after too many failed sign-ins for one key (an email, an IP address)
//! within a window, further attempts for that key are refused until the oldest failure ages
//! out. Slows password guessing without locking the real user out for long. Pure: the caller
//! passes the clock.
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Throttle {
    limit: usize,
    window: Duration,
    failures: HashMap<String, VecDeque<Instant>>,
}

impl Throttle {
    pub fn new(limit: usize, window: Duration) -> Self {
        Self { limit, window, failures: HashMap::new() }
    }

    /// `Err(wait)` if `key` has used up its failures: try again after `wait`.
    pub fn check(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        let Some(times) = self.failures.get_mut(key) else { return Ok(()) };
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
        if times.len() < self.limit {
            if times.is_empty() {
                self.failures.remove(key);
            }
            return Ok(());
        }
        let oldest = *times.front().expect("len >= limit > 0");
        Err(self.window.saturating_sub(now.duration_since(oldest)))
    }

    pub fn record_failure(&mut self, key: &str, now: Instant) {
        let times = self.failures.entry(key.to_string()).or_default();
        times.push_back(now);
        // Keep memory bounded per key: only the newest `limit` failures matter.
        while times.len() > self.limit {
            times.pop_front();
        }
        // Keep memory bounded overall: forget keys whose failures have all aged out.
        if self.failures.len() > 10_000 {
            let window = self.window;
            self.failures.retain(|_, t| t.back().is_some_and(|last| now.duration_since(*last) < window));
        }
    }

    /// A successful sign-in forgets the key's failures.
    pub fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }

    /// Takes back the newest attempt counted for `key` (it turned out to be a success) while
    /// keeping the older failures: for keys shared by many people, like an address.
    pub fn forget_last(&mut self, key: &str) {
        if let Some(times) = self.failures.get_mut(key) {
            times.pop_back();
            if times.is_empty() {
                self.failures.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_window_passes() {
        let mut t = Throttle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for i in 0..3 {
            assert!(t.check("a@x.test", start).is_ok(), "attempt {i}");
            t.record_failure("a@x.test", start + Duration::from_secs(i));
        }
        let wait = t.check("a@x.test", start + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        // Other keys are unaffected.
        assert!(t.check("b@x.test", start).is_ok());
        // Once the first failure is a window old, one more attempt is allowed.
        assert!(t.check("a@x.test", start + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn success_clears_the_failures() {
        let mut t = Throttle::new(2, Duration::from_secs(60));
        let now = Instant::now();
        t.record_failure("k", now);
        t.record_failure("k", now);
        assert!(t.check("k", now).is_err());
        t.clear("k");
        assert!(t.check("k", now).is_ok());
    }

    #[test]
    fn a_success_takes_back_only_its_own_attempt() {
        let mut t = Throttle::new(2, Duration::from_secs(60));
        let now = Instant::now();
        t.record_failure("addr", now);
        t.record_failure("addr", now);
        t.forget_last("addr");
        assert!(t.check("addr", now).is_ok(), "one failure left of two allowed");
        t.record_failure("addr", now);
        assert!(t.check("addr", now).is_err());
    }
}
