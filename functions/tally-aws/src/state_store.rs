//! The engine's state items in DynamoDB (model state per cid, rule counts per key), updated with
//! conditional `UpdateItem`s. Domain-neutral: counters, a register, flags.
//!
//! Item layout (`pk` = `MODEL2#C124`, `paid_user#1`):
//! - `rev` (N): revision, +1 per applied change
//! - `wm_<domain>` (S): ordered key of the last applied sequence number of that order domain: a
//!   shard (`wm_shardId-000000000000`), or a shard and partition key (`wm_shardId-000000000000/C124`)
//! - `ws_<domain>` (S): the first sequence number applied as records came (the item's start)
//! - `wb_<domain>` (S): the last sequence number below the start applied by a replay
//! - `c_<name>` (N): named counters (`c_all_male`, `c_2026-11-22_female`, `c_count`)
//! - `lt` (S), `lg` (S): the register's order key and value (MODEL1: event time and arrival, gender)
//! - `f_<name>` (BOOL): flags (`f_alerted`)
//! - `s_<name>` (S): facts, set only where absent (`if_not_exists`)
//! - `expires_at` (N): TTL, epoch seconds, for windowed state

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use tally_engine::ports::{Applied, Lane, StateChange, StateKey, StateReader, StateStore};
use tally_engine::{Latest, PortError, SequenceNumber, StoredState};

use crate::errors::port_error;
use crate::table::DynamoTable;

pub const PK: &str = "pk";

#[derive(Clone)]
pub struct DynamoStateStore {
    table: DynamoTable,
}

impl DynamoStateStore {
    pub fn on(table: DynamoTable) -> Self {
        Self { table }
    }

    fn counter_attr(name: &str) -> String {
        format!("c_{name}")
    }

    fn watermark_attr(shard_id: &str) -> String {
        format!("wm_{shard_id}")
    }

    async fn update(
        &self, key: &StateKey, change: &StateChange, condition: Condition<'_>,
    ) -> Result<Applied, PortError> {
        let mut names: HashMap<String, String> = HashMap::new();
        let mut values: HashMap<String, AttributeValue> = HashMap::new();
        names.insert("#rev".into(), "rev".into());
        values.insert(":one".into(), AttributeValue::N("1".into()));
        values.insert(
            ":through".into(),
            AttributeValue::S(change.applies_through.ordered_key()),
        );
        let mut sets = Vec::new();
        match change.lane {
            Lane::Live => {
                names.insert("#wm".into(), Self::watermark_attr(&change.shard_id));
                names.insert("#ws".into(), format!("ws_{}", change.shard_id));
                values.insert(":from".into(), AttributeValue::S(change.from.ordered_key()));
                sets.push("#wm = :through, #ws = if_not_exists(#ws, :from)".to_string());
            }
            Lane::Backfill => {
                names.insert("#wb".into(), format!("wb_{}", change.shard_id));
                sets.push("#wb = :through".to_string());
            }
        }
        let mut adds = vec!["#rev :one".to_string()];
        let delta = &change.delta;
        if let Some(latest) = &delta.latest {
            names.insert("#lt".into(), "lt".into());
            names.insert("#lg".into(), "lg".into());
            values.insert(":lt".into(), AttributeValue::S(latest.order_key.clone()));
            values.insert(":lg".into(), AttributeValue::S(latest.value.clone()));
            sets.push("#lt = :lt, #lg = :lg".into());
        }
        if let Some(exp) = delta.expires_at {
            names.insert("#exp".into(), "expires_at".into());
            values.insert(
                ":exp".into(),
                AttributeValue::N(exp.timestamp().to_string()),
            );
            sets.push("#exp = :exp".into());
        }
        for (i, (name, value)) in delta.facts.iter().enumerate() {
            names.insert(format!("#s{i}"), fact_attribute(name));
            values.insert(format!(":s{i}"), AttributeValue::S(value.clone()));
            sets.push(format!("#s{i} = if_not_exists(#s{i}, :s{i})"));
        }
        for (i, (name, n)) in delta.counters.iter().enumerate() {
            names.insert(format!("#c{i}"), Self::counter_attr(name));
            values.insert(format!(":c{i}"), AttributeValue::N(n.to_string()));
            adds.push(format!("#c{i} :c{i}"));
        }
        let condition = match condition {
            Condition::Fresh { first } => {
                values.insert(":first".into(), AttributeValue::S(first.ordered_key()));
                let mut c = "(attribute_not_exists(#wm) OR #wm < :first)".to_string();
                if delta.latest.is_some() {
                    c.push_str(" AND (attribute_not_exists(#lt) OR #lt < :lt)");
                }
                c
            }
            Condition::Revision(None) => {
                names.insert("#pk".into(), PK.into());
                "attribute_not_exists(#pk)".to_string()
            }
            Condition::Revision(Some(rev)) => {
                values.insert(":rev".into(), AttributeValue::N(rev.to_string()));
                "#rev = :rev".to_string()
            }
        };
        let outcome = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(PK, AttributeValue::S(key.partition_key().to_string()))
            .update_expression(format!("SET {} ADD {}", sets.join(", "), adds.join(", ")))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match outcome {
            Ok(out) => Ok(Applied::Done(parse_item(
                out.attributes().unwrap_or(&HashMap::new()),
            )?)),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => match e.item() {
                    Some(item) => Ok(Applied::Conflict(Some(parse_item(item)?))),
                    // Older emulators do not return the item on a failed condition: read it.
                    None => self.read(key).await.map(Applied::Conflict),
                },
                _ => Err(port_error("UpdateItem", err)),
            },
        }
    }
}

