//! The app key registry (`AppsTable`): one item per key, by the key's SHA-256 (`key_hash`), never
//! the key itself. Lookups are cached per warm instance for a minute, so a busy `/collect` reads
//! each key about once a minute; a removed key stops working within that minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use tally_engine::PortError;
use tally_pipelines::events::collect::{App, AppKeys};

use crate::errors::port_error;

pub const KEY_HASH: &str = "key_hash";
const CACHE_FOR: Duration = Duration::from_secs(60);
/// Lookups kept at most: unknown keys are cached too, so a client sending random keys must not
/// grow the cache without bound.
const CACHE_MAX: usize = 10_000;

pub struct DynamoAppKeys {
    client: Client,
    table: String,
    cache: Mutex<HashMap<String, (Instant, Option<App>)>>,
}

impl DynamoAppKeys {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The table named by `APPS_TABLE`.
    pub fn from_env(
        config: &aws_config::SdkConfig,
        env: &crate::Env,
    ) -> Result<Self, crate::ConfigError> {
        Ok(Self::new(Client::new(config), env.var("APPS_TABLE")?))
    }

    /// Registers an app under a key's hash (the `tally apps add` command).
    pub async fn register(&self, key_hash: &str, app: &App) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(KEY_HASH, AttributeValue::S(key_hash.to_string()))
            .item("app_id", AttributeValue::S(app.app_id.clone()))
            .item("name", AttributeValue::S(app.name.clone()))
            .item(
                "created_at",
                AttributeValue::S(chrono::Utc::now().to_rfc3339()),
            )
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", KEY_HASH)
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    /// Every registered app (the `tally apps list` command).
    pub async fn apps(&self) -> Result<Vec<App>, PortError> {
        let mut apps = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| port_error("Scan", e))?;
            apps.extend(out.items().iter().filter_map(app_of));
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(apps)
    }
}

fn app_of(item: &HashMap<String, AttributeValue>) -> Option<App> {
    let text = |name: &str| item.get(name)?.as_s().ok().cloned();
    Some(App {
        app_id: text("app_id")?,
        name: text("name")?,
    })
}

impl AppKeys for DynamoAppKeys {
    async fn app_by_key_hash(&self, key_hash: &str) -> Result<Option<App>, PortError> {
        if let Some((at, app)) = self.cache.lock().unwrap().get(key_hash) {
            if at.elapsed() < CACHE_FOR {
                return Ok(app.clone());
            }
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_HASH, AttributeValue::S(key_hash.to_string()))
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        let app = out.item().and_then(app_of);
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key_hash.to_string(), (Instant::now(), app.clone()));
        Ok(app)
    }
}
