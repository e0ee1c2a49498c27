//! Property-interaction threshold rules (seed 003): decoding of `InteractionsStream` records and
//! the three rules, each with the key it counts by and the alert it emits once.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use crate::record::{json_object, Rejection, StreamRecord};

/// A decoded interaction event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub user_id: u64,
    pub property_id: u64,
    pub event: String,
    /// From `date` (`2021-11-30 00:00:00` is UTC; RFC 3339 also accepted), else arrival time.
    pub at: DateTime<Utc>,
}

impl Interaction {
    /// Only these count for the rules; other event types are archived and ignored.
    pub fn is_interaction(&self) -> bool {
        self.event == "Interaction"
    }
}

/// Decodes `InteractionsStream` records, or says why it cannot.
#[derive(Debug, Clone, Copy)]
pub struct InteractionDecoder {
    pub max_bytes: usize,
}

impl Default for InteractionDecoder {
    fn default() -> Self {
        Self { max_bytes: 4096 }
    }
}

fn id_field(obj: &serde_json::Map<String, Value>, field: &'static str) -> Result<u64, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(Rejection::MissingField(field)),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| Rejection::InvalidField {
            field,
            reason: format!("{n} is not a non-negative integer"),
        }),
        Some(other) => Err(Rejection::wrong_type(field, "an integer", other)),
    }
}

/// `date`: `YYYY-MM-DD HH:MM:SS[.fff]` in UTC (the seed's format) or RFC 3339.
pub fn parse_date(s: &str) -> Result<DateTime<Utc>, Rejection> {
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Rejection::InvalidField {
            field: "date",
            reason: format!("{s:?} is neither \"YYYY-MM-DD HH:MM:SS\" (UTC) nor RFC 3339"),
        })
}

impl InteractionDecoder {
    pub fn decode(&self, record: &StreamRecord) -> Result<Interaction, Rejection> {
        let obj = &json_object(&record.data, self.max_bytes)?;
        let event = match obj.get("event") {
            None | Some(Value::Null) => return Err(Rejection::MissingField("event")),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(Rejection::wrong_type("event", "a string", other)),
        };
        let at = match obj.get("date") {
            None | Some(Value::Null) => record.arrival,
            Some(Value::String(s)) => parse_date(s)?,
            Some(other) => return Err(Rejection::wrong_type("date", "a string", other)),
        };
        Ok(Interaction {
            user_id: id_field(obj, "user_id")?,
            property_id: id_field(obj, "property_id")?,
            event,
            at,
        })
    }
}

/// The three rules of the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// A user's interactions of all time reach the threshold (>=).
    PaidUser,
    /// A property's interactions of all time exceed the threshold (>).
    PropertyStatus,
    /// A user's interactions in one UTC tumbling window exceed the threshold (>).
    PossibleBroker,
}

/// A rule with its settings (template parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: RuleKind,
    /// As in the seed: 9 for paid_user (reach), 5 for property_status and 10 for possible_broker (exceed).
    pub threshold: u64,
    /// Tumbling window length (possible_broker).
    pub window_seconds: i64,
    /// How long window state lives after the window closes or was last written, whichever is later.
    pub window_state_seconds: i64,
}

/// What a rule counts by: a user, a property, or a user in a window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleKey {
    User(u64),
    Property(u64),
    UserWindow {
        user_id: u64,
        window_start: DateTime<Utc>,
    },
}

impl fmt::Display for RuleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleKey::User(u) => write!(f, "{u}"),
            RuleKey::Property(p) => write!(f, "{p}"),
            RuleKey::UserWindow {
                user_id,
                window_start,
            } => write!(f, "{user_id}#{}", window_label(*window_start)),
        }
    }
}

