//! Sign-in throttling's counters (`domain::throttle` holds the rules), and the bound on password
//! hashing.
//!
//! On PostgreSQL every attempt checks and counts in the database, shared by every process. A
//! SQLite database has one serving process and one writer, which webhook intake needs: were each
//! attempt a write transaction, a flood of bad sign-ins would queue ahead of Stripe's deliveries.
//! So on SQLite the counters live in this process's memory (read from the database the first
//! time a key is met, so a restart keeps them) and are written at most once a second, in one
//! transaction; a refused attempt writes nothing at all.
use crate::domain::throttle::{Counter, Policy};
use crate::store::sign_in_throttle::{self as store, Keys};
use crate::store::{Db, StoreResult};
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// How often counters kept in memory are written (SQLite).
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug)]
pub struct SignInThrottle {
    pub policy: Policy,
    /// SQLite: the counters in memory; None: in the database (PostgreSQL).
    memory: Option<Arc<Memory>>,
}

#[derive(Debug, Default)]
struct Memory {
    state: Mutex<State>,
    flusher: OnceLock<()>,
}

#[derive(Debug, Default)]
struct State {
    /// What this process knows of each key met: Some(counter), or None for "no count" (none
    /// stored, or deleted by a success and not yet written).
    counters: HashMap<String, Option<Counter>>,
    /// Keys changed since the last write.
    dirty: HashSet<String>,
}

impl State {
    fn take_dirty(&mut self) -> Vec<(String, Option<Counter>)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty.into_iter().map(|k| (k.clone(), self.counters.get(&k).copied().flatten())).collect()
    }
}

impl SignInThrottle {
    pub fn new(db: &Db, policy: Policy) -> Self {
        let memory = matches!(db, Db::Sqlite(_)).then(Arc::default);
        Self { policy, memory }
    }

    /// Checks an attempt and counts it as a failure: Ok(Err(wait)) when the rules say not yet
    /// (nothing is counted then).
    pub async fn attempt(&self, db: &Db, keys: &Keys, now: DateTime<Utc>) -> StoreResult<Result<(), Duration>> {
        let Some(memory) = &self.memory else {
            return store::attempt(db, keys, &self.policy, now).await;
        };
        memory.flusher.get_or_init(|| {
            tokio::spawn(flush_every_second(Arc::downgrade(memory), db.clone(), self.policy));
        });
        let missing: Vec<String> = {
            let state = memory.lock();
            keys.all().into_iter().filter(|k| !state.counters.contains_key(*k)).map(str::to_owned).collect()
        };
        if !missing.is_empty() {
            let loaded = store::load(db, &missing.iter().map(String::as_str).collect::<Vec<_>>()).await?;
            let mut state = memory.lock();
            for key in missing {
                let stored = loaded.iter().find(|(k, _)| *k == key).map(|(_, c)| *c);
                state.counters.entry(key).or_insert(stored);
            }
        }
        let mut state = memory.lock();
        let decided = store::decide(&self.policy, keys, |k| state.counters.get(k).copied().flatten(), now);
        Ok(decided.map(|counted| {
            for (key, c) in counted {
                state.counters.insert(key.clone(), Some(c));
                state.dirty.insert(key);
            }
        }))
    }

    /// The attempt succeeded: the pair starts again from nothing, the address and the account
    /// get this attempt back (their other failures stay: a success proves the password, not that
    /// the guesses before it were this person's).
    pub async fn succeeded(&self, db: &Db, keys: &Keys) -> StoreResult<()> {
        let Some(memory) = &self.memory else {
            return store::succeeded(db, keys, &self.policy).await;
        };
        let mut state = memory.lock();
        state.counters.insert(keys.pair.clone(), None);
        state.dirty.insert(keys.pair.clone());
        for key in [Some(&keys.address), keys.account.as_ref()].into_iter().flatten() {
            if let Some(Some(c)) = state.counters.get(key).copied() {
                state.counters.insert(key.clone(), Some(self.policy.address_success(c)));
                state.dirty.insert(key.clone());
            }
        }
        Ok(())
    }

    /// Writes what memory holds that the database does not yet (at shutdown; the flusher does
    /// it every second meanwhile).
    pub async fn flush(&self, db: &Db) -> StoreResult<()> {
        match &self.memory {
            Some(memory) => memory.flush(db, &self.policy).await,
            None => Ok(()),
        }
    }
}

impl Memory {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing is left half-done under this lock: a panic elsewhere cannot poison the counts.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn flush(&self, db: &Db, policy: &Policy) -> StoreResult<()> {
        let changed = self.lock().take_dirty();
        if !changed.is_empty() {
            if let Err(e) = store::save(db, &changed).await {
                // Written next time, unless a newer count of the key is waiting already.
                let mut state = self.lock();
                for (key, _) in changed {
                    state.dirty.insert(key);
                }
                return Err(e);
            }
        }
        // Forget what no longer holds anything back (and is written), so memory stays about a
        // window of attempts.
        let now = Utc::now();
        let mut state = self.lock();
        let State { counters, dirty } = &mut *state;
        counters.retain(|k, c| dirty.contains(k) || c.is_some_and(|c| !policy.expired(&c, now)));
        Ok(())
    }
}

/// Writes the counters every second while the throttle lives.
async fn flush_every_second(memory: Weak<Memory>, db: Db, policy: Policy) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(memory) = memory.upgrade() else { return };
        if let Err(e) = memory.flush(&db, &policy).await {
            tracing::warn!(error = %e, "could not write the sign-in counters; trying again");
        }
    }
}

/// Password hashing (argon2, about 19 MiB and tens of milliseconds each) at most this many at
/// once; a sign-in that cannot get a turn within `wait` is answered 429 with `Retry-After: 1`
/// instead of queueing without end (a flood of sign-ins must not exhaust memory or starve
/// everything else of the CPU).
#[derive(Debug)]
pub struct HashingPermits {
    pub permits: tokio::sync::Semaphore,
    pub wait: std::time::Duration,
}

impl Default for HashingPermits {
    /// Two per core, waiting up to two seconds.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { permits: tokio::sync::Semaphore::new(2 * cores), wait: std::time::Duration::from_secs(2) }
    }
}

impl HashingPermits {
    /// A turn to hash, or None when none came free in time.
    pub async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(self.wait, self.permits.acquire()).await.ok()?.ok()
    }
}

/// Peers whose word on the client's address is believed by default: loopback and private
/// networks, where a reverse proxy in front of the app sits.
pub const DEFAULT_TRUSTED_PROXIES: &str = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7";

/// Reads a comma-separated list of networks (`10.0.0.0/8`) or single addresses.
pub fn parse_networks(list: &str) -> Result<Vec<ipnet::IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("`{s}` is not a network (10.0.0.0/8) or an address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn trusted_networks_parse() {
        let nets = super::parse_networks(super::DEFAULT_TRUSTED_PROXIES).unwrap();
        let trusted = |ip: &str| nets.iter().any(|n| n.contains(&ip.parse::<std::net::IpAddr>().unwrap()));
        assert!(trusted("127.0.0.1") && trusted("10.1.2.3") && trusted("::1") && trusted("fd00::1"));
        assert!(!trusted("203.0.113.7") && !trusted("2001:db8::1"));
        assert_eq!(super::parse_networks(" 203.0.113.7 , ").unwrap().len(), 1);
        assert!(super::parse_networks("10.0.0.0/33").is_err());
    }
}
