//! Group commit for webhook intake. Every delivery must be durable before we answer 2xx, and a
//! durable commit costs an fsync; concurrent deliveries therefore share one: a writer task takes
//! whatever is queued (up to `MAX_BATCH`), stores it in one transaction, and answers each
//! caller after the commit. Alone, a delivery is a batch of one and waits for nobody.
use crate::store::events::{store_batch, StoreJob, Stored};
use crate::store::Db;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 64;

type Reply = Result<Stored, WriteError>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The database could not take the write (down, locked, full): answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Failed(String),
}

pub struct EventWriter {
    queues: Vec<mpsc::Sender<(StoreJob, oneshot::Sender<Reply>)>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventWriter({} writers)", self.queues.len())
    }
}

impl EventWriter {
    /// Starts the writer tasks on the current runtime: one for SQLite (it has one writer
    /// anyway), a few for PostgreSQL so round trips of one batch overlap another's commit.
    pub fn spawn(db: &Db) -> Self {
        let writers = match db {
            Db::Sqlite(_) => 1,
            Db::Postgres(_) => 4,
        };
        let queues = (0..writers)
            .map(|_| {
                let (tx, rx) = mpsc::channel(1024);
                tokio::spawn(run(db.clone(), rx));
                tx
            })
            .collect();
        Self { queues, next: AtomicUsize::new(0) }
    }

    pub async fn store(&self, job: StoreJob) -> Reply {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
        let (reply, answer) = oneshot::channel();
        self.queues[i].send((job, reply)).await.map_err(|_| WriteError::Unavailable("event writer stopped".into()))?;
        answer.await.map_err(|_| WriteError::Unavailable("event writer stopped".into()))?
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<(StoreJob, oneshot::Sender<Reply>)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // A request that already answered 503 (its wait ran out while this writer was stuck on
        // an earlier batch) has gone: storing its event now would only make Stripe's retry a
        // duplicate. Drop it; the retry stores it.
        batch.retain(|(_, reply)| !reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let jobs: Vec<&StoreJob> = batch.iter().map(|(job, _)| job).collect();
        match store_batch(&db, &jobs).await {
            Ok(results) => {
                for ((_, reply), result) in batch.drain(..).zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            // Unavailable: every job would wait out the same timeout again; answer all now.
            Err(e) if e.is_unavailable() || batch.len() == 1 => {
                let err = if e.is_unavailable() {
                    WriteError::Unavailable(e.to_string())
                } else {
                    WriteError::Failed(e.to_string())
                };
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(err.clone()));
                }
                // Deliveries that queued while this batch waited out the timeout have waited
                // about as long already: answer them now rather than have each wait the
                // timeout again for a batch of its own (twice as long in all).
                if e.is_unavailable() {
                    while let Ok((_, reply)) = rx.try_recv() {
                        let _ = reply.send(Err(err.clone()));
                    }
                }
            }
            // One bad job must not fail its neighbours: store each alone.
            Err(_) => {
                for (job, reply) in batch.drain(..) {
                    let result = crate::store::events::store(&db, &job).await.map_err(|e| {
                        if e.is_unavailable() {
                            WriteError::Unavailable(e.to_string())
                        } else {
                            WriteError::Failed(e.to_string())
                        }
                    });
                    let _ = reply.send(result);
                }
            }
        }
    }
}
