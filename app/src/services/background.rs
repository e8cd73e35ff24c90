//! Work a request starts and does not wait for: an admin's reconciliation, the schedule's.
//! Spawned bare, such a task outlived the server's graceful stop, and the database was closed
//! under it mid-run: its run stayed `running` until another process declared it dead ten minutes
//! later, with no word of why. Here each one is tracked, told when the server stops (a
//! reconciliation checks between payments and ends its run as abandoned, with the reason), and
//! waited for, for a bounded time; what is still running then is named, so the caller can mark
//! it abandoned before the database closes.
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Default)]
pub struct Background {
    tasks: TaskTracker,
    stopping: CancellationToken,
    /// Reconciliation runs this process is running, by id.
    runs: Arc<Mutex<BTreeSet<i64>>>,
}

/// Holds a run's id in [`Background`] while it runs; dropped when the run ends however it ends.
pub struct RunHold {
    id: i64,
    runs: Arc<Mutex<BTreeSet<i64>>>,
}

impl Drop for RunHold {
    fn drop(&mut self) {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

impl Background {
    /// Runs `work` in the background, tracked until it ends.
    pub fn spawn<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(work);
    }

    /// The server is stopping: long work should end at its next safe point.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Resolves once the server is stopping: for work that waits, to stop waiting.
    pub async fn stopped(&self) {
        self.stopping.cancelled().await
    }

    /// Records that this process runs reconciliation `id` until the hold is dropped.
    pub fn hold_run(&self, id: i64) -> RunHold {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).insert(id);
        RunHold { id, runs: self.runs.clone() }
    }

    /// Tells every task to stop and waits up to `within` for them; returns the runs still
    /// running after that (a Stripe call that outlives the wait), for the caller to mark.
    pub async fn stop(&self, within: Duration) -> Vec<i64> {
        self.stopping.cancel();
        self.tasks.close();
        if tokio::time::timeout(within, self.tasks.wait()).await.is_err() {
            tracing::warn!(after = ?within, "background work still running at shutdown");
        }
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stopping_waits_for_work_that_listens() {
        let bg = Arc::new(Background::default());
        let polite = bg.clone();
        let hold = bg.hold_run(1);
        bg.spawn(async move {
            let _hold = hold;
            while !polite.is_stopping() {
                tokio::task::yield_now().await;
            }
        });
        // Returns as soon as the task has ended; the bound is only there for a broken one.
        assert_eq!(bg.stop(Duration::from_secs(60)).await, Vec::<i64>::new());
        assert!(bg.is_stopping());
    }

    #[tokio::test]
    async fn stopping_is_bounded_and_names_the_runs_that_did_not_end() {
        let bg = Background::default();
        let stuck = bg.hold_run(2);
        bg.spawn(async move {
            let _stuck = stuck;
            std::future::pending::<()>().await;
        });
        assert_eq!(bg.stop(Duration::from_millis(50)).await, vec![2]);
    }
}
