//! Live metrics of app events: counts per app, event type and UTC minute, each (`app_id`,
//! `event_id`) once however often it arrives (SDK retries, direct puts repeated, redelivered
//! batches), on the engine's first sightings ([`tally_engine::sightings`]). The app is the one
//! the ingest seal vouches for (`seal.rs`): an event put directly counts under `direct`, so it
//! can neither count for a registered app nor hide one of its events.
//!
//! 1. one item per app and event id (`events#id#<len>:<app>#<event_id>`): its first sighting, a
//!    fact set once, with its app, type and minute; it expires (TTL) after the dedupe horizon;
//! 2. minute buckets, per app (`events#minute#<minute>#app#<app>`) and for all apps
//!    (`events#minute#<minute>`), one counter per event type, written once per batch; they
//!    expire a day after their minute (the longest span the API serves).
//!
//! The minute is when tally received the event (`server_time` from `/collect`, else the stream's
//! arrival time): live metrics are about what is happening now, and client clocks skew and
//! offline devices send hours late. The warehouse keeps `client_time` for analysis.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use tally_engine::ports::{NoOutputStream, StateReader};
use tally_engine::sightings::{decode_sighting, encode_sighting, BatchRange, Sightings};
use tally_engine::windows::plus;
use tally_engine::windows::MinuteBuckets;
use tally_engine::{
    Engine, FirstSightings, PortError, Rejection, SequenceNumber, Sequenced, StateDelta, StateKey,
    StoredState, StreamRecord,
};

use super::event::{Event, EventDecoder};
use super::seal::{IngestSeal, SealKeys, Seals};

pub const NAME: &str = "events-metrics";
/// The owner of every state item of the metrics (the IAM leading key `events#*`).
pub(crate) const OWNER: &str = "events";
/// The longest span `GET /api/v1/events/metrics` serves; minute buckets live that long.
pub const MAX_MINUTES: u32 = 1440;
pub const DEFAULT_MINUTES: u32 = 60;
const HORIZON: MinuteBuckets = MinuteBuckets {
    minutes: MAX_MINUTES,
};
/// The fact of an event id's item.
const SEEN: &str = "seen";

/// An event's identity: its app and its id (an app's length first, so no id can pose as
/// another app's).
pub fn event_identity(app: &str, event_id: &str) -> String {
    format!("{}:{app}#{event_id}", app.len())
}

pub fn event_key(identity: &str) -> StateKey {
    StateKey::new(OWNER, &format!("id#{identity}"))
}

fn minute_label(minute: DateTime<Utc>) -> String {
    minute.format("%Y-%m-%dT%H:%MZ").to_string()
}

/// The bucket of one app's minute, or of all apps' (`None`).
pub fn minute_key(minute: DateTime<Utc>, app: Option<&str>) -> StateKey {
    let minute = minute_label(minute);
    match app {
        Some(app) => StateKey::new(OWNER, &format!("minute#{minute}#app#{app}")),
        None => StateKey::new(OWNER, &format!("minute#{minute}")),
    }
}

/// An event id's first sighting: where, and what it counts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub shard: String,
    pub seq: SequenceNumber,
    pub minute: DateTime<Utc>,
    pub event_type: String,
    pub app: String,
}

impl Sighting {
    fn encode(&self) -> String {
        // The app goes last: the one part that may hold the separator.
        let minute = self.minute.timestamp().to_string();
        encode_sighting(
            &self.shard,
            &self.seq,
            &[&minute, &self.event_type, &self.app],
        )
    }

    fn decode(s: &str) -> Option<Sighting> {
        let (shard, seq, fields) = decode_sighting(s, 3)?;
        let [minute, event_type, app] = <[String; 3]>::try_from(fields).ok()?;
        Some(Sighting {
            shard,
            seq,
            minute: DateTime::from_timestamp(minute.parse().ok()?, 0)?,
            event_type,
            app,
        })
    }
}

/// An event as the metrics see it: its id, type, app and minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedEvent {
    pub event_id: String,
    pub event_type: String,
    pub app: String,
    pub minute: DateTime<Utc>,
}

impl CountedEvent {
    pub fn of(event: &Event, arrival: DateTime<Utc>) -> CountedEvent {
        CountedEvent {
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            app: event.app().to_string(),
            minute: MinuteBuckets::bucket_of(event.received(arrival)),
        }
    }
}

