//! The rule dispatch: decode a shard's interactions, dead-letter what is bad, count each rule key
//! exactly once (the shared engine), and emit each alert once.
//!
//! Emit-once: the key's state item is the outbox. An alert is pending while the stored count has
//! reached the count at which the rule holds and the item's `alerted` flag is unset; it is
//! published, then flagged. A crash between the two publishes it again on the retry, with the same
//! deterministic `alert_id`; nothing is lost.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::dispatch::{
    dead_letter_all, publish_all, Aggregation, DispatchReport, Pending, DEFAULT_CONCURRENCY,
};
use crate::exactly_once::{apply_once, group_by_key, KeyBatch, Sequenced};
use crate::ports::{
    DeadLetterSink, OutRecord, PortError, RecordPublisher, StateChange, StateKey, StateStore,
};
use crate::record::StreamRecord;
use crate::rules::{Interaction, InteractionDecoder, Rule, RuleKey};
use crate::sequence::SequenceNumber;

pub const COUNT: &str = "count";
pub const ALERTED: &str = "alerted";

/// Rule keys whose alert is out and flagged. Nothing about such a key can change an answer any
/// more (its alert is emitted once, and no one reads its count), so in per-key mode their events
/// are not written again: on a skewed workload most events belong to such keys. Kept per function
/// instance; losing it (a cold start, [`FinishedKeys::CAPACITY`] reached) only costs writes.
#[derive(Debug, Default)]
pub struct FinishedKeys {
    keys: Mutex<HashSet<String>>,
}

impl FinishedKeys {
    pub const CAPACITY: usize = 200_000;

    pub fn contains(&self, key: &str) -> bool {
        self.keys.lock().expect("finished keys").contains(key)
    }

    pub fn insert(&self, key: String) {
        let mut keys = self.keys.lock().expect("finished keys");
        if keys.len() >= Self::CAPACITY {
            keys.clear();
        }
        keys.insert(key);
    }

    pub fn len(&self) -> usize {
        self.keys.lock().expect("finished keys").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct RuleDispatch<'a, S, P, D> {
    pub rule: &'a Rule,
    pub store: &'a S,
    pub publisher: &'a P,
    pub dead_letters: &'a D,
    pub decoder: InteractionDecoder,
    pub aggregation: Aggregation,
    pub concurrency: usize,
    /// Keys to skip (per-key mode only; the per-record baseline writes every record).
    pub finished: Option<&'a FinishedKeys>,
}

#[derive(Default)]
struct Applied {
    writes: usize,
    conflicts: usize,
    alert: Option<Pending>,
}

type RuleBatch = KeyBatch<RuleKey, Interaction>;

impl<'a, S: StateStore, P: RecordPublisher, D: DeadLetterSink> RuleDispatch<'a, S, P, D> {
    pub fn new(rule: &'a Rule, store: &'a S, publisher: &'a P, dead_letters: &'a D) -> Self {
        Self {
            rule,
            store,
            publisher,
            dead_letters,
            decoder: InteractionDecoder::default(),
            aggregation: Aggregation::PerKey,
            concurrency: DEFAULT_CONCURRENCY,
            finished: None,
        }
    }

    /// The finished-keys set to consult and fill, when the mode allows skipping.
    fn finished(&self) -> Option<&'a FinishedKeys> {
        self.finished
            .filter(|_| self.aggregation == Aggregation::PerKey)
    }

