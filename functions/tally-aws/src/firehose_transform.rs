//! What Firehose sends a transformation Lambda and what it wants back (the archive's stamp and
//! the events router), with the Kinesis metadata of a delivery stream whose source is a stream:
//! the only place Firehose shows a record's shard and sequence number.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tally_engine::archive::{stamp, Origin};

/// A record's place in its Kinesis stream.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisRecordMetadata {
    pub shard_id: String,
    #[serde(default)]
    pub partition_key: String,
    pub sequence_number: String,
    #[serde(default)]
    pub approximate_arrival_timestamp: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransformationRecord {
    pub record_id: String,
    /// When Kinesis (or Firehose) took the record, epoch milliseconds.
    #[serde(default)]
    pub approximate_arrival_timestamp: Option<i64>,
    /// The record's bytes, base64.
    pub data: String,
    /// Present when the delivery stream reads a Kinesis stream.
    #[serde(default)]
    pub kinesis_record_metadata: Option<KinesisRecordMetadata>,
}

/// What Firehose sends a transformation Lambda (fields tally does not need are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct TransformationEvent {
    pub records: Vec<TransformationRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    #[serde(rename = "partitionKeys")]
    pub partition_keys: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransformedRecord {
    pub record_id: String,
    /// `Ok` or `ProcessingFailed`.
    pub result: &'static str,
    pub data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransformationResponse {
    pub records: Vec<TransformedRecord>,
}

impl TransformationRecord {
    /// The record's bytes (`None`: not base64).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.data)
            .ok()
    }

    /// Where the record came from, when Firehose read it from a stream.
    pub fn origin(&self) -> Option<Origin> {
        let m = self.kinesis_record_metadata.as_ref()?;
        Some(Origin {
            shard_id: m.shard_id.clone(),
            sequence_number: m.sequence_number.clone(),
            partition_key: m.partition_key.clone(),
            arrival_ms: m.approximate_arrival_timestamp,
            original: None,
        })
    }

    /// `Ok` with `archived` as the line to archive, stamped with the record's origin (and its
    /// original bytes when `archived` differs from them).
    pub fn archive(&self, archived: &[u8], partition_keys: Option<Metadata>) -> TransformedRecord {
        let line = match (self.origin(), self.bytes()) {
            (Some(origin), Some(original)) => stamp(&origin, Some(&original), archived),
            _ => archived.to_vec(),
        };
        TransformedRecord {
            record_id: self.record_id.clone(),
            result: "Ok",
            data: base64::engine::general_purpose::STANDARD.encode(line),
            metadata: partition_keys,
        }
    }

    /// `ProcessingFailed`: Firehose keeps the record as it came under the error prefix.
    pub fn failed(&self) -> TransformedRecord {
        TransformedRecord {
            record_id: self.record_id.clone(),
            result: "ProcessingFailed",
            data: self.data.clone(),
            metadata: None,
        }
    }
}

/// The archive's own transformation: every record archived as it came, stamped with its origin
/// (a record that is not base64 fails processing).
pub fn stamp_all(event: &TransformationEvent) -> TransformationResponse {
    TransformationResponse {
        records: event
            .records
            .iter()
            .map(|r| match r.bytes() {
                Some(data) => r.archive(&data, None),
                None => r.failed(),
            })
            .collect(),
    }
}
