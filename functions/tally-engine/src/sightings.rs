//! Counting things by their first sighting, exactly once, in two steps per batch. This is for
//! pipelines whose records carry an id that a retry repeats (an RSVP version, an app event).
//!
//! 1. **Sightings**: one item per id. The id's first sighting (its shard and sequence number, and
//!    what the aggregates need to know of it) is written as a fact, set only where absent. An id
//!    seen again (a producer retry, a replay, a redelivered batch) changes nothing.
//! 2. **Aggregates**: each aggregate item (a minute bucket, the totals) is written once per batch
//!    with the engine's per-shard watermark. What a batch adds is computed from the sightings
//!    alone: those first seen in this batch's range, in sequence order, each tagged with its
//!    record's sequence number. So a retry after a crash at any point, whatever step 1 or 2 had
//!    written, adds exactly what was missing.
//!
//! A pipeline says what a sighting records and what it contributes ([`Sightings`]) and runs on the
//! engine as [`FirstSightings`]; the steps, the chunking under DynamoDB's expression limit, the
//! retries and the report are here, one function per step.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::consumer::Output;
use crate::dead_letters::decode_or_dead_letter;
use crate::engine::Engine;
use crate::exactly_once::apply_once_chunked;
use crate::grouping::{group_by_key, Aggregation, Sequenced};
use crate::pattern::{FirstSightings, StatePattern};
use crate::ports::{
    DeadLetterSink, Lane, RecordPublisher, StateChange, StateDelta, StateKey, StateStore,
    StoredState,
};
use crate::publish::{publish_all, Outgoing};
use crate::record::{Rejection, StreamRecord};
use crate::report::BatchReport;
use crate::sequence::SequenceNumber;

/// Attributes one write may name: a DynamoDB update expression holds at most 4 KB.
pub const MAX_NAMES_PER_WRITE: usize = 80;

/// A first sighting as a fact's text: where it was seen (shard, sequence number), then the
/// pipeline's own fields, `|`-separated; only the last field may hold the separator.
pub fn encode_sighting(shard: &str, seq: &SequenceNumber, fields: &[&str]) -> String {
    let mut out = format!("{shard}|{}", seq.ordered_key());
    for f in fields {
        out.push('|');
        out.push_str(f);
    }
    out
}

/// The shard, sequence number and `fields` fields of a fact written by [`encode_sighting`]; a
/// missing last field reads as empty.
pub fn decode_sighting(s: &str, fields: usize) -> Option<(String, SequenceNumber, Vec<String>)> {
    let mut parts = s.splitn(fields + 2, '|');
    let shard = parts.next()?.to_string();
    let seq = SequenceNumber::from_ordered_key(parts.next()?).ok()?;
    let mut rest: Vec<String> = parts.map(String::from).collect();
    if rest.len() + 1 == fields {
        rest.push(String::new());
    }
    (rest.len() == fields).then_some((shard, seq, rest))
}

/// A pipeline that counts records by the first sighting of their id.
pub trait Sightings: Send + Sync {
    type Event: Clone + Send + Sync;
    type Id: Ord + Clone + fmt::Display + Send + Sync;
    /// What one first sighting adds to one aggregate item.
    type Contribution: Clone + Send + Sync;
    /// What decoding needs that is read once per batch (the ingest seal's key), or `()`.
    type Context: Send + Sync;

    /// Names the pipeline in dead letters and metrics.
    fn name(&self) -> &str;

    /// The leading part of the pipeline's state keys (its IAM `LeadingKeys`), which the engine's
    /// own items (completion marks) also take.
    fn state_owner(&self) -> &str {
        self.name()
    }

    /// Reads the batch's context; an error retries the whole batch.
    fn context(&self) -> impl Future<Output = Result<Self::Context, String>> + Send;

    /// Decodes and validates a record; `Ok(None)` is a record this pipeline ignores.
    fn decode(
        &self, context: &Self::Context, record: &StreamRecord,
    ) -> Result<Option<Self::Event>, Rejection>;

    fn id(&self, event: &Self::Event) -> Self::Id;

    /// The item that holds an id's sightings.
    fn sighting_key(&self, id: &Self::Id) -> StateKey;

    /// Step 1: the facts a run of one id's records (one shard, in sequence order) sets, each
    /// recording where it was first seen; the first of duplicates within the run wins.
    fn sightings(
        &self, shard: &str, records: &[Sequenced<Self::Event>], now: DateTime<Utc>,
    ) -> StateDelta;

