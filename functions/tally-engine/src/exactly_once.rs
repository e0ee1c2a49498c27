//! Exactly-once application of a shard's records to one state item. See docs/exactly-once.md.
//!
//! Fast path: one conditional write that holds only if none of the records was applied before.
//! Slow path (redelivery, a retry after a crash, a stored register value that is newer): keep the
//! records above the item's watermark, fold them again with the stored state in hand, and write
//! only if the item's revision is unchanged.

use crate::grouping::Sequenced;
use crate::ports::{Applied, PortError, StateChange, StateKey, StateStore, StoredState};

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
}

/// Applies `records` (one shard, one key, in sequence order) to `key` exactly once.
///
/// `fold` makes the change for a run of records; it gets the stored state when it is known (the
/// slow path) and returns `None` when the records change nothing. The result is `None` when there
/// is nothing to write and nothing of these records was ever applied.
pub async fn apply_once<T, S, F>(
    store: &S,
    key: &StateKey,
    shard_id: &str,
    records: &[Sequenced<T>],
    fold: F,
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
    };
    let mut current = match store.apply_if_fresh(key, &first, &change).await? {
        Applied::Done(new) => {
            once.stored = new;
            return Ok(Some(once));
        }
        Applied::Conflict(current) => current,
    };
    once.conflicts += 1;
    for _ in 0..MAX_CAS_ATTEMPTS {
        let stored = current.clone().unwrap_or_default();
        let watermark = stored.watermarks.get(shard_id);
        let unseen: Vec<Sequenced<T>> = records
            .iter()
            .filter(|r| watermark.is_none_or(|w| &r.sequence_number > w))
            .cloned()
            .collect();
        let change = if unseen.is_empty() {
            None
        } else {
            fold(&unseen, Some(&stored))
        };
        let Some(change) = change else {
            // Everything is applied already; the caller publishes the stored state again (the
            // last attempt may have crashed between its write and its publish).
            once.stored = stored;
            return Ok(Some(once));
        };
        once.writes += 1;
        match store
            .apply_if_unchanged(key, current.as_ref().map(|s| s.rev), &change)
            .await?
        {
            Applied::Done(new) => {
                once.stored = new;
                return Ok(Some(once));
            }
            Applied::Conflict(now_stored) => {
                once.conflicts += 1;
                current = now_stored;
            }
        }
    }
    Err(PortError::Transient(format!(
        "{} kept changing during {MAX_CAS_ATTEMPTS} attempts",
        key.partition_key()
    )))
}
