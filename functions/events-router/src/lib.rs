//! The events archive's router: a Firehose transformation Lambda (dynamic partitioning). Every
//! event on `EventsStream`, however it arrived (`/collect` or a direct put), is checked like
//! `/collect` checks it: a valid one is archived unchanged under
//! `raw/events/event_type=<type>/dt=<day>/`, an invalid one is returned as `ProcessingFailed`, so
//! Firehose keeps it under `errors/events/processing-failed/` and no raw table ever sees it. Its
//! typed bad row comes from the live metrics' dead letter of the same record (one row per record).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tally_pipelines::events::EventDecoder;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransformationRecord {
    pub record_id: String,
    /// The record's bytes, base64.
    pub data: String,
}

/// What Firehose sends a transformation Lambda (fields the router does not need are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct TransformationEvent {
    pub records: Vec<TransformationRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionKeys {
    pub event_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    #[serde(rename = "partitionKeys")]
    pub partition_keys: PartitionKeys,
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

#[derive(Debug, Default)]
pub struct EventsRouter {
    pub decoder: EventDecoder,
}

impl EventsRouter {
    pub fn transform(&self, event: TransformationEvent) -> TransformationResponse {
        let records = event
            .records
            .into_iter()
            .map(|r| {
                let event_type = base64::engine::general_purpose::STANDARD
                    .decode(&r.data)
                    .ok()
                    .and_then(|bytes| self.decoder.decode_bytes(&bytes).ok())
                    .map(|e| e.event_type);
                TransformedRecord {
                    record_id: r.record_id,
                    result: if event_type.is_some() {
                        "Ok"
                    } else {
                        "ProcessingFailed"
                    },
                    data: r.data,
                    metadata: event_type.map(|event_type| Metadata {
                        partition_keys: PartitionKeys { event_type },
                    }),
                }
            })
            .collect();
        TransformationResponse { records }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, data: &str) -> TransformationRecord {
        TransformationRecord {
            record_id: id.into(),
            data: base64::engine::general_purpose::STANDARD.encode(data),
        }
    }

    #[test]
    fn valid_events_are_partitioned_by_type_and_the_rest_fail_processing() {
        let valid = r#"{"event_id":"e1","event_type":"clip_play","client_time":"2026-11-22T10:00:00Z","device":{"id":"d1"},"attributes":{"clip_id":"c1"}}"#;
        let unknown = valid.replace("clip_play", "teleport");
        let out = EventsRouter::default().transform(TransformationEvent {
            records: vec![
                record("1", valid),
                record("2", &unknown),
                record("3", "{oops"),
            ],
        });
        let got: Vec<(&str, &str, Option<&str>)> = out
            .records
            .iter()
            .map(|r| {
                (
                    r.record_id.as_str(),
                    r.result,
                    r.metadata
                        .as_ref()
                        .map(|m| m.partition_keys.event_type.as_str()),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("1", "Ok", Some("clip_play")),
                ("2", "ProcessingFailed", None),
                ("3", "ProcessingFailed", None)
            ]
        );
        // Unchanged data, and the response Firehose expects.
        assert_eq!(out.records[0].data, record("1", valid).data);
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(
            json["records"][0]["metadata"]["partitionKeys"]["event_type"],
            "clip_play"
        );
        assert_eq!(json["records"][0]["recordId"], "1");
    }
}
