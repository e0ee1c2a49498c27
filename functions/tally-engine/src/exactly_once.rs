//! Exactly-once application of a shard's records to one state item. See docs/exactly-once.md.
//!
//! Fast path: one conditional write that holds only if none of the records was applied before.
//! Slow path (redelivery, a retry after a crash, a stored register value that is newer, a
//! replay): keep the records the item has not applied, fold them again with the stored state in
//! hand, and write only if the item's revision is unchanged. Not applied are the records above
//! the item's watermark, and those below its start (the first record it applied as they came)
//! above its backfill watermark: an item created after them (a model added later) gets them
//! from a replay, in order, once.

use crate::grouping::Sequenced;
use crate::ports::{Applied, Lane, PortError, StateChange, StateKey, StateStore, StoredState};
use crate::sequence::SequenceNumber;

/// How often a revision-checked write is tried before the batch is retried instead.
const MAX_CAS_ATTEMPTS: usize = 5;

/// What applying one key's records did.
#[derive(Debug, Clone)]
pub struct Once {
    /// The item after the records: to publish from.
    pub stored: StoredState,
    pub writes: usize,
    /// Writes whose condition failed.
    pub conflicts: usize,
    /// Every record was applied before (a redelivery or a replay): `stored` is published again
    /// unless the batch that applied them is known to have published ([`crate::engine`]).
    pub already_applied: bool,
}

/// The records of `domain` that `stored` has not applied, in `lane`.
fn unseen<T: Clone>(
    stored: &StoredState, domain: &str, records: &[Sequenced<T>], lane: Lane,
) -> Vec<Sequenced<T>> {
    let keep = |seq: &SequenceNumber| match lane {
        Lane::Live => stored.watermarks.get(domain).is_none_or(|w| seq > w),
        Lane::Backfill => {
            stored.starts.get(domain).is_some_and(|start| seq < start)
                && stored.backfilled.get(domain).is_none_or(|w| seq > w)
        }
    };
    records
        .iter()
        .filter(|r| keep(&r.sequence_number))
        .cloned()
        .collect()
}

/// Applies `records` (one shard, one key, in sequence order) to `key` exactly once.
///
/// `fold` makes the change for a run of records; it gets the stored state when it is known (the
/// slow path) and returns `None` when the records change nothing. The result is `None` when there
/// is nothing to write and nothing of these records was ever applied.
pub async fn apply_once<T, S, F>(
    store: &S, key: &StateKey, shard_id: &str, records: &[Sequenced<T>], fold: F,
) -> Result<Option<Once>, PortError>
where
    T: Clone,
    S: StateStore,
    F: Fn(&[Sequenced<T>], Option<&StoredState>) -> Option<StateChange>,
{
    let Some(first) = records.first().map(|r| r.sequence_number.clone()) else {
        return Ok(None);
    };
    let Some(change) = fold(records, None) else {
        return Ok(None);
    };
    let mut once = Once {
        stored: StoredState::default(),
        writes: 1,
        conflicts: 0,
        already_applied: false,
    };
    let mut current = match store.apply_if_fresh(key, &first, &change).await? {
        Applied::Done(new) => {
            once.stored = new;
            return Ok(Some(once));
        }
        Applied::Conflict(current) => current,
    };
    once.conflicts += 1;
    let mut wrote = false;
    let mut failed_attempts = 0;
    'state: loop {
        let stored = current.clone().unwrap_or_default();
        // Older records first, so that each lane's records go in sequence order.
        for lane in [Lane::Backfill, Lane::Live] {
            let records = unseen(&stored, shard_id, records, lane);
            let Some(mut change) = (!records.is_empty())
                .then(|| fold(&records, Some(&stored)))
                .flatten()
            else {
                continue;
            };
            change.lane = lane;
            once.writes += 1;
            match store
                .apply_if_unchanged(key, current.as_ref().map(|s| s.rev), &change)
                .await?
            {
                Applied::Done(new) => {
                    wrote = true;
                    current = Some(new);
                }
                Applied::Conflict(now_stored) => {
                    once.conflicts += 1;
                    failed_attempts += 1;
                    if failed_attempts == MAX_CAS_ATTEMPTS {
                        return Err(PortError::Transient(format!(
                            "{} kept changing during {MAX_CAS_ATTEMPTS} attempts",
                            key.partition_key()
                        )));
                    }
                    current = now_stored;
                }
            }
            continue 'state;
        }
        // Nothing left to apply. When nothing was written, everything was applied before: the
        // caller publishes the stored state again (the last attempt may have crashed between
        // its write and its publish).
        once.stored = current.unwrap_or_default();
        once.already_applied = !wrote;
        return Ok(Some(once));
    }
}

/// What applying one key's records in several writes did: the item after the last write that
/// held, and the first record not applied when one failed.
#[derive(Debug)]
pub struct Chunked {
    pub stored: Option<StoredState>,
    pub writes: usize,
    pub conflicts: usize,
    /// Some run was applied now (not all of them before).
    pub applied_now: bool,
    pub failed: Option<(SequenceNumber, PortError)>,
}

/// [`apply_once`] for records whose change may not fit one write (a DynamoDB update expression
/// holds at most 4 KB): consecutive runs of records, each adding at most `max_weight` (the
/// attributes a record names, by `weight`), applied one after the other. Each run is exactly
/// once on its own, and the runs go in sequence order, so the item's watermark never passes a
/// record that was not applied.
pub async fn apply_once_chunked<T, S, F>(
    store: &S, key: &StateKey, shard_id: &str, records: &[Sequenced<T>],
    weight: impl Fn(&T) -> usize, max_weight: usize, fold: F,
) -> Chunked
where
    T: Clone,
    S: StateStore,
    F: Fn(&[Sequenced<T>], Option<&StoredState>) -> Option<StateChange>,
{
    let mut out = Chunked {
        stored: None,
        writes: 0,
        conflicts: 0,
        applied_now: false,
        failed: None,
    };
    let mut start = 0;
    while start < records.len() {
        let mut end = start;
        let mut total = 0;
        while end < records.len()
            && (end == start || total + weight(&records[end].value) <= max_weight)
        {
            total += weight(&records[end].value);
            end += 1;
        }
        match apply_once(store, key, shard_id, &records[start..end], &fold).await {
            Ok(Some(once)) => {
                out.writes += once.writes;
                out.conflicts += once.conflicts;
                out.applied_now |= !once.already_applied;
                out.stored = Some(once.stored);
            }
            Ok(None) => {}
            Err(e) => {
                out.failed = Some((records[start].sequence_number.clone(), e));
                return out;
            }
        }
        start = end;
    }
    out
}
