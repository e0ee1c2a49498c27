//! Gender models. The seed's base class with a `dispatch` template method becomes a trait: the
//! engine owns decoding, validation, dead-lettering, aggregation, idempotency and publishing
//! (see `consumer.rs`); a model says what state it keeps and how it identifies the gender.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tally_engine::windows::UtcDays;
use tally_engine::{Latest, StoredState};

use super::visit::Gender;

/// Where a visit's count is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    AllTime,
    Day(NaiveDate),
}

impl Bucket {
    /// Stable text form, used in stored attribute names and in result records.
    pub fn label(&self) -> String {
        match self {
            Bucket::AllTime => "all".into(),
            Bucket::Day(d) => d.format("%Y-%m-%d").to_string(),
        }
    }

    /// The name of this bucket's counter for `gender` in a stored state (`all_male`).
    pub fn counter(&self, gender: Gender) -> String {
        format!("{}_{}", self.label(), gender.as_str())
    }

    pub fn from_label(s: &str) -> Option<Self> {
        if s == "all" {
            return Some(Bucket::AllTime);
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .map(Bucket::Day)
    }
}

impl Serialize for Bucket {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

impl<'de> Deserialize<'de> for Bucket {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Bucket::from_label(&s).ok_or_else(|| serde::de::Error::custom(format!("bad bucket {s:?}")))
    }
}

/// Visits per gender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenderCounts {
    pub male: u64,
    pub female: u64,
}

impl GenderCounts {
    pub fn add(&mut self, g: Gender, n: u64) {
        match g {
            Gender::Male => self.male += n,
            Gender::Female => self.female += n,
        }
    }

    pub fn merge(&mut self, other: GenderCounts) {
        self.male += other.male;
        self.female += other.female;
    }

    pub fn total(&self) -> u64 {
        self.male + self.female
    }

    /// The gender with more visits; a tie answers "female" (the seed's rule).
    /// No visits at all is no answer.
    pub fn top(&self) -> Option<Gender> {
        match (self.male, self.female) {
            (0, 0) => None,
            (m, f) if m > f => Some(Gender::Male),
            _ => Some(Gender::Female),
        }
    }
}

/// The latest visit by event time; ties broken by arrival order (the sequence number's ordered key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestVisit {
    pub ts: DateTime<Utc>,
    pub arrival: String,
    pub gndr: Gender,
}

impl LatestVisit {
    /// A string whose lexicographic order is (event time, arrival order): stored so that DynamoDB
    /// can compare it in a condition expression.
    pub fn order_key(&self) -> String {
        format!("{:016}#{}", self.ts.timestamp_millis().max(0), self.arrival)
    }

    pub fn newer_of(a: Option<LatestVisit>, b: Option<LatestVisit>) -> Option<LatestVisit> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.order_key() > a.order_key() { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// As the engine's register: ordered by [`LatestVisit::order_key`], the gender as its value.
    pub fn to_latest(&self) -> Latest {
        Latest {
            order_key: self.order_key(),
            value: self.gndr.as_str().to_string(),
        }
    }

    /// Back from the register; `None` when it does not hold a visit.
    pub fn from_latest(latest: &Latest) -> Option<LatestVisit> {
        let (ms, arrival) = latest.order_key.split_once('#')?;
        Some(LatestVisit {
            ts: Utc.timestamp_millis_opt(ms.parse().ok()?).single()?,
            arrival: arrival.to_string(),
            gndr: Gender::parse(&latest.value)?,
        })
    }
}

/// The state a model keeps for one cid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelState {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<Bucket, GenderCounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<LatestVisit>,
}

