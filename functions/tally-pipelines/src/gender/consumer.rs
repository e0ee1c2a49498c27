//! A gender model on the engine: visits in, the model's state per cid, its result out after every
//! change (the seed's `dispatch` template method, with the engine as the template).

use std::collections::BTreeMap;
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

/// One model over `VisitsStream`, keyed by cid. `M` is a box in the function, a reference in tests.
pub struct VisitConsumer<M> {
    pub model: M,
    pub decoder: VisitDecoder,
}

impl<'m, M: Deref<Target = dyn GenderModel + 'm>> VisitConsumer<M> {
    pub fn new(model: M) -> Self {
        VisitConsumer {
            model,
            decoder: VisitDecoder::default(),
        }
    }
}

/// The change that `visits` (one cid's, in sequence order) make to a model's state as of `now`;
/// `None` when they change nothing (visits already outside MODEL3's window).
pub fn fold_change(
    spec: &StateSpec,
    visits: &[Sequenced<Visit>],
    now: DateTime<Utc>,
) -> Option<StateDelta> {
    let mut counts: BTreeMap<_, GenderCounts> = BTreeMap::new();
    let mut latest: Option<LatestVisit> = None;
    let mut latest_day = None;
    for v in visits {
        if let Some(bucket) = spec.bucket_for(v.value.day(), now) {
            counts.entry(bucket).or_default().add(v.value.gender, 1);
            latest_day = latest_day.max(Some(v.value.day().max(now.date_naive())));
        }
        if spec.keeps_latest {
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
    Some(StateDelta {
        counters: ModelState::counters(&counts),
        latest: latest.as_ref().map(LatestVisit::to_latest),
        expires_at: latest_day.and_then(|d| spec.expires_at(d)),
        ..Default::default()
    })
}

impl<'m, M: Deref<Target = dyn GenderModel + 'm> + Send + Sync> Consumer for VisitConsumer<M> {
    type Event = Visit;
    type Key = Cid;

    fn name(&self) -> &str {
        self.model.name()
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
        &self,
        _cid: &Cid,
        visits: &[Sequenced<Visit>],
        now: DateTime<Utc>,
    ) -> Option<StateDelta> {
        fold_change(&self.model.state_spec(), visits, now)
    }

    fn emit(&self, cid: &Cid, stored: &StoredState, now: DateTime<Utc>) -> Emit {
        let state = ModelState::from_stored(stored);
        let prune = self
            .model
            .state_spec()
            .expired_buckets(&state, now)
            .iter()
            .flat_map(|b| [b.counter(Gender::Male), b.counter(Gender::Female)])
            .filter(|name| stored.counters.contains_key(name))
            .collect();
        let result = GenderResult::from_state(&*self.model, cid, stored, now);
        let record = OutRecord {
            partition_key: cid.to_string(),
            data: serde_json::to_vec(&result).expect("results serialise"),
        };
        Emit {
            output: Some(Output::state(result.id, record)),
            prune,
        }
    }
}
