//! The dashboard's panels of the other pipelines, live: the gender models' answers and the rules'
//! alerts of the last hour, per arrival minute, from their output streams.
//!
//! One state item per stream and minute, so that each item hears from one stream only (the
//! engine's watermarks are per shard): `answers#<minute>` (from `GenderResultsStream`: counters
//! `<MODEL>_<gndr>`, each result counted once) and `alerts#<rule>#<minute>` (from the rule's alert
//! stream: one fact per `alert_id`, so an alert published again after a crash is still one).
//! Items expire an hour after their minute (TTL); the reader asks for the last 60 minutes.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use tally_engine::ports::StateReader;
use tally_engine::windows::{plus, MinuteBuckets};
use tally_engine::{json_object, Consumer, Emit, PortError, Rejection, Sequenced};
use tally_engine::{StateDelta, StateKey, StoredState, StreamRecord};

use crate::rules::RULES;

pub const NAME: &str = "dashboard-feed";
/// The panels show this many minutes, ending with the current one.
pub const SPAN: MinuteBuckets = MinuteBuckets { minutes: 60 };
/// The alerts listed, newest first.
pub const LATEST_ALERTS: usize = 10;
const OWNER: &str = "dash";

/// One record of an output stream, as the panels count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    Answer {
        model: String,
        gndr: Option<String>,
        minute: DateTime<Utc>,
    },
    Alert {
        rule: &'static str,
        alert_id: String,
        summary: String,
        minute: DateTime<Utc>,
    },
}

/// The item a feed event counts in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FeedKey {
    Answers(DateTime<Utc>),
    Alerts(&'static str, DateTime<Utc>),
}

impl std::fmt::Display for FeedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeedKey::Answers(m) => write!(f, "answers#{}", label(*m)),
            FeedKey::Alerts(rule, m) => write!(f, "alerts#{rule}#{}", label(*m)),
        }
    }
}

fn label(minute: DateTime<Utc>) -> String {
    minute.format("%Y-%m-%dT%H:%MZ").to_string()
}

fn state_key(key: &FeedKey) -> StateKey {
    StateKey::new(OWNER, &key.to_string())
}

/// The dashboard feed on the engine: counts, publishes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeedConsumer;

impl Consumer for FeedConsumer {
    type Event = FeedEvent;
    type Key = FeedKey;

    fn name(&self) -> &str {
        // The state keys are `dash#answers#...`: the owner is the IAM leading key.
        OWNER
    }

    fn decode(&self, record: &StreamRecord) -> Result<Option<FeedEvent>, Rejection> {
        let obj = json_object(&record.data, 64 * 1024)?;
        let minute = MinuteBuckets::bucket_of(record.arrival);
        if let Some(Value::String(model)) = obj.get("model") {
            let gndr = obj.get("gndr").and_then(Value::as_str).map(str::to_string);
            return Ok(Some(FeedEvent::Answer {
                model: model.clone(),
                gndr,
                minute,
            }));
        }
        let Some(Value::String(alert_id)) = obj.get("alert_id") else {
            return Err(Rejection::MissingField("model or alert_id"));
        };
        let prefix = alert_id.split(':').next().unwrap_or_default();
        let Some(def) = RULES.iter().find(|d| d.name == prefix) else {
            return Err(Rejection::InvalidField {
                field: "alert_id",
                reason: format!("{alert_id:?} names no rule"),
            });
        };
        let summary = serde_json::json!({
            "rule": def.name,
            "key": obj.get(def.subject_field).cloned().unwrap_or(Value::Null),
            "count": obj.get(def.count_field).cloned().unwrap_or(Value::Null),
            "window_start": obj.get("window.start").cloned().unwrap_or(Value::Null),
            "at": record.arrival.to_rfc3339_opts(SecondsFormat::Secs, true),
        });
        Ok(Some(FeedEvent::Alert {
            rule: def.name,
            alert_id: alert_id.clone(),
            summary: summary.to_string(),
            minute,
        }))
    }

