//! The threshold rules of seed 003 as one table: what each counts by, when it holds, whether it
//! counts per tumbling window, and the field names of its alert. A new rule is one row of
//! [`RULES`] (and one block in template.yaml).

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tally_engine::windows::{window_label, Tumbling};

use super::interaction::Interaction;

/// What a rule counts an interaction under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    User,
    Property,
}

/// How a count is compared with the rule's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// The count reaches the threshold (>=).
    Reaches,
    /// The count exceeds the threshold (>).
    Exceeds,
}

/// One row of the rule table.
#[derive(Debug, PartialEq, Eq)]
pub struct RuleDef {
    /// The `RULE` environment variable, the state key's owner and the alert id's prefix.
    pub name: &'static str,
    pub counts_by: Subject,
    pub holds_when: Comparison,
    /// Counts per UTC tumbling event-time window (`WINDOW_SECONDS`) instead of all time.
    pub windowed: bool,
    /// The alert's field for the user or property, as the seed names it.
    pub subject_field: &'static str,
    /// The alert's field for the count at which the rule first held.
    pub count_field: &'static str,
}

pub const RULES: [RuleDef; 3] = [
    RuleDef {
        name: "paid_user",
        counts_by: Subject::User,
        holds_when: Comparison::Reaches,
        windowed: false,
        subject_field: "user",
        count_field: "interactions_count",
    },
    RuleDef {
        name: "property_status",
        counts_by: Subject::Property,
        holds_when: Comparison::Exceeds,
        windowed: false,
        subject_field: "property",
        count_field: "property_interactions_count",
    },
    RuleDef {
        name: "possible_broker",
        counts_by: Subject::User,
        holds_when: Comparison::Exceeds,
        windowed: true,
        subject_field: "user_id",
        count_field: "threat_user_interactions",
    },
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown rule {name:?}: expected one of {known}")]
pub struct UnknownRule {
    pub name: String,
    pub known: String,
}

impl RuleDef {
    pub fn by_name(name: &str) -> Result<&'static RuleDef, UnknownRule> {
        RULES
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| UnknownRule {
                name: name.to_string(),
                known: RULES.map(|r| r.name).join(", "),
            })
    }
}

/// A windowed rule's window and how long a window's count lives (TTL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleWindow {
    pub tumbling: Tumbling,
    /// After the later of the window's end and its last write.
    pub state_seconds: i64,
}

/// A rule with its settings (template parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub def: &'static RuleDef,
    /// As in the seed: 9 for paid_user (reach), 5 for property_status and 10 for possible_broker (exceed).
    pub threshold: u64,
    /// For windowed rules.
    pub window: Option<RuleWindow>,
}

/// What a rule counts by: a user or a property, per window for windowed rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleKey {
    pub subject: u64,
    pub window_start: Option<DateTime<Utc>>,
}

impl RuleKey {
    pub fn of(subject: u64) -> Self {
        RuleKey {
            subject,
            window_start: None,
        }
    }
}

impl fmt::Display for RuleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.window_start {
            None => write!(f, "{}", self.subject),
            Some(start) => write!(f, "{}#{}", self.subject, window_label(start)),
        }
    }
}

impl Rule {
    /// The rule called `name`; the window settings are used by windowed rules only.
    pub fn by_name(
        name: &str, threshold: u64, window_seconds: i64, window_state_seconds: i64,
    ) -> Result<Rule, UnknownRule> {
        let def = RuleDef::by_name(name)?;
        Ok(Rule {
            def,
            threshold,
            window: def.windowed.then_some(RuleWindow {
                tumbling: Tumbling::new(window_seconds),
                state_seconds: window_state_seconds,
            }),
        })
    }

    pub fn name(&self) -> &'static str {
        self.def.name
    }

    /// The count at which the rule first holds: 9 for ">= 9", 6 for "> 5", 11 for "> 10".
    pub fn holds_at(&self) -> u64 {
        match self.def.holds_when {
            Comparison::Reaches => self.threshold.max(1),
            Comparison::Exceeds => self.threshold + 1,
        }
    }

    pub fn key(&self, i: &Interaction) -> RuleKey {
        RuleKey {
            subject: match self.def.counts_by {
                Subject::User => i.user_id,
                Subject::Property => i.property_id,
            },
            window_start: self.window.map(|w| w.tumbling.start_of(i.at)),
        }
    }

    /// When the key's state may be deleted (TTL): window state only.
    pub fn expires_at(&self, key: &RuleKey, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (window, start) = (self.window?, key.window_start?);
        Some(window.tumbling.expires_at(start, now, window.state_seconds))
    }

    /// The alert's deterministic id: the same key always gives the same id
    /// (`paid_user:1`, `possible_broker:1:2021-11-30T00:00:00.000Z`).
    pub fn alert_id(&self, key: &RuleKey) -> String {
        match key.window_start {
            None => format!("{}:{}", self.name(), key.subject),
            Some(start) => format!("{}:{}:{}", self.name(), key.subject, window_label(start)),
        }
    }

    /// The alert record (partition key, body), with the seed's field names and the count at which
    /// the rule first held.
    pub fn alert(&self, key: &RuleKey) -> (String, Value) {
        let mut body = serde_json::json!({
            self.def.subject_field: key.subject,
            self.def.count_field: self.holds_at(),
            "alert_id": self.alert_id(key),
        });
        if let Some(start) = key.window_start {
            body["window.start"] = Value::String(window_label(start));
        }
        (key.subject.to_string(), body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::interaction::parse_date;

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
        let err = Rule::by_name("nope", 1, 60, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown rule \"nope\": expected one of paid_user, property_status, possible_broker"
        );
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
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 22, 0, 0, 0).unwrap();
        assert_eq!(
            rule.expires_at(&k, now),
            Some(now + chrono::Duration::days(1))
        );
        let paid = Rule::by_name("paid_user", 9, 60, 86400).unwrap();
        assert_eq!(
            paid.alert(&RuleKey::of(1)).1,
            serde_json::json!({"user":1,"interactions_count":9,"alert_id":"paid_user:1"})
        );
        assert_eq!(paid.expires_at(&RuleKey::of(1), now), None);
        assert_eq!(
            paid.key(&at("2021-11-30 00:00:59")),
            RuleKey::of(1),
            "no window"
        );
    }
}