impl ModelState {
    /// A model's view of a stored item: its bucket counters and latest visit.
    pub fn from_stored(stored: &StoredState) -> Self {
        let mut state = ModelState {
            latest: stored.latest.as_ref().and_then(LatestVisit::from_latest),
            ..Default::default()
        };
        for (name, n) in &stored.counters {
            let parsed = name
                .rsplit_once('_')
                .and_then(|(b, g)| Some((Bucket::from_label(b)?, Gender::parse(g)?)));
            if let Some((bucket, gender)) = parsed {
                state.counts.entry(bucket).or_default().add(gender, *n);
            }
        }
        state
    }

    /// Bucket counts as the named counters of a state change.
    pub fn counters(counts: &BTreeMap<Bucket, GenderCounts>) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (bucket, c) in counts {
            for (gender, n) in [(Gender::Male, c.male), (Gender::Female, c.female)] {
                if n > 0 {
                    out.insert(bucket.counter(gender), n);
                }
            }
        }
        out
    }
}

/// How a model buckets its counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// The model keeps no counts.
    None,
    /// One all-time counter per gender.
    AllTime,
    /// Counters per UTC day; only the last `days` days (today included) matter.
    UtcDays { days: u32 },
}

/// What the engine keeps for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSpec {
    pub counting: Counting,
    pub keeps_latest: bool,
}

impl StateSpec {
    /// The bucket a visit on `day` counts in, or `None` when it can never count again as of `now`
    /// (a day already outside the window).
    pub fn bucket_for(&self, day: NaiveDate, now: DateTime<Utc>) -> Option<Bucket> {
        match self.counting {
            Counting::None => None,
            Counting::AllTime => Some(Bucket::AllTime),
            Counting::UtcDays { days } => UtcDays { days }
                .can_count(day, now)
                .then_some(Bucket::Day(day)),
        }
    }

    /// Whether this model counts in buckets of `bucket`'s kind (all-time or per day).
    fn owns(&self, bucket: Bucket) -> bool {
        matches!(
            (self.counting, bucket),
            (Counting::AllTime, Bucket::AllTime) | (Counting::UtcDays { .. }, Bucket::Day(_))
        )
    }

    /// Whether `bucket` still matters to this model as of `now`.
    pub fn keeps(&self, bucket: Bucket, now: DateTime<Utc>) -> bool {
        match (self.counting, bucket) {
            (Counting::UtcDays { days }, Bucket::Day(d)) => UtcDays { days }.can_count(d, now),
            _ => self.owns(bucket),
        }
    }

    /// What this model reads of a state that may hold other models' counts too (one item for
    /// every model): its own buckets and, if it keeps one, the latest visit.
    pub fn view(&self, state: &ModelState) -> ModelState {
        ModelState {
            counts: state
                .counts
                .iter()
                .filter(|(b, _)| self.owns(**b))
                .map(|(b, c)| (*b, *c))
                .collect(),
            latest: state.latest.clone().filter(|_| self.keeps_latest),
        }
    }

