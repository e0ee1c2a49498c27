//! The in-batch aggregation: a batch's events grouped per shard and key, in sequence order, so
//! that each group becomes one conditional write.

use std::collections::BTreeMap;

use crate::sequence::SequenceNumber;

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

/// Which order an item's watermarks rely on: the records of one watermark are applied in
/// sequence order, so a record at or below it was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WatermarkScope {
    /// One watermark per shard: needs the shard's records in order, as Lambda delivers them
    /// without a `ParallelizationFactor`. For items that hear from many partition keys (a
    /// minute bucket), where one watermark per key would not fit.
    #[default]
    Shard,
    /// One watermark per shard and partition key: exact with any `ParallelizationFactor`, since
    /// Lambda keeps order per partition key (batches of one shard that run at once never share
    /// a key). An item keyed by its records' partition key has one either way.
    PartitionKey,
}

impl WatermarkScope {
    /// The narrowest scope exact under a mapping's `ParallelizationFactor`: a shard's records
    /// arrive in order only at factor 1. Per-shard watermarks are the cheaper choice there: an
    /// item that hears from many partition keys is written once per batch, not once per key.
    pub fn for_parallelization(factor: u32) -> Self {
        match factor {
            0 | 1 => WatermarkScope::Shard,
            _ => WatermarkScope::PartitionKey,
        }
    }

    /// The order domain of a record: the name of the watermark it moves.
    pub fn domain(self, shard_id: &str, partition_key: &str) -> String {
        match self {
            WatermarkScope::Shard => shard_id.to_string(),
            WatermarkScope::PartitionKey => format!("{shard_id}/{partition_key}"),
        }
    }

    /// The shard of an order domain, whatever the scope (shard ids have no `/`).
    pub fn shard_of(domain: &str) -> &str {
        domain.split_once('/').map_or(domain, |(shard, _)| shard)
    }
}

/// One order domain's records of one key (a shard's, or a shard and partition key's; see
/// [`WatermarkScope`]), in sequence order: what the engine writes at once.
#[derive(Debug, Clone)]
pub struct KeyBatch<K, T> {
    /// The order domain (named for the common case, a shard).
    pub shard_id: String,
    pub key: K,
    pub records: Vec<Sequenced<T>>,
}

impl<K, T> KeyBatch<K, T> {
    pub fn first(&self) -> &SequenceNumber {
        &self.records[0].sequence_number
    }

    pub fn last(&self) -> &SequenceNumber {
        &self.records[self.records.len() - 1].sequence_number
    }
}

/// Groups (shard, key, record) by shard and key, in sequence order.
pub fn group_by_key<K: Ord + Clone, T>(
    items: impl IntoIterator<Item = (String, K, Sequenced<T>)>, aggregation: Aggregation,
) -> Vec<KeyBatch<K, T>> {
    let mut groups: BTreeMap<(String, K), Vec<Sequenced<T>>> = BTreeMap::new();
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
