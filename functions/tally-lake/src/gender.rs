//! The gender pipeline's table: every archived visit, as the models read it.

use tally_engine::{Rejection, SequenceNumber, StreamRecord};
use tally_pipelines::gender::VisitDecoder;

use crate::raw::RawObject;
use crate::rows::{Row, Value};
use crate::table::{col, ColumnType as T, Curated, Layout, PipelineTables, RawTable, Table};

pub const VISITS: Table = Table {
    name: "visits",
    description:
        "Every valid record of VisitsStream: ts is the visit's time (its arrival when it has none).",
    columns: &[
        col("cid", T::String),
        col("gndr", T::String),
        col("ts", T::Timestamp),
        col("arrival", T::Timestamp),
    ],
    layout: Layout::PerRawObject,
};

/// A raw line as a record arriving when its object was delivered: the decoders need one.
pub(crate) fn as_record(line: &[u8], raw: &RawObject) -> StreamRecord {
    StreamRecord {
        shard_id: String::new(),
        sequence_number: SequenceNumber::parse("0").expect("0 is a sequence number"),
        partition_key: String::new(),
        data: line.to_vec(),
        arrival: raw.delivered,
    }
}

/// A visit line as a row; the same decoder as the models', so the same records are bad.
pub fn visit_row(line: &[u8], raw: &RawObject) -> Result<Row, Rejection> {
    let v = VisitDecoder::default().decode(&as_record(line, raw))?;
    Ok(vec![
        Value::str(v.cid.as_str()),
        Value::str(v.gender.as_str()),
        Value::Timestamp(v.event_time),
        Value::Timestamp(raw.delivered),
    ])
}

/// The gender pipeline's part of the lake.
pub const GENDER_TABLES: PipelineTables = PipelineTables {
    pipeline: "gender",
    curated: &[&VISITS],
    raw: &[
        RawTable {
            name: "raw_visits",
            stream: "visits",
            columns: &[
                col("cid", T::String),
                col("gndr", T::String),
                col("ts", T::String),
            ],
            fields: &[],
            curated: Curated::Rows(&VISITS, visit_row),
        },
        RawTable {
            name: "raw_gender_results",
            stream: "gender_results",
            columns: &[
                col("id", T::String),
                col("model", T::String),
                col("cid", T::String),
                col("gndr", T::String),
                col("male", T::BigInt),
                col("female", T::BigInt),
                col("rev", T::BigInt),
                col("as_of", T::String),
            ],
            fields: &[("id", "_id")],
            curated: Curated::Archived,
        },
    ],
    generated: None,
};
