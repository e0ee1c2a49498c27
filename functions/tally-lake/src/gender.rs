//! The gender pipeline's table: every archived visit, as the models read it.

use tally_engine::{Rejection, SequenceNumber, StreamRecord};
use tally_pipelines::gender::VisitDecoder;

use crate::columns;
use crate::raw::RawObject;
use crate::rows::{Row, Value};
use crate::table::{Curated, Layout, PipelineTables, RawTable, Table};

pub const VISITS: Table = Table {
    name: "visits",
    description:
        "Every valid record of VisitsStream: ts is the visit's time (its arrival when it has none).",
    columns: columns!(cid string, gndr string, ts timestamp, arrival timestamp),
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
            columns: columns!(cid string, gndr string, ts string),
            fields: &[],
            curated: Curated::Rows(&VISITS, visit_row),
        },
        RawTable {
            name: "raw_gender_results",
            stream: "gender_results",
            columns: columns!(id string, model string, cid string, gndr string, male bigint,
                female bigint, rev bigint, as_of string),
            fields: &[("id", "_id")],
            curated: Curated::Archived,
        },
    ],
    generated: None,
};
