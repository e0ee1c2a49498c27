//! The shared dispatch of the gender models (the seed's `dispatch` template method): decode and
//! validate a shard's batch, dead-letter what is bad, aggregate per cid, apply each cid's change
//! exactly once, publish the decisions. See `docs/exactly-once.md` for the reasoning.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

pub use crate::exactly_once::Aggregation;
use crate::exactly_once::{apply_once, group_by_key, KeyBatch, Sequenced};
use crate::model::{GenderCounts, GenderModel, LatestVisit, ModelState, StateSpec};
use crate::ports::{
    DeadLetterSink, OutRecord, PortError, RecordPublisher, StateChange, StateKey, StateStore,
    StoredState,
};
use crate::record::{DeadLetter, Rejection, StreamRecord};
use crate::result::GenderResult;
use crate::sequence::SequenceNumber;
use crate::visit::{Cid, Gender, Visit, VisitDecoder};

/// How many cids of a batch are written at once.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// How often results that Kinesis did not accept are re-sent within one invocation.
const MAX_PUBLISH_ATTEMPTS: usize = 3;

/// A visit with the position of its record.
pub type SequencedVisit = Sequenced<Visit>;

/// One shard's valid visits of one cid, in sequence order.
pub type CidBatch = KeyBatch<Cid, Visit>;

/// The change that `visits` make to a model's state as of `now`; `None` when they change nothing
/// (for example visits already outside MODEL3's window).
pub fn fold_change(
    spec: &StateSpec,
    shard_id: &str,
    visits: &[SequencedVisit],
    now: DateTime<Utc>,
) -> Option<StateChange> {
    let last = visits.last()?;
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
    Some(StateChange {
        shard_id: shard_id.to_string(),
        applies_through: last.sequence_number.clone(),
        counters: ModelState::counters(&counts),
        latest,
        expires_at: latest_day.and_then(|d| spec.expires_at(d)),
    })
}

/// What one invocation did, for logs, metrics and the batch response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub records: usize,
    /// Valid records used (visits, interactions).
    pub valid: usize,
    /// Valid records that no rule looks at (events other than "Interaction").
    pub ignored: usize,
    pub rejected: BTreeMap<&'static str, u64>,
    /// Valid records not written because their key is finished (a rule key whose alert is out).
    pub skipped: usize,
    /// Distinct keys written (cids, rule keys).
    pub keys: usize,
    pub writes: usize,
    /// Writes whose condition failed (redelivered or out-of-order records).
    pub conflicts: usize,
    pub published: usize,
    /// The lowest sequence number that must be retried: Lambda resumes the shard from there.
    pub retry_from: Option<SequenceNumber>,
    pub errors: Vec<String>,
}

impl DispatchReport {
    pub fn fail(&mut self, at: &SequenceNumber, error: String) {
        if self.retry_from.as_ref().is_none_or(|s| at < s) {
            self.retry_from = Some(at.clone());
        }
        self.errors.push(error);
    }
}

/// Sends rejected records to the dead-letter sink; a record whose dead letter cannot be written is
/// retried, never dropped.
pub async fn dead_letter_all<D: DeadLetterSink>(
    sink: &D,
    source: &str,
    rejected: Vec<(&StreamRecord, Rejection)>,
    report: &mut DispatchReport,
) {
    let letters: Vec<(SequenceNumber, DeadLetter)> = rejected
        .into_iter()
        .map(|(r, why)| {
            *report.rejected.entry(why.code()).or_default() += 1;
            let letter = DeadLetter {
                source: source.to_string(),
                reason: why.to_string(),
                reason_code: why.code(),
                shard_id: r.shard_id.clone(),
                sequence_number: r.sequence_number.to_string(),
                partition_key: r.partition_key.clone(),
                approximate_arrival: r.arrival,
                data_base64: base64::engine::general_purpose::STANDARD.encode(&r.data),
            };
            (r.sequence_number.clone(), letter)
        })
        .collect();
    let outcomes: Vec<_> = stream::iter(letters)
        .map(|(seq, letter)| async move { (seq, sink.put(&letter).await) })
        .buffer_unordered(DEFAULT_CONCURRENCY)
        .collect()
        .await;
    for (seq, outcome) in outcomes {
        if let Err(e) = outcome {
            report.fail(
                &seq,
                format!("dead letter for record {seq} not written: {e}"),
            );
        }
    }
}

/// Runs one gender model over a batch.
pub struct ModelDispatch<'a, S, P, D> {
    pub model: &'a dyn GenderModel,
    pub store: &'a S,
    pub publisher: &'a P,
    pub dead_letters: &'a D,
    pub decoder: VisitDecoder,
    pub aggregation: Aggregation,
    pub concurrency: usize,
}

