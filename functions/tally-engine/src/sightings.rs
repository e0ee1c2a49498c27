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
//! A pipeline says what a sighting records and what it contributes ([`Sightings`]); the steps,
//! the chunking under DynamoDB's expression limit, the retries and the report are here.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::dead_letters::dead_letter_all;
use crate::exactly_once::apply_once_chunked;
use crate::grouping::{group_by_key, Aggregation, Sequenced};
use crate::ports::{DeadLetterSink, StateChange, StateDelta, StateKey, StateStore, StoredState};
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

    /// Names the pipeline in dead letters and metrics.
    fn name(&self) -> &str;

    /// Decodes and validates a record; `Ok(None)` is a record this pipeline ignores.
    fn decode(&self, record: &StreamRecord) -> Result<Option<Self::Event>, Rejection>;

    fn id(&self, event: &Self::Event) -> Self::Id;

    /// The item that holds an id's sightings.
    fn sighting_key(&self, id: &Self::Id) -> StateKey;

    /// Step 1: the facts a run of one id's records (one shard, in sequence order) sets, each
    /// recording where it was first seen; the first of duplicates within the run wins.
    fn sightings(
        &self,
        shard: &str,
        records: &[Sequenced<Self::Event>],
        now: DateTime<Utc>,
    ) -> StateDelta;

    /// Facts a run of records names (the weight of a sighting write).
    fn facts_per_record(&self) -> usize {
        1
    }

    /// Step 2's input from one id's item: the contributions of the sightings first seen on
    /// `shard` at or after `first` and before `cutoff` (the first record to be retried, whose
    /// successors count on the retry), each with its aggregate item and the sequence number of
    /// its sighting.
    fn contributions(
        &self,
        shard: &str,
        first: &SequenceNumber,
        cutoff: Option<&SequenceNumber>,
        stored: &StoredState,
    ) -> Vec<Sequenced<(StateKey, Self::Contribution)>>;

    /// The attributes a contribution names in its item beyond those every contribution shares.
    fn names(&self, contribution: &Self::Contribution) -> usize;

    /// The name a contribution is counted under in the batch's metrics (`click`), if any.
    fn counted_as(&self, _contribution: &Self::Contribution) -> Option<String> {
        None
    }

    /// The change a run of contributions (in sequence order) makes to one aggregate item.
    fn aggregate(
        &self,
        contributions: &[Sequenced<Self::Contribution>],
        now: DateTime<Utc>,
    ) -> StateDelta;
}

/// How a batch went: the report, and whether any aggregate changed (then there is news to tell).
pub struct CountedBatch {
    pub report: BatchReport,
    pub changed: bool,
    /// Per shard, the first sequence number of the batch.
    pub first_of: BTreeMap<String, SequenceNumber>,
}

/// Reports a record to retry from, remembering per shard the first such record.
fn retry_from(
    report: &mut BatchReport,
    failed_from: &mut BTreeMap<String, SequenceNumber>,
    shard: &str,
    at: SequenceNumber,
    why: String,
) {
    report.fail(&at, why);
    let first = failed_from
        .entry(shard.to_string())
        .or_insert_with(|| at.clone());
    if at < *first {
        *first = at;
    }
}

/// A change that covers `records` of `shard`, over the item as stored when it is known.
fn change<T>(
    shard: &str,
    records: &[Sequenced<T>],
    delta: StateDelta,
    stored: Option<&StoredState>,
) -> Option<StateChange> {
    let delta = match stored {
        Some(s) => delta.over(s)?,
        None => delta,
    };
    Some(StateChange {
        shard_id: shard.to_string(),
        applies_through: records.last()?.sequence_number.clone(),
        delta,
    })
}

