//! The app events warehouse (seed 002): each line of `raw/events/event_type=<type>/` (checked by
//! the router on its way in) becomes a row of `fact_events`, of its type's own table
//! `event_<type>` (its attributes as columns, from `schemas/events/<type>.json`), of `dim_device`
//! and, when it names one, of `dim_app`.
//!
//! - `fact_events` and `event_<type>` are unique by (`app_id`, `event_id`) (the earliest
//!   `server_time` wins), in partitions by UTC day of `client_time`: an SDK's retry repeats its
//!   event exactly, so every copy of an id meets the others in one partition, and analysts ask by
//!   the day the event happened. The router wrote `app_id` and `server_time` only for sealed events
//!   (`tally_events::seal`): an event put directly is the app `direct`'s, so it can
//!   neither replace nor hide a registered app's event of the same id.
//! - `dim_device` is unique by `device_id`: the attributes of its latest event
//!   (by `client_time`, the device's own timeline), seen first and last then.
//! - `dim_app` is unique by `app_id`: the name `/collect` stamped on its latest event.
//!
//! A new type is one schema file: its raw table, its warehouse table, the catalog and the docs
//! follow from it.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use tally_engine::{json_object, Rejection};
use tally_events::event::{decode_envelope, MAX_EVENT_BYTES};
use tally_events::schema::{AttributeKind, TypeInfo};
use tally_events::Event;

use crate::columns;
use crate::raw::RawObject;
use crate::rows::{Row, Value};
use crate::table::{
    col, Column, ColumnType as T, Curated, Keep, Layout, PipelineTables, RawTable, Table,
};

/// Rows unique by app and event id, filed by the day the event happened.
const BY_EVENT: Layout = Layout::UniqueByDay {
    id: &["app_id", "event_id"],
    keep: Keep::Earliest("server_time"),
    day: "client_time",
};

pub const FACT_EVENTS: Table = Table {
    name: "fact_events",
    description: "Each app event once by (app_id, event_id) (its first arrival): what happened, in which app (direct: not through /collect), on which device, for which user and session, when.",
    columns: columns!(event_id string, event_type string, app_id string, device_id string,
        user_id string, session_id string, client_time timestamp, server_time timestamp),
    layout: BY_EVENT,
};

pub const DIM_DEVICE: Table = Table {
    name: "dim_device",
    description: "Each device once: its platform, OS, model and app version as its latest event (client_time) says, and when it was first and last seen.",
    columns: columns!(device_id string, platform string, os_version string, model string,
        app_version string, first_seen timestamp, last_seen timestamp),
    layout: Layout::Unique {
        id: &["device_id"],
        keep: Keep::Span {
            first: "first_seen",
            last: "last_seen",
        },
    },
};

pub const DIM_APP: Table = Table {
    name: "dim_app",
    description: "Each app that sent events through /collect once, with its registered name.",
    columns: columns!(app_id string, name string, last_seen timestamp),
    layout: Layout::Unique {
        id: &["app_id"],
        keep: Keep::Latest("last_seen"),
    },
};

/// The lake's tables of one event type.
#[derive(Debug, Clone, Copy)]
pub struct EventTables {
    pub info: &'static TypeInfo,
    /// `event_<type>`: the event id, its attributes, its times.
    pub table: &'static Table,
    /// `raw_events_<type>`: the archive of the type, as received.
    pub raw: &'static RawTable,
}

fn column_type(kind: AttributeKind) -> T {
    match kind {
        AttributeKind::String | AttributeKind::Json => T::String,
        AttributeKind::Integer => T::BigInt,
        AttributeKind::Number => T::Double,
        AttributeKind::Boolean => T::Boolean,
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The envelope's fields as raw columns: nested objects read as their JSON text.
const RAW_COLUMNS: &[Column] = columns!(
    event_id string, event_type string, client_time string, device string, user_id string,
    session_id string, attributes string, app_id string, app_name string, server_time string
);

/// Every event type's tables, made once from the schemas compiled into the build.
pub fn event_tables() -> &'static [EventTables] {
    static TABLES: OnceLock<Vec<EventTables>> = OnceLock::new();
    TABLES.get_or_init(|| {
        TypeInfo::built_in()
            .iter()
            .map(|info| {
                let mut columns = vec![col("event_id", T::String), col("app_id", T::String)];
                columns.extend(
                    info.attributes
                        .iter()
                        .map(|a| col(leak(a.name.clone()), column_type(a.kind))),
                );
                columns.push(col("client_time", T::Timestamp));
                columns.push(col("server_time", T::Timestamp));
                let table: &'static Table = Box::leak(Box::new(Table {
                    name: leak(format!("event_{}", info.name)),
                    description: leak(format!(
                        "Each {} event once by (app_id, event_id), its attributes as columns (schemas/events/{}.json): {}",
                        info.name, info.name, info.description
                    )),
                    columns: Box::leak(columns.into_boxed_slice()),
                    layout: BY_EVENT,
                }));
                let raw: &'static RawTable = Box::leak(Box::new(RawTable {
                    name: leak(format!("raw_events_{}", info.name)),
                    stream: leak(format!("events/event_type={}", info.name)),
                    columns: RAW_COLUMNS,
                    fields: &[],
                    curated: Curated::Normalized(event_rows),
                }));
                EventTables { info, table, raw }
            })
            .collect()
    })
}

