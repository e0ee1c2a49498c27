//! The operations the engine needs from the outside world, one small trait each, so that each
//! function gets only what its IAM policy allows. AWS adapters implement them in `tally-aws`;
//! tests use the in-memory ones of [`crate::testing`].

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::record::DeadLetter;
use crate::sequence::SequenceNumber;

/// A failure of an outside system. Retryable ones (throttling, timeouts) make the records retry;
/// the others are configuration or permission errors that retrying will not fix, but the records
/// still retry (and reach the on-failure destination) rather than being lost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("transient failure: {0}")]
    Transient(String),
    #[error("{0}")]
    Fatal(String),
}

impl PortError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, PortError::Fatal(_))
    }
}

/// The key of one state item: a prefix naming its owner (a model, a rule), then the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateKey(String);

impl StateKey {
    /// `MODEL2#C124`, `paid_user#1`: the owner leads, so IAM can confine each function to its own
    /// items with a `dynamodb:LeadingKeys` condition.
    pub fn new(owner: &str, key: &str) -> Self {
        StateKey(format!("{owner}#{key}"))
    }

    pub fn partition_key(&self) -> &str {
        &self.0
    }
}

/// A scheduled job's latest answer (JSON), kept whole in one fact of one state item for a reader
/// such as the dashboard: the job replaces it, the reader serves it as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptAnswer {
    /// The item's owner (its IAM leading key), as in [`StateKey::new`].
    pub owner: &'static str,
    pub name: &'static str,
}

impl KeptAnswer {
    /// The fact that holds the answer.
    pub const FACT: &'static str = "summary";

    pub fn key(&self) -> StateKey {
        StateKey::new(self.owner, self.name)
    }

    /// The latest answer; `null` before the first run.
    pub async fn read<S: StateReader>(&self, state: &S) -> Result<serde_json::Value, PortError> {
        let item = state.read_many(&[self.key()]).await?.pop().flatten();
        Ok(item
            .and_then(|i| i.facts.get(Self::FACT).cloned())
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null))
    }
}

/// A last-writer-wins register beside the counters: of two values the one with the higher
/// `order_key` (compared as plain strings, as DynamoDB compares them) is kept. MODEL1's latest
/// visit is one: ordered by event time, then arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub order_key: String,
    pub value: String,
}

impl Latest {
    pub fn newer_of(a: Option<Latest>, b: Option<Latest>) -> Option<Latest> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.order_key > a.order_key { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// A stored state item with its bookkeeping. Domain-neutral: pipelines read their own meaning
/// into the counter names, the register and the flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    /// Incremented by every applied change: the version of the state, and of results built from it.
    pub rev: u64,
    /// Per shard, the sequence number of the last record applied to this item.
    pub watermarks: BTreeMap<String, SequenceNumber>,
    /// Per shard, the first record applied to this item as it came (its live start): one below it
    /// was never applied, so a replay may bring it ([`Lane::Backfill`]).
    pub starts: BTreeMap<String, SequenceNumber>,
    /// Per shard, the last record below the start applied by a replay.
    pub backfilled: BTreeMap<String, SequenceNumber>,
    /// Named counters (`all_male`, `2026-11-22_female`, `count`).
    pub counters: BTreeMap<String, u64>,
    pub latest: Option<Latest>,
    /// Named values set once, by the first change that carries them (an RSVP version's first
    /// sighting, an event's name).
    pub facts: BTreeMap<String, String>,
    /// Flags set once and never cleared (`alerted`).
    pub flags: BTreeSet<String>,
}

/// What a run of events changes in a state item: counters to add, a register value to keep if it
/// is newer, facts to set where absent (so that a redelivered or duplicated record never changes
/// one), and when the whole item may expire (DynamoDB TTL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateDelta {
    pub counters: BTreeMap<String, u64>,
    pub latest: Option<Latest>,
    pub facts: BTreeMap<String, String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl StateDelta {
    /// What is left of the delta over the item as stored: the register only if newer, facts only
    /// where absent; `None` when that changes nothing.
    pub fn over(mut self, stored: &StoredState) -> Option<StateDelta> {
        self.latest = Latest::newer_of(stored.latest.clone(), self.latest);
        self.facts
            .retain(|name, _| !stored.facts.contains_key(name));
        let changes =
            !self.counters.is_empty() || !self.facts.is_empty() || self.latest != stored.latest;
        changes.then_some(self)
    }
}

/// Which watermark of an order domain a change moves. A domain's records reach an item in
/// sequence order from its start on (`Live`); records below the start, which the item never saw
/// (it was created later: a model added after the others), come only from a replay, in order
/// too, and have a watermark of their own (`Backfill`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lane {
    #[default]
    Live,
    Backfill,
}

/// One change to a state item, covering a shard's records from `from` to `applies_through`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The records' order domain, whose watermark the change moves: their shard, or their shard
    /// and partition key ([`crate::WatermarkScope`]).
    pub shard_id: String,
    /// The first record covered: a live change sets the item's start to it if it has none.
    pub from: SequenceNumber,
    pub applies_through: SequenceNumber,
    pub lane: Lane,
    pub delta: StateDelta,
}

/// The outcome of a conditional change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The change was applied; this is the state after it.
    Done(StoredState),
    /// The condition did not hold; this is the state as stored (`None`: no item).
    Conflict(Option<StoredState>),
}