    fn key(&self, event: &FeedEvent) -> FeedKey {
        match event {
            FeedEvent::Answer { minute, .. } => FeedKey::Answers(*minute),
            FeedEvent::Alert { rule, minute, .. } => FeedKey::Alerts(rule, *minute),
        }
    }

    fn fold(
        &self, key: &FeedKey, events: &[Sequenced<FeedEvent>], now: DateTime<Utc>,
    ) -> Option<StateDelta> {
        let mut delta = StateDelta::default();
        for e in events {
            match &e.value {
                FeedEvent::Answer { model, gndr, .. } => {
                    let gndr = gndr.as_deref().unwrap_or("none");
                    *delta.counters.entry(format!("{model}_{gndr}")).or_default() += 1;
                }
                FeedEvent::Alert {
                    alert_id, summary, ..
                } => {
                    delta
                        .facts
                        .entry(alert_id.clone())
                        .or_insert_with(|| summary.clone());
                }
            }
        }
        let minute = match key {
            FeedKey::Answers(m) | FeedKey::Alerts(_, m) => *m,
        };
        delta.expires_at = Some(SPAN.expires_at(minute, now, 0));
        Some(delta)
    }

    fn emit(&self, _key: &FeedKey, _stored: &StoredState, _now: DateTime<Utc>) -> Emit {
        Emit::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelAnswers {
    pub model: String,
    pub male: u64,
    pub female: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleAlerts {
    pub rule: String,
    pub alerts: u64,
}

/// One minute of the panels: answers, and alerts per rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PanelMinute {
    pub minute: String,
    pub answers: u64,
    pub alerts: BTreeMap<String, u64>,
}

/// The body of `GET /api/v1/dashboard`'s `panels`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Panels {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// Answers published in the window per model, by gender.
    pub answers: Vec<ModelAnswers>,
    /// Distinct alerts in the window per rule.
    pub alerts: Vec<RuleAlerts>,
    pub per_minute: Vec<PanelMinute>,
    /// The newest alerts, newest first.
    pub latest_alerts: Vec<Value>,
}

/// The panels as of `now`: the last 60 arrival minutes.
pub async fn read_panels<R: StateReader>(
    reader: &R, now: DateTime<Utc>,
) -> Result<Panels, PortError> {
    let (start, last) = SPAN.span_ending(now);
    let minutes: Vec<DateTime<Utc>> = (0..i64::from(SPAN.minutes))
        .map(|i| plus(start, Duration::minutes(i)))
        .collect();
    let mut keys: Vec<StateKey> = minutes
        .iter()
        .map(|m| state_key(&FeedKey::Answers(*m)))
        .collect();
    for def in &RULES {
        keys.extend(
            minutes
                .iter()
                .map(|m| state_key(&FeedKey::Alerts(def.name, *m))),
        );
    }
    let items = reader.read_many(&keys).await?;
    let empty = StoredState::default();
    let item = |i: usize| items.get(i).and_then(Option::as_ref).unwrap_or(&empty);
    let mut answers: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut per_minute = Vec::new();
    let mut latest: Vec<(String, Value)> = Vec::new();
    let mut per_rule: BTreeMap<String, u64> =
        RULES.iter().map(|d| (d.name.to_string(), 0)).collect();
    for (i, minute) in minutes.iter().enumerate() {
        let mut total = 0;
        for (name, n) in &item(i).counters {
            let Some((model, gndr)) = name.rsplit_once('_') else {
                continue;
            };
            let e = answers.entry(model.to_string()).or_default();
            match gndr {
                "male" => e.0 += n,
                "female" => e.1 += n,
                _ => {}
            }
            total += n;
        }
        let mut alerts = BTreeMap::new();
        for (r, def) in RULES.iter().enumerate() {
            let it = item((r + 1) * minutes.len() + i);
            alerts.insert(def.name.to_string(), it.facts.len() as u64);
            *per_rule.get_mut(def.name).expect("every rule") += it.facts.len() as u64;
            for (id, summary) in &it.facts {
                let mut v: Value = serde_json::from_str(summary).unwrap_or(Value::Null);
                v["alert_id"] = Value::String(id.clone());
                latest.push((v["at"].as_str().unwrap_or_default().to_string(), v));
            }
        }
        per_minute.push(PanelMinute {
            minute: minute.to_rfc3339_opts(SecondsFormat::Secs, true),
            answers: total,
            alerts,
        });
    }
    latest.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1["alert_id"].as_str().cmp(&b.1["alert_id"].as_str()))
    });
    latest.truncate(LATEST_ALERTS);
    Ok(Panels {
        window_start: start,
        window_end: plus(last, Duration::minutes(1)),
        answers: answers
            .into_iter()
            .map(|(model, (male, female))| ModelAnswers {
                model,
                male,
                female,
            })
            .collect(),
        alerts: per_rule
            .into_iter()
            .map(|(rule, alerts)| RuleAlerts { rule, alerts })
            .collect(),
        per_minute,
        latest_alerts: latest.into_iter().map(|(_, v)| v).collect(),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use tally_engine::testing::*;
    use tally_engine::Engine;

    use super::*;

    fn record(i: u64, shard: &str, at: DateTime<Utc>, data: &str) -> StreamRecord {
        StreamRecord {
            shard_id: shard.into(),
            sequence_number: kinesis_sequence(i),
            partition_key: "k".into(),
            data: data.as_bytes().to_vec(),
            arrival: at,
        }
    }

    #[tokio::test]
    async fn answers_and_distinct_alerts_per_minute_of_the_last_hour() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 30, 20).unwrap();
        let at = |m: i64| now - Duration::minutes(m);
        let answer = |model: &str, g: &str| {
            format!(r#"{{"_id":"C1_{model}","model":"{model}","cid":"C1","gndr":"{g}","rev":1}}"#)
        };
        let alert = r#"{"user":1,"interactions_count":9,"alert_id":"paid_user:1"}"#;
        let broker = r#"{"window.start":"2021-11-30T00:00:00.000Z","user_id":1,"threat_user_interactions":11,"alert_id":"possible_broker:1:2021-11-30T00:00:00.000Z"}"#;
        let records = vec![
            record(1, "results-0", at(0), &answer("MODEL1", "male")),
            record(2, "results-0", at(0), &answer("MODEL2", "female")),
            record(3, "results-0", at(5), &answer("MODEL1", "female")),
            record(4, "results-0", at(61), &answer("MODEL1", "male")),
            record(1, "paid-0", at(2), alert),
            // Published again after a crash: the same alert, once.
            record(2, "paid-0", at(2), alert),
            record(1, "broker-0", at(1), broker),
            record(9, "results-0", at(0), "{garbage"),
        ];
        let (store, publisher, dl) = memory_ports();
        let engine = Engine::new(FeedConsumer, &store, &publisher, &dl);
        let report = engine.run(&records, now).await;
        assert_eq!((report.valid, dl.letters.lock().unwrap().len()), (7, 1));
        // Redelivered: nothing counts twice.
        engine.run(&records, now).await;
        let p = read_panels(&store, now).await.unwrap();
        assert_eq!(
            p.answers,
            vec![
                ModelAnswers {
                    model: "MODEL1".into(),
                    male: 1,
                    female: 1
                },
                ModelAnswers {
                    model: "MODEL2".into(),
                    male: 0,
                    female: 1
                },
            ],
            "the answer of 61 minutes ago is out of the window"
        );
        let alerts: BTreeMap<_, _> = p
            .alerts
            .iter()
            .map(|r| (r.rule.as_str(), r.alerts))
            .collect();
        assert_eq!(
            alerts,
            BTreeMap::from([
                ("paid_user", 1),
                ("possible_broker", 1),
                ("property_status", 0)
            ])
        );
        assert_eq!(p.per_minute.len(), 60);
        assert_eq!(p.per_minute.last().unwrap().answers, 2);
        assert_eq!(
            p.latest_alerts[0]["alert_id"],
            "possible_broker:1:2021-11-30T00:00:00.000Z"
        );
        assert_eq!(p.latest_alerts[1]["key"], 1);
        assert_eq!(p.latest_alerts[1]["count"], 9);
        assert!(
            publisher.published.lock().unwrap().is_empty(),
            "the feed publishes nothing"
        );
    }
}
