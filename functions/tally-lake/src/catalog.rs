//! Every table of the lake: the curated ones and the raw ones, with the stream each raw table
//! archives and the curated table its lines become.

use std::sync::OnceLock;

use crate::bad_records::BAD_RECORDS;
use crate::events::{event_tables, DIM_APP, DIM_DEVICE, FACT_EVENTS};
use crate::gender::{visit_row, VISITS};
use crate::rsvp::{rsvp_rows, GROUPS, GROUP_CLUSTERS, GROUP_TOPICS, MEETUP_EVENTS, MEMBERS};
use crate::rsvp::{RSVPS, TOPICS, VENUES};
use crate::rules::{alert_row, interaction_row, ALERTS, INTERACTIONS};
use crate::table::{col, Column, ColumnType as T, Curated, RawTable, Table};

/// The curated tables of the pipelines written by hand (Parquet under `lake/`).
const FIXED_TABLES: [&Table; 15] = [
    &VISITS,
    &INTERACTIONS,
    &ALERTS,
    &BAD_RECORDS,
    &MEMBERS,
    &GROUPS,
    &VENUES,
    &MEETUP_EVENTS,
    &TOPICS,
    &GROUP_TOPICS,
    &RSVPS,
    &GROUP_CLUSTERS,
    &FACT_EVENTS,
    &DIM_DEVICE,
    &DIM_APP,
];

/// The raw tables of the streams archived whole (GZIP JSON lines under `raw/`).
const FIXED_RAW_TABLES: [RawTable; 8] = [
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
        curated: Curated::Rows(&VISITS, visit_row),
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
        curated: Curated::Rows(&INTERACTIONS, interaction_row),
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
        curated: Curated::Archived,
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
        curated: Curated::Rows(&ALERTS, alert_row),
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
        curated: Curated::Rows(&ALERTS, alert_row),
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
        curated: Curated::Rows(&ALERTS, alert_row),
    },
    // Nested objects read as their JSON text (json_extract them); `group` is a keyword of SQL.
    RawTable {
        name: "raw_rsvps",
        stream: "rsvps",
        columns: &[
            col("rsvp_id", T::BigInt),
            col("mtime", T::BigInt),
            col("response", T::String),
            col("guests", T::Int),
            col("visibility", T::String),
            col("member", T::String),
            col("event", T::String),
            col("rsvp_group", T::String),
            col("venue", T::String),
        ],
        fields: &[("rsvp_group", "group")],
        curated: Curated::Normalized(rsvp_rows),
    },
    RawTable {
        name: "raw_rsvp_stats",
        stream: "rsvp_stats",
        columns: &[
            col("as_of", T::String),
            col("window_start", T::String),
            col("window_end", T::String),
            col("top_events", T::String),
            col("totals", T::String),
            col("per_minute", T::String),
        ],
        fields: &[],
        curated: Curated::Archived,
    },
];

/// Every curated table: those above, then one per event type (`event_<type>`).
pub fn tables() -> &'static [&'static Table] {
    static ALL: OnceLock<Vec<&'static Table>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = FIXED_TABLES.to_vec();
        all.extend(event_tables().iter().map(|t| t.table));
        all
    })
}

/// Every raw table: one per archived stream, and one per event type (`raw_events_<type>`, the
/// partition `raw/events/event_type=<type>/`).
pub fn raw_tables() -> &'static [&'static RawTable] {
    static ALL: OnceLock<Vec<&'static RawTable>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<&'static RawTable> = FIXED_RAW_TABLES.iter().collect();
        all.extend(event_tables().iter().map(|t| t.raw));
        all
    })
}

/// The raw table of an archived stream (`visits`, `events/event_type=click`).
pub fn raw_table(stream: &str) -> Option<&'static RawTable> {
    raw_tables().iter().copied().find(|r| r.stream == stream)
}
