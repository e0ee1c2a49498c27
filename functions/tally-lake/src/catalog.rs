//! Every table of the lake: the curated ones and the raw ones, with the stream each raw table
//! archives and the curated table its lines become.

use crate::bad_records::BAD_RECORDS;
use crate::gender::{visit_row, VISITS};
use crate::rules::{alert_row, interaction_row, ALERTS, INTERACTIONS};
use crate::table::{Column, ColumnType as T, RawTable, Table};

/// The curated tables (Parquet under `lake/`).
pub const TABLES: [&Table; 4] = [&VISITS, &INTERACTIONS, &ALERTS, &BAD_RECORDS];

/// The raw tables (GZIP JSON lines under `raw/`), one per archived stream.
pub const RAW_TABLES: [RawTable; 6] = [
    RawTable {
        name: "raw_visits",
        stream: "visits",
        columns: &[
            Column {
                name: "cid",
                kind: T::String,
            },
            Column {
                name: "gndr",
                kind: T::String,
            },
            Column {
                name: "ts",
                kind: T::String,
            },
        ],
        fields: &[],
        curated: Some((&VISITS, visit_row)),
    },
    RawTable {
        name: "raw_interactions",
        stream: "interactions",
        columns: &[
            Column {
                name: "user_id",
                kind: T::BigInt,
            },
            Column {
                name: "property_id",
                kind: T::BigInt,
            },
            Column {
                name: "date",
                kind: T::String,
            },
            Column {
                name: "event",
                kind: T::String,
            },
        ],
        fields: &[],
        curated: Some((&INTERACTIONS, interaction_row)),
    },
    RawTable {
        name: "raw_gender_results",
        stream: "gender_results",
        columns: &[
            Column {
                name: "id",
                kind: T::String,
            },
            Column {
                name: "model",
                kind: T::String,
            },
            Column {
                name: "cid",
                kind: T::String,
            },
            Column {
                name: "gndr",
                kind: T::String,
            },
            Column {
                name: "male",
                kind: T::BigInt,
            },
            Column {
                name: "female",
                kind: T::BigInt,
            },
            Column {
                name: "rev",
                kind: T::BigInt,
            },
            Column {
                name: "as_of",
                kind: T::String,
            },
        ],
        fields: &[("id", "_id")],
        curated: None,
    },
    RawTable {
        name: "raw_paid_user_alerts",
        stream: "paid_user_alerts",
        columns: &[
            Column {
                name: "user",
                kind: T::BigInt,
            },
            Column {
                name: "interactions_count",
                kind: T::BigInt,
            },
            Column {
                name: "alert_id",
                kind: T::String,
            },
        ],
        fields: &[],
        curated: Some((&ALERTS, alert_row)),
    },
    RawTable {
        name: "raw_property_status_alerts",
        stream: "property_status_alerts",
        columns: &[
            Column {
                name: "property",
                kind: T::BigInt,
            },
            Column {
                name: "property_interactions_count",
                kind: T::BigInt,
            },
            Column {
                name: "alert_id",
                kind: T::String,
            },
        ],
        fields: &[],
        curated: Some((&ALERTS, alert_row)),
    },
    RawTable {
        name: "raw_possible_broker_alerts",
        stream: "possible_broker_alerts",
        columns: &[
            Column {
                name: "window_start",
                kind: T::String,
            },
            Column {
                name: "user_id",
                kind: T::BigInt,
            },
            Column {
                name: "threat_user_interactions",
                kind: T::BigInt,
            },
            Column {
                name: "alert_id",
                kind: T::String,
            },
        ],
        fields: &[("window_start", "window.start")],
        curated: Some((&ALERTS, alert_row)),
    },
];

/// The raw table of an archived stream.
pub fn raw_table(stream: &str) -> Option<&'static RawTable> {
    RAW_TABLES.iter().find(|r| r.stream == stream)
}
