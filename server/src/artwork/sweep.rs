//! Removes artwork no revision request kept: objects completed under their final name whose row
//! never committed (a crash between the two, or a failure whose commit was in doubt), and, in a
//! local folder, the partly written files a crashed upload left. Only what is older than a grace
//! period goes, so an upload in flight (being written, or completed moments before its row
//! commits) is never touched. Objects and files an upload never makes are left alone.
//!
//! In a bucket, an upload that never completed leaves no object, only its multipart parts,
//! which S3 keeps until aborted: the upload aborts them itself when it fails or its client goes
//! away, and what a crashed process left is for the bucket's lifecycle rule
//! (`AbortIncompleteMultipartUpload`, ARCHITECTURE.md). Uploads under `PART_BYTES` never start one.
//!
//! Whose clock says "older than the grace period": a bucket's `last_modified` is the storage
//! service's clock, and comparing it with ours let an hour of skew (ours ahead, or theirs behind)
//! make an object written a moment ago look abandoned, and be removed while its request was
//! about to commit. So a bucket's objects are aged by this process's own clock, from when it
//! first saw each one unchanged (`Sightings`); a local folder's files are stamped by this
//! machine's clock, so there their modification time is compared as before.
use crate::artwork::sightings::is_abandoned;
pub use crate::artwork::sightings::Sightings;
use crate::artwork::store::{contract_of, is_stored_name, ArtworkStore, ARTWORK_DIR};
use app::store::{ledger, Db};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Far longer than any upload in flight: an object is written to until its request ends (a
/// stalled body is cut off by the body timeout), and a completed object's row commits within
/// the same request.
pub const GRACE: Duration = Duration::from_secs(60 * 60);

/// Candidates are checked against the database this many at a time, so a sweep of a large
/// store holds a bounded list.
const CHECK_BATCH: usize = 1000;

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Objects under their final name that no request references.
    pub orphans: usize,
    /// Partly written files of uploads a crash interrupted (a local folder only).
    pub staged: usize,
}

/// Sweeps the artwork store, treating what was last written before `now - grace` as
/// abandoned. Never fails: what cannot be listed or removed is logged and left for the next
/// sweep, and a contract whose references cannot be read from the database keeps all its objects.
pub async fn sweep(db: &Db, store: &ArtworkStore, now: SystemTime, grace: Duration) -> Swept {
    let mut swept = Swept::default();
    if let Some(root) = store.local_root() {
        swept.staged = sweep_partial_files(&root.join(ARTWORK_DIR), now, grace).await;
    }
    let prefix = object_store::path::Path::from(ARTWORK_DIR);
    let mut listing = store.objects().list(Some(&prefix));
    let mut candidates: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut held = 0;
    let local = store.local_root().is_some();
    let (mut listed, mut whole) = (HashSet::new(), true);
    while let Some(item) = listing.next().await {
        let meta = match item {
            Ok(m) => m,
            // One unreadable entry (a file name the store cannot map to a key) skips that entry;
            // a failed request ends the listing, and the next sweep starts over.
            Err(e) => {
                tracing::warn!(error = %e, "listing the artwork store: an entry was skipped");
                whole = false;
                continue;
            }
        };
        let key = meta.location.as_ref();
        let Some(contract_id) = contract_of(key) else { continue };
        let aged = if local {
            is_abandoned(meta.last_modified.into(), now, grace)
        } else {
            listed.insert(key.to_string());
            store.sightings().aged(key, (meta.last_modified, meta.e_tag.clone()), now, grace)
        };
        if aged {
            candidates.entry(contract_id).or_default().push(key.to_string());
            held += 1;
            if held >= CHECK_BATCH {
                swept.orphans += remove_unreferenced(db, store, std::mem::take(&mut candidates)).await;
                held = 0;
            }
        }
    }
    swept.orphans += remove_unreferenced(db, store, candidates).await;
    if !local && whole {
        store.sightings().keep_only(&listed);
    }
    swept
}