    /// Facts a run of records names (the weight of a sighting write).
    fn facts_per_record(&self) -> usize {
        1
    }

    /// Step 2's input from one id's item: the contributions of the sightings this batch counts
    /// (`range`), each with its aggregate item and the sequence number of its sighting.
    fn contributions(
        &self, range: &BatchRange<'_>, stored: &StoredState,
    ) -> Vec<Sequenced<(StateKey, Self::Contribution)>>;

    /// The attributes a contribution names in its item beyond those every contribution shares.
    fn names(&self, contribution: &Self::Contribution) -> usize;

    /// The name a contribution is counted under in the batch's metrics (`click`), if any.
    fn counted_as(&self, _contribution: &Self::Contribution) -> Option<String> {
        None
    }

    /// The change a run of contributions (in sequence order) makes to one aggregate item.
    fn aggregate(
        &self, contributions: &[Sequenced<Self::Contribution>], now: DateTime<Utc>,
    ) -> StateDelta;

    /// What to publish after a batch that changed an aggregate (a snapshot of the new totals),
    /// at least once, with stable ids; an error retries the batch from its first record.
    fn news(
        &self, _now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Output>, String>> + Send {
        async { Ok(Vec::new()) }
    }
}

/// Which sightings a shard's batch counts: those first seen on its shard at or after its first
/// record and before `cutoff`, the first record to be retried (whose successors count on the
/// retry).
#[derive(Debug, Clone, Copy)]
pub struct BatchRange<'a> {
    pub shard: &'a str,
    pub first: &'a SequenceNumber,
    pub cutoff: Option<&'a SequenceNumber>,
}

impl BatchRange<'_> {
    /// Whether a sighting at (`shard`, `seq`) is counted by this batch.
    pub fn counts_now(&self, shard: &str, seq: &SequenceNumber) -> bool {
        shard == self.shard && seq >= self.first && !self.counts_on_retry(shard, seq)
    }

    /// Whether it is left for the retry: on this shard, at or after the cutoff.
    pub fn counts_on_retry(&self, shard: &str, seq: &SequenceNumber) -> bool {
        shard == self.shard && self.cutoff.is_some_and(|c| seq >= c)
    }
}

/// Where each shard's batch must be retried from: the first record whose write failed.
#[derive(Default)]
struct RetryPoints(BTreeMap<String, SequenceNumber>);

impl RetryPoints {
    fn retry(&mut self, report: &mut BatchReport, shard: &str, at: SequenceNumber, why: String) {
        report.fail(&at, why);
        let first = self
            .0
            .entry(shard.to_string())
            .or_insert_with(|| at.clone());
        if at < *first {
            *first = at;
        }
    }

    fn of(&self, shard: &str) -> Option<&SequenceNumber> {
        self.0.get(shard)
    }
}

/// A change that covers `records` of `shard`, over the item as stored when it is known.
fn change<T>(
    shard: &str, records: &[Sequenced<T>], delta: StateDelta, stored: Option<&StoredState>,
) -> Option<StateChange> {
    let delta = match stored {
        Some(s) => delta.over(s)?,
        None => delta,
    };
    Some(StateChange {
        shard_id: shard.to_string(),
        from: records.first()?.sequence_number.clone(),
        applies_through: records.last()?.sequence_number.clone(),
        lane: Lane::Live,
        delta,
    })
}

/// How many names one write may carry: per record (the benchmarks' baseline) one at a time.
fn max_names(aggregation: Aggregation) -> usize {
    match aggregation {
        Aggregation::PerKey => MAX_NAMES_PER_WRITE,
        Aggregation::PerRecord => 1,
    }
}

/// A batch's valid events by shard and id, and each shard's first sequence number (of every
/// record, the rejected ones included: the batch's range starts there).
struct DecodedBatch<X: Sightings> {
    events: Vec<(String, X::Id, Sequenced<X::Event>)>,
    first_of: BTreeMap<String, SequenceNumber>,
}

