//! A threshold rule on the engine: interactions in, one count per rule key, each alert emitted
//! once. The key's state item is the outbox: an alert is pending while the count has reached the
//! count at which the rule holds and the item's `alerted` flag is unset; the engine publishes it,
//! then sets the flag, so a crash in between sends it again with the same `alert_id`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tally_engine::ports::OutRecord;
use tally_engine::StreamRecord;
use tally_engine::{
    Consumer, Emit, Output, Rejection, Sequenced, StateDelta, StoredState, WatermarkScope,
};

use super::interaction::{Interaction, InteractionDecoder};
use super::rule::{Rule, RuleKey};

pub const COUNT: &str = "count";
pub const ALERTED: &str = "alerted";

pub struct RuleConsumer {
    pub rule: Rule,
    pub decoder: InteractionDecoder,
    /// From the mapping's `ParallelizationFactor`: property_status counts a property's
    /// interactions from many users (partition keys), and with a factor above 1 batches of one
    /// shard with different users touch one item at once, in order per user only.
    pub scope: WatermarkScope,
}

impl RuleConsumer {
    /// For a mapping without a `ParallelizationFactor` (each shard's records in order).
    pub fn new(rule: Rule) -> Self {
        RuleConsumer::with_parallelization(rule, 1)
    }

    pub fn with_parallelization(rule: Rule, factor: u32) -> Self {
        RuleConsumer {
            rule,
            decoder: InteractionDecoder::default(),
            scope: WatermarkScope::for_parallelization(factor),
        }
    }
}

impl Consumer for RuleConsumer {
    type Event = Interaction;
    type Key = RuleKey;

    fn name(&self) -> &str {
        self.rule.name()
    }

    /// Events other than "Interaction" are valid but no rule counts them (the archive keeps them).
    fn decode(&self, record: &StreamRecord) -> Result<Option<Interaction>, Rejection> {
        let i = self.decoder.decode(record)?;
        Ok(i.is_interaction().then_some(i))
    }

    fn key(&self, i: &Interaction) -> RuleKey {
        self.rule.key(i)
    }

    fn fold(
        &self, key: &RuleKey, events: &[Sequenced<Interaction>], now: DateTime<Utc>,
    ) -> Option<StateDelta> {
        Some(StateDelta {
            counters: BTreeMap::from([(COUNT.to_string(), events.len() as u64)]),
            latest: None,
            expires_at: self.rule.expires_at(key, now),
            ..Default::default()
        })
    }

    fn emit(&self, key: &RuleKey, stored: &StoredState, _now: DateTime<Utc>) -> Emit {
        let count = stored.counters.get(COUNT).copied().unwrap_or(0);
        let pending = count >= self.rule.holds_at() && !stored.flags.contains(ALERTED);
        let output = pending.then(|| {
            let (partition_key, body) = self.rule.alert(key);
            let record = OutRecord {
                partition_key,
                data: body.to_string().into_bytes(),
            };
            Output::once(self.rule.alert_id(key), record, ALERTED)
        });
        Emit {
            outputs: output.into_iter().collect(),
            prune: Vec::new(),
        }
    }

    fn watermark_scope(&self) -> WatermarkScope {
        self.scope
    }

    /// Once its alert is out nothing about the key can change an answer: the alert is emitted
    /// once, and no one reads its count.
    fn finished(&self, stored: &StoredState) -> bool {
        stored.flags.contains(ALERTED)
    }
}
