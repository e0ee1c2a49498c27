//! The rules' tables: every archived interaction, and every alert once.

use serde_json::Value as Json;
use tally_engine::Rejection;
use tally_pipelines::rules::{InteractionDecoder, RuleDef};

use crate::columns;
use crate::gender::as_record;
use crate::raw::RawObject;
use crate::rows::{bigint, Row, Value};
use crate::table::{Curated, Keep, Layout, PipelineTables, RawTable, Table};

pub const INTERACTIONS: Table = Table {
    name: "interactions",
    description: "Every valid record of InteractionsStream, of every event type.",
    columns: columns!(user_id bigint, property_id bigint, event string, event_time timestamp),
    layout: Layout::PerRawObject,
};

pub const ALERTS: Table = Table {
    name: "alerts",
    description: "Every alert of the three alert streams once, however often it was published.",
    columns: columns!(rule string, alert_id string, key string, count bigint,
        window_start timestamp, published timestamp),
    layout: Layout::Unique {
        id: &["alert_id"],
        keep: Keep::Earliest("published"),
    },
};

pub fn interaction_row(line: &[u8], raw: &RawObject) -> Result<Row, Rejection> {
    let i = InteractionDecoder::default().decode(&as_record(line, raw))?;
    Ok(vec![
        bigint("user_id", i.user_id)?,
        bigint("property_id", i.property_id)?,
        Value::Str(i.event),
        Value::Timestamp(i.at),
    ])
}

/// An alert line (`{"user":1,"interactions_count":9,"alert_id":"paid_user:1"}`) as a row: the
/// rule table says which fields hold its key and its count.
pub fn alert_row(line: &[u8], raw: &RawObject) -> Result<Row, Rejection> {
    let obj = tally_engine::json_object(line, 4096)?;
    let alert_id = match obj.get("alert_id") {
        Some(Json::String(s)) => s.clone(),
        None | Some(Json::Null) => return Err(Rejection::MissingField("alert_id")),
        Some(other) => return Err(Rejection::wrong_type("alert_id", "a string", other)),
    };
    let rule = alert_id.split(':').next().unwrap_or_default();
    let def = RuleDef::by_name(rule).map_err(|e| Rejection::InvalidField {
        field: "alert_id",
        reason: e.to_string(),
    })?;
    let number = |field: &'static str| match obj.get(field) {
        Some(Json::Number(n)) => n.as_u64().ok_or_else(|| Rejection::InvalidField {
            field,
            reason: format!("{n} is not a non-negative integer"),
        }),
        None | Some(Json::Null) => Err(Rejection::MissingField(field)),
        Some(other) => Err(Rejection::wrong_type(field, "an integer", other)),
    };
    let window_start = match obj.get("window.start") {
        Some(Json::String(s)) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| Rejection::InvalidField {
                    field: "window.start",
                    reason: e.to_string(),
                })?
                .to_utc(),
        ),
        _ if def.windowed => return Err(Rejection::MissingField("window.start")),
        _ => None,
    };
    Ok(vec![
        Value::str(def.name),
        Value::Str(alert_id),
        Value::Str(number(def.subject_field)?.to_string()),
        bigint(def.count_field, number(def.count_field)?)?,
        Value::opt_timestamp(window_start),
        Value::Timestamp(raw.delivered),
    ])
}

/// The rules pipeline's part of the lake.
pub const RULES_TABLES: PipelineTables = PipelineTables {
    pipeline: "rules",
    curated: &[&INTERACTIONS, &ALERTS],
    raw: &[
        RawTable {
            name: "raw_interactions",
            stream: "interactions",
            columns: columns!(user_id bigint, property_id bigint, date string, event string),
            fields: &[],
            curated: Curated::Rows(&INTERACTIONS, interaction_row),
        },
        RawTable {
            name: "raw_paid_user_alerts",
            stream: "paid_user_alerts",
            columns: columns!(user bigint, interactions_count bigint, alert_id string),
            fields: &[],
            curated: Curated::Rows(&ALERTS, alert_row),
        },
        RawTable {
            name: "raw_property_status_alerts",
            stream: "property_status_alerts",
            columns: columns!(property bigint, property_interactions_count bigint, alert_id string),
            fields: &[],
            curated: Curated::Rows(&ALERTS, alert_row),
        },
        RawTable {
            name: "raw_possible_broker_alerts",
            stream: "possible_broker_alerts",
            columns: columns!(window_start string, user_id bigint,
                threat_user_interactions bigint, alert_id string),
            fields: &[("window_start", "window.start")],
            curated: Curated::Rows(&ALERTS, alert_row),
        },
    ],
    generated: None,
};
