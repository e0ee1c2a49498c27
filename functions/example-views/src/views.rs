//! The domain: a page view, its decoder, and the consumer that counts views per page and UTC
//! minute. It knows nothing of AWS; the engine does grouping, exactly-once writes, dead letters
//! and publishing.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use tally_engine::event_time::{parse_time, TimeBounds};
use tally_engine::ports::OutRecord;
use tally_engine::windows::MinuteBuckets;
use tally_engine::{
    json_object, Consumer, Emit, Output, Rejection, Sequenced, StateDelta, StoredState,
    StreamRecord,
};

/// Names the consumer in state keys (`views#...`, the IAM leading key), dead letters and metrics.
pub const NAME: &str = "views";
/// A view record is small; anything larger is not one.
const MAX_BYTES: usize = 4096;
/// How long a minute's count outlives its minute (late views still count while it lives).
const GRACE_SECONDS: i64 = 3_600;
/// The span a minute's count is kept for.
const HOUR: MinuteBuckets = MinuteBuckets { minutes: 60 };

/// `{"page": "/home", "at": "2026-11-22T10:00:05Z"}`: a page was viewed at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub page: String,
    pub at: DateTime<Utc>,
}

/// Reads a view from a record; every problem is a [`Rejection`] (the engine dead-letters it).
#[derive(Debug, Default, Clone)]
pub struct ViewDecoder;

impl ViewDecoder {
    pub fn decode(&self, r: &StreamRecord) -> Result<View, Rejection> {
        let obj = json_object(&r.data, MAX_BYTES)?;
        let page = match obj.get("page") {
            None => return Err(Rejection::MissingField("page")),
            Some(serde_json::Value::String(p)) if p.starts_with('/') => p.clone(),
            Some(serde_json::Value::String(_)) => {
                return Err(Rejection::InvalidField {
                    field: "page",
                    reason: "must start with /".into(),
                })
            }
            Some(other) => return Err(Rejection::wrong_type("page", "a string", other)),
        };
        let at = obj.get("at").ok_or(Rejection::MissingField("at"))?;
        let at = TimeBounds::EVENT.check("at", parse_time("at", at)?, r.arrival)?;
        Ok(View { page, at })
    }
}

/// What a count is kept by: a page and the UTC minute of its views.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PageMinute {
    pub page: String,
    pub minute: DateTime<Utc>,
}

/// The state key's text: `/home#2026-11-22T10:00:00Z` (the engine prefixes `views#`).
impl fmt::Display for PageMinute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.page, self.minute.format("%Y-%m-%dT%H:%MZ"))
    }
}

/// Counts views per page and minute, and publishes each changed count.
#[derive(Debug, Default, Clone)]
pub struct ViewCounter {
    pub decoder: ViewDecoder,
}

impl Consumer for ViewCounter {
    type Event = View;
    type Key = PageMinute;

    fn name(&self) -> &str {
        NAME
    }

    fn decode(&self, r: &StreamRecord) -> Result<Option<View>, Rejection> {
        // Ok(None) would be a valid record this consumer ignores.
        self.decoder.decode(r).map(Some)
    }

    fn key(&self, v: &View) -> PageMinute {
        PageMinute {
            page: v.page.clone(),
            minute: MinuteBuckets::bucket_of(v.at),
        }
    }

    fn fold(
        &self, k: &PageMinute, views: &[Sequenced<View>], now: DateTime<Utc>,
    ) -> Option<StateDelta> {
        Some(StateDelta {
            counters: BTreeMap::from([("views".into(), views.len() as u64)]),
            expires_at: Some(HOUR.expires_at(k.minute, now, GRACE_SECONDS)),
            // No register (`latest`), no first-seen `facts`.
            ..StateDelta::default()
        })
    }

    fn emit(&self, k: &PageMinute, stored: &StoredState, _now: DateTime<Utc>) -> Emit {
        let views = stored.counters.get("views").copied().unwrap_or_default();
        let body = serde_json::json!({
            "page": k.page,
            "minute": k.minute.format("%Y-%m-%dT%H:%MZ").to_string(),
            "views": views,
            "rev": stored.rev,
        });
        let record = OutRecord {
            partition_key: k.page.clone(),
            data: body.to_string().into_bytes(),
        };
        // The latest count of a key, published after every change; readers keep the highest rev.
        let id = format!("{k}#{}", stored.rev);
        Emit {
            outputs: vec![Output::state(id, record)],
            prune: vec![],
        }
    }
}
