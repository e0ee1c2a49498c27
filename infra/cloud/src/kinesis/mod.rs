//! Kinesis as the local cloud reads and writes it: one shard reader (iterator recovery, closed
//! shards, children after their parents) and one batching writer. The event source mappings,
//! Firehose, the CLI, the bench and the tests all use these two; idle readers wait for a write
//! the edge saw (`wakeup.rs`).

pub mod reader;
pub mod wakeup;
pub mod writer;

pub use reader::{for_each_shard, read_stream, Page, ShardReader, ShardRecord, StartAt};
pub use wakeup::{KinesisWrites, WriteWatch, IDLE_READ_INTERVAL};
pub use writer::{partition_key, put_all, put_records, put_records_refused, PutOutcome};

/// A Kinesis call that failed, with the stream it was for.
#[derive(Debug, thiserror::Error)]
#[error("{operation} on {stream}: {detail}")]
pub struct KinesisError {
    pub operation: &'static str,
    pub stream: String,
    pub detail: String,
}

impl KinesisError {
    fn new<E: std::error::Error>(operation: &'static str, stream: &str, err: E) -> Self {
        KinesisError {
            operation,
            stream: stream.to_string(),
            detail: aws_sdk_kinesis::error::DisplayErrorContext(err).to_string(),
        }
    }
}