impl<'a, S: StateStore, P: RecordPublisher, D: DeadLetterSink> ModelDispatch<'a, S, P, D> {
    pub fn new(
        model: &'a dyn GenderModel,
        store: &'a S,
        publisher: &'a P,
        dead_letters: &'a D,
    ) -> Self {
        Self {
            model,
            store,
            publisher,
            dead_letters,
            decoder: VisitDecoder::default(),
            aggregation: Aggregation::PerKey,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    pub async fn run(&self, records: &[StreamRecord], now: DateTime<Utc>) -> DispatchReport {
        let mut report = DispatchReport {
            records: records.len(),
            ..Default::default()
        };
        let mut visits = Vec::with_capacity(records.len());
        let mut rejected = Vec::new();
        for r in records {
            match self.decoder.decode(r) {
                Ok(visit) => visits.push((
                    r.shard_id.clone(),
                    visit.cid.clone(),
                    Sequenced {
                        sequence_number: r.sequence_number.clone(),
                        value: visit,
                    },
                )),
                Err(why) => rejected.push((r, why)),
            }
        }
        report.valid = visits.len();
        dead_letter_all(self.dead_letters, self.model.name(), rejected, &mut report).await;

        let batches = group_by_key(visits, self.aggregation);
        report.keys = batches.len();
        let concurrency = self.aggregation.concurrency(self.concurrency);
        let outcomes: Vec<(CidBatch, Result<CidOutcome, PortError>)> = stream::iter(batches)
            .map(|b| async move {
                let outcome = self.apply(&b, now).await;
                (b, outcome)
            })
            .buffered(concurrency)
            .collect()
            .await;

        let mut to_publish: Vec<Pending> = Vec::new();
        for (batch, outcome) in outcomes {
            match outcome {
                Ok(o) => {
                    report.writes += o.writes;
                    report.conflicts += o.conflicts;
                    if let Some(result) = o.result {
                        to_publish.push(Pending {
                            id: result.id.clone(),
                            record: OutRecord {
                                partition_key: result.cid.to_string(),
                                data: serde_json::to_vec(&result).expect("results serialise"),
                            },
                            first: batch.first().clone(),
                        });
                    }
                }
                Err(e) => report.fail(
                    batch.first(),
                    format!("state of {} not updated: {e}", batch.key),
                ),
            }
        }
        publish_all(self.publisher, to_publish, &mut report).await;
        report
    }

    /// Applies one cid's visits exactly once and returns the result to publish.
    async fn apply(&self, batch: &CidBatch, now: DateTime<Utc>) -> Result<CidOutcome, PortError> {
        let spec = self.model.state_spec();
        let key = StateKey::new(self.model.name(), batch.key.as_str());
        let fold = |visits: &[SequencedVisit], stored: Option<&StoredState>| {
            let mut change = fold_change(&spec, &batch.shard_id, visits, now)?;
            if let Some(stored) = stored {
                // Keep the stored latest visit when it is newer than these visits'.
                change.latest = LatestVisit::newer_of(stored.latest.clone(), change.latest);
                if change.counters.is_empty() && change.latest == stored.latest {
                    return None;
                }
            }
            Some(change)
        };
        let Some(once) =
            apply_once(self.store, &key, &batch.shard_id, &batch.records, fold).await?
        else {
            return Ok(CidOutcome::default()); // nothing that could change an answer
        };
        let outcome = CidOutcome {
            writes: once.writes,
            conflicts: once.conflicts,
            result: None,
        };
        Ok(self
            .finish(outcome, &key, &batch.key, once.stored, now)
            .await)
    }

    async fn finish(
        &self,
        mut outcome: CidOutcome,
        key: &StateKey,
        cid: &Cid,
        stored: StoredState,
        now: DateTime<Utc>,
    ) -> CidOutcome {
        let state = ModelState::from_stored(&stored);
        let expired: Vec<String> = self
            .model
            .state_spec()
            .expired_buckets(&state, now)
            .iter()
            .flat_map(|b| [b.counter(Gender::Male), b.counter(Gender::Female)])
            .filter(|name| stored.counters.contains_key(name))
            .collect();
        if !expired.is_empty() {
            // Housekeeping only: answers already ignore expired days, so a failure here is harmless.
            outcome.writes += 1;
            if let Err(e) = self.store.remove_counters(key, &expired).await {
                tracing::warn!(%cid, error = %e, "could not remove expired buckets");
            }
        }
        outcome.result = Some(GenderResult::from_state(self.model, cid, &stored, now));
        outcome
    }
}

/// A record waiting to be published, with the first sequence number it depends on (retried from
/// there when it cannot be published).
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub record: OutRecord,
    pub first: SequenceNumber,
}

/// Publishes, re-sending what the stream did not accept; what still fails is reported for retry.
/// Returns the ids that were published.
pub async fn publish_all<P: RecordPublisher>(
    publisher: &P,
    mut pending: Vec<Pending>,
    report: &mut DispatchReport,
) -> Vec<String> {
    let mut published = Vec::new();
    for attempt in 1..=MAX_PUBLISH_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        let records: Vec<OutRecord> = pending.iter().map(|p| p.record.clone()).collect();
        match publisher.publish(&records).await {
            Ok(failed) => {
                let mut refused = vec![false; pending.len()];
                for i in failed {
                    refused[i] = true;
                }
                let (again, done): (Vec<_>, Vec<_>) =
                    pending.into_iter().zip(refused).partition(|(_, r)| *r);
                report.published += done.len();
                published.extend(done.into_iter().map(|(p, _)| p.id));
                pending = again.into_iter().map(|(p, _)| p).collect();
            }
            Err(e) if attempt == MAX_PUBLISH_ATTEMPTS || !e.is_retryable() => {
                for p in &pending {
                    report.fail(&p.first, format!("{} not published: {e}", p.id));
                }
                return published;
            }
            Err(_) => {}
        }
    }
    for p in &pending {
        report.fail(
            &p.first,
            format!(
                "{} not accepted by the stream after {MAX_PUBLISH_ATTEMPTS} attempts",
                p.id
            ),
        );
    }
    published
}

#[derive(Debug, Default)]
struct CidOutcome {
    writes: usize,
    conflicts: usize,
    result: Option<GenderResult>,
}
