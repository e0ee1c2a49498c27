//! The live RSVP statistics, exact under redelivery, crashes and duplicated versions, on the
//! engine's exactly-once writes, in two steps per batch:
//!
//! 1. **Versions**, one item per RSVP (`rsvp#id#<rsvp_id>`): each version (`mtime`) is recorded as
//!    a fact, set only where absent, naming where it was first seen (shard and sequence number),
//!    its response and its event. A version seen again (a producer retry, a replay after a
//!    reconnect, a redelivered batch) changes nothing.
//! 2. **Aggregates**, minute buckets (`rsvp#minute#<minute>`: versions, yes versions per event,
//!    event names) and the totals (`rsvp#totals`: RSVPs, and how many became and left yes and no,
//!    whose differences are the totals by latest response; the newest `mtime` as the register).
//!    Each is written once per batch with the engine's per-shard watermark. What a batch adds is
//!    computed from the version facts alone: the versions first seen in this batch's range, in
//!    sequence order, each tagged with its record's sequence number. So a retry after a crash at
//!    any point, whatever step 1 or 2 had written, adds exactly what was missing.
//!
//! Counters only grow (DynamoDB `ADD` of non-negative numbers): a change of response from yes to
//! no counts as one `left_yes` and one `became_no`. Minute buckets expire (TTL) once no window can
//! hold them; the version items are kept, because a later version may come at any time and the
//! totals depend on the one before it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tally_engine::ports::{OutRecord, StateReader};
use tally_engine::sightings::{decode_sighting, encode_sighting, BatchRange, Sightings};
use tally_engine::windows::plus;
use tally_engine::windows::MinuteBuckets;
use tally_engine::{
    Engine, FirstSightings, Latest, Output, PortError, Rejection, SequenceNumber, Sequenced,
    StateDelta, StateKey, StoredState, StreamRecord,
};

use super::record::{Response, Rsvp, RsvpDecoder};

pub const NAME: &str = "rsvp-stats";
/// The owner of every state item of the RSVP statistics (the IAM leading key `rsvp#*`).
pub(crate) const OWNER: &str = "rsvp";
/// The top events are counted over this many minutes ending with the newest one...
pub const WINDOW: MinuteBuckets = MinuteBuckets { minutes: 5 };
/// ... and RSVPs per minute over this many.
pub const SPAN: MinuteBuckets = MinuteBuckets { minutes: 60 };
pub const TOP_EVENTS: usize = 5;
/// Attributes one write may name (a minute with many events names two per event: its yes
/// counter and its name).
pub use tally_engine::sightings::MAX_NAMES_PER_WRITE;

pub fn rsvp_key(rsvp_id: u64) -> StateKey {
    StateKey::new(OWNER, &format!("id#{rsvp_id}"))
}

pub fn minute_label(minute: DateTime<Utc>) -> String {
    minute.format("%Y-%m-%dT%H:%MZ").to_string()
}

pub fn minute_key(minute: DateTime<Utc>) -> StateKey {
    StateKey::new(OWNER, &format!("minute#{}", minute_label(minute)))
}

pub fn totals_key() -> StateKey {
    StateKey::new(OWNER, "totals")
}

/// Where a version was first seen, and what it said: the fact `v<mtime>` of its RSVP's item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub shard: String,
    pub seq: SequenceNumber,
    pub response: Response,
    pub event_id: String,
    pub event_name: String,
}

impl Sighting {
    pub fn fact_name(mtime_ms: i64) -> String {
        format!("v{mtime_ms}")
    }

    fn encode(&self) -> String {
        // The event's name goes last: it is the one part that may hold the separator.
        encode_sighting(
            &self.shard,
            &self.seq,
            &[self.response.as_str(), &self.event_id, &self.event_name],
        )
    }

    fn decode(s: &str) -> Option<Sighting> {
        let (shard, seq, fields) = decode_sighting(s, 3)?;
        let [response, event_id, event_name] = <[String; 3]>::try_from(fields).ok()?;
        Some(Sighting {
            shard,
            seq,
            response: Response::parse(&response)?,
            event_id,
            event_name,
        })
    }
}

