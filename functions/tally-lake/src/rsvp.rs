//! The RSVP tables in third normal form: each line of `raw/rsvps/` names a member, an event, a
//! group (with its topics) and maybe a venue, and is one version of an RSVP. Each entity is kept
//! once by its id, the version with the latest `mtime` winning; each `rsvp_id` once, its latest
//! version. All are unique across the whole table (`Layout::Unique`): each table's view keeps an
//! id's latest version however the lines were split across objects and days, and however often a
//! conversion runs (docs/lake.md says how).

use tally_engine::Rejection;
use tally_pipelines::rsvp::{Rsvp, RsvpDecoder};

use crate::columns;
use crate::raw::RawObject;
use crate::rows::{bigint as id, Row, Value};
use crate::table::{Curated, Keep, Layout, PipelineTables, RawTable, Table};

const fn dimension(id: &'static [&'static str]) -> Layout {
    Layout::Unique {
        id,
        keep: Keep::Latest("mtime"),
    }
}

pub const MEMBERS: Table = Table {
    name: "members",
    description: "Each member once, as its latest RSVP (mtime) shows it.",
    columns: columns!(member_id bigint, member_name string, photo string, mtime timestamp),
    layout: dimension(&["member_id"]),
};

pub const GROUPS: Table = Table {
    name: "groups",
    description: "Each group once, as its latest RSVP (mtime) shows it.",
    columns: columns!(group_id bigint, group_name string, group_urlname string, group_city string,
        group_state string, group_country string, group_lat double, group_lon double,
        mtime timestamp),
    layout: dimension(&["group_id"]),
};

pub const VENUES: Table = Table {
    name: "venues",
    description:
        "Each venue once, as its latest RSVP (mtime) shows it; RSVPs without one name none.",
    columns: columns!(venue_id bigint, venue_name string, lat double, lon double, mtime timestamp),
    layout: dimension(&["venue_id"]),
};

pub const MEETUP_EVENTS: Table = Table {
    name: "meetup_events",
    description:
        "Each Meetup event once, as its latest RSVP (mtime) shows it: its group and venue.",
    columns: columns!(event_id string, event_name string, event_url string, time timestamp,
        group_id bigint, venue_id bigint, mtime timestamp),
    layout: dimension(&["event_id"]),
};

pub const TOPICS: Table = Table {
    name: "topics",
    description: "Each topic once by urlkey, named as its latest RSVP (mtime) names it.",
    columns: columns!(urlkey string, topic_name string, mtime timestamp),
    layout: dimension(&["urlkey"]),
};

pub const GROUP_TOPICS: Table = Table {
    name: "group_topics",
    description: "The topics of each group, as its latest RSVP (mtime) lists them.",
    columns: columns!(group_id bigint, urlkey string, mtime timestamp),
    layout: Layout::Unique {
        id: &["group_id"],
        keep: Keep::LatestSet {
            version: "mtime",
            member: "urlkey",
        },
    },
};

pub const RSVPS: Table = Table {
    name: "rsvps",
    description: "Each RSVP once by rsvp_id: its latest version (mtime).",
    columns: columns!(rsvp_id bigint, mtime timestamp, response string, guests int,
        visibility string, member_id bigint, event_id string),
    layout: Layout::Unique {
        id: &["rsvp_id"],
        keep: Keep::Latest("mtime"),
    },
};

// The seed's ML step (GroupClustersFunction, `tally clusters`): each table replaced whole by
// every run, the three written together.

pub const GROUP_CLUSTERS: Table = Table {
    name: "group_clusters",
    description: "Each group's cluster by the Jaccard distance of topic sets (tally clusters).",
    columns: columns!(group_id bigint, cluster int),
    layout: Layout::Replaced,
};

pub const GROUP_CLUSTER_PREDICTIONS: Table = Table {
    name: "group_cluster_predictions",
    description: "Each group's cluster as the ensemble model predicts it from the group's features, with the share of its trees that voted so; split says whether it trained on the group.",
    columns: columns!(group_id bigint, cluster int, predicted int, probability double,
        split string),
    layout: Layout::Replaced,
};

pub const CLUSTER_MODEL_EVAL: Table = Table {
    name: "cluster_model_eval",
    description: "How well the ensemble model predicts held-out groups' clusters, against always answering the most common cluster of the training groups.",
    columns: columns!(model string, accuracy double, baseline_accuracy double, n_train bigint,
        n_test bigint, trained_at timestamp),
    layout: Layout::Replaced,
};