fn text(s: &Option<String>) -> Value {
    s.clone().map_or(Value::Null, Value::Str)
}

/// An attribute as its column's value; a value of another type (which the router's check rules
/// out) is left empty rather than guessed.
fn attribute(kind: AttributeKind, v: Option<&Json>) -> Value {
    match (kind, v) {
        (_, None | Some(Json::Null)) => Value::Null,
        (AttributeKind::String, Some(Json::String(s))) => Value::Str(s.clone()),
        (AttributeKind::Integer, Some(Json::Number(n))) => {
            n.as_i64().map_or(Value::Null, Value::BigInt)
        }
        (AttributeKind::Number, Some(Json::Number(n))) => {
            n.as_f64().map_or(Value::Null, Value::Double)
        }
        (AttributeKind::Boolean, Some(Json::Bool(b))) => Value::Bool(*b),
        (AttributeKind::Json, Some(other)) => Value::Str(other.to_string()),
        _ => Value::Null,
    }
}

/// One archived event as rows of the warehouse.
pub fn event_rows(line: &[u8], raw: &RawObject) -> Result<Vec<(&'static Table, Row)>, Rejection> {
    let obj = json_object(line, MAX_EVENT_BYTES)?;
    let e: Event = decode_envelope(&obj, TypeInfo::is_built_in)?;
    let tables = event_tables()
        .iter()
        .find(|t| t.info.name == e.event_type)
        .ok_or_else(|| Rejection::UnknownType(e.event_type.clone()))?;
    // The router gives every event a server time; an archive from before it did has the
    // delivery time instead.
    let server_time: DateTime<Utc> = e.received(raw.delivered);
    let mut rows = vec![
        (
            &FACT_EVENTS,
            vec![
                Value::str(&e.event_id),
                Value::str(&e.event_type),
                Value::str(e.app()),
                Value::str(&e.device.id),
                text(&e.user_id),
                text(&e.session_id),
                Value::Timestamp(e.client_time),
                Value::Timestamp(server_time),
            ],
        ),
        (
            &DIM_DEVICE,
            vec![
                Value::str(&e.device.id),
                text(&e.device.platform.map(|p| p.as_str().to_string())),
                text(&e.device.os_version),
                text(&e.device.model),
                text(&e.device.app_version),
                Value::Timestamp(e.client_time),
                Value::Timestamp(e.client_time),
            ],
        ),
    ];
    if let (Some(app_id), Some(name)) = (&e.app_id, &e.app_name) {
        rows.push((
            &DIM_APP,
            vec![
                Value::str(app_id),
                Value::str(name),
                Value::Timestamp(server_time),
            ],
        ));
    }
    let mut row = vec![Value::str(&e.event_id), Value::str(e.app())];
    row.extend(
        tables
            .info
            .attributes
            .iter()
            .map(|a| attribute(a.kind, e.attributes.get(&a.name))),
    );
    row.push(Value::Timestamp(e.client_time));
    row.push(Value::Timestamp(server_time));
    rows.push((tables.table, row));
    Ok(rows)
}

/// The mobile events' part of the lake: the warehouse's facts and dimensions, and per event type
/// its table and its raw archive.
pub const EVENTS_TABLES: PipelineTables = PipelineTables {
    pipeline: "events",
    curated: &[
        &FACT_EVENTS,
        &DIM_DEVICE,
        &DIM_APP,
        &crate::core_dims::DIM_VENDOR,
        &crate::core_dims::DIM_FLYER,
        &crate::core_dims::DIM_USER,
    ],
    raw: &[],
    generated: Some(|| event_tables().iter().map(|t| (t.table, t.raw)).collect()),
};