/// The versions an RSVP's item holds: `mtime` (ms) -> its first sighting.
pub fn versions(stored: &StoredState) -> BTreeMap<i64, Sighting> {
    stored
        .facts
        .iter()
        .filter_map(|(name, value)| {
            Some((
                name.strip_prefix('v')?.parse().ok()?,
                Sighting::decode(value)?,
            ))
        })
        .collect()
}

/// Step 1: the facts a run of one RSVP's versions (one shard, in sequence order) sets.
pub fn sightings(shard: &str, records: &[Sequenced<Rsvp>]) -> StateDelta {
    let mut facts = BTreeMap::new();
    for r in records {
        // The first of duplicates within the run is the first sighting.
        facts
            .entry(Sighting::fact_name(r.value.mtime_ms()))
            .or_insert_with(|| {
                Sighting {
                    shard: shard.to_string(),
                    seq: r.sequence_number.clone(),
                    response: r.value.response,
                    event_id: r.value.event.id.clone(),
                    event_name: r.value.event.name.clone(),
                }
                .encode()
            });
    }
    StateDelta {
        facts,
        ..Default::default()
    }
}

/// What one version first seen in a batch adds to the aggregates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contribution {
    /// One more version in its minute; for a yes, one more yes for its event.
    Version {
        minute: DateTime<Utc>,
        yes_event: Option<(String, String)>,
    },
    /// The change to the totals: a new RSVP, and its latest response before and after.
    Totals {
        new_rsvp: bool,
        left: Option<Response>,
        became: Option<Response>,
        mtime_ms: i64,
    },
}

/// Step 2's input from one RSVP's item: the contributions of the versions this batch counts
/// (`range`), each tagged with the sequence number of its first sighting, in that order.
pub fn contributions(range: &BatchRange<'_>, stored: &StoredState) -> Vec<Sequenced<Contribution>> {
    let all = versions(stored);
    // Versions this shard will count on the retry are not known yet: the totals' before and after
    // must be those the retry sees.
    let is_later = |s: &Sighting| range.counts_on_retry(&s.shard, &s.seq);
    let is_new = |s: &Sighting| range.counts_now(&s.shard, &s.seq);
    let mut new: Vec<(i64, &Sighting)> = all
        .iter()
        .filter(|(_, s)| is_new(s))
        .map(|(m, s)| (*m, s))
        .collect();
    new.sort_by(|a, b| a.1.seq.cmp(&b.1.seq));
    let mut known: BTreeMap<i64, Response> = all
        .iter()
        .filter(|(_, s)| !is_new(s) && !is_later(s))
        .map(|(m, s)| (*m, s.response))
        .collect();
    let mut out = Vec::new();
    for (mtime_ms, s) in new {
        let minute =
            MinuteBuckets::bucket_of(DateTime::from_timestamp_millis(mtime_ms).unwrap_or_default());
        let yes_event =
            (s.response == Response::Yes).then(|| (s.event_id.clone(), s.event_name.clone()));
        out.push(Sequenced {
            sequence_number: s.seq.clone(),
            value: Contribution::Version { minute, yes_event },
        });
        let before = known.last_key_value().map(|(_, r)| *r);
        known.insert(mtime_ms, s.response);
        let after = known.last_key_value().map(|(_, r)| *r);
        let (left, became) = if before == after {
            (None, None)
        } else {
            (before, after)
        };
        out.push(Sequenced {
            sequence_number: s.seq.clone(),
            value: Contribution::Totals {
                new_rsvp: before.is_none(),
                left,
                became,
                mtime_ms,
            },
        });
    }
    out
}

impl Contribution {
    /// The attributes it names in its item beyond those every contribution shares (`versions`,
    /// the totals' five counters): a yes names its event's counter and name.
    fn names(&self) -> usize {
        match self {
            Contribution::Version {
                yes_event: Some(_), ..
            } => 2,
            _ => 0,
        }
    }
}

