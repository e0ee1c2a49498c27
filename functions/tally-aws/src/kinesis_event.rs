//! Lambda's Kinesis event to the core's stream records, and the core's report to the partial
//! batch response (`ReportBatchItemFailures`).

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use tally_core::{DispatchReport, SequenceNumber, StreamRecord};

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("record {index} has an invalid sequence number {value:?}")]
    BadSequenceNumber { index: usize, value: String },
}

/// The shard id from an event id (`shardId-000000000000:4959...`), or from the source ARN's
/// absence, a placeholder: the watermark needs a stable name per shard.
fn shard_of(event_id: Option<&str>) -> String {
    event_id
        .and_then(|id| id.split_once(':'))
        .map(|(shard, _)| shard.to_string())
        .unwrap_or_else(|| "shardId-unknown".into())
}

pub fn stream_records(event: &KinesisEvent) -> Result<Vec<StreamRecord>, EventError> {
    event
        .records
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let k = &r.kinesis;
            let sequence_number = SequenceNumber::parse(&k.sequence_number).map_err(|_| {
                EventError::BadSequenceNumber {
                    index,
                    value: k.sequence_number.clone(),
                }
            })?;
            Ok(StreamRecord {
                shard_id: shard_of(r.event_id.as_deref()),
                sequence_number,
                partition_key: k.partition_key.clone(),
                data: k.data.0.clone(),
                arrival: k.approximate_arrival_timestamp.0,
            })
        })
        .collect()
}

/// Lambda resumes the shard from the lowest sequence number reported; everything before it is done.
pub fn batch_response(report: &DispatchReport) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    if let Some(seq) = &report.retry_from {
        let mut failure = KinesisBatchItemFailure::default();
        failure.item_identifier = Some(seq.to_string());
        response.batch_item_failures.push(failure);
    }
    response
}