/// The attribute of a fact (`s_<name>`): what other writers of an engine item name too.
pub fn fact_attribute(name: &str) -> String {
    format!("s_{name}")
}

enum Condition<'a> {
    Fresh { first: &'a SequenceNumber },
    Revision(Option<u64>),
}

fn bad_item(detail: String) -> PortError {
    PortError::Fatal(format!("state item is malformed: {detail}"))
}

/// Parses a stored item back into the engine's state.
pub fn parse_item(item: &HashMap<String, AttributeValue>) -> Result<StoredState, PortError> {
    let mut stored = StoredState::default();
    let number = |name: &str, v: &AttributeValue| -> Result<u64, PortError> {
        v.as_n()
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad_item(format!("{name} is not a number")))
    };
    let mut latest_value = None;
    let mut latest_key = None;
    for (name, value) in item {
        if name == "rev" {
            stored.rev = number(name, value)?;
        } else if let Some((kind, domain)) = name
            .split_once('_')
            .filter(|(kind, _)| ["wm", "ws", "wb"].contains(kind))
        {
            let s = value
                .as_s()
                .map_err(|_| bad_item(format!("{name} is not a string")))?;
            let seq = SequenceNumber::from_ordered_key(s).map_err(|e| bad_item(e.to_string()))?;
            let marks = match kind {
                "wm" => &mut stored.watermarks,
                "ws" => &mut stored.starts,
                _ => &mut stored.backfilled,
            };
            marks.insert(domain.to_string(), seq);
        } else if let Some(counter) = name.strip_prefix("c_") {
            stored
                .counters
                .insert(counter.to_string(), number(name, value)?);
        } else if let Some(fact) = name.strip_prefix("s_") {
            let v = value
                .as_s()
                .map_err(|_| bad_item(format!("{name} is not a string")))?;
            stored.facts.insert(fact.to_string(), v.clone());
        } else if let Some(flag) = name.strip_prefix("f_") {
            if value.as_bool().copied().unwrap_or(false) {
                stored.flags.insert(flag.to_string());
            }
        } else if name == "lt" {
            latest_key = value.as_s().ok().cloned();
        } else if name == "lg" {
            latest_value = value.as_s().ok().cloned();
        }
    }
    stored.latest = match (latest_key, latest_value) {
        (Some(order_key), Some(value)) => Some(Latest { order_key, value }),
        (None, None) => None,
        _ => return Err(bad_item("lt and lg come together".into())),
    };
    Ok(stored)
}

