//! The events archive's router: a Firehose transformation Lambda (dynamic partitioning). Every
//! event on `EventsStream`, however it arrived (`/collect` or a direct put), is read as the live
//! metrics read it (the ingest seal decides its app and `server_time`, `seal.rs`) and checked like
//! `/collect` checks it: a valid one is archived as trusted (the seal dropped; a direct one under
//! the app `direct`, received at its Kinesis arrival) under
//! `raw/events/event_type=<type>/dt=<day>/`, an invalid one is returned as `ProcessingFailed`, so
//! Firehose keeps it under `errors/events/processing-failed/` and no raw table ever sees it. Its
//! typed bad row comes from the live metrics' dead letter of the same record (one row per record).

use chrono::{DateTime, Utc};
use tally_aws::{DynamoSealKeys, Env, SdkConfig};
use tally_engine::{PortError, SequenceNumber, StreamRecord};
use tally_events::{EventDecoder, SealKeys, Seals};

pub use tally_aws::firehose_transform::{
    Metadata, TransformationEvent, TransformationRecord, TransformationResponse, TransformedRecord,
};

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
            .iter()
            .map(|r| {
                let origin = r.origin();
                let record = r.bytes().map(|data| StreamRecord {
                    shard_id: origin
                        .as_ref()
                        .map(|o| o.shard_id.clone())
                        .unwrap_or_default(),
                    sequence_number: origin
                        .as_ref()
                        .and_then(|o| SequenceNumber::parse(&o.sequence_number).ok())
                        .unwrap_or_else(|| no_sequence.clone()),
                    partition_key: origin
                        .as_ref()
                        .map(|o| o.partition_key.clone())
                        .unwrap_or_default(),
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
                    // Archived with its origin and the record as put (sealed), for replay.
                    Some((event_type, data)) => r.archive(
                        &data,
                        Some(Metadata {
                            partition_keys: serde_json::Map::from_iter([(
                                "event_type".to_string(),
                                event_type.into(),
                            )]),
                        }),
                    ),
                    None => r.failed(),
                }
            })
            .collect();
        Ok(TransformationResponse { records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use base64::Engine as _;
    use serde_json::{json, Value};
    use tally_events::{IngestSeal, DIRECT_APP};

    const KEY: [u8; 32] = [3; 32];
    const ARRIVAL_MS: i64 = 1_795_341_605_000; // 2026-11-22T10:00:05Z

    fn record(id: &str, data: &str) -> TransformationRecord {
        TransformationRecord {
            record_id: id.into(),
            approximate_arrival_timestamp: Some(ARRIVAL_MS),
            data: base64::engine::general_purpose::STANDARD.encode(data),
            kinesis_record_metadata: None,
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

    /// From a Kinesis source, the archived line keeps the record's shard, sequence number and
    /// the record as put (the router changed it), for replay.
    #[tokio::test]
    async fn an_archived_event_keeps_where_it_came_from_and_what_was_put() {
        let put = r#"{"event_id":"e1","event_type":"clip_play","client_time":"2026-11-22T10:00:00Z","device":{"id":"d1"},"attributes":{"clip_id":"c1"}}"#;
        let mut r = record("1", put);
        r.kinesis_record_metadata = Some(tally_aws::firehose_transform::KinesisRecordMetadata {
            shard_id: "shardId-000000000001".into(),
            partition_key: "d1".into(),
            sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
            approximate_arrival_timestamp: ARRIVAL_MS,
        });
        let out = EventsRouter::new(KEY.to_vec())
            .transform(TransformationEvent { records: vec![r] }, Utc::now())
            .await
            .unwrap();
        let line = base64::engine::general_purpose::STANDARD
            .decode(&out.records[0].data)
            .unwrap();
        let (origin, archived) = tally_engine::archive::unstamp(&line);
        let origin = origin.expect("stamped");
        assert_eq!(origin.shard_id, "shardId-000000000001");
        assert_eq!(origin.record_data(&archived), put.as_bytes());
        let v: Value = serde_json::from_slice(&archived).unwrap();
        assert_eq!(v["app_id"], DIRECT_APP);
        let raw: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            raw["event_id"], "e1",
            "the raw table still reads its columns"
        );
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
                        .and_then(|m| m.partition_keys["event_type"].as_str()),
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