/// Conditional writes of state items (DynamoDB `UpdateItem`).
pub trait StateStore: Send + Sync {
    /// The item as stored, strongly consistent (`GetItem`); `None` when there is none.
    fn read(
        &self, key: &StateKey,
    ) -> impl Future<Output = Result<Option<StoredState>, PortError>> + Send;

    /// Apply `change` only if no record of its shard at or after `first` has been applied yet
    /// (watermark absent or below `first`) and, when the change carries a register value, only if
    /// it is newer than the stored one. One request; the stored state comes back either way.
    fn apply_if_fresh(
        &self, key: &StateKey, first: &SequenceNumber, change: &StateChange,
    ) -> impl Future<Output = Result<Applied, PortError>> + Send;

    /// Apply `change` only if the stored revision is still `expected_rev` (`None`: no item yet).
    /// Sets the register and the watermark as given.
    fn apply_if_unchanged(
        &self, key: &StateKey, expected_rev: Option<u64>, change: &StateChange,
    ) -> impl Future<Output = Result<Applied, PortError>> + Send;

    /// Remove counters that can no longer matter (expired days).
    fn remove_counters(
        &self, key: &StateKey, names: &[String],
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Set a flag on an existing item (an alert was published).
    fn set_flag(
        &self, key: &StateKey, flag: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Reading several state items at once, strongly consistent (DynamoDB `BatchGetItem`): for answers
/// made of many items (a window of minute buckets).
pub trait StateReader: Send + Sync {
    /// The items of `keys`, in their order; `None` where there is none.
    fn read_many(
        &self, keys: &[StateKey],
    ) -> impl Future<Output = Result<Vec<Option<StoredState>>, PortError>> + Send;
}

/// A record for an output stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// Publishing to an output stream (Kinesis `PutRecords`): results, alerts.
pub trait RecordPublisher: Send + Sync {
    /// Publish; returns the indices of the records that were not accepted.
    fn publish(
        &self, records: &[OutRecord],
    ) -> impl Future<Output = Result<Vec<usize>, PortError>> + Send;
}

/// The publisher of a consumer that publishes nothing (the dashboard feed only counts): asked to
/// publish anyway, it says so.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOutputStream;

impl RecordPublisher for NoOutputStream {
    async fn publish(&self, records: &[OutRecord]) -> Result<Vec<usize>, PortError> {
        Err(PortError::Fatal(format!(
            "{} records to publish, but this function has no output stream",
            records.len()
        )))
    }
}

/// The dead-letter location (S3 `PutObject`).
pub trait DeadLetterSink: Send + Sync {
    fn put(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// An object as a listing shows it: its key and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
}

/// Objects (S3 `GetObject`, `PutObject`, `ListObjectsV2`, `DeleteObject`): the lake's files,
/// each written whole and named so that writing it again gives the same object (no conditions
/// needed: docs/lake.md).
pub trait ObjectStore: Send + Sync {
    /// Every object whose key starts with `prefix`, in key order.
    fn list(
        &self, prefix: &str,
    ) -> impl Future<Output = Result<Vec<ListedObject>, PortError>> + Send;

    /// Removes an object; removing one that is not there is no error (as in S3).
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The object's bytes, or `None` when there is none.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, PortError>> + Send;

    fn put(&self, key: &str, data: Vec<u8>) -> impl Future<Output = Result<(), PortError>> + Send;
}

// A borrowed port is a port: tests keep the fakes and hand the engine references to them.

impl<T: StateStore> StateStore for &T {
    fn read(
        &self, key: &StateKey,
    ) -> impl Future<Output = Result<Option<StoredState>, PortError>> + Send {
        (**self).read(key)
    }

    fn apply_if_fresh(
        &self, key: &StateKey, first: &SequenceNumber, change: &StateChange,
    ) -> impl Future<Output = Result<Applied, PortError>> + Send {
        (**self).apply_if_fresh(key, first, change)
    }

    fn apply_if_unchanged(
        &self, key: &StateKey, expected_rev: Option<u64>, change: &StateChange,
    ) -> impl Future<Output = Result<Applied, PortError>> + Send {
        (**self).apply_if_unchanged(key, expected_rev, change)
    }

    fn remove_counters(
        &self, key: &StateKey, names: &[String],
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).remove_counters(key, names)
    }

    fn set_flag(
        &self, key: &StateKey, flag: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).set_flag(key, flag)
    }
}

impl<T: RecordPublisher> RecordPublisher for &T {
    fn publish(
        &self, records: &[OutRecord],
    ) -> impl Future<Output = Result<Vec<usize>, PortError>> + Send {
        (**self).publish(records)
    }
}

impl<T: DeadLetterSink> DeadLetterSink for &T {
    fn put(&self, letter: &DeadLetter) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).put(letter)
    }
}

impl<T: ObjectStore> ObjectStore for &T {
    fn list(
        &self, prefix: &str,
    ) -> impl Future<Output = Result<Vec<ListedObject>, PortError>> + Send {
        (**self).list(prefix)
    }

    fn delete(&self, key: &str) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).delete(key)
    }

    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, PortError>> + Send {
        (**self).get(key)
    }

    fn put(&self, key: &str, data: Vec<u8>) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).put(key, data)
    }
}

impl<T: StateReader> StateReader for &T {
    fn read_many(
        &self, keys: &[StateKey],
    ) -> impl Future<Output = Result<Vec<Option<StoredState>>, PortError>> + Send {
        (**self).read_many(keys)
    }
}
