//! What the model knows of a group, from the lake's RSVP tables: its topics, where it is, how many
//! members and how much activity it has. The feature space is made from the training groups only,
//! so that nothing of the held-out groups leaks into the model.

use std::collections::{BTreeMap, BTreeSet};

use tally_engine::ports::ObjectStore;
use tally_lake::rows::Value;
use tally_lake::rsvp::{GROUPS, GROUP_TOPICS, MEETUP_EVENTS, RSVPS, TOPICS};
use tally_lake::unique::read_unique;
use tally_lake::LakeError;

/// One group as the lake shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub id: i64,
    pub topics: BTreeSet<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    /// Distinct members who answered one of its events.
    pub members: u64,
    /// RSVPs to its events.
    pub rsvps: u64,
    /// Its events that had an RSVP.
    pub events: u64,
}

/// Most topics, cities and countries a feature space names (the commonest of the training groups;
/// the others are "none of these").
pub const TOP_TOPICS: usize = 40;
pub const TOP_PLACES: usize = 10;

/// A text value trimmed and in lower case; an empty one is none.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) if !s.trim().is_empty() => Some(s.trim().to_lowercase()),
        _ => None,
    }
}

fn id(v: &Value) -> Option<i64> {
    v.as_bigint()
}

fn entry(groups: &mut BTreeMap<i64, Group>, id: i64) -> &mut Group {
    groups.entry(id).or_insert_with(|| Group {
        id,
        ..Group::default()
    })
}

/// Every group of `group_topics` and `groups`, with what the RSVPs say of it.
pub async fn read_groups<O: ObjectStore>(store: &O) -> Result<BTreeMap<i64, Group>, LakeError> {
    let mut groups: BTreeMap<i64, Group> = BTreeMap::new();
    for row in read_unique(store, &GROUP_TOPICS).await? {
        let (Some(g), Some(topic)) = (
            id(GROUP_TOPICS.value(&row, "group_id")),
            text(GROUP_TOPICS.value(&row, "urlkey")),
        ) else {
            continue;
        };
        entry(&mut groups, g).topics.insert(topic);
    }
    for row in read_unique(store, &GROUPS).await? {
        let Some(g) = id(GROUPS.value(&row, "group_id")) else {
            continue;
        };
        let g = entry(&mut groups, g);
        g.city = text(GROUPS.value(&row, "group_city"));
        g.country = text(GROUPS.value(&row, "group_country"));
    }
    let mut group_of_event: BTreeMap<String, i64> = BTreeMap::new();
    for row in read_unique(store, &MEETUP_EVENTS).await? {
        if let (Some(event), Some(g)) = (
            text(MEETUP_EVENTS.value(&row, "event_id")),
            id(MEETUP_EVENTS.value(&row, "group_id")),
        ) {
            group_of_event.insert(event, g);
        }
    }
    let mut members: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    let mut events: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for row in read_unique(store, &RSVPS).await? {
        let Some(event) = text(RSVPS.value(&row, "event_id")) else {
            continue;
        };
        let Some(&g) = group_of_event.get(&event) else {
            continue;
        };
        entry(&mut groups, g).rsvps += 1;
        if let Some(member) = id(RSVPS.value(&row, "member_id")) {
            members.entry(g).or_default().insert(member);
        }
        events.entry(g).or_default().insert(event);
    }
    for (g, m) in members {
        entry(&mut groups, g).members = m.len() as u64;
    }
    for (g, e) in events {
        entry(&mut groups, g).events = e.len() as u64;
    }
    Ok(groups)
}

/// Each topic's name by its urlkey (`topics`).
pub async fn topic_names<O: ObjectStore>(store: &O) -> Result<BTreeMap<String, String>, LakeError> {
    let mut names = BTreeMap::new();
    for row in read_unique(store, &TOPICS).await? {
        if let (Some(key), Value::Str(name)) = (
            text(TOPICS.value(&row, "urlkey")),
            TOPICS.value(&row, "topic_name"),
        ) {
            names.insert(key, name.clone());
        }
    }
    Ok(names)
}

