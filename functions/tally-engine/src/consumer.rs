//! What a pipeline tells the engine: how to read its records, what it keeps state by, what a run
//! of events changes and what to publish from the new state. Everything else is the engine's.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::grouping::{Sequenced, WatermarkScope};
use crate::ports::{OutRecord, StateDelta, StoredState};
use crate::record::{Rejection, StreamRecord};

/// A Kinesis consumer on the shared engine: a gender model, a threshold rule, ...
pub trait Consumer: Send + Sync {
    /// A decoded, valid record.
    type Event: Clone + Send + Sync;
    /// What state is kept by: one state item per key.
    type Key: Ord + Clone + fmt::Display + Send + Sync;

    /// Names the consumer in state keys (`MODEL2#C124`), dead letters and metrics.
    fn name(&self) -> &str;

    /// Names the consumer in its dead letters: its name, unless it reads the records of another
    /// consumer in the same function ([`crate::Fanout`]), whose letters are then the same objects.
    fn dead_letter_source(&self) -> &str {
        self.name()
    }

    /// Decodes and validates a record; `Ok(None)` is a valid record this consumer ignores.
    fn decode(&self, record: &StreamRecord) -> Result<Option<Self::Event>, Rejection>;

    /// The key an event counts under.
    fn key(&self, event: &Self::Event) -> Self::Key;

    /// What one shard's run of `key`'s events (in sequence order) changes, as of `now`; `None`
    /// when they change nothing (visits already outside a window).
    fn fold(
        &self, key: &Self::Key, events: &[Sequenced<Self::Event>], now: DateTime<Utc>,
    ) -> Option<StateDelta>;

    /// What to do with the item once it holds the events: what to publish, what to prune.
    fn emit(&self, key: &Self::Key, stored: &StoredState, now: DateTime<Utc>) -> Emit;

    /// Which order the state items' watermarks rely on. `PartitionKey` keeps the state exact
    /// under a `ParallelizationFactor`; `Shard` (the default) suits items that hear from many
    /// partition keys, whose mappings must then keep a factor of 1.
    fn watermark_scope(&self) -> WatermarkScope {
        WatermarkScope::Shard
    }

    /// Whether nothing can change this key's outputs any more: the engine then stops writing its
    /// events while the function stays warm (a rule key whose alert is out).
    fn finished(&self, _stored: &StoredState) -> bool {
        false
    }
}

/// What the engine does after a key's events are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Emit {
    /// What to publish (a model's result, an alert; several when one item serves several models).
    pub outputs: Vec<Output>,
    /// Counters that no longer matter (expired days): removed, best effort.
    pub prune: Vec<String>,
}

/// A record to publish, with the stable id readers deduplicate by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub id: String,
    pub record: OutRecord,
    /// Emit-once outputs: the flag set on the item once the record is published. The item is the
    /// outbox: while the flag is unset the output is pending, so a crash between publishing and
    /// flagging sends it again with the same id, and it is never lost.
    pub flag_when_published: Option<&'static str>,
}

impl Output {
    /// The latest state of a key (a model's result): published after every change.
    pub fn state(id: String, record: OutRecord) -> Self {
        Output {
            id,
            record,
            flag_when_published: None,
        }
    }

    /// An output emitted once per id (an alert), flagged on the item once published.
    pub fn once(id: String, record: OutRecord, flag: &'static str) -> Self {
        Output {
            id,
            record,
            flag_when_published: Some(flag),
        }
    }
}