fn text(s: &Option<String>) -> Value {
    s.as_deref().map_or(Value::Null, Value::str)
}

fn double(x: Option<f64>) -> Value {
    x.map_or(Value::Null, Value::Double)
}

/// An RSVP line as its rows: the same decoder as the live statistics, so the same lines are bad.
pub fn rsvp_rows(line: &[u8], raw: &RawObject) -> Result<Vec<(&'static Table, Row)>, Rejection> {
    let r: Rsvp = RsvpDecoder::default().decode_bytes(line, raw.delivered)?;
    let mtime = Value::Timestamp(r.mtime);
    let (member_id, group_id) = (id("member_id", r.member.id)?, id("group_id", r.group.id)?);
    let venue_id = match &r.venue {
        Some(v) => id("venue_id", v.id)?,
        None => Value::Null,
    };
    let guests = i32::try_from(r.guests).map_err(|_| Rejection::InvalidField {
        field: "guests",
        reason: format!("{} does not fit an int", r.guests),
    })?;
    let mut rows = vec![
        (
            &MEMBERS,
            vec![
                member_id.clone(),
                Value::str(r.member.name.as_str()),
                text(&r.member.photo),
                mtime.clone(),
            ],
        ),
        (
            &GROUPS,
            vec![
                group_id.clone(),
                Value::str(r.group.name.as_str()),
                text(&r.group.urlname),
                text(&r.group.city),
                text(&r.group.state),
                text(&r.group.country),
                double(r.group.lat),
                double(r.group.lon),
                mtime.clone(),
            ],
        ),
        (
            &MEETUP_EVENTS,
            vec![
                Value::str(r.event.id.as_str()),
                Value::str(r.event.name.as_str()),
                text(&r.event.url),
                Value::opt_timestamp(r.event.time),
                group_id.clone(),
                venue_id.clone(),
                mtime.clone(),
            ],
        ),
        (
            &RSVPS,
            vec![
                id("rsvp_id", r.rsvp_id)?,
                mtime.clone(),
                Value::str(r.response.as_str()),
                Value::Int(guests),
                text(&r.visibility),
                member_id,
                Value::str(r.event.id.as_str()),
            ],
        ),
    ];
    if let Some(v) = &r.venue {
        rows.push((
            &VENUES,
            vec![
                venue_id,
                text(&v.name),
                double(v.lat),
                double(v.lon),
                mtime.clone(),
            ],
        ));
    }
    for t in &r.group.topics {
        rows.push((
            &TOPICS,
            vec![
                Value::str(t.urlkey.as_str()),
                Value::str(t.name.as_str()),
                mtime.clone(),
            ],
        ));
        rows.push((
            &GROUP_TOPICS,
            vec![
                group_id.clone(),
                Value::str(t.urlkey.as_str()),
                mtime.clone(),
            ],
        ));
    }
    Ok(rows)
}

/// The rsvp pipeline's part of the lake.
pub const RSVP_TABLES: PipelineTables = PipelineTables {
    pipeline: "rsvp",
    curated: &[
        &MEMBERS,
        &GROUPS,
        &VENUES,
        &MEETUP_EVENTS,
        &TOPICS,
        &GROUP_TOPICS,
        &RSVPS,
        &GROUP_CLUSTERS,
        &GROUP_CLUSTER_PREDICTIONS,
        &CLUSTER_MODEL_EVAL,
    ],
    raw: &[
        // Nested objects read as their JSON text (json_extract them); `group` is a keyword of SQL.
        RawTable {
            name: "raw_rsvps",
            stream: "rsvps",
            columns: columns!(rsvp_id bigint, mtime bigint, response string, guests int,
                visibility string, member string, event string, rsvp_group string, venue string),
            fields: &[("rsvp_group", "group")],
            curated: Curated::Normalized(rsvp_rows),
        },
        RawTable {
            name: "raw_rsvp_stats",
            stream: "rsvp_stats",
            columns: columns!(as_of string, window_start string, window_end string,
                top_events string, totals string, per_minute string),
            fields: &[],
            curated: Curated::Archived,
        },
    ],
    generated: None,
};
