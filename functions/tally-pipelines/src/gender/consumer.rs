//! A gender model on the engine: visits in, the model's state per cid, its result out after every
//! change (the seed's `dispatch` template method, with the engine as the template).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

use chrono::{DateTime, Utc};
use tally_engine::ports::OutRecord;
use tally_engine::StreamRecord;
use tally_engine::{
    Consumer, Emit, Output, Rejection, Sequenced, StateDelta, StoredState, WatermarkScope,
};

use super::model::{GenderCounts, GenderModel, LatestVisit, ModelState, StateSpec};
use super::result::GenderResult;
use super::visit::{Cid, Gender, Visit, VisitDecoder};

/// The state item's name when one item per cid serves every model.
pub const ALL_MODELS: &str = "MODELS";

/// The models that share the `MODELS#<cid>` item unless the stack says otherwise
/// (`SHARED_MODELS`): the seed's three. A model added later gets items of its own
/// ([`VisitConsumer::joined_later`]), because the shared item's watermarks say which visits all
/// of its models have counted, and a replay could not give a newcomer the older ones.
pub const FIRST_MODELS: [&str; 3] = ["MODEL1", "MODEL2", "MODEL3"];

/// Models over `VisitsStream`, keyed by cid: one model (the seed's deployment, one function per
/// model) or several sharing one state item per cid, so that a batch writes each cid once for all
/// of them. `M` is a box in the function, a reference in tests.
pub struct VisitConsumer<M> {
    pub models: Vec<M>,
    /// What each model keeps, in `models`' order (asked once, used for every key).
    specs: Vec<StateSpec>,
    /// Names the state items (`MODEL2#C124`, `MODELS#C124`, `MODELS+MODEL4#C124`).
    name: String,
    /// Names the dead letters: the function's, whichever of its consumers finds a bad record.
    dead_letter_source: String,
    pub decoder: VisitDecoder,
}

impl<'m, M: Deref<Target = dyn GenderModel + 'm>> VisitConsumer<M> {
    /// One model, its own state item per cid.
    pub fn new(model: M) -> Self {
        let name = model.name().to_string();
        Self::named(name.clone(), name, vec![model])
    }

    /// Several models, one state item per cid for all of them ([`ALL_MODELS`]).
    pub fn combined(models: Vec<M>) -> Self {
        Self::named(ALL_MODELS.to_string(), ALL_MODELS.to_string(), models)
    }

    /// A model run beside [`VisitConsumer::combined`] by the same function but on items of its
    /// own (`MODELS+MODEL4#C124`, with their own watermarks), so that it can be given the visits
    /// from before it was added. Its dead letters are the combined consumer's.
    pub fn joined_later(model: M) -> Self {
        let name = format!("{ALL_MODELS}+{}", model.name());
        Self::named(name, ALL_MODELS.to_string(), vec![model])
    }

    fn named(name: String, dead_letter_source: String, models: Vec<M>) -> Self {
        VisitConsumer {
            specs: models.iter().map(|m| m.state_spec()).collect(),
            models,
            name,
            dead_letter_source,
            decoder: VisitDecoder::default(),
        }
    }
}

/// The change that `visits` (one cid's, in sequence order) make to the state the models of
/// `specs` keep, as of `now`; `None` when they change nothing (visits already outside MODEL3's
/// window). Models that count in the same bucket share its counter.
pub fn fold_change(
    specs: &[StateSpec], visits: &[Sequenced<Visit>], now: DateTime<Utc>,
) -> Option<StateDelta> {
    let mut counts: BTreeMap<_, GenderCounts> = BTreeMap::new();
    let mut latest: Option<LatestVisit> = None;
    let mut latest_day = None;
    let keeps_latest = specs.iter().any(|s| s.keeps_latest);
    for v in visits {
        let buckets: BTreeSet<_> = specs
            .iter()
            .filter_map(|s| s.bucket_for(v.value.day(), now))
            .collect();
        for bucket in buckets {
            counts.entry(bucket).or_default().add(v.value.gender, 1);
            latest_day = latest_day.max(Some(v.value.day().max(now.date_naive())));
        }
        if keeps_latest {
            let candidate = LatestVisit {
                ts: v.value.event_time,
                arrival: v.sequence_number.ordered_key(),
                gndr: v.value.gender,
            };
            latest = LatestVisit::newer_of(latest, Some(candidate));
        }
    }
    if counts.is_empty() && latest.is_none() {
        return None;
    }
    // The item expires only when every model's state in it does (MODEL2's never does).
    let expires_at = latest_day.and_then(|d| {
        specs
            .iter()
            .map(|s| s.expires_at(d))
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    });
    Some(StateDelta {
        counters: ModelState::counters(&counts),
        latest: latest.as_ref().map(LatestVisit::to_latest),
        expires_at,
        ..Default::default()
    })
}

impl<'m, M: Deref<Target = dyn GenderModel + 'm> + Send + Sync> Consumer for VisitConsumer<M> {
    type Event = Visit;
    type Key = Cid;

    fn name(&self) -> &str {
        &self.name
    }

    fn dead_letter_source(&self) -> &str {
        &self.dead_letter_source
    }

    fn decode(&self, record: &StreamRecord) -> Result<Option<Visit>, Rejection> {
        self.decoder.decode(record).map(Some)
    }

    fn key(&self, visit: &Visit) -> Cid {
        visit.cid.clone()
    }

    /// Exact under a `ParallelizationFactor` whatever partition key a producer chose; with the
    /// contract's (the cid), an item still has one watermark per shard.
    fn watermark_scope(&self) -> WatermarkScope {
        WatermarkScope::PartitionKey
    }

    fn fold(
        &self, _cid: &Cid, visits: &[Sequenced<Visit>], now: DateTime<Utc>,
    ) -> Option<StateDelta> {
        fold_change(&self.specs, visits, now)
    }

    fn emit(&self, cid: &Cid, stored: &StoredState, now: DateTime<Utc>) -> Emit {
        let state = ModelState::from_stored(stored);
        let specs = &self.specs;
        // A bucket goes once no model keeps it (MODEL3's days past its window).
        let prune = state
            .counts
            .keys()
            .filter(|b| !specs.iter().any(|s| s.keeps(**b, now)))
            .flat_map(|b| [b.counter(Gender::Male), b.counter(Gender::Female)])
            .filter(|name| stored.counters.contains_key(name))
            .collect();
        let outputs = self
            .models
            .iter()
            .map(|model| {
                let result = GenderResult::from_state(&**model, cid, stored, now);
                let record = OutRecord {
                    partition_key: cid.to_string(),
                    data: serde_json::to_vec(&result).expect("results serialise"),
                };
                Output::state(result.id, record)
            })
            .collect();
        Emit { outputs, prune }
    }
}
