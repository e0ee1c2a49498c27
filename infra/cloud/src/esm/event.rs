//! The invocation's side of a mapping: the Kinesis event Lambda builds for a batch, and the
//! partial batch response the function gives back.

use std::collections::HashMap;

use base64::Engine;
use serde_json::Value as Json;

use crate::kinesis::ShardRecord;

/// Lambda's limit on a synchronous invocation's payload: a mapping's batch stops short of it,
/// whatever its `BatchSize`.
pub const PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

/// The Lambda event for `records`, as the Kinesis event source mapping builds it.
pub fn kinesis_event(stream_arn: &str, records: &[ShardRecord]) -> Json {
    let records: Vec<Json> = records.iter().map(|r| record_json(stream_arn, r)).collect();
    serde_json::json!({ "Records": records })
}

/// At most what one record adds to the event's payload (its JSON and a comma), without
/// serialising its data, which the event does once anyway: the JSON of a record with no data
/// and empty strings, plus the base64 of the data and the strings as JSON escapes them.
pub fn payload_bytes(stream_arn: &str, record: &ShardRecord) -> usize {
    static FRAME: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let frame = *FRAME.get_or_init(|| {
        let empty = ShardRecord {
            shard_id: String::new(),
            sequence_number: String::new(),
            partition_key: String::new(),
            data: Vec::new(),
            arrival: 0.0,
        };
        serde_json::to_vec(&record_json("", &empty)).map_or(0, |v| v.len())
    });
    let escaped = |s: &str| serde_json::to_string(s).map_or(2 * s.len(), |q| q.len() - 2);
    // The arrival time is at most 24 characters more than the empty record's 0.0.
    frame
        + 1
        + 24
        + 4 * record.data.len().div_ceil(3)
        + escaped(&record.partition_key)
        + 2 * escaped(&record.sequence_number)
        + escaped(&record.shard_id)
        + escaped(stream_arn)
}

fn record_json(stream_arn: &str, r: &ShardRecord) -> Json {
    serde_json::json!({
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": r.partition_key,
            "sequenceNumber": r.sequence_number,
            "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
            "approximateArrivalTimestamp": r.arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": format!("{}:{}", r.shard_id, r.sequence_number),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": format!("arn:aws:iam::{}:role/local-cloud", tally_stack::template::ACCOUNT),
        "awsRegion": tally_stack::template::REGION,
        "eventSourceARN": stream_arn,
    })
}

/// Index of the lowest failed record of a partial batch response; `Err` when the response is
/// not valid (the whole batch is then treated as failed, as Lambda does).
pub(super) fn first_failure(body: &[u8], batch: &[ShardRecord]) -> Result<Option<usize>, ()> {
    let v: Json = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return Ok(None), // not a JSON object: a plain success
    };
    let Some(failures) = v.get("batchItemFailures").and_then(Json::as_array) else {
        return Ok(None);
    };
    let mut lowest: Option<usize> = None;
    let index: HashMap<&str, usize> = batch
        .iter()
        .enumerate()
        .map(|(i, r)| (r.sequence_number.as_str(), i))
        .collect();
    for f in failures {
        let id = f.get("itemIdentifier").and_then(Json::as_str).ok_or(())?;
        let i = *index.get(id).ok_or(())?;
        lowest = Some(lowest.map_or(i, |l| l.min(i)));
    }
    Ok(lowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_batch_response_names_the_lowest_failure() {
        let batch: Vec<ShardRecord> = (0..4)
            .map(|i| ShardRecord {
                shard_id: "s".into(),
                sequence_number: format!("10{i}"),
                partition_key: "k".into(),
                data: vec![],
                arrival: 0.0,
            })
            .collect();
        let body = br#"{"batchItemFailures":[{"itemIdentifier":"103"},{"itemIdentifier":"101"}]}"#;
        assert_eq!(first_failure(body, &batch), Ok(Some(1)));
        assert_eq!(
            first_failure(br#"{"batchItemFailures":[]}"#, &batch),
            Ok(None)
        );
        assert_eq!(
            first_failure(
                br#"{"batchItemFailures":[{"itemIdentifier":"999"}]}"#,
                &batch
            ),
            Err(())
        );
        assert_eq!(first_failure(b"null", &batch), Ok(None));
    }
}