    /// Buckets that no longer matter as of `now` and can be removed from storage.
    pub fn expired_buckets(&self, state: &ModelState, now: DateTime<Utc>) -> Vec<Bucket> {
        match self.counting {
            Counting::UtcDays { days } => state
                .counts
                .keys()
                .filter(|b| matches!(b, Bucket::Day(d) if !UtcDays { days }.can_count(*d, now)))
                .copied()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// When the whole state stops mattering (for DynamoDB TTL): the end of the window that starts
    /// at the latest day it holds. `None` means it never expires.
    pub fn expires_at(&self, latest_day: NaiveDate) -> Option<DateTime<Utc>> {
        match self.counting {
            Counting::UtcDays { days } => UtcDays { days }.expires_at(latest_day),
            _ => None,
        }
    }
}

/// Sum of the day buckets inside the window as of `now`. Days outside it never count, whether or
/// not storage has deleted them yet (DynamoDB TTL deletes lazily).
pub fn counts_in_window(state: &ModelState, now: DateTime<Utc>, days: u32) -> GenderCounts {
    let window = UtcDays { days };
    let mut sum = GenderCounts::default();
    for (bucket, c) in &state.counts {
        if let Bucket::Day(d) = bucket {
            if window.contains(*d, now) {
                sum.merge(*c);
            }
        }
    }
    sum
}

/// A gender model. Implement this (and list it in [`models`]) to add one.
pub trait GenderModel: Send + Sync {
    /// The name used in `_id`s, `?model=` and the `MODEL` environment variable.
    fn name(&self) -> &'static str;
    /// The state the engine keeps for this model.
    fn state_spec(&self) -> StateSpec;
    /// The answer from the state, as of `now`; `None` when there is nothing to answer from.
    fn identify(&self, state: &ModelState, now: DateTime<Utc>) -> Option<Gender>;
}

/// MODEL1: the gender of the cid's latest visit (event time; ties by arrival order).
pub struct LastVisitModel;

impl GenderModel for LastVisitModel {
    fn name(&self) -> &'static str {
        "MODEL1"
    }
    fn state_spec(&self) -> StateSpec {
        StateSpec {
            counting: Counting::None,
            keeps_latest: true,
        }
    }
    fn identify(&self, state: &ModelState, _now: DateTime<Utc>) -> Option<Gender> {
        state.latest.as_ref().map(|l| l.gndr)
    }
}

/// MODEL2: the gender with the most visits of all time; a tie answers "female".
pub struct TopGenderModel;

impl GenderModel for TopGenderModel {
    fn name(&self) -> &'static str {
        "MODEL2"
    }
    fn state_spec(&self) -> StateSpec {
        StateSpec {
            counting: Counting::AllTime,
            keeps_latest: false,
        }
    }
    fn identify(&self, state: &ModelState, _now: DateTime<Utc>) -> Option<Gender> {
        state
            .counts
            .get(&Bucket::AllTime)
            .and_then(GenderCounts::top)
    }
}

/// MODEL3: the gender with the most visits in the last `days` UTC calendar days (today included),
/// as of the moment it is asked. A tie answers "female".
pub struct RecentTopGenderModel {
    pub days: u32,
}

impl GenderModel for RecentTopGenderModel {
    fn name(&self) -> &'static str {
        "MODEL3"
    }
    fn state_spec(&self) -> StateSpec {
        StateSpec {
            counting: Counting::UtcDays { days: self.days },
            keeps_latest: false,
        }
    }
    fn identify(&self, state: &ModelState, now: DateTime<Utc>) -> Option<Gender> {
        counts_in_window(state, now, self.days).top()
    }
}

/// Settings the models take from the template's parameters.
#[derive(Debug, Clone, Copy)]
pub struct ModelSettings {
    pub window_days: u32,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self { window_days: 7 }
    }
}