/// The aggregate item a contribution goes to.
fn target(c: &Contribution) -> StateKey {
    match c {
        Contribution::Version { minute, .. } => minute_key(*minute),
        Contribution::Totals { .. } => totals_key(),
    }
}

/// The change a run of contributions to one aggregate item makes, as of `now`.
fn aggregate(
    contributions: &[Sequenced<Contribution>], now: DateTime<Utc>, grace_seconds: i64,
) -> StateDelta {
    let mut delta = StateDelta::default();
    let mut add = |name: String, n: u64| *delta.counters.entry(name).or_default() += n;
    let mut newest: Option<i64> = None;
    let mut minute = None;
    let mut names = BTreeMap::new();
    for c in contributions {
        match &c.value {
            Contribution::Version {
                minute: m,
                yes_event,
            } => {
                minute = Some(*m);
                add("versions".into(), 1);
                if let Some((event, name)) = yes_event {
                    add(format!("yes_{event}"), 1);
                    names.insert(format!("name_{event}"), name.clone());
                }
            }
            Contribution::Totals {
                new_rsvp,
                left,
                became,
                mtime_ms,
            } => {
                if *new_rsvp {
                    add("rsvps".into(), 1);
                }
                if let Some(r) = left {
                    add(format!("left_{}", r.as_str()), 1);
                }
                if let Some(r) = became {
                    add(format!("became_{}", r.as_str()), 1);
                }
                newest = newest.max(Some(*mtime_ms));
            }
        }
    }
    delta.facts = names;
    delta.latest = newest.map(|ms| Latest {
        order_key: format!("{:016}", ms.max(0)),
        value: ms.to_string(),
    });
    delta.expires_at = minute.map(|m| SPAN.expires_at(m, now, grace_seconds));
    delta
}

/// One event of the window, by its yes versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopEvent {
    pub event_id: String,
    pub event_name: String,
    pub yes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub yes: u64,
    pub no: u64,
    pub rsvps: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PerMinute {
    pub minute: String,
    pub rsvps: u64,
}

/// The body of `GET /api/v1/rsvp/stats` and of each `RsvpStatsStream` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub as_of: DateTime<Utc>,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub top_events: Vec<TopEvent>,
    pub totals: Totals,
    pub per_minute: Vec<PerMinute>,
}

fn counter(s: &StoredState, name: &str) -> u64 {
    s.counters.get(name).copied().unwrap_or(0)
}

/// The newest minute any version's `mtime` falls in, from the totals item.
pub fn newest_minute(totals: &StoredState) -> Option<DateTime<Utc>> {
    let ms: i64 = totals.latest.as_ref()?.value.parse().ok()?;
    Some(MinuteBuckets::bucket_of(DateTime::from_timestamp_millis(
        ms,
    )?))
}

/// The statistics from the totals item and the minute items of the span ending with the newest
/// minute (`minutes[i]` is the item of the `i`-th minute of the span, oldest first).
pub fn stats(
    totals: Option<&StoredState>, minutes: &[Option<StoredState>], now: DateTime<Utc>,
) -> Stats {
    let empty = StoredState::default();
    let t = totals.unwrap_or(&empty);
    let totals = Totals {
        yes: counter(t, "became_yes").saturating_sub(counter(t, "left_yes")),
        no: counter(t, "became_no").saturating_sub(counter(t, "left_no")),
        rsvps: counter(t, "rsvps"),
    };
    let Some(newest) = newest_minute(t) else {
        return Stats::before_any(totals, now);
    };
    let (span_start, _) = SPAN.span_ending(newest);
    let (window_start, _) = WINDOW.span_ending(newest);
    let mut yes: BTreeMap<String, u64> = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut per_minute = Vec::new();
    for (i, item) in minutes.iter().enumerate() {
        let minute = plus(span_start, Duration::minutes(i as i64));
        let item = item.as_ref().unwrap_or(&empty);
        per_minute.push(PerMinute {
            minute: minute.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            rsvps: counter(item, "versions"),
        });
        if minute >= window_start {
            for (name, n) in &item.counters {
                if let Some(event) = name.strip_prefix("yes_") {
                    *yes.entry(event.to_string()).or_default() += n;
                }
            }
            for (name, value) in &item.facts {
                if let Some(event) = name.strip_prefix("name_") {
                    names
                        .entry(event.to_string())
                        .or_insert_with(|| value.clone());
                }
            }
        }
    }
    let events = yes
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(event_id, yes)| TopEvent {
            event_name: names.get(&event_id).cloned().unwrap_or_default(),
            event_id,
            yes,
        });
    Stats::of_window(now, newest, events, totals, per_minute)
}

