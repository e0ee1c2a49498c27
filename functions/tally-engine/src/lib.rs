//! The stream engine every tally pipeline runs on, with no AWS SDK and no pipeline in it.
//!
//! A pipeline implements [`Consumer`] (decode a record, its key, the state change a run of events
//! makes, what to emit from the new state), or [`sightings::Sightings`] when the same fact can
//! come as different records (it then runs as [`FirstSightings`]); `pattern.rs` and
//! docs/state-patterns.md say which fits. The [`Engine`] does the rest for every batch: dead
//! letters for what cannot be decoded, grouping per shard and key, the exactly-once conditional
//! write (see docs/exactly-once.md), housekeeping, publishing at least once with stable ids, and
//! the report that becomes metrics and the partial batch response. The outside world is reached
//! through the small traits of [`ports`]; the AWS adapters live in `tally-aws`.

pub mod archive;
pub mod consumer;
pub mod dead_letters;
pub mod engine;
pub mod event_time;
pub mod exactly_once;
pub mod fanout;
pub mod grouping;
pub mod pattern;
pub mod ports;
pub mod publish;
pub mod record;
pub mod report;
pub mod sampling;
pub mod sequence;
pub mod sightings;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod windows;

#[cfg(test)]
mod engine_tests;

pub use consumer::{Consumer, Emit, Output};
pub use engine::{BatchHandler, Engine, FinishedKeys};
pub use event_time::TimeBounds;
pub use fanout::Fanout;
pub use grouping::{Aggregation, KeyBatch, Sequenced, WatermarkScope};
pub use pattern::{FirstSightings, StatePattern};
pub use ports::{Latest, PortError, StateDelta, StateKey, StoredState};
pub use record::{json_object, DeadLetter, Rejection, StreamRecord};
pub use report::BatchReport;
pub use sequence::SequenceNumber;