    pub async fn run(&self, records: &[StreamRecord], now: DateTime<Utc>) -> DispatchReport {
        let mut report = DispatchReport {
            records: records.len(),
            ..Default::default()
        };
        let mut events = Vec::with_capacity(records.len());
        let mut rejected = Vec::new();
        for r in records {
            match self.decoder.decode(r) {
                Ok(i) if i.is_interaction() => {
                    report.valid += 1;
                    let key = self.rule.key(&i);
                    events.push((
                        r.shard_id.clone(),
                        key,
                        Sequenced {
                            sequence_number: r.sequence_number.clone(),
                            value: i,
                        },
                    ));
                }
                Ok(_) => report.ignored += 1,
                Err(why) => rejected.push((r, why)),
            }
        }
        dead_letter_all(self.dead_letters, self.rule.name(), rejected, &mut report).await;

        let mut batches = group_by_key(events, self.aggregation);
        if let Some(finished) = self.finished() {
            batches.retain(|b| {
                let key = StateKey::new(self.rule.name(), &b.key.to_string());
                let done = finished.contains(key.partition_key());
                if done {
                    report.skipped += b.records.len();
                }
                !done
            });
        }
        report.keys = batches.len();
        let concurrency = self.aggregation.concurrency(self.concurrency);
        let outcomes: Vec<(RuleBatch, Result<Applied, PortError>)> = stream::iter(batches)
            .map(|b| async move {
                let outcome = self.apply(&b, now).await;
                (b, outcome)
            })
            .buffered(concurrency)
            .collect()
            .await;
        let mut pending = Vec::new();
        let mut keys: BTreeMap<String, StateKey> = BTreeMap::new();
        for (batch, outcome) in outcomes {
            match outcome {
                Ok(applied) => {
                    report.writes += applied.writes;
                    report.conflicts += applied.conflicts;
                    // One alert per id per invocation, even when a key is written several times.
                    if let Some(alert) = applied.alert.filter(|a| !keys.contains_key(&a.id)) {
                        keys.insert(
                            alert.id.clone(),
                            StateKey::new(self.rule.name(), &batch.key.to_string()),
                        );
                        pending.push(alert);
                    }
                }
                Err(e) => report.fail(
                    &batch.records[0].sequence_number,
                    format!("count of {} not updated: {e}", batch.key),
                ),
            }
        }
        for id in publish_all(self.publisher, pending, &mut report).await {
            // Best effort: a missing flag only means the same alert (same id) may be sent again.
            report.writes += 1;
            match self.store.set_flag(&keys[&id], ALERTED).await {
                Ok(()) => {
                    if let Some(finished) = self.finished() {
                        finished.insert(keys[&id].partition_key().to_string());
                    }
                }
                Err(e) => {
                    tracing::warn!(alert_id = %id, error = %e, "alert published but not flagged")
                }
            }
        }
        report
    }

    /// Counts one key's events exactly once; returns its alert when one is pending.
    async fn apply(&self, batch: &RuleBatch, now: DateTime<Utc>) -> Result<Applied, PortError> {
        let expires_at = self.rule.expires_at(&batch.key, now);
        let fold = |events: &[Sequenced<Interaction>], _: Option<&crate::ports::StoredState>| {
            Some(StateChange {
                shard_id: batch.shard_id.clone(),
                applies_through: events.last()?.sequence_number.clone(),
                counters: BTreeMap::from([(COUNT.to_string(), events.len() as u64)]),
                latest: None,
                expires_at,
            })
        };
        let key = StateKey::new(self.rule.name(), &batch.key.to_string());
        let Some(once) =
            apply_once(self.store, &key, &batch.shard_id, &batch.records, fold).await?
        else {
            return Ok(Applied::default());
        };
        let mut applied = Applied {
            writes: once.writes,
            conflicts: once.conflicts,
            alert: None,
        };
        if once.stored.flags.contains(ALERTED) {
            if let Some(finished) = self.finished() {
                finished.insert(key.partition_key().to_string());
            }
        }
        let count = once.stored.counters.get(COUNT).copied().unwrap_or(0);
        if count >= self.rule.holds_at() && !once.stored.flags.contains(ALERTED) {
            let (partition_key, body) = self.rule.alert(&batch.key);
            let first: SequenceNumber = batch.records[0].sequence_number.clone();
            let record = OutRecord {
                partition_key,
                data: body.to_string().into_bytes(),
            };
            applied.alert = Some(Pending {
                id: self.rule.alert_id(&batch.key),
                record,
                first,
            });
        }
        Ok(applied)
    }
}