impl Stats {
    /// Before any RSVP: no window, only the totals.
    fn before_any(totals: Totals, now: DateTime<Utc>) -> Stats {
        Stats {
            as_of: now,
            window_start: None,
            window_end: None,
            top_events: Vec::new(),
            totals,
            per_minute: Vec::new(),
        }
    }

    /// The statistics of the window ending with the minute `newest`, its events ranked as the
    /// contract says: most yes first, ties by event id, at most [`TOP_EVENTS`].
    fn of_window(
        now: DateTime<Utc>, newest: DateTime<Utc>, events: impl IntoIterator<Item = TopEvent>,
        totals: Totals, per_minute: Vec<PerMinute>,
    ) -> Stats {
        let mut top: Vec<TopEvent> = events.into_iter().collect();
        top.sort_by(|a, b| b.yes.cmp(&a.yes).then_with(|| a.event_id.cmp(&b.event_id)));
        top.truncate(TOP_EVENTS);
        Stats {
            as_of: now,
            window_start: Some(WINDOW.span_ending(newest).0),
            window_end: Some(plus(newest, Duration::minutes(1))),
            top_events: top,
            totals,
            per_minute,
        }
    }
}

/// Reads the statistics: the totals, then the span's minute buckets (two requests).
pub async fn read_stats<R: StateReader>(
    reader: &R, now: DateTime<Utc>,
) -> Result<Stats, PortError> {
    let totals = reader.read_many(&[totals_key()]).await?.pop().flatten();
    let Some(newest) = totals.as_ref().and_then(newest_minute) else {
        return Ok(stats(totals.as_ref(), &[], now));
    };
    let (start, _) = SPAN.span_ending(newest);
    let keys: Vec<StateKey> = (0..i64::from(SPAN.minutes))
        .map(|i| minute_key(plus(start, Duration::minutes(i))))
        .collect();
    let minutes = reader.read_many(&keys).await?;
    Ok(stats(totals.as_ref(), &minutes, now))
}

/// The RSVP statistics as first sightings: an RSVP version is the id, its minute bucket and the
/// totals are the aggregates, and a batch that changed them publishes the new statistics (read
/// back through `reader`, the state table).
pub struct RsvpStats<R> {
    pub reader: R,
    pub decoder: RsvpDecoder,
    /// How long a minute bucket outlives the span that can show it (late and replayed RSVPs).
    pub grace_seconds: i64,
}

/// The RSVP statistics function's work for a batch: [`RsvpStats`] on the engine.
pub type RsvpStatsHandler<S, P, D> = Engine<FirstSightings<RsvpStats<S>>, S, P, D>;

impl<S: Clone> RsvpStats<S> {
    /// The handler over the state table `store` (which the statistics are also read back from).
    pub fn handler<P, D>(store: S, publisher: P, dead_letters: D) -> RsvpStatsHandler<S, P, D> {
        let stats = RsvpStats {
            reader: store.clone(),
            decoder: RsvpDecoder::default(),
            grace_seconds: 86_400,
        };
        Engine::new(FirstSightings(stats), store, publisher, dead_letters)
    }
}

impl<R: StateReader> Sightings for RsvpStats<R> {
    type Event = Rsvp;
    type Id = u64;
    type Contribution = Contribution;
    type Context = ();

    fn name(&self) -> &str {
        NAME
    }

    fn state_owner(&self) -> &str {
        OWNER
    }

    async fn context(&self) -> Result<(), String> {
        Ok(())
    }

