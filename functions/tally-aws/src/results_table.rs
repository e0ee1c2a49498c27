//! The results table: one item per cid (`_id` = `C124`) holding each model's newest result:
//! `rev_<MODEL>`, `body_<MODEL>` (the result as published) and `gndr_<MODEL>` (for people reading
//! the table). A result is stored only over an older revision of the same model's.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use tally_engine::PortError;
use tally_pipelines::gender::{Cid, GenderResult, ResultLookup, ResultsUpsert};

use crate::errors::port_error;
use crate::table::DynamoTable;
use crate::{ConfigError, Env, SdkConfig};

pub const ID: &str = "_id";

#[derive(Clone)]
pub struct DynamoResultsTable {
    table: DynamoTable,
}

impl DynamoResultsTable {
    pub fn on(table: DynamoTable) -> Self {
        Self { table }
    }

    /// The table named by `RESULTS_TABLE`.
    pub fn from_env(config: &SdkConfig, env: &Env) -> Result<Self, ConfigError> {
        DynamoTable::from_env(config, env, "RESULTS_TABLE").map(Self::on)
    }
}

/// The attributes of one model's result in a cid's item.
fn rev_attr(model: &str) -> String {
    format!("rev_{model}")
}

fn body_attr(model: &str) -> String {
    format!("body_{model}")
}

/// Rounds of "write the newer ones, read what won" before the batch is retried instead: a round
/// only repeats when another writer stored a result of the same cid in between.
const MAX_ROUNDS: usize = 5;

impl DynamoResultsTable {
    /// One conditional write of `results`, each over an older revision only; `false` when a
    /// condition failed (nothing written).
    async fn write_if_newer(
        &self, cid: &Cid, results: &[&GenderResult],
    ) -> Result<bool, PortError> {
        let mut sets = vec!["#cid = :cid".to_string()];
        let mut conditions = Vec::new();
        let mut req = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(ID, AttributeValue::S(cid.to_string()))
            .expression_attribute_names("#cid", "cid")
            .expression_attribute_values(":cid", AttributeValue::S(cid.to_string()));
        for (i, r) in results.iter().enumerate() {
            let body = serde_json::to_string(r).map_err(|e| PortError::Fatal(e.to_string()))?;
            sets.push(format!("#r{i} = :r{i}, #b{i} = :b{i}, #g{i} = :g{i}"));
            conditions.push(format!("(attribute_not_exists(#r{i}) OR #r{i} < :r{i})"));
            let gndr = r.gndr.map_or("none", |g| g.as_str());
            req = req
                .expression_attribute_names(format!("#r{i}"), rev_attr(&r.model))
                .expression_attribute_names(format!("#b{i}"), body_attr(&r.model))
                .expression_attribute_names(format!("#g{i}"), format!("gndr_{}", r.model))
                .expression_attribute_values(format!(":r{i}"), AttributeValue::N(r.rev.to_string()))
                .expression_attribute_values(format!(":b{i}"), AttributeValue::S(body))
                .expression_attribute_values(format!(":g{i}"), AttributeValue::S(gndr.into()));
        }
        let outcome = req
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(conditions.join(" AND "))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(port_error("UpdateItem", err)),
        }
    }

    /// The revisions stored for `cid`, per model.
    async fn stored_revisions(&self, cid: &Cid) -> Result<HashMap<String, u64>, PortError> {
        let item = self.table.get(ID, &cid.to_string(), true).await?;
        Ok(item
            .iter()
            .flatten()
            .filter_map(|(name, v)| {
                let model = name.strip_prefix("rev_")?;
                Some((model.to_string(), v.as_n().ok()?.parse().ok()?))
            })
            .collect())
    }
}

impl ResultsUpsert for DynamoResultsTable {
    async fn upsert_newer(&self, cid: &Cid, results: &[GenderResult]) -> Result<usize, PortError> {
        let mut pending: Vec<&GenderResult> = results.iter().collect();
        for _ in 0..MAX_ROUNDS {
            if pending.is_empty() || self.write_if_newer(cid, &pending).await? {
                return Ok(pending.len());
            }
            // Some model's stored result is as new: write only the others (rare: a redelivery
            // or a reordered retry).
            let stored = self.stored_revisions(cid).await?;
            pending.retain(|r| stored.get(&r.model).is_none_or(|rev| *rev < r.rev));
        }
        Err(PortError::Transient(format!(
            "results of {cid} kept changing under {MAX_ROUNDS} writes"
        )))
    }
}

impl ResultLookup for DynamoResultsTable {
    async fn get(&self, cid: &Cid, model: &str) -> Result<Option<GenderResult>, PortError> {
        let out = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key(ID, AttributeValue::S(cid.to_string()))
            .projection_expression("#b")
            .expression_attribute_names("#b", body_attr(model))
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        let Some(body) = out
            .item()
            .and_then(|i| i.get(&body_attr(model)))
            .and_then(|b| b.as_s().ok())
        else {
            return Ok(None);
        };
        serde_json::from_str(body)
            .map(Some)
            .map_err(|e| PortError::Fatal(format!("{model} result of {cid} is malformed: {e}")))
    }
}