/// Runs both steps for a batch. Per record (`Aggregation::PerRecord`, the benchmarks' baseline)
/// every sighting and every contribution is written on its own.
pub async fn count_first_sightings<P, S, D>(
    pipeline: &P,
    store: &S,
    dead_letters: &D,
    aggregation: Aggregation,
    concurrency: usize,
    records: &[StreamRecord],
    now: DateTime<Utc>,
) -> CountedBatch
where
    P: Sightings,
    S: StateStore,
    D: DeadLetterSink,
{
    let mut report = BatchReport::new(records.len());
    let mut valid = Vec::new();
    let mut rejected = Vec::new();
    let mut first_of: BTreeMap<String, SequenceNumber> = BTreeMap::new();
    for r in records {
        let first = first_of
            .entry(r.shard_id.clone())
            .or_insert_with(|| r.sequence_number.clone());
        if &r.sequence_number < first {
            *first = r.sequence_number.clone();
        }
        match pipeline.decode(r) {
            Ok(Some(event)) => valid.push((
                r.shard_id.clone(),
                pipeline.id(&event),
                Sequenced {
                    sequence_number: r.sequence_number.clone(),
                    value: event,
                },
            )),
            Ok(None) => {}
            Err(why) => rejected.push((r, why)),
        }
    }
    report.valid = valid.len();
    dead_letter_all(dead_letters, pipeline.name(), rejected, &mut report).await;

    // Step 1: every id's sightings, exactly once.
    let concurrency = aggregation.concurrency(concurrency);
    let max_names = match aggregation {
        Aggregation::PerKey => MAX_NAMES_PER_WRITE,
        Aggregation::PerRecord => 1,
    };
    let batches = group_by_key(valid, aggregation);
    report.keys = batches.len();
    let outcomes: Vec<_> = stream::iter(batches)
        .map(|b| async move {
            let key = pipeline.sighting_key(&b.key);
            let shard = b.shard_id.clone();
            let fold = |recs: &[Sequenced<P::Event>], stored: Option<&StoredState>| {
                change(&shard, recs, pipeline.sightings(&shard, recs, now), stored)
            };
            let weight = pipeline.facts_per_record();
            let once = apply_once_chunked(
                store,
                &key,
                &b.shard_id,
                &b.records,
                |_| weight,
                max_names.max(weight),
                fold,
            )
            .await;
            (b.shard_id, b.key, once)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut failed_from: BTreeMap<String, SequenceNumber> = BTreeMap::new();
    // Each id's item as last written (per record, an id is written once per record).
    let mut items: BTreeMap<(String, P::Id), StoredState> = BTreeMap::new();
    for (shard, id, once) in outcomes {
        report.writes += once.writes;
        report.conflicts += once.conflicts;
        if let Some((at, e)) = once.failed {
            let why = format!(
                "{} not updated: {e}",
                pipeline.sighting_key(&id).partition_key()
            );
            retry_from(&mut report, &mut failed_from, &shard, at, why);
        }
        if let Some(stored) = once.stored {
            let item = items.entry((shard, id)).or_insert_with(|| stored.clone());
            if stored.rev > item.rev {
                *item = stored;
            }
        }
    }

    // Step 2: the aggregates, from the sightings first seen in this batch's range.
    let mut per_item: BTreeMap<(String, StateKey), Vec<Sequenced<P::Contribution>>> =
        BTreeMap::new();
    for ((shard, _), stored) in &items {
        let first = &first_of[shard];
        for c in pipeline.contributions(shard, first, failed_from.get(shard), stored) {
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
    let writes: Vec<_> = stream::iter(per_item)
        .map(|((shard, key), mut contributions)| async move {
            contributions.sort_by(|a, b| a.sequence_number.cmp(&b.sequence_number));
            let fold = |cs: &[Sequenced<P::Contribution>], stored: Option<&StoredState>| {
                change(&shard, cs, pipeline.aggregate(cs, now), stored)
            };
            let weight = |c: &P::Contribution| match aggregation {
                Aggregation::PerKey => pipeline.names(c),
                Aggregation::PerRecord => 1,
            };
            let once =
                apply_once_chunked(store, &key, &shard, &contributions, weight, max_names, fold)
                    .await;
            // What this write counted: the contributions before the first one to be retried.
            let mut counted: BTreeMap<String, u64> = BTreeMap::new();
            for c in &contributions {
                if once
                    .failed
                    .as_ref()
                    .is_some_and(|(at, _)| &c.sequence_number >= at)
                {
                    break;
                }
                if let Some(name) = pipeline.counted_as(&c.value) {
                    *counted.entry(name).or_default() += 1;
                }
            }
            (shard, key, once, counted)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut changed = false;
    for (shard, key, once, counted) in writes {
        for (name, n) in counted {
            *report.counted.entry(name).or_default() += n;
        }
        report.writes += once.writes;
        report.conflicts += once.conflicts;
        changed |= once.stored.is_some();
        if let Some((at, e)) = once.failed {
            let why = format!("{} not updated: {e}", key.partition_key());
            retry_from(&mut report, &mut failed_from, &shard, at, why);
        }
    }
    CountedBatch {
        report,
        changed,
        first_of,
    }
}