    fn decode(&self, _: &(), record: &StreamRecord) -> Result<Option<Rsvp>, Rejection> {
        self.decoder.decode(record).map(Some)
    }

    fn id(&self, rsvp: &Rsvp) -> u64 {
        rsvp.rsvp_id
    }

    fn sighting_key(&self, id: &u64) -> StateKey {
        rsvp_key(*id)
    }

    fn sightings(&self, shard: &str, records: &[Sequenced<Rsvp>], _: DateTime<Utc>) -> StateDelta {
        sightings(shard, records)
    }

    fn contributions(
        &self, range: &BatchRange<'_>, stored: &StoredState,
    ) -> Vec<Sequenced<(StateKey, Contribution)>> {
        contributions(range, stored)
            .into_iter()
            .map(|c| Sequenced {
                sequence_number: c.sequence_number,
                value: (target(&c.value), c.value),
            })
            .collect()
    }

    fn names(&self, c: &Contribution) -> usize {
        c.names()
    }

    fn aggregate(&self, cs: &[Sequenced<Contribution>], now: DateTime<Utc>) -> StateDelta {
        aggregate(cs, now, self.grace_seconds)
    }

    /// At most one stats record per batch that changed them.
    async fn news(&self, now: DateTime<Utc>) -> Result<Vec<Output>, String> {
        let stats = read_stats(&self.reader, now)
            .await
            .map_err(|e| format!("stats not read: {e}"))?;
        let record = OutRecord {
            partition_key: "stats".into(),
            data: serde_json::to_vec(&stats).expect("stats serialise"),
        };
        let id = format!("stats as of {}", stats.as_of.to_rfc3339());
        Ok(vec![Output::state(id, record)])
    }
}

/// The distinct versions per minute, the yes versions per event in the window and the totals,
/// computed independently from RSVP versions (for tests and the bench): what the statistics must
/// say.
pub fn expected_stats(versions: &[Rsvp], now: DateTime<Utc>) -> Stats {
    let mut unique: BTreeMap<(u64, i64), &Rsvp> = BTreeMap::new();
    for v in versions {
        unique.entry((v.rsvp_id, v.mtime_ms())).or_insert(v);
    }
    let mut latest: BTreeMap<u64, (i64, Response)> = BTreeMap::new();
    for ((id, ms), v) in &unique {
        let e = latest.entry(*id).or_insert((*ms, v.response));
        if *ms >= e.0 {
            *e = (*ms, v.response);
        }
    }
    let totals = Totals {
        yes: latest.values().filter(|(_, r)| *r == Response::Yes).count() as u64,
        no: latest.values().filter(|(_, r)| *r == Response::No).count() as u64,
        rsvps: latest.len() as u64,
    };
    let Some(newest) = unique
        .values()
        .map(|v| MinuteBuckets::bucket_of(v.mtime))
        .max()
    else {
        return Stats::before_any(totals, now);
    };
    let (span_start, _) = SPAN.span_ending(newest);
    let (window_start, _) = WINDOW.span_ending(newest);
    let per_minute = (0..i64::from(SPAN.minutes))
        .map(|i| {
            let m = plus(span_start, Duration::minutes(i));
            PerMinute {
                minute: m.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                rsvps: unique
                    .values()
                    .filter(|v| MinuteBuckets::bucket_of(v.mtime) == m)
                    .count() as u64,
            }
        })
        .collect();
    let mut yes: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for v in unique.values() {
        let m = MinuteBuckets::bucket_of(v.mtime);
        if v.response == Response::Yes
            && m >= window_start
            && m <= newest
            && seen.insert((v.rsvp_id, v.mtime_ms()))
        {
            let e = yes
                .entry(v.event.id.clone())
                .or_insert((0, v.event.name.clone()));
            e.0 += 1;
        }
    }
    let events = yes
        .into_iter()
        .map(|(event_id, (yes, event_name))| TopEvent {
            event_id,
            event_name,
            yes,
        });
    Stats::of_window(now, newest, events, totals, per_minute)
}
