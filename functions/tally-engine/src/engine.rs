//! The engine: one shard batch in, every record decoded or dead-lettered, state applied exactly
//! once per (shard, key), outputs published at least once with stable ids, a report out.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::consumer::{Consumer, Output};
use crate::dead_letters::decode_or_dead_letter;
use crate::exactly_once::apply_once;
use crate::grouping::{group_by_key, Aggregation, KeyBatch, Sequenced, WatermarkScope};
use crate::pattern::StatePattern;
use crate::ports::{
    DeadLetterSink, Lane, PortError, RecordPublisher, StateChange, StateKey, StateStore,
    StoredState,
};
use crate::publish::{publish_all, Outgoing};
use crate::record::StreamRecord;
use crate::report::BatchReport;
use crate::sequence::SequenceNumber;

/// How many keys of a batch are written at once.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Anything that takes a shard's batch of records and says what it did: the engine, and the
/// handlers that are not state consumers (the results writer). The Lambda runner drives these.
pub trait BatchHandler: Send + Sync {
    /// The function's name in metrics and logs.
    fn name(&self) -> &str;

    fn handle(
        &self, records: &[StreamRecord], now: DateTime<Utc>,
    ) -> impl Future<Output = BatchReport> + Send;
}

/// Keys whose outputs can no longer change ([`Consumer::finished`]). In per-key mode their events
/// are not written again: on a skewed workload most events belong to such keys. Kept per function
/// instance; losing it (a cold start, [`FinishedKeys::CAPACITY`] reached) only costs writes.
#[derive(Debug, Default)]
pub struct FinishedKeys {
    keys: Mutex<HashSet<String>>,
}

impl FinishedKeys {
    pub const CAPACITY: usize = 200_000;

    pub fn contains(&self, key: &StateKey) -> bool {
        self.keys
            .lock()
            .expect("finished keys")
            .contains(key.partition_key())
    }

    pub fn insert(&self, key: &StateKey) {
        let mut keys = self.keys.lock().expect("finished keys");
        if keys.len() >= Self::CAPACITY {
            keys.clear();
        }
        keys.insert(key.partition_key().to_string());
    }