/// `2021-11-30T00:00:00.000Z`: the seed's `window.start`, in UTC.
pub fn window_label(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown rule {0:?}: expected one of paid_user, property_status, possible_broker")]
pub struct UnknownRule(pub String);

impl Rule {
    pub fn by_name(
        name: &str,
        threshold: u64,
        window_seconds: i64,
        window_state_seconds: i64,
    ) -> Result<Rule, UnknownRule> {
        let kind = match name {
            "paid_user" => RuleKind::PaidUser,
            "property_status" => RuleKind::PropertyStatus,
            "possible_broker" => RuleKind::PossibleBroker,
            other => return Err(UnknownRule(other.to_string())),
        };
        Ok(Rule {
            kind,
            threshold,
            window_seconds: window_seconds.max(1),
            window_state_seconds,
        })
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            RuleKind::PaidUser => "paid_user",
            RuleKind::PropertyStatus => "property_status",
            RuleKind::PossibleBroker => "possible_broker",
        }
    }

    /// The count at which the rule first holds: 9 for ">= 9", 6 for "> 5", 11 for "> 10".
    pub fn holds_at(&self) -> u64 {
        match self.kind {
            RuleKind::PaidUser => self.threshold.max(1),
            RuleKind::PropertyStatus | RuleKind::PossibleBroker => self.threshold + 1,
        }
    }

    pub fn key(&self, i: &Interaction) -> RuleKey {
        match self.kind {
            RuleKind::PaidUser => RuleKey::User(i.user_id),
            RuleKind::PropertyStatus => RuleKey::Property(i.property_id),
            RuleKind::PossibleBroker => {
                let secs = i.at.timestamp();
                let start = secs - secs.rem_euclid(self.window_seconds);
                RuleKey::UserWindow {
                    user_id: i.user_id,
                    window_start: Utc.timestamp_opt(start, 0).single().unwrap_or(i.at),
                }
            }
        }
    }

    /// When the key's state may be deleted (TTL): window state only, `window_state_seconds` after
    /// the later of the window's end and `now`, so late events count while it lives.
    pub fn expires_at(&self, key: &RuleKey, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match key {
            RuleKey::UserWindow { window_start, .. } => {
                let end = *window_start + chrono::Duration::seconds(self.window_seconds);
                Some(end.max(now) + chrono::Duration::seconds(self.window_state_seconds))
            }
            _ => None,
        }
    }

    /// The alert's deterministic id: the same key always gives the same id.
    pub fn alert_id(&self, key: &RuleKey) -> String {
        match key {
            RuleKey::UserWindow {
                user_id,
                window_start,
            } => format!("{}:{user_id}:{}", self.name(), window_label(*window_start)),
            other => format!("{}:{other}", self.name()),
        }
    }

    /// The alert record, with the seed's field names and the count at which the rule first held.
    pub fn alert(&self, key: &RuleKey) -> (String, Value) {
        let count = self.holds_at();
        let alert_id = self.alert_id(key);
        let (partition, body) = match key {
            RuleKey::User(u) => (
                u.to_string(),
                serde_json::json!({ "user": u, "interactions_count": count, "alert_id": alert_id }),
            ),
            RuleKey::Property(p) => (
                p.to_string(),
                serde_json::json!({ "property": p, "property_interactions_count": count, "alert_id": alert_id }),
            ),
            RuleKey::UserWindow {
                user_id,
                window_start,
            } => (
                user_id.to_string(),
                serde_json::json!({ "window.start": window_label(*window_start), "user_id": user_id, "threat_user_interactions": count, "alert_id": alert_id }),
            ),
        };
        (partition, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::SequenceNumber;

    fn rec(data: &str) -> StreamRecord {
        StreamRecord {
            shard_id: "shardId-000000000000".into(),
            sequence_number: SequenceNumber::parse("1").unwrap(),
            partition_key: "1".into(),
            data: data.as_bytes().to_vec(),
            arrival: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        }
    }

    #[test]
    fn decodes_the_seed_record_as_utc() {
        let i = InteractionDecoder::default().decode(&rec(r#"{ "user_id":1,"property_id":1,"date":"2021-11-30 00:00:00","event":"Interaction"}"#)).unwrap();
        assert_eq!((i.user_id, i.property_id, i.is_interaction()), (1, 1, true));
        assert_eq!(i.at, Utc.with_ymd_and_hms(2021, 11, 30, 0, 0, 0).unwrap());
    }

    #[test]
    fn bad_interactions_have_reasons() {
        let d = InteractionDecoder::default();
        let cases = [
            ("{", "malformed json"),
            (
                r#"{"property_id":1,"event":"Interaction"}"#,
                "missing field user_id",
            ),
            (
                r#"{"user_id":"1","property_id":1,"event":"Interaction"}"#,
                "field user_id must be an integer",
            ),
            (
                r#"{"user_id":-1,"property_id":1,"event":"Interaction"}"#,
                "not a non-negative integer",
            ),
            (r#"{"user_id":1,"property_id":1}"#, "missing field event"),
            (
                r#"{"user_id":1,"property_id":1,"event":"Interaction","date":"30/11/2021"}"#,
                "neither",
            ),
        ];
        for (input, want) in cases {
            let err = d.decode(&rec(input)).unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
        let view = d
            .decode(&rec(r#"{"user_id":1,"property_id":1,"event":"View"}"#))
            .unwrap();
        assert!(!view.is_interaction());
    }

    #[test]
    fn thresholds_first_hold_at_the_seed_counts() {
        assert_eq!(
            Rule::by_name("paid_user", 9, 60, 86400).unwrap().holds_at(),
            9
        );
        assert_eq!(
            Rule::by_name("property_status", 5, 60, 86400)
                .unwrap()
                .holds_at(),
            6
        );
        assert_eq!(
            Rule::by_name("possible_broker", 10, 60, 86400)
                .unwrap()
                .holds_at(),
            11
        );
        assert!(Rule::by_name("nope", 1, 60, 1).is_err());
    }

    #[test]
    fn broker_windows_are_utc_minutes_with_the_seed_alert_shape() {
        let rule = Rule::by_name("possible_broker", 10, 60, 86400).unwrap();
        let at = |s| Interaction {
            user_id: 1,
            property_id: 1,
            event: "Interaction".into(),
            at: parse_date(s).unwrap(),
        };
        let k = rule.key(&at("2021-11-30 00:00:59"));
        assert_eq!(k, rule.key(&at("2021-11-30 00:00:00")));
        assert_ne!(k, rule.key(&at("2021-11-30 00:01:00")));
        let (pk, alert) = rule.alert(&k);
        assert_eq!(pk, "1");
        assert_eq!(alert["window.start"], "2021-11-30T00:00:00.000Z");
        assert_eq!(alert["threat_user_interactions"], 11);
        assert_eq!(
            alert["alert_id"],
            "possible_broker:1:2021-11-30T00:00:00.000Z"
        );
        // Old windows still live for a while after they are first written (replays, late events).
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
        assert_eq!(
            rule.expires_at(&k, now),
            Some(now + chrono::Duration::days(1))
        );
        let paid = Rule::by_name("paid_user", 9, 60, 86400).unwrap();
        assert_eq!(
            paid.alert(&RuleKey::User(1)).1,
            serde_json::json!({"user":1,"interactions_count":9,"alert_id":"paid_user:1"})
        );
        assert_eq!(paid.expires_at(&RuleKey::User(1), now), None);
    }
}
