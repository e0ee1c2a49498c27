//! The records of `InteractionsStream`, decoded and validated.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tally_engine::event_time::parse_utc_datetime;
use tally_engine::{json_object, Rejection, StreamRecord, TimeBounds};

/// A decoded interaction event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub user_id: u64,
    pub property_id: u64,
    pub event: String,
    /// From `date` (`2021-11-30 00:00:00` is UTC; RFC 3339 also accepted), else arrival time.
    pub at: DateTime<Utc>,
}

impl Interaction {
    /// Only these count for the rules; other event types are archived and ignored.
    pub fn is_interaction(&self) -> bool {
        self.event == "Interaction"
    }
}

/// Decodes `InteractionsStream` records, or says why it cannot.
#[derive(Debug, Clone, Copy)]
pub struct InteractionDecoder {
    pub max_bytes: usize,
}

impl Default for InteractionDecoder {
    fn default() -> Self {
        Self { max_bytes: 4096 }
    }
}

fn id_field(obj: &serde_json::Map<String, Value>, field: &'static str) -> Result<u64, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(Rejection::MissingField(field)),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| Rejection::InvalidField {
            field,
            reason: format!("{n} is not a non-negative integer"),
        }),
        Some(other) => Err(Rejection::wrong_type(field, "an integer", other)),
    }
}

/// `date`: `YYYY-MM-DD HH:MM:SS[.fff]` in UTC (the seed's format) or RFC 3339.
pub fn parse_date(s: &str) -> Result<DateTime<Utc>, Rejection> {
    parse_utc_datetime("date", s)
}

impl InteractionDecoder {
    pub fn decode(&self, record: &StreamRecord) -> Result<Interaction, Rejection> {
        let obj = &json_object(&record.data, self.max_bytes)?;
        let event = match obj.get("event") {
            None | Some(Value::Null) => return Err(Rejection::MissingField("event")),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(Rejection::wrong_type("event", "a string", other)),
        };
        let at = match obj.get("date") {
            None | Some(Value::Null) => record.arrival,
            Some(Value::String(s)) => {
                TimeBounds::EVENT.check("date", parse_date(s)?, record.arrival)?
            }
            Some(other) => return Err(Rejection::wrong_type("date", "a string", other)),
        };
        Ok(Interaction {
            user_id: id_field(obj, "user_id")?,
            property_id: id_field(obj, "property_id")?,
            event,
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use tally_engine::SequenceNumber;

    fn rec(data: &str) -> StreamRecord {
        StreamRecord {
            shard_id: "shardId-000000000000".into(),
            sequence_number: SequenceNumber::parse("1").unwrap(),
            partition_key: "1".into(),
            data: data.as_bytes().to_vec(),
            arrival: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        }
    }

    #[test]
    fn decodes_the_seed_record_as_utc() {
        let i = InteractionDecoder::default().decode(&rec(r#"{ "user_id":1,"property_id":1,"date":"2021-11-30 00:00:00","event":"Interaction"}"#)).unwrap();
        assert_eq!((i.user_id, i.property_id, i.is_interaction()), (1, 1, true));
        assert_eq!(i.at, Utc.with_ymd_and_hms(2021, 11, 30, 0, 0, 0).unwrap());
    }

    #[test]
    fn bad_interactions_have_reasons() {
        let d = InteractionDecoder::default();
        let cases = [
            ("{", "malformed json"),
            (
                r#"{"property_id":1,"event":"Interaction"}"#,
                "missing field user_id",
            ),
            (
                r#"{"user_id":"1","property_id":1,"event":"Interaction"}"#,
                "field user_id must be an integer",
            ),
            (
                r#"{"user_id":-1,"property_id":1,"event":"Interaction"}"#,
                "not a non-negative integer",
            ),
            (r#"{"user_id":1,"property_id":1}"#, "missing field event"),
            (
                r#"{"user_id":1,"property_id":1,"event":"Interaction","date":"30/11/2021"}"#,
                "is not \"YYYY-MM-DD HH:MM:SS\" (UTC) nor RFC 3339",
            ),
            (
                r#"{"user_id":1,"property_id":1,"event":"Interaction","date":"9999-12-31 23:59:59"}"#,
                "date out of range (time_out_of_range)",
            ),
            (
                r#"{"user_id":1,"property_id":1,"event":"Interaction","date":"2021-02-30 00:00:00"}"#,
                "is not a valid date and time",
            ),
        ];
        for (input, want) in cases {
            let err = d.decode(&rec(input)).unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
        let view = d
            .decode(&rec(r#"{"user_id":1,"property_id":1,"event":"View"}"#))
            .unwrap();
        assert!(!view.is_interaction());
    }
}
