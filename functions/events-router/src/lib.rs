//! The events archive's router: a Firehose transformation Lambda (dynamic partitioning). Every
//! event on `EventsStream`, however it arrived (`/collect` or a direct put), is read as the live
//! metrics read it (the ingest seal decides its app and `server_time`, `seal.rs`) and checked like
//! `/collect` checks it: a valid one is archived as trusted (the seal dropped; a direct one under
//! the app `direct`, received at its Kinesis arrival) under
//! `raw/events/event_type=<type>/dt=<day>/`, an invalid one is returned as `ProcessingFailed`, so
//! Firehose keeps it under `errors/events/processing-failed/` and no raw table ever sees it. Its
//! typed bad row comes from the live metrics' dead letter of the same record (one row per record).

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_aws::{DynamoSealKeys, Env, SdkConfig};
use tally_engine::{PortError, SequenceNumber, StreamRecord};
use tally_events::{EventDecoder, SealKeys, Seals};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransformationRecord {
    pub record_id: String,
    /// When Kinesis took the record, epoch milliseconds.
    #[serde(default)]
    pub approximate_arrival_timestamp: Option<i64>,
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

pub struct EventsRouter<K> {
    pub decoder: EventDecoder,
    pub seals: Seals<K>,
}

impl EventsRouter<DynamoSealKeys> {
    /// Reads `APPS_TABLE` (the ingest seal's key).
    pub fn from_env(config: &SdkConfig, env: &Env) -> Result<Self, tally_aws::Error> {
        Ok(EventsRouter::new(DynamoSealKeys::from_env(config, env)?))
    }
}

impl<K: SealKeys> EventsRouter<K> {
    pub fn new(seal_keys: K) -> Self {
        EventsRouter {
            decoder: EventDecoder::default(),
            seals: Seals::new(seal_keys),
        }
    }

    /// The records as archived. Without the seal's key no event's app can be told, so the
    /// invocation fails and Firehose tries it again.
    pub async fn transform(
        &self, event: TransformationEvent, now: DateTime<Utc>,
    ) -> Result<TransformationResponse, PortError> {
        let seal = self.seals.get().await?;
        let no_sequence = SequenceNumber::parse("0").expect("0 is a sequence number");
        let records = event
            .records
            .into_iter()
            .map(|r| {
                let record = base64::engine::general_purpose::STANDARD
                    .decode(&r.data)
                    .ok()
                    .map(|data| StreamRecord {
                        shard_id: String::new(),
                        sequence_number: no_sequence.clone(),
                        partition_key: String::new(),
                        data,
                        arrival: r
                            .approximate_arrival_timestamp
                            .and_then(DateTime::from_timestamp_millis)
                            .unwrap_or(now),
                    });
                let trusted = record
                    .and_then(|record| self.decoder.decode_record(&record, &seal).ok())
                    .and_then(|(event, obj)| {
                        Some((event.event_type, serde_json::to_vec(&obj).ok()?))
                    });
                match trusted {
                    Some((event_type, data)) => TransformedRecord {
                        record_id: r.record_id,
                        result: "Ok",
                        data: base64::engine::general_purpose::STANDARD.encode(data),
                        metadata: Some(Metadata {
                            partition_keys: PartitionKeys { event_type },
                        }),
                    },
                    None => TransformedRecord {
                        record_id: r.record_id,
                        result: "ProcessingFailed",
                        data: r.data,
                        metadata: None,
                    },
                }
            })
            .collect();
        Ok(TransformationResponse { records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::{json, Value};
    use tally_events::{IngestSeal, DIRECT_APP};

    const KEY: [u8; 32] = [3; 32];
    const ARRIVAL_MS: i64 = 1_795_341_605_000; // 2026-11-22T10:00:05Z

    fn record(id: &str, data: &str) -> TransformationRecord {
        TransformationRecord {
            record_id: id.into(),
            approximate_arrival_timestamp: Some(ARRIVAL_MS),
            data: base64::engine::general_purpose::STANDARD.encode(data),
        }
    }

    fn archived(r: &TransformedRecord) -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(&r.data)
                .unwrap(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn valid_events_are_partitioned_by_type_and_the_rest_fail_processing() {
        let valid = r#"{"event_id":"e1","event_type":"clip_play","client_time":"2026-11-22T10:00:00Z","device":{"id":"d1"},"attributes":{"clip_id":"c1"}}"#;
        let unknown = valid.replace("clip_play", "teleport");
        let future = valid.replace("2026-11-22T10:00:00Z", "9999-12-31T23:59:59Z");
        let out = EventsRouter::new(KEY.to_vec())
            .transform(
                TransformationEvent {
                    records: vec![
                        record("1", valid),
                        record("2", &unknown),
                        record("3", "{oops"),
                        record("4", &future),
                    ],
                },
                Utc::now(),
            )
            .await
            .unwrap();
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
                ("3", "ProcessingFailed", None),
                ("4", "ProcessingFailed", None)
            ]
        );
        // An unsealed event is archived as the app `direct`'s, received at its arrival.
        let got = archived(&out.records[0]);
        assert_eq!(got["app_id"], DIRECT_APP);
        assert_eq!(got["server_time"], "2026-11-22T10:00:05.000Z");
        assert_eq!(got["attributes"]["clip_id"], "c1");
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(
            json["records"][0]["metadata"]["partitionKeys"]["event_type"],
            "clip_play"
        );
        assert_eq!(json["records"][0]["recordId"], "1");
    }

    #[tokio::test]
    async fn a_sealed_event_keeps_its_app_and_a_forged_one_does_not() {
        let stamped = json!({"event_id":"e1","event_type":"app_open","client_time":"2026-11-22T10:00:00Z","device":{"id":"d1"},"app_id":"flyers","app_name":"Flyers","server_time":"2026-11-22T10:00:01.000Z"});
        let Value::Object(stamped) = stamped else {
            unreachable!()
        };
        let sealed = IngestSeal::new(KEY.to_vec()).seal(stamped.clone());
        let mut forged = stamped.clone();
        forged.insert("server_time".into(), json!("2000-01-01T00:00:00.000Z"));
        let out = EventsRouter::new(KEY.to_vec())
            .transform(
                TransformationEvent {
                    records: vec![
                        record("1", &Value::Object(sealed).to_string()),
                        record("2", &Value::Object(forged).to_string()),
                    ],
                },
                Utc::now(),
            )
            .await
            .unwrap();
        assert_eq!(
            archived(&out.records[0]),
            Value::Object(stamped),
            "the seal is dropped"
        );
        let forged = archived(&out.records[1]);
        assert_eq!(
            (
                forged["app_id"].as_str(),
                forged["server_time"].as_str(),
                forged.get("app_name")
            ),
            (Some(DIRECT_APP), Some("2026-11-22T10:00:05.000Z"), None)
        );
    }
}