    pub fn len(&self) -> usize {
        self.keys.lock().expect("finished keys").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A consumer with its ports: state store, output stream and dead-letter location.
pub struct Engine<C, S, P, D> {
    pub consumer: C,
    pub store: S,
    pub publisher: P,
    pub dead_letters: D,
    pub aggregation: Aggregation,
    pub concurrency: usize,
    pub finished: FinishedKeys,
    /// Note each shard's completed batches, so that a redelivery or a replay of records whose
    /// outputs went out is not published again ([`Engine::with_completion_marks`]).
    pub completion_marks: bool,
}

/// A key's events and what applying them did.
type Applied<K, E> = (KeyBatch<K, E>, Result<KeyOutcome, PortError>);

/// What applying one key's events did.
struct KeyOutcome {
    writes: usize,
    conflicts: usize,
    outputs: Vec<Output>,
    stored: StoredState,
    /// Every event was applied before: the outputs are the stored state's, published again.
    already_applied: bool,
}

impl<C, S, P, D> Engine<C, S, P, D> {
    pub fn new(consumer: C, store: S, publisher: P, dead_letters: D) -> Self {
        Engine {
            consumer,
            store,
            publisher,
            dead_letters,
            aggregation: Aggregation::PerKey,
            concurrency: DEFAULT_CONCURRENCY,
            finished: FinishedKeys::default(),
            completion_marks: false,
        }
    }

    /// Only for a mapping whose `ParallelizationFactor` is 1, where a shard's batches complete in
    /// order, so one mark per shard says every record up to it was applied and published: an
    /// output of records at or below it is not published again. The cost is one write per batch
    /// (and one read in a batch that meets records applied before). With several batches of a
    /// shard at once a mark would say nothing of the others, so outputs are published again,
    /// which their stable ids make harmless to readers that deduplicate.
    pub fn with_completion_marks(mut self, on: bool) -> Self {
        self.completion_marks = on;
        self
    }

    pub fn with_aggregation(mut self, aggregation: Aggregation) -> Self {
        self.aggregation = aggregation;
        self
    }

    /// The same engine with its state store replaced (fault injection around a real adapter).
    pub fn map_store<S2>(self, wrap: impl FnOnce(S) -> S2) -> Engine<C, S2, P, D> {
        Engine {
            consumer: self.consumer,
            store: wrap(self.store),
            publisher: self.publisher,
            dead_letters: self.dead_letters,
            aggregation: self.aggregation,
            concurrency: self.concurrency,
            finished: self.finished,
            completion_marks: self.completion_marks,
        }
    }

    /// The same engine with its publisher replaced.
    pub fn map_publisher<P2>(self, wrap: impl FnOnce(P) -> P2) -> Engine<C, S, P2, D> {
        Engine {
            consumer: self.consumer,
            store: self.store,
            publisher: wrap(self.publisher),
            dead_letters: self.dead_letters,
            aggregation: self.aggregation,
            concurrency: self.concurrency,
            finished: self.finished,
            completion_marks: self.completion_marks,
        }
    }
}

impl<C: Consumer, S: StateStore, P: RecordPublisher, D: DeadLetterSink> Engine<C, S, P, D> {
    fn state_key(&self, key: &C::Key) -> StateKey {
        StateKey::new(self.consumer.name(), &key.to_string())
    }

    /// Finished keys are skipped in per-key mode only: the per-record baseline writes everything.
    fn skips_finished(&self) -> bool {
        self.aggregation == Aggregation::PerKey
    }

    /// A batch as [`Consumer`]s take it: one state item per key, written once per shard's run.
    pub(crate) async fn run_per_key(
        &self, records: &[StreamRecord], now: DateTime<Utc>,
    ) -> BatchReport {
        let mut report = BatchReport::new(records.len());
        let scope = self.consumer.watermark_scope();
        let valid = decode_or_dead_letter(
            records,
            self.consumer.dead_letter_source(),
            &self.dead_letters,
            &mut report,
            |r| self.consumer.decode(r),
        )
        .await;
        let events = valid.into_iter().map(|(r, event)| {
            (
                scope.domain(&r.shard_id, &r.partition_key),
                self.consumer.key(&event),
                Sequenced {
                    sequence_number: r.sequence_number.clone(),
                    value: event,
                },
            )
        });

        let mut batches = group_by_key(events, self.aggregation);
        if self.skips_finished() {
            batches.retain(|b| {
                let done = self.finished.contains(&self.state_key(&b.key));
                if done {
                    report.skipped += b.records.len();
                }
                !done
            });
        }
        report.keys = batches.len();
        let outcomes: Vec<_> = stream::iter(batches)
            .map(|b| async move {
                let outcome = self.apply(&b, now).await;
                (b, outcome)
            })
            .buffered(self.aggregation.concurrency(self.concurrency))
            .collect()
            .await;

        let completed = self.completed_before(&outcomes).await;
        let mut outgoing = Vec::new();
        let mut flags = Vec::new();
        let mut emitted_once = BTreeSet::new();
        for (batch, outcome) in outcomes {
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) => {
                    report.fail(
                        batch.first(),
                        format!("state of {} not updated: {e}", batch.key),
                    );
                    continue;
                }
            };
            report.writes += outcome.writes;
            report.conflicts += outcome.conflicts;
            let shard = WatermarkScope::shard_of(&batch.shard_id);
            if outcome.already_applied && completed.get(shard).is_some_and(|m| batch.last() <= m) {
                report.published_before += batch.records.len();
                continue;
            }
            for output in outcome.outputs {
                if let Some(flag) = output.flag_when_published {
                    // One emit-once output per id per invocation, even when a key is written twice.
                    if !emitted_once.insert(output.id.clone()) {
                        continue;
                    }
                    let stored = outcome.stored.clone();
                    flags.push((output.id.clone(), self.state_key(&batch.key), flag, stored));
                }
                outgoing.push(Outgoing {
                    id: output.id,
                    record: output.record,
                    first: batch.first().clone(),
                });
            }
        }
        let published: BTreeSet<String> = publish_all(&self.publisher, outgoing, &mut report)
            .await
            .into_iter()
            .collect();
        for (id, key, flag, mut stored) in flags {
            if !published.contains(&id) {
                continue;
            }
            // Best effort: a missing flag only means the same output (same id) may be sent again.
            match self.store.set_flag(&key, flag).await {
                Ok(()) => {
                    report.writes += 1;
                    stored.flags.insert(flag.to_string());
                    if self.skips_finished() && self.consumer.finished(&stored) {
                        self.finished.insert(&key);
                    }
                }
                Err(e) => tracing::warn!(id = %id, error = %e, "published but not flagged"),
            }
        }
        self.mark_completed(records, &mut report).await;
        report
    }

    /// How far each shard of the batch had completed, read only for shards with keys whose events
    /// were all applied before (the fast path never needs it).
    async fn completed_before(
        &self, outcomes: &[Applied<C::Key, C::Event>],
    ) -> BTreeMap<String, SequenceNumber> {
        let mut marks = BTreeMap::new();
        if !self.completion_marks {
            return marks;
        }
        let shards: BTreeSet<&str> = outcomes
            .iter()
            .filter(|(_, o)| o.as_ref().is_ok_and(|o| o.already_applied))
            .map(|(b, _)| WatermarkScope::shard_of(&b.shard_id))
            .collect();
        for shard in shards {
            if let Some(mark) = self.completed_through(shard).await {
                marks.insert(shard.to_string(), mark);
            }
        }
        marks
    }