/// Every model, by name. Adding MODEL4: implement [`GenderModel`] and add one line here.
pub fn models(settings: ModelSettings) -> Vec<Box<dyn GenderModel>> {
    vec![
        Box::new(LastVisitModel),
        Box::new(TopGenderModel),
        Box::new(RecentTopGenderModel {
            days: settings.window_days,
        }),
    ]
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown model {name:?}: expected one of {known}")]
pub struct UnknownModel {
    pub name: String,
    pub known: String,
}

/// The model called `name` (exact, upper case as in the contract).
pub fn model_by_name(
    name: &str, settings: ModelSettings,
) -> Result<Box<dyn GenderModel>, UnknownModel> {
    let all = models(settings);
    let known = all.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ");
    all.into_iter()
        .find(|m| m.name() == name)
        .ok_or_else(|| UnknownModel {
            name: name.to_string(),
            known,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    #[test]
    fn tie_answers_female_and_nothing_answers_none() {
        assert_eq!(
            GenderCounts { male: 2, female: 2 }.top(),
            Some(Gender::Female)
        );
        assert_eq!(
            GenderCounts { male: 3, female: 2 }.top(),
            Some(Gender::Male)
        );
        assert_eq!(
            GenderCounts { male: 0, female: 1 }.top(),
            Some(Gender::Female)
        );
        assert_eq!(GenderCounts::default().top(), None);
    }

    #[test]
    fn model3_ignores_days_outside_the_window_even_if_stored() {
        let mut state = ModelState::default();
        state.counts.insert(
            Bucket::Day(day(15)),
            GenderCounts {
                male: 100,
                female: 0,
            },
        );
        state
            .counts
            .insert(Bucket::Day(day(16)), GenderCounts { male: 0, female: 1 });
        state
            .counts
            .insert(Bucket::Day(day(23)), GenderCounts { male: 5, female: 0 }); // future-dated
        let m = RecentTopGenderModel { days: 7 };
        assert_eq!(m.identify(&state, now()), Some(Gender::Female));
        // A day later, the 16th leaves the window too; the 23rd enters it.
        let tomorrow = now() + chrono::Duration::days(1);
        assert_eq!(m.identify(&state, tomorrow), Some(Gender::Male));
        // Much later nothing is left: no answer rather than a made-up one.
        assert_eq!(m.identify(&state, now() + chrono::Duration::days(30)), None);
    }

    #[test]
    fn buckets_and_expiry_follow_the_window() {
        let spec = RecentTopGenderModel { days: 7 }.state_spec();
        assert_eq!(
            spec.bucket_for(day(15), now()),
            None,
            "can never count again"
        );
        assert_eq!(spec.bucket_for(day(16), now()), Some(Bucket::Day(day(16))));
        assert_eq!(
            spec.expires_at(day(22)),
            Some(Utc.with_ymd_and_hms(2026, 11, 29, 0, 0, 0).unwrap())
        );
        let mut state = ModelState::default();
        state
            .counts
            .insert(Bucket::Day(day(10)), GenderCounts::default());
        state
            .counts
            .insert(Bucket::Day(day(20)), GenderCounts::default());
        assert_eq!(
            spec.expired_buckets(&state, now()),
            vec![Bucket::Day(day(10))]
        );
        assert_eq!(
            TopGenderModel.state_spec().bucket_for(day(1), now()),
            Some(Bucket::AllTime)
        );
        assert_eq!(TopGenderModel.state_spec().expires_at(day(1)), None);
    }

    #[test]
    fn latest_visit_round_trips_through_the_register() {
        let v = LatestVisit {
            ts: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
            arrival: "056:4959".into(),
            gndr: Gender::Female,
        };
        let latest = v.to_latest();
        assert_eq!(latest.value, "female");
        assert_eq!(LatestVisit::from_latest(&latest), Some(v));
        assert_eq!(
            LatestVisit::from_latest(&Latest {
                order_key: "x".into(),
                value: "female".into()
            }),
            None
        );
    }

    #[test]
    fn latest_orders_by_time_then_arrival() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let a = LatestVisit {
            ts: t,
            arrival: "002:10".into(),
            gndr: Gender::Male,
        };
        let b = LatestVisit {
            ts: t,
            arrival: "002:11".into(),
            gndr: Gender::Female,
        };
        let c = LatestVisit {
            ts: t - chrono::Duration::seconds(1),
            arrival: "003:999".into(),
            gndr: Gender::Male,
        };
        assert_eq!(
            LatestVisit::newer_of(Some(a.clone()), Some(b.clone())),
            Some(b.clone())
        );
        assert_eq!(
            LatestVisit::newer_of(Some(b.clone()), Some(c.clone())),
            Some(b)
        );
        assert_eq!(LatestVisit::newer_of(None, Some(c.clone())), Some(c));
    }

    #[test]
    fn registry_finds_models_and_explains_unknown_names() {
        assert_eq!(
            model_by_name("MODEL3", ModelSettings::default())
                .unwrap()
                .name(),
            "MODEL3"
        );
        let err = model_by_name("MODEL9", ModelSettings::default())
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "unknown model \"MODEL9\": expected one of MODEL1, MODEL2, MODEL3"
        );
    }
}