/// What a feature says, in the words of `tally clusters`' report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feature {
    Topic(String),
    City(String),
    Country(String),
    Members,
    Rsvps,
    Events,
}

impl Feature {
    /// The kind the report sums importances by: topics, city, country, size, activity.
    pub fn kind(&self) -> &'static str {
        match self {
            Feature::Topic(_) => "topics",
            Feature::City(_) => "city",
            Feature::Country(_) => "country",
            Feature::Members => "size",
            Feature::Rsvps | Feature::Events => "activity",
        }
    }
}

impl std::fmt::Display for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Feature::Topic(t) => write!(f, "topic {t}"),
            Feature::City(c) => write!(f, "city {c}"),
            Feature::Country(c) => write!(f, "country {c}"),
            Feature::Members => f.write_str("members"),
            Feature::Rsvps => f.write_str("rsvps"),
            Feature::Events => f.write_str("events"),
        }
    }
}

/// The columns of the model's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpace {
    pub features: Vec<Feature>,
}

/// The `n` commonest values (ties by value, so the space is the same on every run).
fn commonest<'a>(values: impl Iterator<Item = &'a String>, n: usize) -> Vec<String> {
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let mut by_count: Vec<(&String, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    by_count
        .into_iter()
        .take(n)
        .map(|(v, _)| v.clone())
        .collect()
}

impl FeatureSpace {
    /// The space of `training` groups: their commonest topics, cities and countries, and the
    /// counts.
    pub fn of(training: &[&Group]) -> Self {
        let mut features: Vec<Feature> =
            commonest(training.iter().flat_map(|g| &g.topics), TOP_TOPICS)
                .into_iter()
                .map(Feature::Topic)
                .collect();
        features.extend(
            commonest(training.iter().filter_map(|g| g.city.as_ref()), TOP_PLACES)
                .into_iter()
                .map(Feature::City),
        );
        features.extend(
            commonest(
                training.iter().filter_map(|g| g.country.as_ref()),
                TOP_PLACES,
            )
            .into_iter()
            .map(Feature::Country),
        );
        features.extend([Feature::Members, Feature::Rsvps, Feature::Events]);
        FeatureSpace { features }
    }

    /// A group's row: 1 or 0 for each topic, city and country; the counts on a log scale (a
    /// tree only needs their order, but the report reads better).
    pub fn row(&self, g: &Group) -> Vec<f64> {
        let yes = |b: bool| if b { 1.0 } else { 0.0 };
        let log = |n: u64| (n as f64).ln_1p();
        self.features
            .iter()
            .map(|f| match f {
                Feature::Topic(t) => yes(g.topics.contains(t)),
                Feature::City(c) => yes(g.city.as_ref() == Some(c)),
                Feature::Country(c) => yes(g.country.as_ref() == Some(c)),
                Feature::Members => log(g.members),
                Feature::Rsvps => log(g.rsvps),
                Feature::Events => log(g.events),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_space_names_the_training_groups_commonest_values_and_rows_follow_it() {
        let g = |id, topics: &[&str], city: &str| Group {
            id,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            city: Some(city.into()),
            country: Some("us".into()),
            members: 3,
            rsvps: 7,
            events: 2,
        };
        let a = g(1, &["rust", "wasm"], "austin");
        let b = g(2, &["rust"], "boston");
        let space = FeatureSpace::of(&[&a, &b]);
        assert_eq!(
            space.features[..5],
            [
                Feature::Topic("rust".into()),
                Feature::Topic("wasm".into()),
                Feature::City("austin".into()),
                Feature::City("boston".into()),
                Feature::Country("us".into()),
            ]
        );
        let unseen = g(3, &["jazz"], "chicago");
        let row = space.row(&unseen);
        assert_eq!(row[..5], [0.0, 0.0, 0.0, 0.0, 1.0]);
        assert!((row[5] - 4f64.ln()).abs() < 1e-12, "members on a log scale");
        assert_eq!(space.features[5].kind(), "size");
    }
}
