//! Rejected records to the dead-letter location, each with its reason. A record whose dead letter
//! cannot be written is retried, never dropped.

use base64::Engine as _;
use futures::stream::{self, StreamExt};

use crate::ports::DeadLetterSink;
use crate::record::{DeadLetter, Rejection, StreamRecord};
use crate::report::BatchReport;
use crate::sequence::SequenceNumber;

/// How many dead letters are written at once.
const CONCURRENCY: usize = 16;

/// Writes a dead letter for each rejected record, counting them per reason in `report`.
pub async fn dead_letter_all<D: DeadLetterSink>(
    sink: &D, source: &str, rejected: Vec<(&StreamRecord, Rejection)>, report: &mut BatchReport,
) {
    let letters: Vec<(SequenceNumber, DeadLetter)> = rejected
        .into_iter()
        .map(|(r, why)| {
            *report.rejected.entry(why.code()).or_default() += 1;
            let letter = DeadLetter {
                source: source.to_string(),
                reason: why.to_string(),
                reason_code: why.code(),
                shard_id: r.shard_id.clone(),
                sequence_number: r.sequence_number.to_string(),
                partition_key: r.partition_key.clone(),
                approximate_arrival: r.arrival,
                data_base64: base64::engine::general_purpose::STANDARD.encode(&r.data),
            };
            (r.sequence_number.clone(), letter)
        })
        .collect();
    let outcomes: Vec<_> = stream::iter(letters)
        .map(|(seq, letter)| async move { (seq, sink.put(&letter).await) })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (seq, outcome) in outcomes {
        if let Err(e) = outcome {
            report.fail(
                &seq,
                format!("dead letter for record {seq} not written: {e}"),
            );
        }
    }
}

/// A batch's first step, whatever the state pattern: each record decoded; the valid ones returned
/// with their record, the ignored ones counted, the rejected ones written as dead letters.
pub async fn decode_or_dead_letter<'r, E, D: DeadLetterSink>(
    records: &'r [StreamRecord], source: &str, sink: &D, report: &mut BatchReport,
    decode: impl Fn(&StreamRecord) -> Result<Option<E>, Rejection>,
) -> Vec<(&'r StreamRecord, E)> {
    let mut valid = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    for r in records {
        match decode(r) {
            Ok(Some(event)) => valid.push((r, event)),
            Ok(None) => report.ignored += 1,
            Err(why) => rejected.push((r, why)),
        }
    }
    report.valid = valid.len();
    dead_letter_all(sink, source, rejected, report).await;
    valid
}