/// One more event of a type in a minute bucket (of its app, or of all apps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneMore {
    minute: DateTime<Utc>,
    event_type: String,
    all_apps: bool,
}

/// The metrics as first sightings: an (app, event id) is the id, the minute buckets per app and
/// for all apps are the aggregates. The app is the one the batch's ingest seal vouches for.
pub struct EventsMetrics<K> {
    /// Which events passed through `/collect`.
    pub seals: Seals<K>,
    pub decoder: EventDecoder,
    /// How long an event id is remembered: a copy that comes later counts again.
    pub dedupe_seconds: i64,
    /// How long a minute bucket outlives the longest span the API serves.
    pub grace_seconds: i64,
}

/// The live metrics function's work for a batch: [`EventsMetrics`] on the engine (it publishes
/// nothing; the API reads the minute buckets).
pub type EventsMetricsHandler<S, D, K> =
    Engine<FirstSightings<EventsMetrics<K>>, S, NoOutputStream, D>;

impl<K: SealKeys> EventsMetrics<K> {
    pub fn handler<S, D>(store: S, dead_letters: D, seal_keys: K) -> EventsMetricsHandler<S, D, K> {
        let metrics = EventsMetrics {
            seals: Seals::new(seal_keys),
            decoder: EventDecoder::default(),
            dedupe_seconds: 7 * 86_400,
            grace_seconds: 3_600,
        };
        Engine::new(FirstSightings(metrics), store, NoOutputStream, dead_letters)
    }
}

impl<K: SealKeys> Sightings for EventsMetrics<K> {
    type Event = CountedEvent;
    type Id = String;
    type Contribution = OneMore;
    type Context = Arc<IngestSeal>;

    fn name(&self) -> &str {
        NAME
    }

    /// Without the key no event's app can be told: the whole batch comes again.
    async fn context(&self) -> Result<Arc<IngestSeal>, String> {
        self.seals
            .get()
            .await
            .map_err(|e| format!("ingest seal key not read: {e}"))
    }

    fn decode(
        &self, seal: &Arc<IngestSeal>, record: &StreamRecord,
    ) -> Result<Option<CountedEvent>, Rejection> {
        let (event, _) = self.decoder.decode_record(record, seal)?;
        Ok(Some(CountedEvent::of(&event, record.arrival)))
    }

    fn id(&self, event: &CountedEvent) -> String {
        event_identity(&event.app, &event.event_id)
    }

    fn sighting_key(&self, id: &String) -> StateKey {
        event_key(id)
    }

    fn sightings(
        &self, shard: &str, records: &[Sequenced<CountedEvent>], now: DateTime<Utc>,
    ) -> StateDelta {
        let mut delta = StateDelta::default();
        if let Some(first) = records.first() {
            let sighting = Sighting {
                shard: shard.to_string(),
                seq: first.sequence_number.clone(),
                minute: first.value.minute,
                event_type: first.value.event_type.clone(),
                app: first.value.app.clone(),
            };
            delta.facts.insert(SEEN.into(), sighting.encode());
            delta.expires_at = Some(plus(
                now,
                Duration::try_seconds(self.dedupe_seconds).unwrap_or(Duration::MAX),
            ));
        }
        delta
    }

    fn contributions(
        &self, range: &BatchRange<'_>, stored: &StoredState,
    ) -> Vec<Sequenced<(StateKey, OneMore)>> {
        let Some(s) = stored.facts.get(SEEN).and_then(|v| Sighting::decode(v)) else {
            return Vec::new();
        };
        if !range.counts_now(&s.shard, &s.seq) {
            return Vec::new();
        }
        [Some(s.app.as_str()), None]
            .into_iter()
            .map(|app| Sequenced {
                sequence_number: s.seq.clone(),
                value: (
                    minute_key(s.minute, app),
                    OneMore {
                        minute: s.minute,
                        event_type: s.event_type.clone(),
                        all_apps: app.is_none(),
                    },
                ),
            })
            .collect()
    }

    /// A minute names one counter per event type, and there are few types: no chunking needed.
    fn names(&self, _: &OneMore) -> usize {
        0
    }

    /// Each event once in the batch's metrics: by its all-apps contribution.
    fn counted_as(&self, c: &OneMore) -> Option<String> {
        c.all_apps.then(|| c.event_type.clone())
    }

