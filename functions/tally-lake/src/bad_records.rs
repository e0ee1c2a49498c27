//! Every record that could not be used, queryable: the dead letters of every function, and raw
//! lines the lake could not convert. Failures are data too.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tally_engine::Rejection;

use crate::columns;
use crate::raw::{RawLine, RawObject};
use crate::rows::{Row, Value};
use crate::table::{Keep, Layout, PipelineTables, Table};
use crate::LakeError;

pub const BAD_RECORDS: Table = Table {
    name: "bad_records",
    description: "Every dead letter and every raw line the lake could not convert, once each, with its reason; data is the record as UTF-8 text (invalid bytes replaced).",
    columns: columns!(source string, reason_code string, reason string, data string, id string,
        shard_id string, sequence_number string, arrival timestamp),
    layout: Layout::UniqueByDay {
        id: &["id"],
        keep: Keep::Earliest("arrival"),
        day: "arrival",
    },
};

/// A dead letter as the engine writes it.
#[derive(Debug, Deserialize)]
struct DeadLetter {
    source: String,
    reason: String,
    reason_code: String,
    shard_id: String,
    sequence_number: String,
    approximate_arrival: DateTime<Utc>,
    data_base64: String,
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// A dead letter object as a row, its key as the id (a redelivered record has the same key).
pub fn dead_letter_row(key: &str, object: &[u8]) -> Result<Row, LakeError> {
    let letter: DeadLetter = serde_json::from_slice(object)
        .map_err(|e| LakeError::Input(format!("{key} is not a dead letter: {e}")))?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(&letter.data_base64)
        .map_err(|e| LakeError::Input(format!("{key}: data_base64: {e}")))?;
    Ok(vec![
        Value::Str(letter.source),
        Value::Str(letter.reason_code),
        Value::Str(letter.reason),
        Value::Str(text(&data)),
        Value::str(key.trim_end_matches(".json")),
        Value::Str(letter.shard_id),
        Value::Str(letter.sequence_number),
        Value::Timestamp(letter.approximate_arrival),
    ])
}

/// A raw line the lake could not convert, as a row: `source` is `lake:<stream>`, the id its
/// object and line (from 1).
pub fn raw_line_row(raw: &RawObject, line_number: usize, line: &RawLine, why: &Rejection) -> Row {
    let origin = |field: fn(&tally_engine::archive::Origin) -> &String| {
        line.origin
            .as_ref()
            .map_or(Value::Null, |o| Value::Str(field(o).clone()))
    };
    vec![
        Value::Str(format!("lake:{}", raw.stream)),
        Value::str(why.code()),
        Value::Str(why.to_string()),
        Value::Str(text(&line.data)),
        Value::Str(format!("{}#{line_number}", raw.key)),
        origin(|o| &o.shard_id),
        origin(|o| &o.sequence_number),
        Value::Timestamp(raw.delivered),
    ]
}

/// The lake's own table of what could not become a row.
pub const BAD_RECORDS_TABLES: PipelineTables = PipelineTables {
    pipeline: "lake",
    curated: &[&BAD_RECORDS],
    raw: &[],
    generated: None,
};
