//! The app key registry (`AppsTable`): one item per key, by the key's SHA-256 (`key_hash`), never
//! the key itself. Lookups are cached per warm instance for a minute, so a busy `/collect` reads
//! each key about once a minute; a removed key stops working within that minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use tally_engine::PortError;
use tally_events::collect::{App, AppKeys};
use tally_events::seal::{SealKeys, KEY_BYTES};

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
        let (client, table) = apps_table(config, env)?;
        Ok(Self::new(client, table))
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

/// The item of the ingest seal's key: not a SHA-256 in hex, so never an app key's item, and
/// without `app_id`, so never listed as an app.
pub const SEAL_KEY_ITEM: &str = "ingest-seal-key";

/// The ingest seal's key (`tally_events::seal`) in `AppsTable`: made by whichever
/// function asks first (a conditional put: of two makers one wins and the other reads its key),
/// readable only by the functions whose policies name this item (`dynamodb:LeadingKeys`).
pub struct DynamoSealKeys {
    client: Client,
    table: String,
}

impl DynamoSealKeys {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table named by `APPS_TABLE`.
    pub fn from_env(
        config: &aws_config::SdkConfig,
        env: &crate::Env,
    ) -> Result<Self, crate::ConfigError> {
        let (client, table) = apps_table(config, env)?;
        Ok(Self::new(client, table))
    }

    async fn stored(&self) -> Result<Option<Vec<u8>>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_HASH, AttributeValue::S(SEAL_KEY_ITEM.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        Ok(out
            .item()
            .and_then(|i| i.get("secret"))
            .and_then(|v| v.as_b().ok())
            .map(|b| b.as_ref().to_vec()))
    }
}

/// The client and the name of the table named by `APPS_TABLE`.
fn apps_table(
    config: &aws_config::SdkConfig,
    env: &crate::Env,
) -> Result<(Client, String), crate::ConfigError> {
    Ok((
        crate::config::dynamodb_client(config),
        env.var("APPS_TABLE")?,
    ))
}

/// Fresh random bytes from the kernel.
fn random_bytes(n: usize) -> Result<Vec<u8>, PortError> {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| PortError::Fatal(format!("no random bytes: {e}")))?;
    Ok(bytes)
}

fn random_key() -> Result<Vec<u8>, PortError> {
    random_bytes(KEY_BYTES)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new app key: `tk_` and 256 random bits in hex (the table keeps only its SHA-256).
pub fn new_app_key() -> Result<String, PortError> {
    Ok(format!("tk_{}", hex(&random_bytes(32)?)))
}

/// `Flyers Canada` -> `flyers-canada-3f2a9c`: readable, and unique however often a name is reused.
pub fn app_id_for(name: &str) -> Result<String, PortError> {
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let slug: Vec<&str> = slug.split('-').filter(|s| !s.is_empty()).collect();
    let suffix = hex(&random_bytes(3)?);
    Ok(match slug.join("-") {
        s if s.is_empty() => format!("app-{suffix}"),
        s => format!("{}-{suffix}", &s[..s.len().min(40)]),
    })
}

impl SealKeys for DynamoSealKeys {
    async fn seal_key(&self) -> Result<Vec<u8>, PortError> {
        if let Some(key) = self.stored().await? {
            return Ok(key);
        }
        let key = random_key()?;
        let made = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY_HASH, AttributeValue::S(SEAL_KEY_ITEM.into()))
            .item("secret", AttributeValue::B(key.clone().into()))
            .item(
                "created_at",
                AttributeValue::S(chrono::Utc::now().to_rfc3339()),
            )
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", KEY_HASH)
            .send()
            .await;
        match made {
            Ok(_) => Ok(key),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.stored().await?.ok_or_else(|| {
                    PortError::Transient("the seal key was made but cannot be read yet".into())
                })
            }
            Err(e) => Err(port_error("PutItem", e)),
        }
    }
}
