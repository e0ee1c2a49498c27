//! Stream records as the engine sees them, and why a record can be rejected.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::sequence::SequenceNumber;

/// One Kinesis record, independent of the Lambda event types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub shard_id: String,
    pub sequence_number: SequenceNumber,
    pub partition_key: String,
    pub data: Vec<u8>,
    pub arrival: DateTime<Utc>,
}

/// Why a record cannot be used. Each one sends the record to the dead-letter location; none fails
/// the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("record is {bytes} bytes, the limit is {limit}")]
    Oversized { bytes: usize, limit: usize },
    #[error("record is not utf-8 (invalid byte at offset {at})")]
    NotUtf8 { at: usize },
    #[error("malformed json: {0}")]
    MalformedJson(String),
    #[error("record is not a json object")]
    NotAnObject,
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("field {field} must be {expected}, got {got}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    #[error("invalid field {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// A typed record whose type has no schema (an app event's `event_type`).
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// Against its type's schema: where (a JSON pointer into the record) and why.
    #[error("schema violation at {pointer}: {message}")]
    SchemaViolation { pointer: String, message: String },
    /// An event time before 1970 or too far after the record's arrival (`event_time.rs`).
    #[error("{field} out of range (time_out_of_range): {reason}")]
    TimeOutOfRange { field: &'static str, reason: String },
}

impl Rejection {
    pub fn wrong_type(
        field: &'static str, expected: &'static str, got: &serde_json::Value,
    ) -> Self {
        let got = match got {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::Object(_) => "an object",
        };
        Rejection::WrongType {
            field,
            expected,
            got,
        }
    }

    /// A short stable code, used as the metric dimension.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Oversized { .. } => "oversized",
            Rejection::NotUtf8 { .. } => "not_utf8",
            Rejection::MalformedJson(_) => "malformed_json",
            Rejection::NotAnObject => "not_an_object",
            Rejection::MissingField(_) => "missing_field",
            Rejection::WrongType { .. } => "wrong_type",
            Rejection::InvalidField { .. } => "invalid_field",
            Rejection::UnknownType(_) => "unknown_type",
            Rejection::SchemaViolation { .. } => "schema_violation",
            Rejection::TimeOutOfRange { .. } => "time_out_of_range",
        }
    }
}

/// A record's bytes as a JSON object: within `max_bytes`, UTF-8, valid JSON, an object. The first
/// checks every decoder makes.
pub fn json_object(
    data: &[u8], max_bytes: usize,
) -> Result<serde_json::Map<String, serde_json::Value>, Rejection> {
    if data.len() > max_bytes {
        return Err(Rejection::Oversized {
            bytes: data.len(),
            limit: max_bytes,
        });
    }
    let text = std::str::from_utf8(data).map_err(|e| Rejection::NotUtf8 {
        at: e.valid_up_to(),
    })?;
    match serde_json::from_str(text).map_err(|e| Rejection::MalformedJson(e.to_string()))? {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(Rejection::NotAnObject),
    }
}

/// What the dead-letter location receives for a rejected record: enough to replay it by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub source: String,
    pub reason: String,
    pub reason_code: &'static str,
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    pub approximate_arrival: DateTime<Utc>,
    /// The record's bytes, base64, exactly as received (they may not be text).
    pub data_base64: String,
}

impl DeadLetter {
    /// Deterministic per record, so a redelivered bad record overwrites its own dead letter.
    pub fn object_key(&self, prefix: &str) -> String {
        format!(
            "{}/{}/{}/{}.json",
            prefix.trim_end_matches('/'),
            self.source,
            self.shard_id,
            self.sequence_number
        )
    }
}
