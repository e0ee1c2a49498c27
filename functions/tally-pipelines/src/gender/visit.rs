//! Visits: the records of `VisitsStream`, and their decoding and validation.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

use tally_engine::event_time::parse_time;
use tally_engine::{json_object, Rejection, StreamRecord, TimeBounds};

/// The two genders of the contract. Case-insensitive on input, lower case on output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("male") {
            Some(Gender::Male)
        } else if s.eq_ignore_ascii_case("female") {
            Some(Gender::Female)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }
}

impl fmt::Display for Gender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A customer id. Letters, digits and `-_.:`, 1 to 64 characters, so it is safe in keys, paths and
/// S3 object names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cid(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidCid {
    #[error("cid is empty")]
    Empty,
    #[error("cid is {0} characters long, the limit is 64")]
    TooLong(usize),
    #[error("cid {0:?} has a character other than letters, digits and -_.:")]
    BadCharacter(String),
}

impl Cid {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, InvalidCid> {
        if s.is_empty() {
            return Err(InvalidCid::Empty);
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(InvalidCid::TooLong(s.chars().count()));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            return Err(InvalidCid::BadCharacter(s.to_string()));
        }
        Ok(Cid(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Cid {
    type Error = InvalidCid;
    fn try_from(s: String) -> Result<Self, InvalidCid> {
        Cid::parse(&s)
    }
}

impl From<Cid> for String {
    fn from(c: Cid) -> String {
        c.0
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A decoded, valid visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub cid: Cid,
    pub gender: Gender,
    /// Event time, from `ts`, or the record's arrival time when `ts` is absent.
    pub event_time: DateTime<Utc>,
}

impl Visit {
    pub fn day(&self) -> NaiveDate {
        self.event_time.date_naive()
    }
}

/// Decodes `VisitsStream` records into visits, or says exactly why it cannot.
#[derive(Debug, Clone, Copy)]
pub struct VisitDecoder {
    pub max_bytes: usize,
}

impl Default for VisitDecoder {
    fn default() -> Self {
        // A visit is about 60 bytes; 4 KiB leaves room for extra fields without letting a
        // producer bug push megabyte blobs through every model.
        Self { max_bytes: 4096 }
    }
}

impl VisitDecoder {
    pub fn decode(&self, record: &StreamRecord) -> Result<Visit, Rejection> {
        let obj = &json_object(&record.data, self.max_bytes)?;
        let cid = match obj.get("cid") {
            None | Some(serde_json::Value::Null) => return Err(Rejection::MissingField("cid")),
            Some(serde_json::Value::String(s)) => {
                Cid::parse(s).map_err(|e| Rejection::InvalidField {
                    field: "cid",
                    reason: e.to_string(),
                })?
            }
            Some(other) => return Err(Rejection::wrong_type("cid", "a string", other)),
        };
        let gender = match obj.get("gndr") {
            None | Some(serde_json::Value::Null) => return Err(Rejection::MissingField("gndr")),
            Some(serde_json::Value::String(s)) => {
                Gender::parse(s).ok_or_else(|| Rejection::InvalidField {
                    field: "gndr",
                    reason: format!("unknown gender {s:?}: expected \"male\" or \"female\""),
                })?
            }
            Some(other) => return Err(Rejection::wrong_type("gndr", "a string", other)),
        };
        let event_time = match obj.get("ts") {
            None | Some(serde_json::Value::Null) => record.arrival,
            Some(v) => TimeBounds::EVENT.check("ts", parse_time("ts", v)?, record.arrival)?,
        };
        Ok(Visit {
            cid,
            gender,
            event_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use tally_engine::SequenceNumber;

    fn rec(data: &[u8]) -> StreamRecord {
        StreamRecord {
            shard_id: "shardId-000000000000".into(),
            sequence_number: SequenceNumber::parse(
                "49590338271490256608559692538361571095921575989136588898",
            )
            .unwrap(),
            partition_key: "C124".into(),
            data: data.to_vec(),
            arrival: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        }
    }

    fn decode(data: &str) -> Result<Visit, Rejection> {
        VisitDecoder::default().decode(&rec(data.as_bytes()))
    }

    #[test]
    fn decodes_the_contract_record() {
        let v = decode(r#"{"cid":"C124","gndr":"female","ts":"2026-11-22T10:00:00Z"}"#).unwrap();
        assert_eq!(v.cid.as_str(), "C124");
        assert_eq!(v.gender, Gender::Female);
        assert_eq!(
            v.event_time,
            Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
        );
    }

    #[test]
    fn gender_is_case_insensitive_and_ts_is_optional() {
        let v = decode(r#"{"cid":"C1","gndr":"MaLe"}"#).unwrap();
        assert_eq!(v.gender, Gender::Male);
        assert_eq!(
            v.event_time,
            rec(b"").arrival,
            "absent ts means arrival time"
        );
    }

    #[test]
    fn accepts_epoch_millis_and_offsets() {
        let v = decode(r#"{"cid":"C1","gndr":"male","ts":1795341600000}"#).unwrap();
        assert_eq!(v.event_time.timestamp_millis(), 1795341600000);
        let v = decode(r#"{"cid":"C1","gndr":"male","ts":"1795341600000"}"#).unwrap();
        assert_eq!(v.event_time.timestamp_millis(), 1795341600000);
        let v = decode(r#"{"cid":"C1","gndr":"male","ts":"2026-11-22T01:00:00+05:00"}"#).unwrap();
        assert_eq!(
            v.day(),
            NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
            "days are UTC days"
        );
    }

    #[test]
    fn every_bad_input_has_a_reason() {
        let cases = [
            ("{not json", "malformed json"),
            ("[1,2]", "not a json object"),
            (r#"{"gndr":"male"}"#, "missing field cid"),
            (r#"{"cid":124,"gndr":"male"}"#, "field cid must be a string"),
            (r#"{"cid":"C1"}"#, "missing field gndr"),
            (r#"{"cid":"C1","gndr":"other"}"#, "unknown gender"),
            (r#"{"cid":"C1","gndr":true}"#, "field gndr must be a string"),
            (r#"{"cid":"","gndr":"male"}"#, "cid is empty"),
            (r#"{"cid":"a b","gndr":"male"}"#, "has a character"),
            (
                r#"{"cid":"C1","gndr":"male","ts":"yesterday"}"#,
                "not an RFC 3339",
            ),
            (r#"{"cid":"C1","gndr":"male","ts":1.5}"#, "not an integer"),
            (r#"{"cid":"C1","gndr":"male","ts":-5}"#, "out of range"),
            (
                r#"{"cid":"C1","gndr":"male","ts":8210266876799999}"#,
                "ts out of range (time_out_of_range)",
            ),
            (
                r#"{"cid":"C1","gndr":"male","ts":"2026-11-23T10:00:01Z"}"#,
                "is after 2026-11-23T10:00:00+00:00",
            ),
            (r#"{"cid":"C1","gndr":"male","ts":[1]}"#, "field ts must be"),
        ];
        for (input, expected) in cases {
            let err = decode(input).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{input}: {err:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn rejects_non_utf8_and_oversized() {
        let err = VisitDecoder::default()
            .decode(&rec(b"{\"cid\":\"\xff\"}"))
            .unwrap_err();
        assert_eq!(err.code(), "not_utf8");
        let big = format!(
            r#"{{"cid":"C1","gndr":"male","pad":"{}"}}"#,
            "x".repeat(5000)
        );
        let err = decode(&big).unwrap_err();
        assert_eq!(err.code(), "oversized");
        assert!(err.to_string().contains("limit is 4096"));
    }
}
