//! The results table: one item per `_id` (`C124_MODEL2`), the newest revision wins.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use tally_engine::PortError;
use tally_pipelines::gender::{GenderResult, ResultLookup, ResultsUpsert};

use crate::errors::port_error;

pub const ID: &str = "_id";

#[derive(Clone)]
pub struct DynamoResultsTable {
    client: Client,
    table: String,
}

impl DynamoResultsTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table named by `RESULTS_TABLE`.
    pub fn from_env(
        config: &aws_config::SdkConfig,
        env: &crate::Env,
    ) -> Result<Self, crate::ConfigError> {
        Ok(Self::new(Client::new(config), env.var("RESULTS_TABLE")?))
    }
}

impl ResultsUpsert for DynamoResultsTable {
    async fn upsert_if_newer(&self, result: &GenderResult) -> Result<bool, PortError> {
        let body = serde_json::to_string(result).map_err(|e| PortError::Fatal(e.to_string()))?;
        let mut item = HashMap::from([
            (ID.to_string(), AttributeValue::S(result.id.clone())),
            ("model".to_string(), AttributeValue::S(result.model.clone())),
            ("cid".to_string(), AttributeValue::S(result.cid.to_string())),
            ("rev".to_string(), AttributeValue::N(result.rev.to_string())),
            (
                "as_of".to_string(),
                AttributeValue::S(result.as_of.to_rfc3339()),
            ),
            ("body".to_string(), AttributeValue::S(body)),
        ]);
        if let Some(g) = result.gndr {
            item.insert("gndr".into(), AttributeValue::S(g.as_str().into()));
        }
        if let Some(exp) = result.expires_at {
            item.insert(
                "expires_at".into(),
                AttributeValue::N(exp.timestamp().to_string()),
            );
        }
        let outcome = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#id) OR #rev < :rev")
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#rev", "rev")
            .expression_attribute_values(":rev", AttributeValue::N(result.rev.to_string()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(port_error("PutItem", err)),
        }
    }
}

impl ResultLookup for DynamoResultsTable {
    async fn get(&self, id: &str) -> Result<Option<GenderResult>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, AttributeValue::S(id.to_string()))
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let body = item
            .get("body")
            .and_then(|b| b.as_s().ok())
            .ok_or_else(|| PortError::Fatal(format!("result {id} has no body")))?;
        serde_json::from_str(body)
            .map(Some)
            .map_err(|e| PortError::Fatal(format!("result {id} is malformed: {e}")))
    }
}