/// Removes each candidate its contract's requests do not reference; how many it removed.
async fn remove_unreferenced(db: &Db, store: &ArtworkStore, candidates: BTreeMap<i64, Vec<String>>) -> usize {
    let mut removed = 0;
    for (contract_id, keys) in candidates {
        // Asked after listing: a row that commits meanwhile is seen, so its object stays.
        let referenced = match ledger::artwork_paths(db, contract_id).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, contract_id, "cannot read which artwork is referenced; sweeping it later");
                continue;
            }
        };
        for key in keys.into_iter().filter(|k| !referenced.contains(k)) {
            match store.delete(&key).await {
                Ok(()) => {
                    store.sightings().forget(&key);
                    tracing::info!(key, "removed artwork no request references");
                    removed += 1;
                }
                Err(e) => tracing::warn!(error = %e, key, "cannot remove abandoned artwork"),
            }
        }
    }
    removed
}

/// In a local folder an upload is written to `<final name>#<n>` beside its final name and
/// renamed when complete (object_store's way; its listings hide such files). A crash leaves
/// one behind: removed here once abandoned, with what the staging folder of earlier versions
/// (`artwork/.incoming/`) still holds. How many it removed.
async fn sweep_partial_files(root: &Path, now: SystemTime, grace: Duration) -> usize {
    let mut removed = 0;
    for folder in entries(root).await {
        let name = folder.file_name().to_string_lossy().into_owned();
        let legacy_staging = name == ".incoming";
        if !legacy_staging && name.parse::<i64>().is_err() {
            continue;
        }
        if !folder.file_type().await.is_ok_and(|t| t.is_dir()) {
            continue;
        }
        for file in entries(&folder.path()).await {
            let file_name = file.file_name().to_string_lossy().into_owned();
            let partial = legacy_staging
                || file_name.split_once('#').is_some_and(|(stored, n)| {
                    is_stored_name(stored) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                });
            // Not followed: a link is not a file an upload made.
            let old = match file.metadata().await {
                Ok(m) if m.is_file() => m.modified().is_ok_and(|modified| is_abandoned(modified, now, grace)),
                _ => false,
            };
            if partial && old {
                match tokio::fs::remove_file(file.path()).await {
                    Ok(()) => {
                        tracing::info!(path = %file.path().display(), "removed a crashed upload's partial file");
                        removed += 1;
                    }
                    // Another process's sweep got there first.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(error = %e, path = %file.path().display(), "cannot remove a partial upload")
                    }
                }
            }
        }
    }
    removed
}

/// The entries of `dir`; none if it is missing, and what could be read if listing fails.
async fn entries(dir: &Path) -> Vec<tokio::fs::DirEntry> {
    let mut found = Vec::new();
    let mut listing = match tokio::fs::read_dir(dir).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return found,
        Err(e) => {
            tracing::warn!(error = %e, folder = %dir.display(), "cannot list an artwork folder; sweeping it later");
            return found;
        }
    };
    loop {
        match listing.next_entry().await {
            Ok(Some(e)) => found.push(e),
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, folder = %dir.display(), "listing an artwork folder failed part-way");
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use crate::artwork::sightings::{is_abandoned, Sightings};
    use std::time::{Duration, SystemTime};

    #[test]
    fn a_bucket_object_ages_by_our_clock_from_when_we_first_saw_it_unchanged() {
        let sightings = Sightings::default();
        let grace = Duration::from_secs(3600);
        let now = SystemTime::now();
        // The store's own time says the object is a day old (its clock runs behind ours):
        // irrelevant, it was first seen now.
        let v1 = (chrono::Utc::now() - chrono::Duration::days(1), Some("etag-1".to_string()));
        assert!(!sightings.aged("artwork/1/a.png", v1.clone(), now, grace));
        assert!(!sightings.aged("artwork/1/a.png", v1.clone(), now + grace / 2, grace));
        assert!(sightings.aged("artwork/1/a.png", v1.clone(), now + grace, grace));
        // Rewritten meanwhile (another version): its grace starts again.
        let v2 = (v1.0, Some("etag-2".to_string()));
        assert!(!sightings.aged("artwork/1/a.png", v2.clone(), now + grace, grace));
        assert!(sightings.aged("artwork/1/a.png", v2, now + 2 * grace, grace));
    }

    #[test]
    fn a_file_is_abandoned_only_once_the_grace_period_has_passed() {
        let now = SystemTime::now();
        let grace = Duration::from_secs(3600);
        assert!(is_abandoned(now - grace, now, grace));
        assert!(is_abandoned(now - 2 * grace, now, grace));
        assert!(!is_abandoned(now - grace + Duration::from_secs(1), now, grace));
        assert!(!is_abandoned(now + Duration::from_secs(60), now, grace), "written 'after' now: the clock moved back");
    }
}
