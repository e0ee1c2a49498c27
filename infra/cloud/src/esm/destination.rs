//! What Lambda leaves on a mapping's on-failure destination when a batch exhausts its retries or
//! grows too old: AWS's message format, naming the records so they can be read again.

use serde_json::Value as Json;

use crate::kinesis::ShardRecord;
use crate::lambda::InvokeError;

/// Why a batch is given up.
pub struct Failure<'a> {
    pub function_arn: &'a str,
    pub stream_arn: &'a str,
    /// `RetryAttemptsExhausted` or `RecordAgeExceeded`.
    pub condition: &'a str,
    pub invokes: u32,
    /// The function's error; none for a partial batch failure.
    pub error: Option<&'a InvokeError>,
}

impl Failure<'_> {
    /// The message for `records` (one shard's, in order).
    pub fn message(&self, records: &[ShardRecord]) -> Json {
        let (first, last) = (records.first(), records.last());
        let iso = |t: f64| {
            chrono::DateTime::from_timestamp_millis((t * 1000.0) as i64)
                .map(|d| d.to_rfc3339())
                .unwrap_or_default()
        };
        serde_json::json!({
            "requestContext": {
                "requestId": uuid::Uuid::new_v4().to_string(),
                "functionArn": self.function_arn,
                "condition": self.condition,
                "approximateInvokeCount": self.invokes,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": self.error.map(|e| e.to_string()).unwrap_or_else(|| "PartialBatchFailure".into()),
            },
            "version": "1.0",
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "KinesisBatchInfo": {
                "shardId": first.map(|r| r.shard_id.clone()),
                "startSequenceNumber": first.map(|r| r.sequence_number.clone()),
                "endSequenceNumber": last.map(|r| r.sequence_number.clone()),
                "approximateArrivalOfFirstRecord": first.map(|r| iso(r.arrival)),
                "approximateArrivalOfLastRecord": last.map(|r| iso(r.arrival)),
                "batchSize": records.len(),
                "streamArn": self.stream_arn,
            },
        })
    }
}
