//! The lake's domain, no AWS SDK: what every curated table is (`table.rs`, `catalog.rs`, one
//! schema for the Parquet files, the Glue catalog and the local views), how archived objects
//! become rows (`raw.rs`, and per pipeline `gender.rs`, `rules.rs`, `rsvp.rs`, `events.rs`, `bad_records.rs`), Parquet
//! files of rows (`rows.rs`), tables unique by an id merged on read (`unique.rs`) and their
//! partitions kept to a few files (`compaction.rs`), and the conversion of newly archived objects
//! (`writer.rs`). The `lake-writer` function runs it on S3 notifications.

pub mod bad_records;
pub mod catalog;
pub mod compaction;
pub mod core_dims;
pub mod events;
pub mod gender;
pub mod raw;
pub mod rows;
pub mod rsvp;
pub mod rules;
pub mod table;
pub mod unique;
pub mod writer;

pub use catalog::{raw_table, raw_tables, tables, PIPELINES};
pub use table::{Column, ColumnType, Layout, RawTable, Table};
pub use writer::{LakeReport, LakeWriter};

/// Why an object could not be converted. Each is retried (the notification stays on its queue)
/// and ends on the queue's dead-letter queue if it keeps failing.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error(transparent)]
    Store(#[from] tally_engine::PortError),
    #[error("input: {0}")]
    Input(String),
    #[error("schema: {0}")]
    Schema(String),
    #[error("parquet: {0}")]
    Parquet(String),
}

#[cfg(test)]
mod tests;
