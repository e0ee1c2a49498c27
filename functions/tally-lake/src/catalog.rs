//! Every table of the lake, by pipeline: each pipeline's module declares its curated tables and
//! the raw tables of the streams it archives ([`PipelineTables`]); a new pipeline adds one line to
//! [`PIPELINES`].

use std::sync::OnceLock;

use crate::table::{PipelineTables, RawTable, Table};

/// Every pipeline's tables, in the order the catalog lists them.
pub const PIPELINES: &[&PipelineTables] = &[
    &crate::gender::GENDER_TABLES,
    &crate::rules::RULES_TABLES,
    &crate::bad_records::BAD_RECORDS_TABLES,
    &crate::rsvp::RSVP_TABLES,
    &crate::events::EVENTS_TABLES,
];

/// Every curated table (one per event type among them: `event_<type>`).
pub fn tables() -> &'static [&'static Table] {
    static ALL: OnceLock<Vec<&'static Table>> = OnceLock::new();
    ALL.get_or_init(|| PIPELINES.iter().flat_map(|p| p.curated_tables()).collect())
}

/// Every raw table: one per archived stream, and one per event type (`raw_events_<type>`, the
/// partition `raw/events/event_type=<type>/`).
pub fn raw_tables() -> &'static [&'static RawTable] {
    static ALL: OnceLock<Vec<&'static RawTable>> = OnceLock::new();
    ALL.get_or_init(|| PIPELINES.iter().flat_map(|p| p.raw_tables()).collect())
}

/// The raw table of an archived stream (`visits`, `events/event_type=click`).
pub fn raw_table(stream: &str) -> Option<&'static RawTable> {
    raw_tables().iter().copied().find(|r| r.stream == stream)
}