impl StateReader for DynamoStateStore {
    async fn read_many(&self, keys: &[StateKey]) -> Result<Vec<Option<StoredState>>, PortError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found: HashMap<String, StoredState> = HashMap::new();
        // BatchGetItem takes 100 keys a call, and may leave some for a later call.
        for chunk in keys.chunks(100) {
            let mut pending: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|k| {
                    HashMap::from([(
                        PK.to_string(),
                        AttributeValue::S(k.partition_key().to_string()),
                    )])
                })
                .collect();
            for attempt in 0..8u32 {
                if pending.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| PortError::Fatal(e.to_string()))?;
                let out = self
                    .table
                    .client
                    .batch_get_item()
                    .request_items(&self.table.name, request)
                    .send()
                    .await
                    .map_err(|e| port_error("BatchGetItem", e))?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(&self.table.name))
                    .into_iter()
                    .flatten()
                {
                    if let Some(pk) = item.get(PK).and_then(|v| v.as_s().ok()) {
                        found.insert(pk.clone(), parse_item(item)?);
                    }
                }
                pending = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table.name))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                }
            }
            if !pending.is_empty() {
                return Err(PortError::Throttled(
                    "BatchGetItem kept leaving keys unprocessed".into(),
                ));
            }
        }
        Ok(keys
            .iter()
            .map(|k| found.get(k.partition_key()).cloned())
            .collect())
    }
}

impl StateStore for DynamoStateStore {
    /// A strongly consistent read of the stored state.
    async fn read(&self, key: &StateKey) -> Result<Option<StoredState>, PortError> {
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key(PK, AttributeValue::S(key.partition_key().to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        out.item().map(parse_item).transpose()
    }

    async fn apply_if_fresh(
        &self, key: &StateKey, first: &SequenceNumber, change: &StateChange,
    ) -> Result<Applied, PortError> {
        self.update(key, change, Condition::Fresh { first }).await
    }

    async fn apply_if_unchanged(
        &self, key: &StateKey, expected_rev: Option<u64>, change: &StateChange,
    ) -> Result<Applied, PortError> {
        self.update(key, change, Condition::Revision(expected_rev))
            .await
    }

    async fn remove_counters(&self, key: &StateKey, counters: &[String]) -> Result<(), PortError> {
        let mut names = HashMap::from([("#pk".to_string(), PK.to_string())]);
        let mut removes = Vec::new();
        for (i, counter) in counters.iter().enumerate() {
            names.insert(format!("#r{i}"), Self::counter_attr(counter));
            removes.push(format!("#r{i}"));
        }
        self.update_existing(key, format!("REMOVE {}", removes.join(", ")), names, None)
            .await
    }

    async fn set_flag(&self, key: &StateKey, flag: &str) -> Result<(), PortError> {
        let names = HashMap::from([
            ("#pk".to_string(), PK.to_string()),
            ("#f".to_string(), format!("f_{flag}")),
        ]);
        self.update_existing(
            key,
            "SET #f = :true".into(),
            names,
            Some((":true", AttributeValue::Bool(true))),
        )
        .await
    }
}

impl DynamoStateStore {
    /// An update of an item that exists; never creates one just to change an attribute.
    async fn update_existing(
        &self, key: &StateKey, expression: String, names: HashMap<String, String>,
        value: Option<(&str, AttributeValue)>,
    ) -> Result<(), PortError> {
        let mut req = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(PK, AttributeValue::S(key.partition_key().to_string()))
            .update_expression(expression)
            .condition_expression("attribute_exists(#pk)")
            .set_expression_attribute_names(Some(names));
        if let Some((name, v)) = value {
            req = req.expression_attribute_values(name, v);
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(port_error("UpdateItem", err)),
        }
    }
}