    /// Applies one key's events exactly once; returns what to publish from the new state.
    async fn apply(
        &self, batch: &KeyBatch<C::Key, C::Event>, now: DateTime<Utc>,
    ) -> Result<KeyOutcome, PortError> {
        let key = self.state_key(&batch.key);
        let fold = |events: &[Sequenced<C::Event>], stored: Option<&StoredState>| {
            let mut delta = self.consumer.fold(&batch.key, events, now)?;
            if let Some(stored) = stored {
                // The register keeps the stored value when it is newer than these events'.
                delta = delta.over(stored)?;
            }
            Some(StateChange {
                shard_id: batch.shard_id.clone(),
                from: events.first()?.sequence_number.clone(),
                applies_through: events.last()?.sequence_number.clone(),
                lane: Lane::Live,
                delta,
            })
        };
        let Some(once) =
            apply_once(&self.store, &key, &batch.shard_id, &batch.records, fold).await?
        else {
            // Nothing that could change an output.
            return Ok(KeyOutcome {
                writes: 0,
                conflicts: 0,
                outputs: Vec::new(),
                stored: StoredState::default(),
                already_applied: false,
            });
        };
        let mut outcome = KeyOutcome {
            writes: once.writes,
            conflicts: once.conflicts,
            outputs: Vec::new(),
            stored: StoredState::default(),
            already_applied: once.already_applied,
        };
        if self.skips_finished() && self.consumer.finished(&once.stored) {
            self.finished.insert(&key);
        }
        let emit = self.consumer.emit(&batch.key, &once.stored, now);
        if !emit.prune.is_empty() {
            // Housekeeping only: outputs already ignore what is pruned, so a failure is harmless.
            match self.store.remove_counters(&key, &emit.prune).await {
                Ok(()) => outcome.writes += 1,
                Err(e) => {
                    tracing::warn!(key = %batch.key, error = %e, "could not prune the state")
                }
            }
        }
        outcome.outputs = emit.outputs;
        outcome.stored = once.stored;
        Ok(outcome)
    }
}

/// Completion marks, for every state pattern ([`Engine::with_completion_marks`]).
impl<C: StatePattern, S: StateStore, P, D> Engine<C, S, P, D> {
    /// The mark of a shard's completed batches: `<owner>#~completed#<shard>`, whose watermark is
    /// the last record of the last batch that was applied and published whole. No pipeline's key
    /// starts with `~` (cids, rule subjects, minutes and ids do not).
    fn completion_key(&self, shard: &str) -> StateKey {
        StateKey::new(self.consumer.state_owner(), &format!("~completed#{shard}"))
    }

    /// The last record of `shard` whose batch completed; `None` when unknown (a failed read only
    /// means outputs are published again).
    pub(crate) async fn completed_through(&self, shard: &str) -> Option<SequenceNumber> {
        match self.store.read(&self.completion_key(shard)).await {
            Ok(stored) => stored.and_then(|s| s.watermarks.get(shard).cloned()),
            Err(e) => {
                tracing::warn!(shard, error = %e, "completion mark not read");
                None
            }
        }
    }

    /// Whether every record of `records` belongs to a batch that completed before.
    pub(crate) async fn completed_before_batch(&self, records: &[StreamRecord]) -> bool {
        if !self.completion_marks {
            return false;
        }
        for (shard, (_, last)) in shard_ranges(records) {
            if self
                .completed_through(shard)
                .await
                .is_none_or(|mark| last > &mark)
            {
                return false;
            }
        }
        true
    }

    /// Moves each shard's mark up to the batch's last record (never down: the write holds only
    /// below it). Best effort: a missing mark only means outputs may be published again.
    pub(crate) async fn mark_completed(&self, records: &[StreamRecord], report: &mut BatchReport) {
        if !self.completion_marks || report.retry_from.is_some() {
            return;
        }
        for (shard, (first, last)) in shard_ranges(records) {
            let change = StateChange {
                shard_id: shard.to_string(),
                from: first.clone(),
                applies_through: last.clone(),
                lane: Lane::Live,
                delta: Default::default(),
            };
            let key = self.completion_key(shard);
            match self.store.apply_if_fresh(&key, last, &change).await {
                Ok(_) => report.writes += 1,
                Err(e) => tracing::warn!(shard, error = %e, "batch completed but not marked"),
            }
        }
    }
}

/// Each shard's first and last sequence number in `records`.
fn shard_ranges(records: &[StreamRecord]) -> BTreeMap<&str, (&SequenceNumber, &SequenceNumber)> {
    let mut ranges: BTreeMap<&str, (&SequenceNumber, &SequenceNumber)> = BTreeMap::new();
    for r in records {
        let seq = &r.sequence_number;
        let range = ranges.entry(r.shard_id.as_str()).or_insert((seq, seq));
        range.0 = range.0.min(seq);
        range.1 = range.1.max(seq);
    }
    ranges
}

impl<C: StatePattern, S: StateStore, P: RecordPublisher, D: DeadLetterSink> Engine<C, S, P, D> {
    /// One batch through the consumer's state pattern.
    pub async fn run(&self, records: &[StreamRecord], now: DateTime<Utc>) -> BatchReport {
        C::apply_batch(self, records, now).await
    }
}

/// The one batch handler of every stateful pipeline, whatever its state pattern.
impl<C: StatePattern, S: StateStore, P: RecordPublisher, D: DeadLetterSink> BatchHandler
    for Engine<C, S, P, D>
{
    fn name(&self) -> &str {
        self.consumer.name()
    }

    fn handle(
        &self, records: &[StreamRecord], now: DateTime<Utc>,
    ) -> impl Future<Output = BatchReport> + Send {
        C::apply_batch(self, records, now)
    }
}
