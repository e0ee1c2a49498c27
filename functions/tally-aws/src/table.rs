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
