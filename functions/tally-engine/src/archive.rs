//! An archived line keeps where its record came from: the shard, the sequence number, the
//! partition key and the arrival, which Firehose shows only to a transformation Lambda
//! (`kinesisRecordMetadata`). Replay (`tally replay`) needs them to deliver a record again as Lambda
//! did, so that a consumer that applied it already changes nothing.
//!
//! The origin is the first member of the line's JSON object, `_kinesis`, put before the record's
//! own members without re-encoding them, so the raw tables (which read members by name) see the
//! same columns and [`unstamp`] gives the archived bytes back exactly. A record that is not a
//! one-line JSON object is kept whole, base64, in `_line`; a record the transformation changed (the
//! events router) keeps its original, base64, in `_kinesis.data`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    #[serde(rename = "shard")]
    pub shard_id: String,
    #[serde(rename = "seq")]
    pub sequence_number: String,
    #[serde(rename = "key")]
    pub partition_key: String,
    /// When Kinesis took it, epoch milliseconds.
    #[serde(rename = "at")]
    pub arrival_ms: i64,
    /// The record as put, base64, when the archived line is not it.
    #[serde(rename = "data", default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
}

const PREFIX: &[u8] = b"{\"_kinesis\":";

/// Whether `line` can carry `_kinesis` inline: a JSON object on one line, as UTF-8.
fn inline(line: &[u8]) -> bool {
    line.first() == Some(&b'{')
        && !line.iter().any(|b| *b == b'\n' || *b == b'\r')
        && std::str::from_utf8(line).is_ok()
}

/// The archived line of `archived` (the record as the archive keeps it, without its delimiter),
/// which came from `origin`; `original` is the record as put, when it differs.
pub fn stamp(origin: &Origin, original: Option<&[u8]>, archived: &[u8]) -> Vec<u8> {
    let mut origin = origin.clone();
    origin.original = original
        .filter(|o| *o != archived)
        .map(|o| base64::engine::general_purpose::STANDARD.encode(o));
    let meta = serde_json::to_vec(&origin).expect("an origin encodes");
    let mut out = Vec::with_capacity(archived.len() + meta.len() + 16);
    out.extend_from_slice(PREFIX);
    out.extend_from_slice(&meta);
    if inline(archived) {
        let rest = &archived[1..];
        // A comma only before a member: `{}` stays an object of one member.
        if !rest.trim_ascii_start().starts_with(b"}") {
            out.push(b',');
        }
        out.extend_from_slice(rest);
    } else {
        out.extend_from_slice(b",\"_line\":");
        let encoded = base64::engine::general_purpose::STANDARD.encode(archived);
        out.extend_from_slice(&serde_json::to_vec(&encoded).expect("a string encodes"));
        out.push(b'}');
    }
    out
}

/// An archived line split into where it came from (absent for a line archived before origins
/// were kept) and the archived record, as [`stamp`] was given it.
pub fn unstamp(line: &[u8]) -> (Option<Origin>, std::borrow::Cow<'_, [u8]>) {
    use std::borrow::Cow;
    let Some(rest) = line.strip_prefix(PREFIX) else {
        return (None, Cow::Borrowed(line));
    };
    let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Origin>();
    let Some(Ok(origin)) = values.next() else {
        return (None, Cow::Borrowed(line));
    };
    let after = &rest[values.byte_offset()..];
    if let Some(encoded) = after.strip_prefix(b",\"_line\":") {
        let decoded = encoded
            .strip_suffix(b"}")
            .and_then(|s| serde_json::from_slice::<String>(s).ok())
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok());
        if let Some(data) = decoded {
            return (Some(origin), Cow::Owned(data));
        }
    }
    let members = after.strip_prefix(b",").unwrap_or(after);
    let mut data = Vec::with_capacity(members.len() + 1);
    data.push(b'{');
    data.extend_from_slice(members);
    (Some(origin), Cow::Owned(data))
}

impl Origin {
    /// The record as it was put: its original when the archive changed it, else `archived`.
    pub fn record_data(&self, archived: &[u8]) -> Vec<u8> {
        self.original
            .as_deref()
            .and_then(|o| base64::engine::general_purpose::STANDARD.decode(o).ok())
            .unwrap_or_else(|| archived.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            shard_id: "shardId-000000000002".into(),
            sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
            partition_key: "C1".into(),
            arrival_ms: 1_795_341_605_000,
            original: None,
        }
    }

    #[test]
    fn every_record_comes_back_exactly_with_its_origin() {
        let cases: Vec<&[u8]> = vec![
            br#"{"cid":"C1","gndr":"male"}"#,
            b"{}",
            b"{ }",
            b"{,}",
            b"{oops",
            b"not json",
            b"",
            b"\xff\xfe",
            b"{\"a\":\n1}",
            br#"{"_kinesis":1}"#,
            b"  {\"a\":1}",
        ];
        for data in cases {
            let line = stamp(&origin(), None, data);
            assert!(!line.contains(&b'\n'), "{line:?}");
            let (got, back) = unstamp(&line);
            assert_eq!(got, Some(origin()), "{}", String::from_utf8_lossy(&line));
            assert_eq!(&*back, data, "{}", String::from_utf8_lossy(&line));
        }
    }

    #[test]
    fn an_object_keeps_its_members_for_the_raw_tables() {
        let line = stamp(&origin(), None, br#"{"cid":"C1","gndr":"male"}"#);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["cid"], "C1");
        assert_eq!(v["_kinesis"]["shard"], "shardId-000000000002");
        let empty: serde_json::Value =
            serde_json::from_slice(&stamp(&origin(), None, b"{}")).unwrap();
        assert_eq!(empty.as_object().unwrap().len(), 1);
    }

    #[test]
    fn a_changed_record_keeps_its_original() {
        let line = stamp(&origin(), Some(b"sealed"), br#"{"app_id":"a"}"#);
        let (got, archived) = unstamp(&line);
        let got = got.unwrap();
        assert_eq!(&*archived, br#"{"app_id":"a"}"#);
        assert_eq!(got.record_data(&archived), b"sealed");
        let same = stamp(&origin(), Some(b"{}"), b"{}");
        assert_eq!(
            unstamp(&same).0.unwrap().original,
            None,
            "kept once when unchanged"
        );
    }

    #[test]
    fn a_line_archived_before_origins_is_itself() {
        let (got, back) = unstamp(br#"{"cid":"C1"}"#);
        assert_eq!((got, &*back), (None, &br#"{"cid":"C1"}"#[..]));
    }
}
