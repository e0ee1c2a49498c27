//! Lambda's Kinesis event to the engine's stream records, and the engine's report to the partial
//! batch response (`ReportBatchItemFailures`).
//!
//! The event is read with our own type: `aws_lambda_events` 1.2 reads `approximateArrivalTimestamp`
//! `1795318779.8` as `.008` s (it takes the digits after the point as milliseconds), which would
//! reorder visits that have no `ts` of their own.

use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use tally_engine::{BatchReport, SequenceNumber, StreamRecord};

/// The Kinesis event Lambda delivers (the fields tally reads).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KinesisEvent {
    #[serde(rename = "Records")]
    pub records: Vec<KinesisEventRecord>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KinesisEventRecord {
    #[serde(rename = "eventID", default)]
    pub event_id: Option<String>,
    pub kinesis: KinesisRecord,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KinesisRecord {
    #[serde(rename = "partitionKey")]
    pub partition_key: String,
    #[serde(rename = "sequenceNumber")]
    pub sequence_number: String,
    /// Base64, as Lambda sends it.
    pub data: String,
    /// Seconds since the epoch, millisecond precision.
    #[serde(
        rename = "approximateArrivalTimestamp",
        deserialize_with = "arrival_seconds"
    )]
    pub approximate_arrival_timestamp: f64,
}

/// A number of seconds (or a string of one), as Lambda writes it.
fn arrival_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(f64),
        Text(String),
    }
    match Seconds::deserialize(d)? {
        Seconds::Number(n) => Ok(n),
        Seconds::Text(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// Seconds to a time, rounded to the millisecond (Kinesis's precision), so that binary floating
/// point never moves an arrival to the millisecond before.
pub fn arrival_time(seconds: f64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt((seconds * 1000.0).round() as i64)
        .single()
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("record {index} has an invalid sequence number {value:?}")]
    BadSequenceNumber { index: usize, value: String },
    #[error("record {index} has invalid base64 data")]
    BadData { index: usize },
    #[error("record {index} has an invalid arrival time {value}")]
    BadArrival { index: usize, value: f64 },
}

/// The shard id from an event id (`shardId-000000000000:4959...`): the watermark needs a stable
/// name per shard.
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
            let data = base64::engine::general_purpose::STANDARD
                .decode(&k.data)
                .map_err(|_| EventError::BadData { index })?;
            let arrival =
                arrival_time(k.approximate_arrival_timestamp).ok_or(EventError::BadArrival {
                    index,
                    value: k.approximate_arrival_timestamp,
                })?;
            Ok(StreamRecord {
                shard_id: shard_of(r.event_id.as_deref()),
                sequence_number,
                partition_key: k.partition_key.clone(),
                data,
                arrival,
            })
        })
        .collect()
}

/// Lambda resumes the shard from the lowest sequence number reported; everything before it is done.
pub fn batch_response(report: &BatchReport) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    if let Some(seq) = &report.retry_from {
        let mut failure = KinesisBatchItemFailure::default();
        failure.item_identifier = Some(seq.to_string());
        response.batch_item_failures.push(failure);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(arrival: &str) -> KinesisEvent {
        serde_json::from_str(&format!(
            r#"{{"Records":[{{"eventID":"shardId-000000000001:49590338271490256608559692538361571095921575989136588898",
            "kinesis":{{"partitionKey":"C1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898",
            "data":"eyJjaWQiOiJDMSJ9","approximateArrivalTimestamp":{arrival}}}}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn arrival_fractions_are_read_as_fractions_of_a_second() {
        let ms = |a: &str| {
            stream_records(&event(a)).unwrap()[0]
                .arrival
                .timestamp_subsec_millis()
        };
        assert_eq!(
            ms("1795318779.8"),
            800,
            "JSON drops trailing zeros: .8 is 800 ms"
        );
        assert_eq!(ms("1795318779.786"), 786);
        assert_eq!(
            ms("1795318779.1229999"),
            123,
            "float noise rounds to the millisecond"
        );
        assert_eq!(ms("1795318779"), 0);
        assert_eq!(ms("\"1795318779.25\""), 250);
        let r = &stream_records(&event("1795318779.8")).unwrap()[0];
        assert_eq!(
            (r.shard_id.as_str(), r.data.as_slice()),
            ("shardId-000000000001", br#"{"cid":"C1"}"#.as_slice())
        );
    }
}
