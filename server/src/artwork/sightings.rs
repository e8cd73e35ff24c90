//! How old an artwork object is, by this process's own clock: a bucket's objects are aged from
//! when the sweep first saw each one unchanged (`Sightings`, kept by the artwork store so every
//! sweep shares it), never by the storage service's clock (see `sweep`).
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// When this process first saw each object of a bucket, and as which version (its store time
/// and entity tag, compared for equality only, never with our clock). Held in memory: a restart
/// forgets it, which only postpones a removal by one grace period. About a hundred bytes per
/// artwork file.
#[derive(Debug, Default)]
pub struct Sightings(Mutex<HashMap<String, Sighting>>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Sighting {
    first_seen: SystemTime,
    version: (chrono::DateTime<chrono::Utc>, Option<String>),
}

impl Sightings {
    /// Whether `key`, as `version`, has been seen unchanged since at least `grace` before `now`
    /// (our clock); a new or rewritten object starts its grace now.
    pub(crate) fn aged(
        &self,
        key: &str,
        version: (chrono::DateTime<chrono::Utc>, Option<String>),
        now: SystemTime,
        grace: Duration,
    ) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let sighting =
            seen.entry(key.to_string()).or_insert_with(|| Sighting { first_seen: now, version: version.clone() });
        if sighting.version != version {
            *sighting = Sighting { first_seen: now, version };
        }
        is_abandoned(sighting.first_seen, now, grace)
    }

    /// Forgets objects a whole listing no longer showed (removed, by us or anyone).
    pub(crate) fn keep_only(&self, listed: &HashSet<String>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).retain(|k, _| listed.contains(k));
    }

    pub(crate) fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }
}

/// Last written at least `grace` before `now`. A time after `now` (a clock set back) is recent.
pub(crate) fn is_abandoned(modified: SystemTime, now: SystemTime, grace: Duration) -> bool {
    now.duration_since(modified).is_ok_and(|age| age >= grace)
}
