//! Group commit for webhook intake. Every delivery must be durable before we answer 2xx, and a
//! durable commit costs an fsync; concurrent deliveries therefore share one: a writer task takes
//! whatever is queued (up to `MAX_BATCH`), stores it in one transaction, and answers each
//! caller after the commit. Alone, a delivery is a batch of one and waits for nobody.
use crate::store::events::{store_batch, StoreJob, Stored};
use crate::store::Db;
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
    queue: mpsc::Sender<(StoreJob, oneshot::Sender<Reply>)>,
}

impl std::fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventWriter")
    }
}

impl EventWriter {
    /// Starts the writer task on the current runtime. One, on either database: SQLite has one
    /// writer anyway, and on PostgreSQL a batch is one statement whose cost is mostly per
    /// statement, so deliveries that queue while a batch commits are worth more in the next
    /// batch than in a batch of their own (BENCHMARKS.md: at 8 connections one writer credited
    /// about 3,500/s, two 2,800/s, four 2,400/s; at 64 connections about the same).
    pub fn spawn(db: &Db) -> Self {
        let (queue, rx) = mpsc::channel(1024);
        tokio::spawn(run(db.clone(), rx));
        Self { queue }
    }

    pub async fn store(&self, job: StoreJob) -> Reply {
        let (reply, answer) = oneshot::channel();
        self.queue.send((job, reply)).await.map_err(|_| WriteError::Unavailable("event writer stopped".into()))?;
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
