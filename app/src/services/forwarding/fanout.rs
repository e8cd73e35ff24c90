//! The fan-out: stored events a destination's filter takes become rows in `deliveries`.
//!
//! **A cursor, and a look behind it.** Each destination keeps `fanned_to`, the newest
//! `received_at` it has read; a look reads the events received after it (a batch, oldest first)
//! and moves it to the newest of those. That alone could miss an event: `received_at` is stamped
//! when the request arrives, before the group commit, so an event can become visible after a
//! later-stamped one was read and the cursor moved past it (a slow batch, a busy SQLite writer,
//! another process whose clock runs a little behind). So each look also reads again the
//! `look_back` (5 minutes by default) behind the cursor, for events that have no delivery to this
//! destination yet. A commit can only land that late if the request waited longer than any
//! database timeout we allow (`DB_TIMEOUT_SECS`, 5 s by default, answered 503 after it), so the
//! look-back covers every commit by a wide margin. What it costs is an anti-join over those
//! minutes of events, so it is not made every sweep but every `look_back_every` (30 s by
//! default; and on a process's first sweep): a late commit, itself rare, is forwarded up to that
//! much later, and a busy intake does not pay for the look each second. A look-back window
//! alone (no cursor) would miss everything received while the worker was stopped longer than
//! the window; the cursor never skips: after an outage it works through the backlog a batch a
//! sweep.
//!
//! Every insert is insert-or-nothing on (destination, source, event id): two processes fanning
//! out at once, or a look reading again what it delivered, make one row.
use crate::domain::forwarding::{Filter, STRIPE};
use crate::store::deliveries::{self, Candidate};
use crate::store::forward_destinations::{self, DestinationRow};
use crate::store::{Db, StoreResult};
use chrono::{DateTime, Utc};

/// Events read past the cursor per batch, and batches per look: a backlog of up to 10,000
/// events is fanned out in one sweep (a larger one over the next few), and no destination's
/// fan-out holds the sweep for long.
const BATCH: i64 = 500;
const BATCHES_PER_LOOK: usize = 20;
/// Events read behind the cursor per look, at most.
const LOOK_BACK_BATCH: i64 = 5_000;

/// One destination's look: the deliveries made. It looks behind the cursor over `look_back`
/// when given (not every sweep: see [`ForwardingSettings::look_back_every`]).
///
/// [`ForwardingSettings::look_back_every`]: crate::services::settings::ForwardingSettings::look_back_every
pub async fn fan_out(
    db: &Db,
    row: &DestinationRow,
    filter: &Filter,
    look_back: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let kinds = (filter.takes_stripe(), filter.sources.iter().any(|s| s != STRIPE));
    let mut made = 0;
    if let Some(look_back) = look_back {
        let look_back = chrono::Duration::from_std(look_back).unwrap_or_default();
        // Never before the destination was made: it takes events from then on.
        let behind = (row.fanned_to - look_back).max(row.created_at);
        let late = deliveries::candidates(db, row.id, kinds, behind, Some(row.fanned_to), LOOK_BACK_BATCH).await?;
        made += deliveries::insert_many(db, row.id, &taken(&late, filter), now).await?;
    }
    let mut cursor = row.fanned_to;
    for _ in 0..BATCHES_PER_LOOK {
        let new = deliveries::candidates(db, row.id, kinds, cursor, None, BATCH).await?;
        made += deliveries::insert_many(db, row.id, &taken(&new, filter), now).await?;
        let Some(last) = new.last() else { break };
        // Events sharing the last one's instant beyond the batch are read by the next look
        // behind the cursor.
        cursor = last.received_at;
        forward_destinations::advance_cursor(db, row.id, cursor).await?;
        if new.len() < BATCH as usize {
            break;
        }
    }
    Ok(made)
}

/// The events the filter takes.
fn taken<'a>(events: &'a [Candidate], filter: &Filter) -> Vec<&'a Candidate> {
    events.iter().filter(|c| filter.matches(&c.source, c.event_type.as_deref(), &c.payload)).collect()
}
