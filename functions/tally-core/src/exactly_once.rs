//! Exactly-once application of a shard's records to one state item, shared by the gender models
//! and the threshold rules. See docs/exactly-once.md.
//!
//! Fast path: one conditional write that holds only if none of the records was applied before.
//! Slow path (redelivery, a retry after a crash, a stored latest visit that is newer): keep the
//! records above the item's watermark, fold them again with the stored state in hand, and write
//! only if the item's revision is unchanged.

use crate::ports::{Applied, PortError, StateChange, StateKey, StateStore, StoredState};
use crate::sequence::SequenceNumber;

/// How often a revision-checked write is tried before the batch is retried instead.
const MAX_CAS_ATTEMPTS: usize = 5;

/// A record's value with its position in the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequenced<T> {
    pub sequence_number: SequenceNumber,
    pub value: T,
}

/// How a batch is grouped before writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregation {
    /// One write per distinct key per batch (the normal mode).
    #[default]
    PerKey,
    /// One write per record, no in-batch aggregation: the baseline the benchmarks compare with.
    PerRecord,
}

impl Aggregation {
    /// How many keys are written at once: in per-record mode one key is written several times,
    /// and those writes must stay in order.
    pub fn concurrency(self, wanted: usize) -> usize {
        match self {
            Aggregation::PerKey => wanted.max(1),
            Aggregation::PerRecord => 1,
        }
    }
}

/// One shard's records of one key, in sequence order: what [`apply_once`] writes at once.
#[derive(Debug, Clone)]
pub struct KeyBatch<K, T> {
    pub shard_id: String,
    pub key: K,
    pub records: Vec<Sequenced<T>>,
}

impl<K, T> KeyBatch<K, T> {
    pub fn first(&self) -> &SequenceNumber {
        &self.records[0].sequence_number
    }
}

/// Groups (shard, key, record) by shard and key, in sequence order (the in-batch aggregation).
pub fn group_by_key<K: Ord + Clone, T>(
    items: impl IntoIterator<Item = (String, K, Sequenced<T>)>,
    aggregation: Aggregation,
) -> Vec<KeyBatch<K, T>> {
    let mut groups: std::collections::BTreeMap<(String, K), Vec<Sequenced<T>>> = Default::default();
    for (shard, key, record) in items {
        groups.entry((shard, key)).or_default().push(record);
    }
    let mut out = Vec::new();
    for ((shard_id, key), mut records) in groups {
        records.sort_by(|a, b| a.sequence_number.cmp(&b.sequence_number));
        match aggregation {
            Aggregation::PerKey => out.push(KeyBatch {
                shard_id,
                key,
                records,
            }),
            Aggregation::PerRecord => out.extend(records.into_iter().map(|r| KeyBatch {
                shard_id: shard_id.clone(),
                key: key.clone(),
                records: vec![r],
            })),
        }
    }
    out
}

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
