//! A DynamoDB table a function is given (its client and its name), and what the adapters over
//! one do alike.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use tally_engine::PortError;

use crate::errors::port_error;
use crate::{ConfigError, Env, SdkConfig};

#[derive(Clone, Debug)]
pub struct DynamoTable {
    pub client: Client,
    pub name: String,
}

impl DynamoTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        DynamoTable {
            client,
            name: name.into(),
        }
    }

    /// The table the variable `variable` names, with the function's DynamoDB client.
    pub fn from_env(
        config: &SdkConfig, env: &Env, variable: &'static str,
    ) -> Result<Self, ConfigError> {
        Ok(Self::new(
            crate::config::dynamodb_client(config),
            env.var(variable)?,
        ))
    }

    /// Replaces the item of `answer` (of a state table) with `value`, as JSON.
    pub async fn keep_answer(
        &self, answer: &tally_engine::ports::KeptAnswer, value: &impl serde::Serialize,
    ) -> Result<(), PortError> {
        use crate::state_store::{fact_attribute, PK};
        let json = serde_json::to_string(value)
            .map_err(|e| PortError::Fatal(format!("{}: {e}", answer.name)))?;
        self.client
            .put_item()
            .table_name(&self.name)
            .item(PK, AttributeValue::S(answer.key().partition_key().into()))
            .item(
                fact_attribute(tally_engine::ports::KeptAnswer::FACT),
                AttributeValue::S(json),
            )
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    /// The item whose key attribute `key` is `value`; `consistent` reads what was last written.
    pub async fn get(
        &self, key: &str, value: &str, consistent: bool,
    ) -> Result<Option<HashMap<String, AttributeValue>>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(key, AttributeValue::S(value.to_string()))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        Ok(out.item)
    }

    /// Puts `item`, stamped `created_at`, only where no item has its key (the attribute `key`):
    /// `Ok(false)` when one was there already.
    pub async fn put_new(
        &self, key: &str, item: HashMap<String, AttributeValue>,
    ) -> Result<bool, PortError> {
        let now = AttributeValue::S(chrono::Utc::now().to_rfc3339());
        let made = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .item("created_at", now)
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", key)
            .send()
            .await;
        match made {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(port_error("PutItem", e)),
        }
    }
}