impl<X: Sightings, S: StateStore, P: RecordPublisher, D: DeadLetterSink>
    Engine<FirstSightings<X>, S, P, D>
{
    fn pipeline(&self) -> &X {
        &self.consumer.0
    }

    /// Every record decoded; the invalid ones are dead letters.
    async fn decode_batch(
        &self, context: &X::Context, records: &[StreamRecord], report: &mut BatchReport,
    ) -> DecodedBatch<X> {
        let mut first_of: BTreeMap<String, SequenceNumber> = BTreeMap::new();
        for r in records {
            let first = first_of
                .entry(r.shard_id.clone())
                .or_insert_with(|| r.sequence_number.clone());
            if &r.sequence_number < first {
                *first = r.sequence_number.clone();
            }
        }
        let x = self.pipeline();
        let valid = decode_or_dead_letter(records, x.name(), &self.dead_letters, report, |r| {
            x.decode(context, r)
        })
        .await;
        let events = valid
            .into_iter()
            .map(|(r, event)| {
                let id = x.id(&event);
                let sequenced = Sequenced {
                    sequence_number: r.sequence_number.clone(),
                    value: event,
                };
                (r.shard_id.clone(), id, sequenced)
            })
            .collect();
        DecodedBatch { events, first_of }
    }

    /// Step 1: every id's sightings, exactly once. Returns each id's item as last written (per
    /// record, an id is written once per record).
    async fn write_sightings(
        &self, events: Vec<(String, X::Id, Sequenced<X::Event>)>, now: DateTime<Utc>,
        report: &mut BatchReport, retries: &mut RetryPoints,
    ) -> BTreeMap<(String, X::Id), StoredState> {
        let x = self.pipeline();
        let batches = group_by_key(events, self.aggregation);
        report.keys = batches.len();
        let weight = x.facts_per_record();
        let max_names = max_names(self.aggregation).max(weight);
        let outcomes: Vec<_> = stream::iter(batches)
            .map(|b| async move {
                let key = x.sighting_key(&b.key);
                let shard = b.shard_id.clone();
                let fold = |recs: &[Sequenced<X::Event>], stored: Option<&StoredState>| {
                    change(&shard, recs, x.sightings(&shard, recs, now), stored)
                };
                let once = apply_once_chunked(
                    &self.store,
                    &key,
                    &b.shard_id,
                    &b.records,
                    |_| weight,
                    max_names,
                    fold,
                )
                .await;
                (b.shard_id, b.key, once)
            })
            .buffer_unordered(self.aggregation.concurrency(self.concurrency))
            .collect()
            .await;
        let mut items: BTreeMap<(String, X::Id), StoredState> = BTreeMap::new();
        for (shard, id, once) in outcomes {
            report.writes += once.writes;
            report.conflicts += once.conflicts;
            if let Some((at, e)) = once.failed {
                let why = format!("{} not updated: {e}", x.sighting_key(&id).partition_key());
                retries.retry(report, &shard, at, why);
            }
            if let Some(stored) = once.stored {
                let item = items.entry((shard, id)).or_insert_with(|| stored.clone());
                if stored.rev > item.rev {
                    *item = stored;
                }
            }
        }
        items
    }

    /// What the sightings first seen in this batch's range (and before any record to retry)
    /// contribute, per shard and aggregate item, in sequence order.
    fn contributions_by_item(
        &self, items: &BTreeMap<(String, X::Id), StoredState>,
        first_of: &BTreeMap<String, SequenceNumber>, retries: &RetryPoints,
    ) -> BTreeMap<(String, StateKey), Vec<Sequenced<X::Contribution>>> {
        let mut per_item: BTreeMap<(String, StateKey), Vec<Sequenced<X::Contribution>>> =
            BTreeMap::new();
        for ((shard, _), stored) in items {
            let range = BatchRange {
                shard,
                first: &first_of[shard],
                cutoff: retries.of(shard),
            };
            for c in self.pipeline().contributions(&range, stored) {
                let (key, value) = c.value;
                per_item
                    .entry((shard.clone(), key))
                    .or_default()
                    .push(Sequenced {
                        sequence_number: c.sequence_number,
                        value,
                    });
            }
        }
        for contributions in per_item.values_mut() {
            contributions.sort_by(|a, b| a.sequence_number.cmp(&b.sequence_number));
        }
        per_item
    }

    /// Step 2: each aggregate item written once per shard, exactly once. Returns whether any
    /// aggregate changed now, and whether any had these contributions before (a redelivery).
    async fn write_aggregates(
        &self, per_item: BTreeMap<(String, StateKey), Vec<Sequenced<X::Contribution>>>,
        now: DateTime<Utc>, report: &mut BatchReport, retries: &mut RetryPoints,
    ) -> (bool, bool) {
        let x = self.pipeline();
        let aggregation = self.aggregation;
        let max_names = max_names(aggregation);
        let writes: Vec<_> = stream::iter(per_item)
            .map(|((shard, key), contributions)| async move {
                let fold = |cs: &[Sequenced<X::Contribution>], stored: Option<&StoredState>| {
                    change(&shard, cs, x.aggregate(cs, now), stored)
                };
                let weight = |c: &X::Contribution| match aggregation {
                    Aggregation::PerKey => x.names(c),
                    Aggregation::PerRecord => 1,
                };
                let once = apply_once_chunked(
                    &self.store,
                    &key,
                    &shard,
                    &contributions,
                    weight,
                    max_names,
                    fold,
                )
                .await;
                // What this write counted: the contributions before the first one to be retried.
                let failed_at = once.failed.as_ref().map(|(at, _)| at);
                let mut counted: BTreeMap<String, u64> = BTreeMap::new();
                for c in contributions
                    .iter()
                    .take_while(|c| failed_at.is_none_or(|at| &c.sequence_number < at))
                {
                    if let Some(name) = x.counted_as(&c.value) {
                        *counted.entry(name).or_default() += 1;
                    }
                }
                (shard, key, once, counted)
            })
            .buffer_unordered(aggregation.concurrency(self.concurrency))
            .collect()
            .await;
        let (mut changed, mut applied_before) = (false, false);
        for (shard, key, once, counted) in writes {
            for (name, n) in counted {
                *report.counted.entry(name).or_default() += n;
            }
            report.writes += once.writes;
            report.conflicts += once.conflicts;
            changed |= once.stored.is_some() && once.applied_now;
            applied_before |= once.stored.is_some() && !once.applied_now;
            if let Some((at, e)) = once.failed {
                let why = format!("{} not updated: {e}", key.partition_key());
                retries.retry(report, &shard, at, why);
            }
        }
        (changed, applied_before)
    }

    /// After a batch that changed an aggregate: the pipeline's news, published at least once.
    async fn publish_news(
        &self, first: SequenceNumber, now: DateTime<Utc>, report: &mut BatchReport,
    ) {
        match self.pipeline().news(now).await {
            Ok(outputs) if outputs.is_empty() => {}
            Ok(outputs) => {
                let outgoing = outputs
                    .into_iter()
                    .map(|o| Outgoing {
                        id: o.id,
                        record: o.record,
                        first: first.clone(),
                    })
                    .collect();
                publish_all(&self.publisher, outgoing, report).await;
            }
            Err(e) => report.fail(&first, e),
        }
    }

    /// Both steps for a batch, then the news. Per record (`Aggregation::PerRecord`, the
    /// benchmarks' baseline) every sighting and every contribution is written on its own.
    async fn count_first_sightings(
        &self, records: &[StreamRecord], now: DateTime<Utc>,
    ) -> BatchReport {
        let mut report = BatchReport::new(records.len());
        let Some(first) = records.iter().map(|r| &r.sequence_number).min().cloned() else {
            return report;
        };
        let context = match self.pipeline().context().await {
            Ok(context) => context,
            Err(e) => {
                report.fail(&first, e);
                return report;
            }
        };
        let decoded = self.decode_batch(&context, records, &mut report).await;
        let mut retries = RetryPoints::default();
        let items = self
            .write_sightings(decoded.events, now, &mut report, &mut retries)
            .await;
        let per_item = self.contributions_by_item(&items, &decoded.first_of, &retries);
        let (changed, applied_before) = self
            .write_aggregates(per_item, now, &mut report, &mut retries)
            .await;
        // Applied before: the news again, unless the batch that applied it is known to have
        // published (the last attempt may have crashed between its writes and its publish).
        if changed || (applied_before && !self.completed_before_batch(records).await) {
            self.publish_news(first, now, &mut report).await;
        } else if applied_before {
            report.published_before += report.valid;
        }
        self.mark_completed(records, &mut report).await;
        report
    }
}

impl<X: Sightings> StatePattern for FirstSightings<X> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn state_owner(&self) -> &str {
        self.0.state_owner()
    }

    fn apply_batch<S: StateStore, P: RecordPublisher, D: DeadLetterSink>(
        engine: &Engine<Self, S, P, D>, records: &[StreamRecord], now: DateTime<Utc>,
    ) -> impl Future<Output = BatchReport> + Send {
        // Boxed: its steps' futures over the SDK's nest past the compiler's type layout limit
        // (128) in a function's `main`; one allocation per batch.
        Box::pin(engine.count_first_sightings(records, now))
    }
}