    fn aggregate(&self, cs: &[Sequenced<OneMore>], now: DateTime<Utc>) -> StateDelta {
        let mut delta = StateDelta::default();
        for c in cs {
            *delta
                .counters
                .entry(c.value.event_type.clone())
                .or_default() += 1;
            delta.expires_at = Some(HORIZON.expires_at(c.value.minute, now, self.grace_seconds));
        }
        delta
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MinuteCounts {
    pub minute: String,
    /// Events per type (types without events left out).
    pub counts: BTreeMap<String, u64>,
    pub events: u64,
}

/// The body of `GET /api/v1/events/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// The app asked for; `null` for all apps.
    pub app_id: Option<String>,
    pub as_of: DateTime<Utc>,
    pub minutes: u32,
    pub window_start: String,
    pub window_end: String,
    /// Per type over the whole span.
    pub totals: BTreeMap<String, u64>,
    pub events: u64,
    /// Every minute of the span, oldest first.
    pub per_minute: Vec<MinuteCounts>,
}

/// The span of `minutes` minutes ending with the one `now` falls in.
fn span(minutes: u32, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let (first, _) = MinuteBuckets { minutes }.span_ending(now);
    (0..i64::from(minutes))
        .map(|i| plus(first, Duration::minutes(i)))
        .collect()
}

fn label(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The metrics from per-minute counts (`counts[i]` is the `i`-th minute of the span).
pub fn metrics(
    app_id: Option<&str>, minutes: u32, counts: &[BTreeMap<String, u64>], now: DateTime<Utc>,
) -> Metrics {
    let minutes_of = span(minutes, now);
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_minute = Vec::new();
    for (i, minute) in minutes_of.iter().enumerate() {
        let c: BTreeMap<String, u64> = counts
            .get(i)
            .into_iter()
            .flatten()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        for (k, n) in &c {
            *totals.entry(k.clone()).or_default() += n;
        }
        per_minute.push(MinuteCounts {
            minute: label(*minute),
            events: c.values().sum(),
            counts: c,
        });
    }
    Metrics {
        app_id: app_id.map(str::to_string),
        as_of: now,
        minutes,
        window_start: label(minutes_of[0]),
        window_end: label(plus(
            *minutes_of.last().expect("at least a minute"),
            Duration::minutes(1),
        )),
        events: totals.values().sum(),
        totals,
        per_minute,
    }
}

/// Why a metrics request is refused (a 400).
pub fn parse_minutes(q: Option<&str>) -> Result<u32, String> {
    match q {
        None => Ok(DEFAULT_MINUTES),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=MAX_MINUTES).contains(&n) => Ok(n),
            _ => Err(format!(
                "minutes must be a whole number from 1 to {MAX_MINUTES}, not {s:?}"
            )),
        },
    }
}

/// Reads the metrics of the `minutes` minutes ending now: one `BatchGetItem` per 100 minutes.
pub async fn read_metrics<R: StateReader>(
    reader: &R, app_id: Option<&str>, minutes: u32, now: DateTime<Utc>,
) -> Result<Metrics, PortError> {
    let keys: Vec<StateKey> = span(minutes, now)
        .into_iter()
        .map(|m| minute_key(m, app_id))
        .collect();
    let items = reader.read_many(&keys).await?;
    let counts: Vec<BTreeMap<String, u64>> = items
        .into_iter()
        .map(|i| i.map(|s| s.counters).unwrap_or_default())
        .collect();
    Ok(metrics(app_id, minutes, &counts, now))
}

/// What the metrics must say, computed independently from the events as received (in stream
/// order, with their arrival times, as the seal let them be): each app's event id counted once,
/// at its first arrival.
pub fn expected_metrics(
    received: &[(Event, DateTime<Utc>)], app_id: Option<&str>, minutes: u32, now: DateTime<Utc>,
) -> Metrics {
    let mut first: BTreeMap<(&str, &str), CountedEvent> = BTreeMap::new();
    for (e, arrival) in received {
        first
            .entry((e.app(), e.event_id.as_str()))
            .or_insert_with(|| CountedEvent::of(e, *arrival));
    }
    let minutes_of = span(minutes, now);
    let counts: Vec<BTreeMap<String, u64>> = minutes_of
        .iter()
        .map(|m| {
            let mut c: BTreeMap<String, u64> = BTreeMap::new();
            for e in first.values() {
                if e.minute == *m && app_id.is_none_or(|a| a == e.app) {
                    *c.entry(e.event_type.clone()).or_default() += 1;
                }
            }
            c
        })
        .collect();
    metrics(app_id, minutes, &counts, now)
}
