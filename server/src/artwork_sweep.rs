//! Removes artwork files no revision request kept: files placed under their final name whose
//! row never committed (a crash between the two, or a failure whose commit was in doubt), and
//! staged uploads a crash left behind. Only files older than a grace period go, so an upload in
//! flight (being written, or placed moments before its row commits) is never touched. Files
//! and folders the upload never makes are left alone.
use crate::upload::{is_stored_name, ARTWORK_DIR, STAGING};
use app::store::{ledger, Db};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Far longer than any upload in flight: a staged file is written to until its request ends
/// (a stalled body is cut off by the body timeout), and a placed file's row commits within the
/// same request.
pub const GRACE: Duration = Duration::from_secs(60 * 60);

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Files under their final name that no request references.
    pub orphans: usize,
    /// Staged uploads whose request ended without removing them.
    pub staged: usize,
}

/// Sweeps `<data_dir>/artwork/`, treating files last written before `now - grace` as
/// abandoned. Never fails: what cannot be read or removed is logged and left for the next sweep,
/// and a folder whose references cannot be read from the database keeps all its files.
pub async fn sweep(db: &Db, data_dir: &Path, now: SystemTime, grace: Duration) -> Swept {
    let mut swept = Swept::default();
    for (_, path) in abandoned(&data_dir.join(STAGING), now, grace).await {
        if remove(&path, "removed an abandoned staged upload").await {
            swept.staged += 1;
        }
    }
    let root = data_dir.join(ARTWORK_DIR);
    let mut folders = match tokio::fs::read_dir(&root).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return swept,
        Err(e) => {
            tracing::warn!(error = %e, folder = %root.display(), "cannot list the artwork folder; sweeping it later");
            return swept;
        }
    };
    loop {
        let folder = match folders.next_entry().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, folder = %root.display(), "listing the artwork folder failed part-way");
                break;
            }
        };
        // A contract's folder is named by its id, as the upload writes it (the staging folder
        // and anything else are not).
        let name = folder.file_name().to_string_lossy().into_owned();
        let Some(contract_id) = name.parse::<i64>().ok().filter(|id| id.to_string() == name) else { continue };
        if !folder.file_type().await.is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let candidates: Vec<(String, PathBuf)> =
            abandoned(&folder.path(), now, grace).await.into_iter().filter(|(file, _)| is_stored_name(file)).collect();
        if candidates.is_empty() {
            continue;
        }
        // Asked after listing: a row that commits meanwhile is seen, so its file stays.
        let referenced = match ledger::artwork_paths(db, contract_id).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, contract_id, "cannot read which artwork is referenced; sweeping it later");
                continue;
            }
        };
        for (file, path) in candidates {
            // The path a request records, built as the upload builds it.
            let relative = Path::new(ARTWORK_DIR).join(&name).join(&file);
            if !referenced.contains(relative.to_string_lossy().as_ref())
                && remove(&path, "removed artwork no request references").await
            {
                swept.orphans += 1;
            }
        }
    }
    swept
}

/// The regular files directly in `dir` last written at least `grace` before `now`: (file name,
/// path). A missing folder has none.
async fn abandoned(dir: &Path, now: SystemTime, grace: Duration) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return found,
        Err(e) => {
            tracing::warn!(error = %e, folder = %dir.display(), "cannot list an artwork folder; sweeping it later");
            return found;
        }
    };
    loop {
        let entry = match entries.next_entry().await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, folder = %dir.display(), "listing an artwork folder failed part-way");
                break;
            }
        };
        // Not followed: a link is not a file the upload made.
        let metadata = match entry.metadata().await {
            Ok(m) if m.is_file() => m,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, path = %entry.path().display(), "cannot read an artwork file's age");
                continue;
            }
        };
        if metadata.modified().is_ok_and(|modified| is_abandoned(modified, now, grace)) {
            found.push((entry.file_name().to_string_lossy().into_owned(), entry.path()));
        }
    }
    found
}

/// Last written at least `grace` before `now`. A time after `now` (a clock set back) is recent.
fn is_abandoned(modified: SystemTime, now: SystemTime, grace: Duration) -> bool {
    now.duration_since(modified).is_ok_and(|age| age >= grace)
}

/// Removes `path`, logging it; false if it was not removed (gone already: another process's
/// sweep got there first).
async fn remove(path: &Path, what: &'static str) -> bool {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {
            tracing::info!(path = %path.display(), "{what}");
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "cannot remove an abandoned artwork file");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_abandoned;
    use std::time::{Duration, SystemTime};

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
